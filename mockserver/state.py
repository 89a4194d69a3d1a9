"""The server's state, and every change to it outside a vendor's tables: `ServerState`.

It holds the tenants (`tenants.TenantStore`), the server clock, the faults, the journal, the seed
and the cache of answers; the admin API, the state file, the workers' replication and webhook
outcomes take it, never the ASGI app. Each change made through it notes itself on the turn under
way (`turns.current`), as vendor records do (`tables`): nothing is noted by hand.
"""

from typing import Any

from mockserver.answers import AnswerCache
from mockserver.clock import ServerClock
from mockserver.faults import Fault, FaultBook
from mockserver.journal import Journal
from mockserver.tenants import Tenant, TenantStore
from mockserver.turns import Turn, current
from mockserver.vendor import Vendor


def _turn() -> Turn:
    """The turn under way (changes outside any turn, as at start-up, note nothing: a throwaway)."""
    return current.get() or Turn()


class ServerState:
    def __init__(self, vendors: list[Vendor], seed: int, clock: ServerClock, journal_limit: int) -> None:
        self.vendors = vendors
        self.seed = seed
        self.clock = clock
        self.store = TenantStore(vendors, seed, clock)
        self.journal = Journal(journal_limit)
        self.faults = FaultBook(seed)
        self.answers = AnswerCache()

    # --- tenants ---------------------------------------------------------------------------------

    def create_tenant(self, tenant_id: str | None = None, rate_limits: bool = True) -> Tenant:
        """A new tenant (ValueError: not an id; KeyError: taken)."""
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

    def replace(self, apply: Any) -> None:
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
        """A reset or deleted tenant's journal entries and faults go with it."""
        self.journal.clear(tenant_id)
        self.faults.clear(tenant_id)
        turn = _turn()
        turn.journals.add(tenant_id)
        turn.world = True
