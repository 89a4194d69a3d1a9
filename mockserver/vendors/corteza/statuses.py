"""Statuses and activity (rest/status.go, rest/activity.go).

A part of the Workspace (models.py): one state object per tenant, made of these parts."""

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from mockserver.clock import optional_isoformat
from mockserver.vendors.corteza.exceptions import corteza_error

if TYPE_CHECKING:
    from mockserver.vendors.corteza.models import Workspace

DURATION = re.compile(r"^(?:(\d+)h)?\s*(?:(\d+)m)?$")

CLOCK_TIME = re.compile(r"^(\d{1,2})(?::(\d\d))?\s*(am|pm)?$", re.IGNORECASE)



def parse_expires(text: str, now: float) -> tuple[float | None, bool]:
    """The status `expires` grammar (inferred): when-active, afternoon, tomorrow, 1h/30m/1h30m,
    1 PM / 13:00, or a date (YYYY-MM-DD). Returns (timestamp or None, expires when active)."""
    text = text.strip().lower()
    today = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if text in ("", "never"):
        return None, False
    if text == "when-active":
        return None, True
    if text == "tomorrow":
        return (today + timedelta(days=1)).timestamp(), False
    if text.startswith("tomorrow "):  # "tomorrow 1h": from the start of tomorrow
        tomorrow = (today + timedelta(days=1)).timestamp()
        later, _ = parse_expires(text.removeprefix("tomorrow ").strip(), tomorrow)
        if later is None:
            raise corteza_error(f"invalid expires value: {text}")
        return later, False
    if text == "afternoon":
        moment = today + timedelta(hours=13)
        return (moment if moment.timestamp() > now else moment + timedelta(days=1)).timestamp(), False
    if (duration := DURATION.match(text)) and any(duration.groups()):
        hours, minutes = (int(group or 0) for group in duration.groups())
        return now + hours * 3600 + minutes * 60, False
    if clock := CLOCK_TIME.match(text):
        hour, minute, half = int(clock.group(1)), int(clock.group(2) or 0), clock.group(3)
        if half:
            hour = hour % 12 + (12 if half == "pm" else 0)
        if hour < 24 and minute < 60:
            moment = today + timedelta(hours=hour, minutes=minute)
            return (moment if moment.timestamp() > now else moment + timedelta(days=1)).timestamp(), False
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC).timestamp(), False
    except ValueError:
        raise corteza_error(f"invalid expires value: {text}") from None


class Statuses:
    def set_status(self: "Workspace", user_id: str, body: dict, now: float) -> dict:
        expires, when_active = parse_expires(body.get("expires") or "", now)
        return self.statuses.insert({"userID": user_id, "icon": body.get("icon") or "",
                                     "message": body.get("message") or "", "expires": expires,
                                     "expiresWhenActive": when_active, "createdAt": now})

    def current_statuses(self: "Workspace", now: float) -> list[dict]:
        return [s for s in self.statuses.values() if s["expires"] is None or s["expires"] > now]

    def record_activity(self: "Workspace", user_id: str, body: dict, now: float) -> None:
        """rest/activity.go Send, its checks and wording (an activity is only relayed to
        subscribers; the mock keeps the last 100, in the meta: a list with no key to make a table of,
        replaced with each one)."""
        if not body.get("channelID") and body.get("messageID"):
            raise corteza_error("can not send activity on message without channel ID")
        if not body.get("kind"):
            raise corteza_error("missing value for activity kind")
        if body["kind"] in ("connected", "disconnected"):
            raise corteza_error("can not use reserved values for activity kind")
        self.activity = (self.activity + [{"userID": user_id, "kind": body["kind"], "channelID": body.get("channelID"),
                                           "messageID": body.get("messageID"), "at": optional_isoformat(now)}])[-100:]

    @staticmethod
    def status_view(status: dict) -> dict:
        # `present` as the real list has it (rest/status.go: "online" for connected users; a user
        # with a current status counts as connected here, inferred).
        view = {"userID": status["userID"], "present": "online", "icon": status["icon"], "message": status["message"],
                "expiresWhenActive": status["expiresWhenActive"], "createdAt": optional_isoformat(status["createdAt"])}
        if status["expires"] is not None:
            view["expires"] = optional_isoformat(status["expires"])
        return view
