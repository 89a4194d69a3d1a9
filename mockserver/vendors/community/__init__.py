"""Habitate community API (seed 002) under /community/api/v1."""

from mockserver.vendor import Vendor
from mockserver.vendors.community import responses
from mockserver.vendors.community.exceptions import render_error
from mockserver.vendors.community.models import Community

vendor = Vendor(name="community", handlers=responses, state=Community, render_error=render_error)
