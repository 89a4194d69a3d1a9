"""The server's state as plain JSON records: the state file (`serve --state-file`, SQLite) and
the admin API's export and import. Nothing here ever becomes code: records are parsed as JSON and
rebuilt by each vendor's `load` (see records), checked before anything is replaced.

Kept: each tenant (id, number, seed, rate-limit switch, clock) and each workspace a tenant has
used, plus the server clock and the tenant counter. Not kept: the request journal, faults and
rate-limit counters. A workspace never used has no record: it is seeded again, to the same bytes.

The state file is a normal SQLite database (WAL mode), with three tables:
- `server(key, value)`: `format` (the file's layout version), `now` (the server clock when last
  written: a restart never moves time back), `created` (auto-numbered tenants ever created), `seed`;
- `tenants(id, number, seed, rate_limits, clock_offset)`, in creation order;
- `workspaces(tenant, vendor, schema, data)`: one vendor's workspace of one tenant, `data` its
  JSON record of that vendor's `schema`.
A request writes only the rows it changed, in one transaction committed before its answer is
sent; rows of vendors this server does not serve are left as they are.
"""

import os
import sqlite3
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import orjson

from mockserver.records import StateError, load_workspace
from mockserver.state import check_world
from mockserver.tables import assemble, rows_of
from mockserver.tenants import Tenant, context
from mockserver.turns import Turn
from mockserver.vendor import Vendor, Workspace

if TYPE_CHECKING:
    from mockserver.state import ServerState

FORMAT = "mockserver-state"
VERSION = 2  # of the state file's tables (1: a row per workspace, migrated on open)
EXPORT_VERSION = 1  # of the export document


class StateFileError(Exception):
    """A change that could not be written to the state file (the change is then undone)."""


# --- records ------------------------------------------------------------------------------------

def workspace_record(workspace: Workspace, vendor: Vendor) -> dict[str, Any]:
    return {"schema": vendor.state.SCHEMA, "data": workspace.dump()}


# --- export and import --------------------------------------------------------------------------

def export(state: "ServerState") -> dict[str, Any]:
    """The world record with every workspace each tenant has used, as one versioned JSON document."""
    world, store = state.world(), state.store
    for record, tenant in zip(world["tenants"], store.tenants.values(), strict=True):
        record["workspaces"] = {name: workspace_record(workspace, store.by_name[name])
                                for name, workspace in tenant.opened().items()}
    return {"format": FORMAT, "version": EXPORT_VERSION} | world


def parse(state: "ServerState", document: object) -> tuple[dict[str, Any], list[str]]:
    """An export checked completely (StateError says what is wrong): the plan `apply` carries
    out, and what it skips (workspaces of vendors this server does not serve)."""
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise StateError(f"not a mockserver state export (format {FORMAT!r})")
    if document.get("version") != EXPORT_VERSION:
        raise StateError(f"export version {document.get('version')!r}; this server reads version {EXPORT_VERSION}")
    check_world(document)
    entries = document["tenants"]
    store, tenants = state.store, []
    skipped: dict[str, int] = {}
    for entry in entries:
        records = entry.get("workspaces", {})
        if not isinstance(records, dict):
            raise StateError(f"tenant {entry['id']}: workspaces must be an object")
        workspaces = {}
        for name, record in records.items():
            vendor = store.by_name.get(name)
            if vendor is None:
                skipped[name] = skipped.get(name, 0) + 1
                continue
            if not isinstance(record, dict):
                raise StateError(f"tenant {entry['id']}: {name} must be an object with schema and data")
            ctx = context(vendor, entry["id"], entry["number"], entry["seed"], store.clock.start)
            try:
                workspaces[name] = load_workspace(vendor, record.get("data"), record.get("schema"), ctx)
            except StateError as exc:
                raise StateError(f"tenant {entry['id']}: {exc}") from None
        tenants.append((entry, workspaces))
    owners: dict[tuple[str, str], str] = {}  # (vendor, credential or handle) -> the tenant it names
    for entry, workspaces in tenants:
        for name, workspace in workspaces.items():
            for credential in workspace.credentials()[1]:
                owner = owners.setdefault((name, credential), entry["id"])
                if owner != entry["id"]:
                    raise StateError(f"tenants {owner} and {entry['id']} share a {name} credential: each names one")
    notes = [f"skipped {count} {name} workspace(s): this server does not serve {name}"
             for name, count in sorted(skipped.items())]
    return {"now": document["now"], "created": document["created"], "tenants": tenants}, notes


