"""Faults injected through the admin API: for a vendor (and optionally an operation and a tenant),
the next N matching requests, or each with a probability (seeded, so runs repeat), get a status,
a latency, a dropped connection or a malformed body."""

import random
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from mockserver.records import rng_dump, rng_load

KINDS = ("status", "latency", "drop", "malformed")
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}")  # RFC 9110 token
FRAMING = {"content-length", "transfer-encoding", "connection"}
HEADER_VALUE = re.compile(r"[\t\x20-\x7e\xa0-\xff]{0,4096}")  # printable latin-1, no CR, LF or NUL


@dataclass
class Fault:
    id: str
    vendor: str
    kind: str
    operation: str | None = None
    tenant: str | None = None
    status: int | None = None
    latency_ms: int | None = None
    count: int | None = None  # requests still to fault; None: until cleared
    probability: float | None = None
    headers: dict[str, Any] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def view(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if key != "rng"}


class FaultBook:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.faults: dict[str, Fault] = {}
        self.added = 0

    def add(self, spec: dict[str, Any], vendors: set[str]) -> Fault:
        """A fault from its JSON definition; ValueError says what is wrong with it."""
        known = {"vendor", "kind", "operation", "tenant", "status", "latency_ms", "count", "probability", "headers"}
        if set(spec) - known:
            raise ValueError(f"unknown fields: {', '.join(sorted(set(spec) - known))}")
        if not isinstance(spec.get("vendor"), str) or spec["vendor"] not in vendors:
            raise ValueError(f"vendor must be one of {', '.join(sorted(vendors))}")
        if not isinstance(spec.get("kind"), str) or spec["kind"] not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        _check(spec, "operation", str)
        _check(spec, "tenant", str)
        _check(spec, "headers", dict)
        for name, value in spec.get("headers", {}).items():
            if not (isinstance(value, str) and HEADER_NAME.fullmatch(name) and HEADER_VALUE.fullmatch(value)):
                raise ValueError(f"header {name!r}: names are tokens, values printable latin-1 without CR or LF")
            if name.lower() in FRAMING:
                raise ValueError(f"header {name!r} frames the answer; the server sets it")
        if spec["kind"] == "status" and not (isinstance(spec.get("status"), int) and 400 <= spec["status"] <= 599):
            raise ValueError("a status fault needs a status from 400 to 599")
        if spec["kind"] == "latency" and not (isinstance(spec.get("latency_ms"), int) and 0 <= spec["latency_ms"] <= 60_000):
            raise ValueError("a latency fault needs latency_ms from 0 to 60000")
        count = spec.get("count")
        if "count" in spec and not (isinstance(count, int) and not isinstance(count, bool) and count >= 1):
            raise ValueError("count must be a whole number from 1")
        probability = spec.get("probability")
        if probability is not None and not (isinstance(probability, (int, float)) and not isinstance(probability, bool)
                                            and 0 < probability <= 1):
            raise ValueError("probability must be above 0 and at most 1")
        self.added += 1
        fault_id = f"fault-{self.added}"
        fault = Fault(id=fault_id, rng=random.Random(f"{self.seed}:{fault_id}"), **spec)
        self.faults[fault_id] = fault
        return fault

    def clear(self, tenant: str | None = None) -> None:
        """Remove every fault, or those of one tenant."""
        if tenant is None:
            self.faults.clear()
        else:
            self.faults = {key: fault for key, fault in self.faults.items() if fault.tenant != tenant}

    def dump(self) -> dict[str, Any]:
        """The faults as JSON data (shared between workers), their seeded draws included."""
        return {"added": self.added, "faults": [fault.view() | {"rng": rng_dump(fault.rng)}
                                                for fault in self.faults.values()]}

    def load(self, data: dict[str, Any]) -> None:
        self.added = data["added"]
        self.faults = {entry["id"]: Fault(**(entry | {"rng": rng_load(entry["rng"])})) for entry in data["faults"]}

    def matching(self, vendor: str, operation: str | None, tenant: str | None) -> bool:
        """Whether any fault is for this vendor, operation and tenant (taking it may still draw no)."""
        return any(fault.vendor == vendor and fault.operation in (None, operation) and fault.tenant in (None, tenant)
                   for fault in self.faults.values())

    def take(self, vendor: str, operation: str | None, tenant: str | None) -> Fault | None:
        """The first fault that applies to this request, its count spent."""
        for fault in list(self.faults.values()):
            if fault.vendor != vendor or fault.operation not in (None, operation) or fault.tenant not in (None, tenant):
                continue
            if fault.probability is not None and fault.rng.random() >= fault.probability:
                continue
            if fault.count is not None:
                fault.count -= 1
                if fault.count == 0:
                    del self.faults[fault.id]
            return fault
        return None


def _check(spec: dict[str, Any], key: str, kind: type) -> None:
    if key in spec and not isinstance(spec[key], kind):
        raise ValueError(f"{key} must be a {kind.__name__}")
