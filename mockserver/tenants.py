"""Tenants: isolated workspaces, each with every vendor's data, its own clock and rate-limit counters."""

import hashlib
import random
import re
from dataclasses import dataclass

from faker import Faker

from mockserver.clock import ServerClock, TenantClock
from mockserver.ratelimit import TenantLimiter
from mockserver.vendor import Vendor

DEFAULT_TENANT = "default"
TENANT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

# One Faker, reseeded before each workspace is generated: building a Faker costs far more than
# seeding one, and generation is synchronous, so no two workspaces ever share it at once.
_FAKE = Faker("en_US")


def _digest(*parts: object) -> bytes:
    return hashlib.sha256(":".join(map(str, parts)).encode()).digest()


@dataclass
class SeedContext:
    """Everything a vendor's `state.seed(ctx)` may use; the same inputs give the same workspace.

    `fake` is only valid during `seed()`; keep `rng` for ids and choices made later.
    `now` is the server clock's start: seeded history lies before it, whenever seeding happens.
    """

    vendor: Vendor
    tenant_id: str
    number: int  # 1 for the default tenant, then 2, 3, ... in creation order
    seed: int
    now: float
    fake: Faker
    rng: random.Random

    def secret(self, label: str) -> str:
        """A 32-hex-digit token: fixed for the default tenant (documented), seeded for others."""
        if self.tenant_id == DEFAULT_TENANT:
            return _digest("mockserver-default", self.vendor.name, label).hex()[:32]
        return _digest(self.seed, self.tenant_id, self.vendor.name, label).hex()[:32]


class Tenant:
    def __init__(self, tenant_id: str, number: int, vendors: list[Vendor], seed: int,
                 clock: ServerClock, rate_limits: bool = True, states: dict | None = None):
        self.id = tenant_id
        self.number = number
        self.vendors = vendors
        self.seed = seed
        self.clock = TenantClock(clock)
        self.rate_limits = rate_limits
        if states is None:
            self.reset()
        else:  # restored from a saved state
            self.states = states
            self.limiter = TenantLimiter(self.clock.now)

    def reset(self) -> None:
        """Back to the seeded data, with fresh rate-limit counters (the clock never goes back)."""
        self.states = {vendor.name: self._seed(vendor) for vendor in self.vendors}
        self.limiter = TenantLimiter(self.clock.now)

    def _seed(self, vendor: Vendor):
        number = int.from_bytes(_digest(self.seed, self.id, vendor.name)[:8], "big")
        _FAKE.seed_instance(number)
        ctx = SeedContext(vendor, self.id, self.number, self.seed, self.clock.server.start,
                          _FAKE, random.Random(number))
        return vendor.state.seed(ctx)

    def credentials(self) -> dict:
        """The admin API's view: per vendor, ready-to-send headers and what a client needs."""
        return {name: state.credentials()[0] for name, state in self.states.items()}


class TenantStore:
    def __init__(self, vendors: list[Vendor], seed: int, clock: ServerClock):
        self.vendors = vendors
        self.seed = seed
        self.clock = clock
        self.tenants: dict[str, Tenant] = {}
        self.created = 0  # tenants ever created: numbers (and so ids, credentials) are never reused
        self._principals: dict[tuple[str, str], tuple[Tenant, object]] = {}
        self.create(DEFAULT_TENANT)

    def create(self, tenant_id: str | None = None, rate_limits: bool = True) -> Tenant:
        number = self.created + 1
        tenant_id = f"tenant-{number}" if tenant_id is None else tenant_id
        if not TENANT_ID.fullmatch(tenant_id):
            raise ValueError("tenant ids are 1-64 letters, digits, '.', '_' or '-'")
        if tenant_id in self.tenants:
            raise KeyError(tenant_id)
        tenant = Tenant(tenant_id, number, self.vendors, self.seed, self.clock, rate_limits)
        self.created = number
        self.tenants[tenant_id] = tenant
        self.index(tenant)
        return tenant

    def index(self, tenant: Tenant) -> None:
        """Map each credential (and public handle) the tenant's states name to the tenant;
        call again after a state creates new ones."""
        for name, state in tenant.states.items():
            for credential, principal in state.credentials()[1].items():
                self._principals[(name, credential)] = (tenant, principal)

    def reindex(self, tenants: list[Tenant]) -> None:
        """Index these tenants afresh: what they (or earlier tenants of their ids) registered is forgotten."""
        ids = {tenant.id for tenant in tenants}
        self._principals = {key: found for key, found in self._principals.items() if found[0].id not in ids}
        for tenant in tenants:
            self.index(tenant)

    def restore(self, created: int, saved: list[dict], seed: int) -> None:
        """Every tenant replaced by saved ones (see persistence)."""
        self.seed, self.created = seed, created
        self.tenants, self._principals = {}, {}
        for entry in saved:
            tenant = Tenant(entry["id"], entry["number"], self.vendors, seed, self.clock, entry["rate_limits"],
                            states=entry["states"])
            tenant.clock.offset = entry["clock"]
            self.tenants[tenant.id] = tenant
            self.index(tenant)

    def delete(self, tenant_id: str) -> None:
        if tenant_id == DEFAULT_TENANT:
            raise ValueError("the default tenant cannot be deleted")
        tenant = self.tenants.pop(tenant_id)
        self._principals = {key: found for key, found in self._principals.items() if found[0] is not tenant}

    def lookup(self, vendor: str, credential: str) -> tuple[Tenant, object] | None:
        return self._principals.get((vendor, credential))

    def reset(self) -> None:
        self._principals.clear()
        for tenant in self.tenants.values():
            tenant.reset()
            self.index(tenant)
