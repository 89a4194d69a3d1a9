"""The request journal: what clients sent and what they got, oldest first, bounded per tenant.

Each tenant keeps its own last `limit` entries, and at most `tenant_bytes` of them (requests
whose credentials were not recognised share one more such journal), so one busy test suite never
evicts another's; past `total_bytes` for every journal together, the server's oldest entries drop,
whoever's. Bodies are kept up to MAX_BODY_BYTES; a longer one is cut there and its entry says
`"truncated": true`. An entry's bytes are its body as kept, its path and query, and ENTRY_BYTES
for the rest (its headers: a request head is at most 16 KiB, as a rule well under 1 KiB).

Each entry recorded is also counted by (vendor, operation, status): what API coverage reports
(`mockserver.coverage`). The counts outlive the entries the ring drops and clearing the journal;
they go with the tenant (`forget`).
"""

import heapq
from collections import Counter, deque
from collections.abc import Callable
from itertools import count
from types import EllipsisType
from typing import Any
from urllib.parse import parse_qs

MAX_BODY_BYTES = 64 * 1024
MAX_TENANT_BYTES = 8 * 1024 * 1024  # a tenant's entries, at most
MAX_BYTES = 256 * 1024 * 1024  # every tenant's entries together, at most
ENTRY_BYTES = 1024  # an entry's headers and fields, beyond its body, path and query

Answered = tuple[str, str | None, int]  # (vendor, operation id or None: it matched none, status)


Kept = tuple[int, dict[str, Any], int]  # (sequence, entry, its bytes)
Difference = dict[str, Any]  # {"field", "expected", "got"}, and "absent": true when the request had none


