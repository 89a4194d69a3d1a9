"""The guard of state that tracks itself (tables.Table): over the positive phase of every vendor
(every operation once, with valid data), with a state file, after each request:
- a GET that the spec does not mark `x-changes-state` has recorded no change;
- every workspace open in memory is exactly what the state file gives back (or, never written,
  what seeding gives): a change made behind a table's back would not be, and would be lost on
  restart.
"""

import pytest
import schemathesis

from mockserver import MockServer, exchange, fuzz
from mockserver.turns import Turn
from mockserver.vendor import discover

VENDORS = [vendor.name for vendor in discover()]


def differing_workspaces(server: MockServer) -> list[str]:
    """The open workspaces that differ from what the state file (or, never written, seeding) gives back."""
    assert server.saved is not None
    found = []
    for tenant in server.store.tenants.values():
        for name, workspace in tenant.states.items():
            vendor = server.store.by_name[name]
            saved = server.saved.workspace(tenant.id, vendor)
            if workspace.dump() != (saved[0] if saved else vendor.state.seed(tenant.context(vendor)).dump()):
                found.append(f"{tenant.id}'s {name}")
    return found


def problems_after(server: MockServer, turn: Turn) -> list[str]:
    """What the guard finds once a vendor request's change is committed."""
    ex = exchange.current.get(None)
    if ex is None or ex.operation is None:
        return []
    _, operation = ex.routed
    where = f"{operation.id} ({ex.scope['method']} {ex.scope['path']}, {ex.status})"
    found = [f"{where}: {workspace} workspace differs from what the state file gives back"
             for workspace in differing_workspaces(server)]
    if ex.scope["method"] == "GET" and turn.states and not operation.extensions.get("x-changes-state"):
        found.append(f"{where}: a GET the spec does not mark x-changes-state changed {sorted(turn.states)}")
    return found


@pytest.mark.parametrize("name", VENDORS)
def test_every_change_records_itself(name, tmp_path):
    server = MockServer(ticking=False, vendors=[name], state_file=str(tmp_path / "state.db"))
    tenant = server.store.create("guarded", rate_limits=False)
    server.saved.write_all(server.state)
    vendor = server.store.by_name[name]
    headers = tenant.credentials()[name]["headers"]
    problems: list[str] = []
    commit = server.commit

    def checked_commit(turn: Turn) -> bool:
        saved = commit(turn)
        problems.extend(problems_after(server, turn))
        return saved

    server.commit = checked_commit  # type: ignore[method-assign]
    schema = schemathesis.openapi.from_asgi(f"{vendor.base_path}/openapi.json", server,
                                            config=fuzz.config(vendor, headers, max_examples=1))
    steps = fuzz.positive_phase(vendor, schema, headers)
    assert len(steps) == len(vendor.operations)
    assert not problems, "\n".join(problems)
    # The guard can fail: a record changed in place, behind its table's back, is seen.
    table = next(table for table in tenant.states[name].tables().values() if table)
    record = next(iter(table.values()))
    record[table.key] = "changed in place"
    assert differing_workspaces(server) == [f"guarded's {name}"]
