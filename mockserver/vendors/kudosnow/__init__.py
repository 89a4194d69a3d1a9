"""Kudos Client API v1.2.0 (kudosnow, seed 004) under /kudosnow/v1."""

from mockserver.vendor import Vendor
from mockserver.vendors.kudosnow import responses
from mockserver.vendors.kudosnow.exceptions import render_error
from mockserver.vendors.kudosnow.models import Company

vendor = Vendor(name="kudosnow", handlers=responses, state=Company, render_error=render_error)