class Journal:
    def __init__(self, limit: int = 1000, tenant_bytes: int = MAX_TENANT_BYTES, total_bytes: int = MAX_BYTES) -> None:
        self.limit, self.tenant_bytes, self.total_bytes = limit, tenant_bytes, total_bytes
        self._tenants: dict[str | None, deque[Kept]] = {}  # tenant id -> its entries, oldest first
        self._bytes: dict[str | None, int] = {}  # tenant id -> the bytes of its entries
        self.bytes = 0  # of every entry kept
        self._count = 0  # entries kept
        # (sequence, tenant id) of each entry recorded, oldest first: which is the server's oldest.
        # Entries that dropped out of their tenant's journal stay named here until passed over.
        self._order: deque[tuple[int, str | None]] = deque()
        self._sequence = count()
        self.counts: dict[str | None, Counter[Answered]] = {}  # tenant id -> its answers counted

    def record(self, entry: dict[str, Any], body_bytes: int) -> None:
        """Keep the entry (its body of `body_bytes` as kept) and count its answer."""
        self._keep(entry, body_bytes + len(entry["path"]) + len(entry["query"]) + ENTRY_BYTES)
        counted = self.counts.get(entry["tenant"])
        if counted is None:
            counted = self.counts[entry["tenant"]] = Counter()
        counted[entry["vendor"], entry["operation"], entry["status"]] += 1

    def _keep(self, entry: dict[str, Any], size: int) -> None:
        tenant = entry["tenant"]
        kept = self._tenants.get(tenant)
        if kept is None:
            kept = self._tenants[tenant] = deque()
            self._bytes[tenant] = 0
        held, total = self._bytes[tenant] + size, self.bytes + size
        if len(kept) >= self.limit:  # the tenant's oldest drops out
            dropped = kept.popleft()[2]
            held, total = held - dropped, total - dropped
        else:
            self._count += 1
        sequence = next(self._sequence)
        kept.append((sequence, entry, size))
        self._order.append((sequence, tenant))
        self._bytes[tenant], self.bytes = held, total
        if held > self.tenant_bytes or total > self.total_bytes or len(self._order) > 2 * self._count + self.limit:
            self._trim(tenant, sequence)

    def _trim(self, tenant: str | None, newest: int) -> None:
        """Back within the bounds: the tenant's oldest entries, then the server's (whoever's), never
        the entry just kept; and the server's order named afresh once it mostly names entries gone."""
        kept = self._tenants[tenant]
        while self._bytes[tenant] > self.tenant_bytes and len(kept) > 1:
            self._drop(tenant)
        while self.bytes > self.total_bytes:
            oldest, owner = self._order.popleft()
            if oldest == newest:
                self._order.appendleft((oldest, owner))
                break
            if (found := self._tenants.get(owner)) and found[0][0] == oldest:
                self._drop(owner)
        if len(self._order) > 2 * self._count + self.limit:
            self._order = deque(sorted((each[0], owner) for owner, entries in self._tenants.items() for each in entries))

    def _drop(self, tenant: str | None) -> None:
        """The tenant's oldest entry."""
        _, _, size = self._tenants[tenant].popleft()
        self._bytes[tenant] -= size
        self.bytes -= size
        self._count -= 1

    def entries(self, tenant: str | None | EllipsisType = ...) -> list[dict[str, Any]]:
        """Every entry in the order recorded, or one tenant's."""
        if tenant is not ...:
            return [entry for _, entry, _ in self._tenants.get(tenant, ())]
        return [entry for _, entry, _ in heapq.merge(*self._tenants.values(), key=lambda kept: kept[0])]

    def find(self, pattern: dict[str, Any]) -> list[dict[str, Any]]:
        """Entries matching every field of `pattern` (WireMock-style verification): see `differences`."""
        entries = self.entries(pattern["tenant"]) if "tenant" in pattern else self.entries()
        return [entry for entry in entries if all(_matches(entry, key, value) for key, value in pattern.items())]

    def near_misses(self, pattern: dict[str, Any], limit: int = 3) -> list[tuple[dict[str, Any], list[Difference]]]:
        """The `limit` entries closest to matching `pattern`, each with how it differs, fewest
        differences first (then newest): among the entries of its tenant, vendor and operation (those
        it names), for a verification that found none."""
        scope: dict[str, Any] = {key: pattern[key] for key in ("tenant", "vendor", "operation") if key in pattern}
        rest = {key: value for key, value in pattern.items() if key not in scope}
        candidates = [(entry, differences(entry, rest)) for entry in reversed(self.find(scope))]
        return heapq.nsmallest(limit, candidates, key=lambda each: len(each[1]))

    def clear(self, tenant: str | None | EllipsisType = ...) -> None:
        """Forget every entry, or one tenant's."""
        if tenant is ...:
            self._tenants.clear()
            self._bytes.clear()
            self._order.clear()
            self.bytes = self._count = 0
        else:
            self._count -= len(self._tenants.pop(tenant, ()))
            self.bytes -= self._bytes.pop(tenant, 0)

    def forget(self, tenant: str | None | EllipsisType = ...) -> None:
        """Every entry and count, or one tenant's (it was reset or deleted)."""
        self.clear(tenant)
        if tenant is ...:
            self.counts.clear()
        else:
            self.counts.pop(tenant, None)

    def replace(self, entries: list[tuple[dict[str, Any], int]], counts: dict[str | None, Counter[Answered]]) -> None:
        """The journal as given ((entry, its bytes), oldest first), e.g. as the shared state holds it."""
        self.clear()
        for entry, size in entries:
            self._keep(entry, size)
        self.counts = counts

    def counted(self, tenant: str | None | EllipsisType = ...) -> Counter[Answered]:
        """The answers counted, of every tenant (and of requests that named none) or of one."""
        if tenant is not ...:
            return Counter(self.counts.get(tenant, ()))
        return sum(self.counts.values(), Counter())

    def page(self, match: Callable[[dict[str, Any]], bool] | None, tenant: str | None | EllipsisType = ...,
             limit: int = 100, before: int | None = None,
             after: int | None = None) -> tuple[list[tuple[int, dict[str, Any]]], int, bool]:
        """A page of the entries `match` takes (None: every one) of every tenant or of one, each with
        its number (they increase in the order recorded, in this process), oldest first: the newest
        `limit`, or the newest `limit` numbered below `before`, or the oldest `limit` numbered above
        `after`. With how many entries `match` takes in all, and whether more that it takes lie
        beyond the page (older ones; with `after`, newer ones). Reads only as far as the page goes
        (but for counting what `match` takes)."""
        kept = [self._tenants.get(tenant, ())] if tenant is not ... else list(self._tenants.values())
        if match is None:
            total = sum(map(len, kept))
        else:
            total = sum(1 for entries in kept for each in entries if match(each[1]))
        # Each tenant's entries are in increasing order of their numbers: merged, newest first (or oldest, after).
        ordered = heapq.merge(*kept) if after is not None else heapq.merge(*map(reversed, kept), reverse=True)
        found: list[tuple[int, dict[str, Any]]] = []
        for each in ordered:
            number, entry = each[0], each[1]
            if (before is not None and number >= before) or (after is not None and number <= after):
                continue
            if match is not None and not match(entry):
                continue
            if len(found) == limit:
                break
            found.append((number, entry))
        else:
            return (found if after is not None else found[::-1]), total, False
        return (found if after is not None else found[::-1]), total, True




