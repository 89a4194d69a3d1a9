"""Rate limits declared in the specs (`x-rate-limit`), counted on a tenant's controllable clock.

`limits` supplies the limit parsing and the moving-window strategy. Its bundled storages read
`time.time()` (and the memory one expires entries on a wall-clock thread), so windows could not
follow the admin clock; `ClockStorage` implements limits' storage interface on a given clock
instead. A shared (e.g. Redis) storage can replace it behind the same interface.
"""

import bisect
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, parse
from limits.storage import MovingWindowSupport, Storage
from limits.strategies import MovingWindowRateLimiter


class ClockStorage(Storage, MovingWindowSupport):
    """In-memory moving windows whose "now" is a supplied clock."""

    STORAGE_SCHEME = ["mockserver-clock"]

    def __init__(self, now: Callable[[], float]) -> None:
        super().__init__()
        self.now = now
        self.lock = threading.Lock()
        self.events: dict[str, list[float]] = {}  # per key, acquisition times, oldest first

    @property
    def base_exceptions(self) -> type[Exception]:
        return ValueError

    def _window(self, key: str, expiry: int) -> list[float]:
        events = self.events.setdefault(key, [])
        del events[: bisect.bisect_right(events, self.now() - expiry)]
        return events

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        with self.lock:
            events = self._window(key, expiry)
            if len(events) + amount > limit:
                return False
            events.extend([self.now()] * amount)
            return True

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        with self.lock:
            events = self._window(key, expiry)
            return (events[0], len(events)) if events else (self.now(), 0)

    # The fixed-window part of limits' Storage interface; the moving window never calls it.
    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        raise NotImplementedError

    def get(self, key: str) -> int:
        raise NotImplementedError

    def get_expiry(self, key: str) -> float:
        raise NotImplementedError

    def check(self) -> bool:
        return True

    def reset(self) -> int | None:
        with self.lock:
            count = len(self.events)
            self.events.clear()
            return count

    def clear(self, key: str) -> None:
        with self.lock:
            self.events.pop(key, None)


@dataclass(frozen=True)
class Rule:
    """One `x-rate-limit` entry: `limit` ("6/minute"), `scope` and what `counts`.

    scope: `tenant` (one budget for the whole team/workspace) or `credential` (one per key).
    counts: `requests` (every request that passed auth) or `successes` (only 2xx answers,
    for limits such as "10 kudos per day").
    bucket: the operation it belongs to, or `*` when declared at the spec root (one budget
    shared by every operation).
    """

    item: RateLimitItem
    scope: str
    counts: str
    bucket: str

    @classmethod
    def from_spec(cls, entry: dict[str, Any], bucket: str) -> "Rule":
        scope = entry.get("scope", "tenant")
        counts = entry.get("counts", "requests")
        if scope not in ("tenant", "credential") or counts not in ("requests", "successes"):
            raise ValueError(f"bad x-rate-limit entry: {entry!r}")
        return cls(parse(entry["limit"]), scope, counts, bucket)

    def identifiers(self, vendor: str, credential: str) -> tuple[str, ...]:
        owner = credential if self.scope == "credential" else "*"
        return (vendor, self.bucket, owner)


class TenantLimiter:
    """One tenant's rate-limit counters, on that tenant's clock."""

    def __init__(self, now: Callable[[], float]) -> None:
        self.now = now
        self.storage = ClockStorage(now)
        self.strategy = MovingWindowRateLimiter(self.storage)

    def retry_after(self, rules: list[Rule], vendor: str, credential: str) -> int | None:
        """Seconds until every rule would admit one more request; None if all admit it now."""
        waits = [
            self.strategy.get_window_stats(rule.item, *ids).reset_time - self.now()
            for rule in rules
            if not self.strategy.test(rule.item, *(ids := rule.identifiers(vendor, credential)))
        ]
        return max(1, math.ceil(max(waits))) if waits else None

    def hit(self, rules: list[Rule], vendor: str, credential: str) -> None:
        for rule in rules:
            self.strategy.hit(rule.item, *rule.identifiers(vendor, credential))
