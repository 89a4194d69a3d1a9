"""The server's state, and every change to it outside a vendor's tables: `ServerState`.

It holds the tenants (`tenants.TenantStore`), the server clock, the faults, the journal, the seed
and the cache of answers; the admin API, the state file, the workers' replication and webhook
outcomes take it, never the ASGI app. Each change made through it notes itself on the turn under
way (`turns.current`), as vendor records do (`tables`): nothing is noted by hand.
"""

from collections.abc import Callable
from typing import Any

from mockserver.answers import AnswerCache
from mockserver.clock import LATEST, ServerClock, isoformat
from mockserver.errors import StateError
from mockserver.faults import Fault, FaultBook
from mockserver.journal import Journal
from mockserver.routing import Router
from mockserver.tenants import CUSTOM_NUMBERS, DEFAULT_TENANT, TENANT_ID, Tenant, TenantStore
from mockserver.turns import Turn, current
from mockserver.vendor import Vendor

DOCS_PATHS = ("/openapi.json", "/openapi.yaml", "/ui")  # under each base path, as Connexion serves them
MAX_TENANTS = 10_000  # tenants a server holds at most (an idle one costs about 20 KiB)


def tenant_record(tenant: Tenant) -> dict[str, Any]:
    return {"id": tenant.id, "number": tenant.number, "seed": tenant.seed, "rate_limits": tenant.rate_limits,
            "clock_offset": tenant.clock.offset}


def check_world(world: object) -> None:
    """StateError unless `world` is a world record (see `ServerState.world`), whatever wrote it:
    an export, the state file or another worker."""
    if not isinstance(world, dict):
        raise StateError("the world record is a JSON object")
    now = seconds(world.get("now"), "now")
    if type(world.get("seed")) is not int or not 0 <= world["seed"] < 2**63:
        raise StateError("seed must be a whole number from 0")
    if type(world.get("created")) is not int or not 0 <= world["created"] < CUSTOM_NUMBERS:
        raise StateError(f"created must be a whole number from 0 to {CUSTOM_NUMBERS - 1}")
    tenants = world.get("tenants")
    if not isinstance(tenants, list):
        raise StateError("tenants must be a list")
    if len(tenants) > MAX_TENANTS:
        raise StateError(f"a server holds at most {MAX_TENANTS:,} tenants")
    for entry in tenants:
        if not isinstance(entry, dict):
            raise StateError("each tenant is a JSON object")
        if not isinstance(entry.get("id"), str) or not TENANT_ID.fullmatch(entry["id"]):
            raise StateError(f"tenant id {entry.get('id')!r} is not a tenant id")
        for key in ("number", "seed"):
            if type(entry.get(key)) is not int or not 0 <= entry[key] < 2**63:
                raise StateError(f"tenant {entry['id']}: {key} must be a whole number from 0")
        if not isinstance(entry.get("rate_limits"), bool):
            raise StateError(f"tenant {entry['id']}: rate_limits must be true or false")
        if now + seconds(entry.get("clock_offset"), f"tenant {entry['id']}: clock_offset") > LATEST:
            raise StateError(f"a tenant's clock would pass {isoformat(LATEST)}")
    ids = [entry["id"] for entry in tenants]
    if len(set(ids)) != len(ids):
        raise StateError("tenant ids repeat")
    if DEFAULT_TENANT not in ids:
        raise StateError(f"the {DEFAULT_TENANT!r} tenant is missing")


