"""Tenants: isolated workspaces, each with every vendor's data, its own clock and rate-limit counters.

A tenant's credentials are known from its creation (each vendor's `principals`), but a vendor's
workspace is built only when something first uses it: seeded, or read from the state file when
that holds one. Seeding is a pure function of (seed, tenant id, vendor), so a workspace seeded late
has the same bytes as one seeded at once. Resetting every tenant only bumps a generation: each
tenant drops its workspaces the next time one is opened (`Tenant.open`, the one step that opens);
reading (`opened()`, `credentials()`, `lookup`) changes nothing.
"""

import random
import re
from typing import Any

from faker import Faker

from mockserver.clock import ServerClock, TenantClock
from mockserver.errors import ApiError
from mockserver.ratelimit import TenantLimiter
from mockserver.records import load_workspace
from mockserver.tables import bind
from mockserver.vendor import SeedContext, Vendor, Workspace, digest

DEFAULT_TENANT = "default"
TENANT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
CUSTOM_NUMBERS = 10**9  # a custom id's number: 10^9 and up, from its digest; auto numbers stay below

# One Faker, reseeded before each workspace is generated: building a Faker costs far more than
# seeding one, and generation is synchronous, so no two workspaces ever share it at once.
_FAKE = Faker("en_US")


def context(vendor: Vendor, tenant_id: str, number: int, seed: int, start: float) -> SeedContext:
    """The seed context of one tenant's workspace for one vendor (its Faker and RNG seeded afresh)."""
    drawn = int.from_bytes(digest(seed, tenant_id, vendor.name)[:8], "big")
    _FAKE.seed_instance(drawn)
    return SeedContext(vendor, tenant_id, number, seed, start, _FAKE, random.Random(drawn), tenant_id == DEFAULT_TENANT)


class Workspaces(dict[str, Any]):
    """A tenant's open workspaces by vendor name (`Tenant.open` opens one). A workspace put here
    records its changes as this tenant's (tables.bind)."""

    def __init__(self, tenant: "Tenant") -> None:
        super().__init__()
        self.tenant = tenant

    def __setitem__(self, vendor_name: str, workspace: Workspace) -> None:
        bind(workspace, (self.tenant.id, vendor_name))
        super().__setitem__(vendor_name, workspace)


class Tenant:
    def __init__(self, store: "TenantStore", tenant_id: str, number: int, seed: int, rate_limits: bool = True) -> None:
        self.store = store
        self.id = tenant_id
        self.number = number
        self.seed = seed  # the seed it was created with (a state file's tenants keep theirs)
        self.clock = TenantClock(store.clock)
        self.rate_limits = rate_limits
        self.generation = store.generation
        self.requests = 0  # its vendor requests so far (their numbers: dialects may show them)
        self.states = Workspaces(self)  # those open (see `open`); `opened()` for readers
        self._limiter: TenantLimiter | None = None
        self.indexed: set[tuple[str, str]] = set()  # its keys in the store's credential index
        self.principals = {vendor.name: vendor.state.principals(self.context(vendor)) for vendor in store.vendors}

    @property
    def stale(self) -> bool:
        """Whether every tenant was reset since this one was last opened (it has not caught up yet)."""
        return self.generation != self.store.generation

    def open(self, vendor_name: str) -> Workspace:
        """The tenant's workspace for a vendor, opened (read back or seeded, and its handles indexed)
        if it is not yet; the tenant first catches up with a reset of every tenant. The one step
        of a request that opens workspaces: authentication (or adoption) takes it, the admin state
        view too; everything else reads `states` (or `opened()`)."""
        if self.stale:
            self.generation = self.store.generation
            self.reset()
        workspace = self.states.get(vendor_name)
        if workspace is None:
            workspace = self.states[vendor_name] = self.store.open(self, vendor_name)
        return workspace

    def opened(self) -> dict[str, Workspace]:
        """The open workspaces as they now stand: none after a reset of every tenant."""
        return {} if self.stale else self.states

    @property
    def limiter(self) -> TenantLimiter:
        if self._limiter is None:  # built on first use: an idle tenant holds none
            self._limiter = TenantLimiter(self.clock.now)
        return self._limiter

    def counters(self) -> dict[str, Any] | None:
        """Its rate-limit counters as JSON data (None while it has none)."""
        return None if self._limiter is None else self._limiter.storage.events

    def replace(self, states: "Workspaces | None" = None, counters: dict[str, Any] | None = None) -> None:
        """Its open workspaces and rate-limit counters replaced (as another worker left them; none:
        read back when next used)."""
        self.states = Workspaces(self) if states is None else states
        self._limiter = None
        if counters:
            self.limiter.storage.events = counters

    def reset(self) -> None:
        """Back to the seeded data, with fresh rate-limit counters (the clock and credentials stay)."""
        self.states = Workspaces(self)
        self._limiter = None
        self.requests = 0
        self.store.forget_unreadable(self.id)
        self.store.reindex(self)

    def context(self, vendor: Vendor) -> SeedContext:
        return context(vendor, self.id, self.number, self.seed, self.store.clock.start)

    def credentials(self) -> dict[str, Any]:
        """The admin API's view: per vendor, ready-to-send headers and what a client needs."""
        states = self.opened()
        return {name: (states[name].credentials() if name in states else principals)[0]
                for name, principals in self.principals.items()}


