"""Dailybot kudos API (seed 001) under /dailybot/v1."""

from mockserver.vendor import Vendor
from mockserver.vendors.dailybot import responses
from mockserver.vendors.dailybot.exceptions import render_error
from mockserver.vendors.dailybot.models import Organization

vendor = Vendor(name="dailybot", handlers=responses, state=Organization, render_error=render_error)