def seconds(value: object, what: str) -> float:
    """A number of seconds from 0 that keeps every clock before the year 10000."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= LATEST:
        raise StateError(f"{what} must be a number of seconds from 0 to {LATEST:.0f}")
    return value


def _turn() -> Turn:
    """The turn under way (changes outside any turn, as at start-up, note nothing: a throwaway)."""
    return current.get() or Turn()


class ServerState:
    """What one server holds (see the module docstring); `app.MockServer` has one."""

    def __init__(self, vendors: list[Vendor], seed: int, clock: ServerClock, journal_limit: int) -> None:
        self.vendors = vendors
        self.seed = seed
        self.clock = clock
        self.store = TenantStore(vendors, seed, clock)
        self.journal = Journal(journal_limit)
        self.faults = FaultBook(seed)
        self.answers = AnswerCache()
        # Each vendor's operations by method and path: what requests are routed by, and `routes`.
        self.routers = {vendor.name: Router(vendor, vendor.specification) for vendor in vendors}

    def world(self) -> dict[str, Any]:
        """The server-wide record, alike in an export, the state file (as rows) and Redis: the
        seed, the auto-numbered tenants so far, the server clock's now, every tenant in creation
        order. `check_world` checks one read back."""
        return {"seed": self.seed, "created": self.store.created, "now": self.clock.now(),
                "tenants": [tenant_record(tenant) for tenant in self.store.tenants.values()]}

    def routes(self, vendor: Vendor, path: str) -> bool:
        """Whether the server answers this full path (with the base path) for the vendor, besides
        a 404: one of its operations' paths (by any method), or its spec and docs downloads."""
        if path.removeprefix(vendor.base_path) in DOCS_PATHS or path.startswith(vendor.base_path + "/ui/"):
            return True
        return self.routers[vendor.name].match("GET", path) is not None

    def vendor_for(self, path: str) -> Vendor | None:
        """The vendor whose base path the path is under."""
        for vendor in self.vendors:
            if path == vendor.base_path or path.startswith(vendor.base_path + "/"):
                return vendor
        return None

    # --- tenants ---------------------------------------------------------------------------------

    def create_tenant(self, tenant_id: str | None = None, rate_limits: bool = True) -> Tenant:
        """A new tenant (ValueError: not an id, or MAX_TENANTS reached; KeyError: taken)."""
        if len(self.store.tenants) >= MAX_TENANTS:
            raise ValueError(f"a server holds at most {MAX_TENANTS:,} tenants: delete some first")
        tenant = self.store.create(tenant_id, rate_limits=rate_limits)
        self._tenant_changed(tenant.id)
        return tenant

    def delete_tenant(self, tenant: Tenant) -> None:
        """A tenant gone, with its journal entries and faults (ValueError: the default tenant)."""
        self.store.delete(tenant.id)
        self._forget_traces(tenant.id)
        self._tenant_changed(tenant.id)

    def reset_tenant(self, tenant: Tenant) -> None:
        """A tenant back to its seeded data, its journal entries and faults gone."""
        tenant.reset()
        self._forget_traces(tenant.id)
        _turn().resets.add(tenant.id)

    def reset_all(self) -> None:
        """Every tenant back to its seeded data (lazily: see tenants.Tenant.open)."""
        self.store.reset()
        turn = _turn()
        turn.world = turn.reset_all = True

    def replace(self, apply: Callable[[], None]) -> None:
        """Every tenant replaced (an import: `apply()` puts the new ones in place)."""
        before = set(self.store.tenants)
        apply()
        turn = _turn()
        turn.world = turn.reset_all = True
        turn.tenants |= before | set(self.store.tenants)
        turn.states |= {(tenant.id, name) for tenant in self.store.tenants.values() for name in tenant.states}

    # --- clocks ----------------------------------------------------------------------------------

    def advance_tenant_clock(self, tenant: Tenant, seconds: float) -> None:
        tenant.clock.advance(seconds)
        self._tenant_changed(tenant.id)

    def advance_clock(self, seconds: float) -> None:
        self.clock.advance(seconds)
        _turn().world = True

    # --- faults and the journal ------------------------------------------------------------------

    def add_fault(self, definition: dict[str, Any]) -> Fault:
        """A fault armed (ValueError: not one)."""
        fault = self.faults.add(definition, {vendor.name for vendor in self.vendors})
        _turn().world = True
        return fault

    def clear_faults(self, tenant_id: str | None) -> None:
        self.faults.clear(tenant_id)
        _turn().world = True

    def remove_fault(self, fault_id: str) -> bool:
        """Whether there was such a fault."""
        _turn().world = True
        return self.faults.faults.pop(fault_id, None) is not None

    def clear_journal(self, tenant_id: str | None = None) -> None:
        """The journal entries of one tenant, or (None) every entry."""
        self.journal.clear(*([] if tenant_id is None else [tenant_id]))
        _turn().journals.add(... if tenant_id is None else tenant_id)

    # ---------------------------------------------------------------------------------------------

    def _tenant_changed(self, tenant_id: str) -> None:
        """A tenant created, deleted or changed (its clock): its row, and the tenant list workers share."""
        turn = _turn()
        turn.world = True
        turn.tenants.add(tenant_id)

    def _forget_traces(self, tenant_id: str) -> None:
        """A reset or deleted tenant's journal entries, answer counts and faults go with it."""
        self.journal.forget(tenant_id)
        self.faults.clear(tenant_id)
        turn = _turn()
        turn.journals.add(tenant_id)
        turn.world = True