class TenantStore:
    """Every tenant, and the index from each credential (and public handle) to its tenant.

    `saved` is the state file (persistence.StateFile) when there is one: workspaces it holds are
    read from it when first used, instead of seeded.
    """

    def __init__(self, vendors: list[Vendor], seed: int, clock: ServerClock) -> None:
        self.vendors = vendors
        self.by_name = {vendor.name: vendor for vendor in vendors}
        self.seed = seed
        self.clock = clock
        self.tenants: dict[str, Tenant] = {}
        self.created = 0  # auto-numbered tenants ever created: numbers (and so ids) are never reused
        self.generation = 0  # bumped by a reset of every tenant (see Tenant._fresh)
        self.saved: Any = None  # persistence.StateFile (which imports this module)
        # (tenant id, vendor) -> why: a state file's records of a newer schema, kept untouched there
        self.unreadable: dict[tuple[str, str], str] = {}
        self._principals: dict[tuple[str, str], tuple[Tenant, object]] = {}
        self.create(DEFAULT_TENANT)
        self.created = 1  # the default tenant is number 1

    def create(self, tenant_id: str | None = None, rate_limits: bool = True, number: int | None = None,
               seed: int | None = None) -> Tenant:
        """A new tenant: auto-numbered (`tenant-N`, skipping ids taken by hand) or with the id given,
        whose number derives from the id and takes none from the sequence."""
        if tenant_id is None:
            number = self.created + 1
            while f"tenant-{number}" in self.tenants:
                number += 1
            if number >= CUSTOM_NUMBERS:
                raise ValueError(f"no tenant numbers left (auto-numbered tenants stay below {CUSTOM_NUMBERS})")
            tenant_id, self.created = f"tenant-{number}", number
        elif not TENANT_ID.fullmatch(tenant_id):
            raise ValueError("tenant ids are 1-64 letters, digits, '.', '_' or '-'")
        elif tenant_id in self.tenants:
            raise KeyError(tenant_id)
        elif number is None:
            number = 1 if tenant_id == DEFAULT_TENANT else \
                CUSTOM_NUMBERS + int.from_bytes(digest("number", tenant_id)[:4], "big") % CUSTOM_NUMBERS
        tenant = Tenant(self, tenant_id, number, self.seed if seed is None else seed, rate_limits)
        self.tenants[tenant_id] = tenant
        self.index(tenant)
        return tenant

    def open(self, tenant: Tenant, vendor_name: str) -> Workspace:
        """A tenant's workspace for a vendor: from the state file if it holds one, else seeded."""
        if (tenant.id, vendor_name) in self.unreadable:
            raise ApiError(503, self.unreadable[(tenant.id, vendor_name)])
        vendor = self.by_name[vendor_name]
        record = self.saved.workspace(tenant.id, vendor) if self.saved else None
        ctx = tenant.context(vendor)
        workspace = vendor.state.seed(ctx) if record is None else load_workspace(vendor, record[0], record[1], ctx)
        self._add(tenant, vendor_name, workspace.credentials()[1])
        return workspace

    def forget_unreadable(self, tenant_id: str) -> None:
        """A tenant reset or deleted: its records of a newer schema are gone from the file too."""
        if self.unreadable:
            self.unreadable = {key: why for key, why in self.unreadable.items() if key[0] != tenant_id}

    def evict(self, tenant_id: str, vendor_name: str) -> None:
        """Forget an open workspace (its change could not be saved): it is read back when next used."""
        tenant = self.tenants.get(tenant_id)
        if tenant is not None and tenant.states.pop(vendor_name, None) is not None:
            self.reindex(tenant)

    def _add(self, tenant: Tenant, vendor_name: str, principals: dict[str, Any]) -> None:
        if self.tenants.get(tenant.id) is not tenant:  # deleted (or replaced) while a request was under way
            return
        for credential, principal in principals.items():
            key = (vendor_name, credential)
            self._principals[key] = (tenant, principal)
            tenant.indexed.add(key)

    def index(self, tenant: Tenant) -> None:
        """Map each credential (and public handle) of the tenant to it; call again after a
        workspace creates new ones."""
        for name, (_admin, principals) in tenant.principals.items():
            self._add(tenant, name, principals)
        for name, state in tenant.states.items():
            self._add(tenant, name, state.credentials()[1])

    def reindex(self, tenant: Tenant) -> None:
        """Index this tenant afresh: handles of workspaces it no longer has are forgotten."""
        self.forget(tenant)
        self.index(tenant)

    def forget(self, tenant: Tenant) -> None:
        """Drop a tenant's credentials from the index (it is gone, or about to be indexed afresh)."""
        for key in tenant.indexed:
            if self._principals.get(key, (None,))[0] is tenant:
                del self._principals[key]
        tenant.indexed = set()

    def delete(self, tenant_id: str) -> None:
        if tenant_id == DEFAULT_TENANT:
            raise ValueError("the default tenant cannot be deleted")
        self.forget(self.tenants.pop(tenant_id))
        self.forget_unreadable(tenant_id)

    def clear(self, created: int) -> None:
        """No tenant at all (an import replaces them: `add` each)."""
        self.tenants, self._principals, self.unreadable, self.created = {}, {}, {}, created

    def add(self, tenant: Tenant) -> None:
        """A tenant built elsewhere (an import's) added, and its credentials indexed."""
        self.tenants[tenant.id] = tenant
        self.index(tenant)

    def lookup(self, vendor: str, credential: str) -> tuple[Tenant, object] | None:
        """The tenant and principal behind a credential or handle (changes nothing: a tenant every
        tenant's reset has not reached yet keeps only its seeded credentials)."""
        found = self._principals.get((vendor, credential))
        if found is not None and found[0].stale and credential not in found[0].principals[vendor][1]:
            return None
        return found

    def reset(self) -> None:
        """Every tenant back to its seeded data, lazily (see Tenant.open)."""
        self.generation += 1
