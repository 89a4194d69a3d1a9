"""Toybox: a toy vendor, copied into a scratch copy of the package by tests/test_architecture.py."""

from mockserver.vendors.toybox import responses
from mockserver.vendors.toybox.models import Toybox

from mockserver.vendor import Vendor


def render_error(error, exchange=None):
    return error.status, {"problem": error.message}


vendor = Vendor(name="toybox", handlers=responses, state=Toybox, render_error=render_error)