def apply(state: "ServerState", plan: dict[str, Any]) -> None:
    """Replace every tenant with those of a parsed plan."""
    store = state.store
    state.clock.catch_up(plan["now"])
    store.clear(plan["created"])
    for entry, workspaces in plan["tenants"]:
        tenant = Tenant(store, entry["id"], entry["number"], entry["seed"], entry["rate_limits"])
        tenant.clock.offset = entry["clock_offset"]
        for name, workspace in workspaces.items():
            tenant.states[name] = workspace
        store.add(tenant)


# --- the state file -----------------------------------------------------------------------------

SCHEMA = """
CREATE TABLE IF NOT EXISTS server (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tenants (id TEXT PRIMARY KEY, number INTEGER NOT NULL, seed INTEGER NOT NULL,
                                    rate_limits INTEGER NOT NULL, clock_offset REAL NOT NULL);
CREATE TABLE IF NOT EXISTS workspaces (tenant TEXT NOT NULL, vendor TEXT NOT NULL, schema INTEGER NOT NULL,
                                       generation INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (tenant, vendor));
CREATE TABLE IF NOT EXISTS items (tenant TEXT NOT NULL, vendor TEXT NOT NULL, tbl TEXT NOT NULL, key TEXT NOT NULL,
                                  data TEXT NOT NULL, PRIMARY KEY (tenant, vendor, tbl, key));
"""
UPSERT_ITEM = ("INSERT INTO items (tenant, vendor, tbl, key, data) VALUES (?, ?, ?, ?, ?) "
               "ON CONFLICT (tenant, vendor, tbl, key) DO UPDATE SET data = excluded.data")
META_KEY = ""  # the (tbl, key) of a workspace's meta row is ("", "")
WHOLE_KEY = "*"  # the key of a version-1 row: a whole record, split into rows at the next start


def _json(value: object) -> str:
    return orjson.dumps(value).decode()


