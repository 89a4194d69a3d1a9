"""Controllable time: the only source of "now" for data, responses and rate limits."""

import functools
import time
from datetime import UTC, datetime

# Every server starts its clock here, so the same --seed gives the same timestamps.
DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)
# No clock reads later than this: a ticking clock stops here, and the admin API refuses to move one
# past it. A year before four-digit years end, so that dates computed from now (a token's expiry,
# a schedule) still print in every date format answers use.
LATEST = datetime(9998, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()


class ServerClock:
    """A start instant, optionally ticking with real time, pushed forward by the admin API."""

    def __init__(self, start: datetime = DEFAULT_START, ticking: bool = True) -> None:
        self.start = start.timestamp()
        self.ticking = ticking
        self.offset = 0.0
        self.origin = time.monotonic()

    def now(self) -> float:
        elapsed = time.monotonic() - self.origin if self.ticking else 0.0
        return min(self.start + elapsed + self.offset, LATEST)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time never goes backwards")
        self.offset += seconds

    def catch_up(self, moment: float) -> None:
        """Move forward to `moment` if it is later (a restored state's time is never undone)."""
        self.offset += max(0.0, moment - self.now())


class TenantClock:
    """The server clock plus this tenant's own advances."""

    def __init__(self, server: ServerClock) -> None:
        self.server = server
        self.offset = 0.0

    def now(self) -> float:
        return min(self.server.now() + self.offset, LATEST)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time never goes backwards")
        self.offset += seconds


def isoformat(timestamp: float) -> str:
    """ISO 8601 in UTC with a Z suffix, whole seconds: `2026-01-01T00:00:00Z`."""
    return _iso_seconds(int(timestamp))


@functools.lru_cache(maxsize=65536)  # list answers format the same stored timestamps again and again
def _iso_seconds(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def isoformat_ms(timestamp: float) -> str:
    """ISO 8601 in UTC with milliseconds and a Z suffix: `2026-01-01T00:00:00.000Z`."""
    milliseconds = round(timestamp * 1000)
    return f"{_iso_seconds(milliseconds // 1000)[:-1]}.{milliseconds % 1000:03d}Z"


def optional_isoformat(timestamp: float | None, milliseconds: bool = False) -> str | None:
    """`isoformat` (or `isoformat_ms`), or None for no timestamp (a field not set yet)."""
    if timestamp is None:
        return None
    return isoformat_ms(timestamp) if milliseconds else isoformat(timestamp)


def isodate(timestamp: float) -> str:
    """The UTC calendar date: `2026-01-01`."""
    return datetime.fromtimestamp(int(timestamp), UTC).strftime("%Y-%m-%d")
