"""The request journal: what clients sent and what they got, oldest first, bounded per tenant.

Each tenant keeps its own last `limit` entries (requests whose credentials were not recognised
share one more such journal), so one busy test suite never evicts another's. Bodies are kept up
to MAX_BODY_BYTES; a longer one is cut there and its entry says `"truncated": true`.

Each entry recorded is also counted by (vendor, operation, status): what API coverage reports
(`mockserver.coverage`). The counts outlive the entries the ring drops and clearing the journal;
they go with the tenant (`forget`).
"""

import heapq
from collections import Counter, deque
from itertools import count
from types import EllipsisType
from typing import Any

MAX_BODY_BYTES = 64 * 1024

Answered = tuple[str, str | None, int]  # (vendor, operation id or None: it matched none, status)


class Journal:
    def __init__(self, limit: int = 1000) -> None:
        self.limit = limit
        self._tenants: dict[str | None, deque[tuple[int, dict[str, Any]]]] = {}  # tenant id -> (sequence, entry)
        self._sequence = count()
        self.counts: dict[str | None, Counter[Answered]] = {}  # tenant id -> its answers counted

    def record(self, entry: dict[str, Any]) -> None:
        self._keep(entry)
        counted = self.counts.get(entry["tenant"])
        if counted is None:
            counted = self.counts[entry["tenant"]] = Counter()
        counted[entry["vendor"], entry["operation"], entry["status"]] += 1

    def _keep(self, entry: dict[str, Any]) -> None:
        kept = self._tenants.get(entry["tenant"])
        if kept is None:  # past the limit the oldest drop out
            kept = self._tenants[entry["tenant"]] = deque(maxlen=self.limit)
        kept.append((next(self._sequence), entry))

    def entries(self, tenant: str | None | EllipsisType = ...) -> list[dict[str, Any]]:
        """Every entry in the order recorded, or one tenant's."""
        if tenant is not ...:
            return [entry for _, entry in self._tenants.get(tenant, ())]
        return [entry for _, entry in heapq.merge(*self._tenants.values(), key=lambda kept: kept[0])]

    def find(self, pattern: dict[str, Any]) -> list[dict[str, Any]]:
        """Entries matching every field of `pattern` (WireMock-style verification); `body` matches
        when the recorded body holds it (a dict matches any superset, recursively)."""
        entries = self.entries(pattern["tenant"]) if "tenant" in pattern else self.entries()
        return [entry for entry in entries if all(
            _holds(entry.get(key), value) if key == "body" else entry.get(key) == value
            for key, value in pattern.items())]

    def clear(self, tenant: str | None | EllipsisType = ...) -> None:
        """Forget every entry, or one tenant's."""
        if tenant is ...:
            self._tenants.clear()
        else:
            self._tenants.pop(tenant, None)

    def forget(self, tenant: str | None | EllipsisType = ...) -> None:
        """Every entry and count, or one tenant's (it was reset or deleted)."""
        self.clear(tenant)
        if tenant is ...:
            self.counts.clear()
        else:
            self.counts.pop(tenant, None)

    def replace(self, entries: list[dict[str, Any]], counts: dict[str | None, Counter[Answered]]) -> None:
        """The journal as given (entries oldest first), e.g. as the shared state holds it."""
        self._tenants.clear()
        for entry in entries:
            self._keep(entry)
        self.counts = counts

    def counted(self, tenant: str | None | EllipsisType = ...) -> Counter[Answered]:
        """The answers counted, of every tenant (and of requests that named none) or of one."""
        if tenant is not ...:
            return Counter(self.counts.get(tenant, ()))
        return sum(self.counts.values(), Counter())


def _holds(recorded: object, wanted: object) -> bool:
    if isinstance(wanted, dict):
        return isinstance(recorded, dict) and all(key in recorded and _holds(recorded[key], value)
                                                  for key, value in wanted.items())
    return recorded == wanted