class StateFile:
    """`serve --state-file PATH`: every change written (only the rows it changed) before its answer."""

    def __init__(self, path: str) -> None:
        self.path = path
        # vendor -> its current generation: a reset of every tenant only moves these (in the
        # server row `generations`), so it costs the same however many rows there are; a row of an
        # older generation is as good as gone (never read, deleted at the next start).
        self.generations: dict[str, int] = {}
        self.stored: set[tuple[str, str]] = set()  # (tenant, vendor): workspaces with rows of their current generation
        try:
            # An empty file is new (`serve` creates it to lock it); one with bytes is a state file already.
            self.new = not os.path.exists(path) or os.path.getsize(path) == 0
            if not os.path.exists(path):  # created private: it holds every tenant's credentials
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            # One connection, used by one request at a time (the event loop's thread, or a test's).
            self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")  # a commit survives the process's crash (kill -9)
            self.db.execute("BEGIN IMMEDIATE")  # proves the file writable now, not at the first change
            self.db.execute("ROLLBACK")
        except (sqlite3.Error, OSError) as exc:
            raise StateError(f"cannot use {path} as a state file: {exc}") from None

    def close(self) -> None:
        """At shutdown: every committed change moved from the write-ahead log into the file itself
        (a copy of the file alone then holds everything), then closed."""
        try:
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            self.db.close()

    def _server_rows(self) -> dict[str, Any]:
        return {key: orjson.loads(value) for key, value in self.db.execute("SELECT key, value FROM server")}

    def load(self, state: "ServerState") -> list[str]:
        """Restore every tenant saved (a new file gets this server's); notes on what was skipped."""
        try:
            return self._load(state)
        except sqlite3.DatabaseError as exc:
            raise StateError(f"{self.path} is not a mockserver state file: {exc}") from None
        except orjson.JSONDecodeError as exc:
            raise StateError(f"{self.path}: a record is not JSON: {exc}") from None

    def _open_tables(self) -> dict[str, Any]:
        """The server rows, after the tables are made (a new file) or migrated from an older layout."""
        names = {name for (name,) in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        rows = self._server_rows() if "server" in names else {}
        if not names and not self.new:  # its tables were only ever in a write-ahead log left behind
            raise StateError(f"{self.path} holds no tables: a copy made without its -wal file (while a server "
                             "was running, or after one was killed)? Copy both, or stop the server first")
        others = names - {"server", "tenants", "workspaces", "items"}
        if not rows and others:  # another program's database: never written into
            raise StateError(f"{self.path} is a database of something else (tables {', '.join(sorted(others)[:5])}); "
                             "give the state file a path of its own")
        if rows.get("format") == {"name": FORMAT, "version": 1}:
            self._migrate_1()
            rows = self._server_rows()
        elif rows and rows.get("format") != {"name": FORMAT, "version": VERSION}:
            raise StateError(f"{self.path} holds {rows.get('format')}; this server reads {FORMAT} versions 1 "
                             f"and {VERSION}")
        self.db.executescript(SCHEMA)
        return rows

    def _migrate_1(self) -> None:
        """Version 1 kept a workspace as one row of its whole record: each is kept as a row of
        key WHOLE_KEY, which `_load` splits into a row per record (rows of vendors this server
        does not serve stay whole until a server that serves them starts)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute("ALTER TABLE workspaces RENAME TO workspaces_1")
            for statement in SCHEMA.split(";")[:-1]:  # executescript would commit first
                self.db.execute(statement)
            self.db.execute("INSERT INTO workspaces (tenant, vendor, schema, generation) "
                            "SELECT tenant, vendor, schema, generation FROM workspaces_1")
            self.db.execute("INSERT INTO items (tenant, vendor, tbl, key, data) "
                            f"SELECT tenant, vendor, '', '{WHOLE_KEY}', data FROM workspaces_1")
            self.db.execute("DROP TABLE workspaces_1")
            self.db.execute("UPDATE server SET value = ? WHERE key = 'format'", (_json({"name": FORMAT,
                                                                                    "version": VERSION}),))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def _load(self, state: "ServerState") -> list[str]:
        rows = self._open_tables()
        if not rows:
            self.write_all(state)
            return []
        self.generations = rows.get("generations") or {}
        if not isinstance(self.generations, dict) or not all(type(g) is int for g in self.generations.values()):
            raise StateError(f"{self.path}: malformed generations row")
        entries = [dict(zip(("id", "number", "seed", "rate_limits", "clock_offset"), row, strict=True)) for row in
                   self.db.execute("SELECT id, number, seed, rate_limits, clock_offset FROM tenants ORDER BY rowid")]
        for entry in entries:
            entry["rate_limits"] = bool(entry["rate_limits"])
            entry["workspaces"] = {}
        by_id = {entry["id"]: entry for entry in entries}
        skipped: dict[str, int] = {}
        unreadable: dict[tuple[str, str], str] = {}  # records of a schema this server cannot read
        stale = 0
        # workspaces still in one row (version 1), or of an older schema (their rows are what `load`
        # migrates, not what later writes of single records fit in): written whole below
        whole: list[tuple[str, str]] = []
        items = self._items()
        for tenant_id, vendor, schema, generation in self.db.execute(
                "SELECT tenant, vendor, schema, generation FROM workspaces"):
            kind = state.store.by_name[vendor].state if vendor in state.store.by_name else None
            if generation != self.generations.get(vendor, 0):
                stale += 1
            elif kind is None:
                skipped[vendor] = skipped.get(vendor, 0) + 1
            elif tenant_id not in by_id:
                continue
            elif type(schema) is int and schema > kind.SCHEMA:
                unreadable[(tenant_id, vendor)] = (
                    f"This tenant's {vendor} data was saved as schema {schema} by a newer mockserver; "
                    f"this one reads schema {kind.SCHEMA}. Upgrade, or reset the tenant to start it afresh.")
            else:
                saved = items.get((tenant_id, vendor), {})
                if WHOLE_KEY in saved or schema != kind.SCHEMA:
                    whole.append((tenant_id, vendor))
                else:
                    self.stored.add((tenant_id, vendor))
                by_id[tenant_id]["workspaces"][vendor] = {"schema": schema, "data": _record(saved, kind)}
        document = {"format": FORMAT, "version": EXPORT_VERSION, "seed": rows.get("seed"), "now": rows.get("now"),
                    "created": rows.get("created"), "tenants": entries}
        try:
            plan, _ = parse(state, document)
        except StateError as exc:
            raise StateError(f"{self.path}: {exc}") from None
        apply(state, plan)
        state.store.unreadable = unreadable
        if whole:
            self.db.execute("BEGIN IMMEDIATE")
            for owner in whole:
                self._write_workspace(owner, state.store.tenants[owner[0]].states[owner[1]],
                                      state.store.by_name[owner[1]], self.generations.get(owner[1], 0))
            self.db.execute("COMMIT")
            self.stored.update(whole)
        if stale:  # rows of tenants reset since they were written: dropped now, at start
            vendors = [vendor for (vendor,) in self.db.execute("SELECT DISTINCT vendor FROM workspaces")]
            self.db.execute("BEGIN IMMEDIATE")
            for vendor in vendors:
                generation = self.generations.get(vendor, 0)
                self.db.execute("DELETE FROM items WHERE vendor = ? AND (tenant, vendor) IN (SELECT tenant, vendor "
                                "FROM workspaces WHERE vendor = ? AND generation != ?)", (vendor, vendor, generation))
                self.db.execute("DELETE FROM workspaces WHERE vendor = ? AND generation != ?", (vendor, generation))
            self.db.execute("COMMIT")
        notes = [f"kept {count} {name} workspace record(s) untouched: this server does not serve {name}"
                 for name, count in sorted(skipped.items())]
        for vendor in sorted({vendor for _, vendor in unreadable}):
            tenants = sorted(tenant for tenant, name in unreadable if name == vendor)
            notes.append(f"kept {len(tenants)} {vendor} workspace record(s) of a newer schema untouched "
                         f"(tenants {', '.join(tenants)}): their {vendor} requests answer 503 until the tenant is reset")
        seeds = sorted({entry["seed"] for entry in entries} - {state.seed})
        if seeds:
            notes.append(f"tenants from the file keep the seed they were created with ({', '.join(map(str, seeds))}); "
                         f"new ones get --seed {state.seed}")
        return notes

    def _items(self, *where: str) -> dict[tuple[str, str], dict[str, list[str]]]:
        """(tenant, vendor) -> table (META_KEY the meta, WHOLE_KEY a version-1 record) -> its rows' JSON, in
        the order they were first written."""
        grouped: dict[tuple[str, str], dict[str, list[str]]] = {}
        query = "SELECT tenant, vendor, tbl, key, data FROM items"
        if where:
            query += " WHERE tenant = ? AND vendor = ?"
        for tenant_id, vendor, table, key, data in self.db.execute(query + " ORDER BY rowid", where):
            group = table or (WHOLE_KEY if key == WHOLE_KEY else META_KEY)
            grouped.setdefault((tenant_id, vendor), {}).setdefault(group, []).append(data)
        return grouped

    def workspace(self, tenant_id: str, vendor: Vendor) -> tuple[dict[str, Any], int] | None:
        """A saved workspace's (data, schema), or None when it has none (it is seeded)."""
        row = self.db.execute("SELECT schema FROM workspaces WHERE tenant = ? AND vendor = ? AND generation = ?",
                              (tenant_id, vendor.name, self.generations.get(vendor.name, 0))).fetchone()
        if row is None:
            return None
        return _record(self._items(tenant_id, vendor.name).get((tenant_id, vendor.name), {}), vendor.state), row[0]

    def commit(self, state: "ServerState", turn: Turn) -> None:
        """Write what the turn changed, in one transaction (StateFileError if it cannot)."""
        if not (turn.changed or turn.world):
            return
        store, served = state.store, list(state.store.by_name)
        marks = ",".join("?" * len(served))
        generations, stored = self.generations, self.stored
        if turn.reset_all:  # every served vendor's rows become an older generation: gone, at no cost
            generations = generations | {vendor: generations.get(vendor, 0) + 1 for vendor in served}
            stored = set()
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                self._write_server(state, generations, everything=turn.world or turn.reset_all)
                gone = set(turn.resets) | {tenant_id for tenant_id in turn.tenants if tenant_id not in store.tenants}
                for tenant_id in gone:
                    self.db.execute(f"DELETE FROM workspaces WHERE tenant = ? AND vendor IN ({marks})",
                                    [tenant_id, *served])
                    self.db.execute(f"DELETE FROM items WHERE tenant = ? AND vendor IN ({marks})", [tenant_id, *served])
                    stored = {key for key in stored if key[0] != tenant_id}
                for tenant_id in turn.tenants:
                    tenant = store.tenants.get(tenant_id)
                    if tenant is None:
                        self.db.execute("DELETE FROM tenants WHERE id = ?", (tenant_id,))
                        self.db.execute("DELETE FROM workspaces WHERE tenant = ?", (tenant_id,))
                        self.db.execute("DELETE FROM items WHERE tenant = ?", (tenant_id,))
                    else:
                        self._write_tenant(tenant)
                written = set()
                for owner in turn.states:
                    tenant = store.tenants.get(owner[0])
                    workspace = tenant.states.get(owner[1]) if tenant else None
                    if workspace is None:
                        continue
                    generation = generations.get(owner[1], 0)
                    if owner in stored:
                        self._write_items(owner, workspace, turn.items.get(owner, ()))
                    else:
                        self._write_workspace(owner, workspace, store.by_name[owner[1]], generation)
                        written.add(owner)
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        except (sqlite3.Error, OSError, TypeError, ValueError) as exc:  # orjson's errors are TypeError/ValueError
            raise StateFileError(f"the state file could not be written: {exc}") from exc
        self.generations, self.stored = generations, stored | written

    def write_all(self, state: "ServerState") -> None:
        """Replace the file's tenants with the server's (a new file)."""
        served = list(state.store.by_name)
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute("DELETE FROM tenants")
            self.db.execute(f"DELETE FROM workspaces WHERE vendor IN ({','.join('?' * len(served))})", served)
            self.db.execute(f"DELETE FROM items WHERE vendor IN ({','.join('?' * len(served))})", served)
            self._write_server(state, self.generations)
            for tenant in state.store.tenants.values():
                self._write_tenant(tenant)
                for name, workspace in tenant.opened().items():
                    self._write_workspace((tenant.id, name), workspace, state.store.by_name[name],
                                          self.generations.get(name, 0))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.stored = {(tenant.id, name) for tenant in state.store.tenants.values() for name in tenant.opened()}

    def _write_server(self, state: "ServerState", generations: dict[str, int], everything: bool = True) -> None:
        """The server rows; only `now` unless something server-wide changed (tenants, clocks, resets)."""
        rows: dict[str, object] = {"now": state.clock.now()}
        if everything:
            rows |= {"format": {"name": FORMAT, "version": VERSION}, "created": state.store.created,
                     "seed": state.seed, "generations": generations}
        self.db.executemany("INSERT INTO server (key, value) VALUES (?, ?) "
                            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                            [(key, _json(value)) for key, value in rows.items()])

    def _write_tenant(self, tenant: Tenant) -> None:
        self.db.execute("INSERT INTO tenants (id, number, seed, rate_limits, clock_offset) VALUES (?, ?, ?, ?, ?) "
                        "ON CONFLICT (id) DO UPDATE SET number = excluded.number, seed = excluded.seed, "
                        "rate_limits = excluded.rate_limits, clock_offset = excluded.clock_offset",
                        (tenant.id, tenant.number, tenant.seed, int(tenant.rate_limits), tenant.clock.offset))

    def _write_workspace(self, owner: tuple[str, str], workspace: Workspace, vendor: Vendor, generation: int) -> None:
        """All of a workspace: its first write since it was seeded, reset or imported."""
        self.db.execute("INSERT INTO workspaces (tenant, vendor, schema, generation) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT (tenant, vendor) DO UPDATE SET schema = excluded.schema, "
                        "generation = excluded.generation", (*owner, vendor.state.SCHEMA, generation))
        self.db.execute("DELETE FROM items WHERE tenant = ? AND vendor = ?", owner)
        self.db.executemany(UPSERT_ITEM, [(*owner, META_KEY, META_KEY, _json(workspace.meta()))] + [
            (*owner, name, _json(key), _json(row)) for name, key, row in rows_of(workspace)])

    def _write_items(self, owner: tuple[str, str], workspace: Workspace, changed: Iterable[tuple[str, Any]]) -> None:
        """What a turn changed in a workspace the file holds: its meta, and each record changed."""
        self.db.execute(UPSERT_ITEM, (*owner, META_KEY, META_KEY, _json(workspace.meta())))
        for name, key, row in rows_of(workspace, changed):
            if row is None:
                self.db.execute("DELETE FROM items WHERE tenant = ? AND vendor = ? AND tbl = ? AND key = ?",
                                (*owner, name, _json(key)))
            else:
                self.db.execute(UPSERT_ITEM, (*owner, name, _json(key), _json(row)))


def _record(rows: dict[str, list[str]], state: type[Workspace]) -> dict[str, Any]:
    """A workspace's record from its rows: the meta, with each of its class's tables as a list of
    records (or the whole record of a version-1 row)."""
    if WHOLE_KEY in rows:
        return orjson.loads(rows[WHOLE_KEY][0])  # type: ignore[no-any-return]
    meta = rows.get(META_KEY)
    return assemble(orjson.loads(meta[0]) if meta else {},
                    {table: [orjson.loads(row) for row in data] for table, data in rows.items() if table}, state)
