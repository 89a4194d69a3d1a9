"""Karma bot external API (seed 000) under /karmabot/api/v1."""

from mockserver.vendor import Vendor
from mockserver.vendors.karmabot import responses
from mockserver.vendors.karmabot.exceptions import render_error
from mockserver.vendors.karmabot.models import KarmaWorkspace

vendor = Vendor(name="karmabot", handlers=responses, state=KarmaWorkspace, render_error=render_error)