def _matches(entry: dict[str, Any], key: str, wanted: object) -> bool:
    """Whether the entry's `key` is as wanted: `body` holds it, a mapping `query`, `headers` or
    form body has every name and value given, anything else is equal."""
    if key == "body":
        return _holds(_readable(entry, wanted), wanted)
    if key == "query" and isinstance(wanted, dict):
        return _has_params(parse_qs(entry["query"], keep_blank_values=True), wanted)
    if key == "headers" and isinstance(wanted, dict):
        return all(entry["headers"].get(name.lower()) == value for name, value in wanted.items())
    return bool(entry.get(key) == wanted)


def _readable(entry: dict[str, Any], wanted: object) -> object:
    """The entry's body as `wanted` reads it: a text body, for a mapping, as a form ({name: value,
    or [values] when repeated}), whatever its content type (vendors read them so: Corteza)."""
    body = entry.get("body")
    if isinstance(wanted, dict) and isinstance(body, str):
        return {name: _single(values) for name, values in parse_qs(body, keep_blank_values=True).items()}
    return body


def _has_params(recorded: dict[str, list[str]], wanted: dict[str, Any]) -> bool:
    """Every name given holds every value given ({name: value or [values]}) among its values."""
    return all(name in recorded and all(value in recorded[name] for value in _listed(wanted[name]))
               for name in wanted)


def _single(values: list[str] | None) -> str | list[str] | None:
    """A parameter's values as given: one value alone, several as a list."""
    return values[0] if values and len(values) == 1 else values


def _listed(value: object) -> list[object]:
    return value if isinstance(value, list) else [value]


def _holds(recorded: object, wanted: object) -> bool:
    if isinstance(wanted, dict):
        return isinstance(recorded, dict) and all(key in recorded and _holds(recorded[key], value)
                                                  for key, value in wanted.items())
    return recorded == wanted


def differences(entry: dict[str, Any], pattern: dict[str, Any]) -> list[Difference]:
    """How the entry differs from `pattern`, field by field; a mapping (`body`, `query`, `headers`)
    name by name, as `body.description` or `query.page`: nothing when it matches."""
    found: list[Difference] = []
    for key, wanted in pattern.items():
        if _matches(entry, key, wanted):
            continue
        if key == "body":
            found += _body_differences("body", _readable(entry, wanted), wanted)
        elif key == "query" and isinstance(wanted, dict):
            recorded = parse_qs(entry["query"], keep_blank_values=True)
            found += [_difference(f"query.{name}", value, _single(recorded.get(name))) for name, value in wanted.items()
                      if not _has_params(recorded, {name: value})]
        elif key == "headers" and isinstance(wanted, dict):
            found += [_difference(f"headers.{name.lower()}", value, entry["headers"].get(name.lower()))
                      for name, value in wanted.items() if entry["headers"].get(name.lower()) != value]
        else:
            found.append(_difference(key, wanted, entry.get(key)))
    return found


def _body_differences(field: str, recorded: object, wanted: object) -> list[Difference]:
    """Where a body does not hold `wanted`: the keys of a mapping it lacks or holds otherwise, nested."""
    if not (isinstance(wanted, dict) and isinstance(recorded, dict)):
        return [_difference(field, wanted, recorded)]
    found: list[Difference] = []
    for key, value in wanted.items():
        if key not in recorded:
            found.append(_difference(f"{field}.{key}", value, None))
        elif not _holds(recorded[key], value):
            found += _body_differences(f"{field}.{key}", recorded[key], value)
    return found


def _difference(field: str, expected: object, got: object) -> Difference:
    return {"field": field, "expected": expected, "got": got} | ({"absent": True} if got is None else {})
