"""Corteza Messaging API (seed 003, Corteza server 2019.9-2020.12) under /corteza/messaging."""

from mockserver.vendor import Vendor
from mockserver.vendors.corteza import responses
from mockserver.vendors.corteza.exceptions import render_error
from mockserver.vendors.corteza.models import Workspace

vendor = Vendor(name="corteza", handlers=responses, state=Workspace, render_error=render_error)
