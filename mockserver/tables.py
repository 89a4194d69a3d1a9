"""Vendor data that records its own changes: `Table`s of records keyed by id, inside a `Tracked`
workspace.

A workspace bound to its tenant (`bind`, done where workspaces are opened) notes every insert,
replacement and deletion of a record, and every change of one of its own public attributes, on
the turn under way (`turns.current`): as (tenant, vendor) in `Turn.states` and the record's
(table, key) in `Turn.items`. The answer cache, the state file and the workers' replication read
that; nothing is noted by hand. Records are plain JSON objects: a record read from a table is
never changed in place (the change would not be seen); `change` gives the changed copy.

A workspace's record (`dump`) is its `meta()` (everything outside its tables) plus each table's
records as a list in insertion order, so a vendor's `load` reads it as before; the state file
keeps a row per record and one for the meta (persistence).
"""

from collections.abc import Callable, Iterable, Iterator
from typing import Any, ClassVar

import jsonschema_rs

from mockserver.errors import StateError
from mockserver.turns import current

Owner = tuple[str, str]  # (tenant id, vendor name)
META = ("", None)  # the (table, key) that stands for a workspace's meta in Turn.items


def note(owner: Owner | None, table: str, key: Any) -> None:
    """Record a change of one record (or of the meta) on the turn under way, if any."""
    turn = current.get()
    if turn is None or owner is None:  # seeding, loading, or outside any request: nothing to record
        return
    turn.states.add(owner)
    keys = turn.items.get(owner)
    if keys is None:
        turn.items[owner] = keys = {}
    keys[(table, key)] = None  # an ordered set: records inserted together are written in their order


class Table(dict[Any, dict[str, Any]]):
    """Records keyed by one of their fields, in insertion order. A dict for reading; every write
    (`t[k] = record`, `del t[k]`, `insert`, `change`, `pop`) records itself."""

    __slots__ = ("name", "key", "owner", "encode", "decode")

    def __init__(self, name: str, key: str, records: Iterable[dict[str, Any]] = (),
                 encode: Callable[[dict[str, Any]], Any] | None = None,
                 decode: Callable[[Any], dict[str, Any]] | None = None) -> None:
        """`records` keyed by their `key` field; `encode` gives a record's JSON form when memory
        holds it otherwise (sets for lists, say), `decode` the record from that form. Duplicate
        keys are a StateError."""
        super().__init__()
        self.name, self.key, self.encode, self.decode = name, key, encode, decode
        self.owner: Owner | None = None
        count = 0
        for record in records:
            if not isinstance(record, dict):
                raise StateError(f"{name}: each record is a JSON object")
            dict.__setitem__(self, record[key], record)
            count += 1
        if len(self) != count:
            raise StateError(f"{name}: duplicate {key}")

    def __setitem__(self, key: Any, record: dict[str, Any]) -> None:
        dict.__setitem__(self, key, record)
        note(self.owner, self.name, key)

    def __delitem__(self, key: Any) -> None:
        dict.__delitem__(self, key)
        note(self.owner, self.name, key)

    def insert(self, record: dict[str, Any]) -> dict[str, Any]:
        """Add a record under its key field; the record."""
        self[record[self.key]] = record
        return record

    def change(self, key: Any, **fields: Any) -> dict[str, Any]:
        """Replace a record by a copy with `fields` changed; the copy."""
        record = self[key] | fields
        self[key] = record
        return record

    def pop(self, key: Any, *default: Any) -> Any:
        if key not in self:
            return dict.pop(self, key, *default)
        record = dict.pop(self, key)
        note(self.owner, self.name, key)
        return record

    def rows(self) -> list[Any]:
        """The records as JSON data, in insertion order."""
        if self.encode is None:
            return list(self.values())
        return [self.encode(record) for record in self.values()]

    def row(self, key: Any) -> Any:
        """One record as JSON data, or None when there is none."""
        record = self.get(key)
        return record if record is None or self.encode is None else self.encode(record)

    def _refused(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("a Table is changed a record at a time (t[k] = record, del t[k], insert, change)")

    update = setdefault = popitem = clear = __ior__ = _refused  # type: ignore[assignment]


class Tracked:
    """The base of a vendor's workspace made of `Table`s: `TABLES` names them (the record's fields
    they are), `tables()` gives them (by default, the attributes of those names). `meta()` gives
    the rest of its record; a change of a public
    attribute (not starting with `_`) records the meta as changed; so does any change of a record,
    since ids and generators drawn for it live there."""

    RECORD: dict[str, Any]  # the JSON Schema of the record (vendor.Workspace)
    TABLES: ClassVar[tuple[str, ...]] = ()  # the record's fields held as Tables (a table with no record has no row)
    owner: Owner | None = None

    def meta(self) -> dict[str, Any]:
        """The record's fields outside the tables (small: written with every change)."""
        raise NotImplementedError

    def restore(self, meta: dict[str, Any]) -> None:
        """Take the meta another worker wrote (checked against RECORD), after its records were put
        in the tables (`apply_changes`): what lets a worker catch up with a tenant a record at a
        time."""
        raise NotImplementedError

    def tables(self) -> dict[str, Table]:
        return {name: getattr(self, name) for name in self.TABLES}

    def dump(self) -> dict[str, Any]:
        return self.meta() | {name: table.rows() for name, table in self.tables().items()}

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if self.owner is not None and not name.startswith("_"):
            note(self.owner, *META)


def rows_of(workspace: Any, changed: Iterable[tuple[str, Any]] | None = None) -> Iterator[tuple[str, Any, Any]]:
    """(table, key, the record as JSON data, or None for one deleted): every record of the
    workspace, or those `changed` (its `Turn.items`; the meta's mark is passed over). What the
    state file and Redis write."""
    tables = workspace.tables()
    if changed is None:
        for name, table in tables.items():
            yield from ((name, key, row) for key, row in zip(table, table.rows(), strict=True))
        return
    for name, key in changed:
        if name:
            yield name, key, tables[name].row(key)


def bind(workspace: Any, owner: Owner) -> None:
    """From now on, the workspace's changes are recorded as `owner`'s (see `note`)."""
    if isinstance(workspace, Tracked):
        for table in workspace.tables().values():
            table.owner = owner
        object.__setattr__(workspace, "owner", owner)


def assemble(meta: dict[str, Any], rows: dict[str, list[Any]], state: type) -> dict[str, Any]:
    """A workspace's record from its meta and its tables' records (lists in insertion order): a
    table with no record has none. A meta that holds a table's field is a whole record, as kept
    before tables had rows of their own."""
    record = dict(meta)
    for table in getattr(state, "TABLES", ()):
        if table in rows or table not in record:
            record[table] = rows.get(table, [])
    return record


def check_changes(workspace: Tracked, meta: object, plan: list[tuple[str, Any, Any]]) -> None:
    """StateError unless records changed elsewhere, `plan` [(table, key, record or None)], and the
    meta are what the workspace's RECORD says."""
    meta_validator, item_validators = _validators(type(workspace))
    _validate(meta_validator, meta, "the meta")
    for table, _, row in plan:
        if table not in item_validators:
            raise StateError(f"no table {table!r}")
        if row is not None:
            _validate(item_validators[table], row, f"a record of {table}")


def apply_changes(workspace: Tracked, meta: dict[str, Any], plan: list[tuple[str, Any, Any]]) -> None:
    """Put records changed elsewhere in their tables (None: deleted), then restore the meta:
    nothing is recorded (the change is another worker's, already written)."""
    tables = workspace.tables()
    for name, key, row in plan:
        table, key = tables[name], tuple(key) if isinstance(key, list) else key
        if row is None:
            dict.pop(table, key, None)
        else:
            dict.__setitem__(table, key, row if table.decode is None else table.decode(row))
    owner = workspace.owner
    object.__setattr__(workspace, "owner", None)  # restored, not changed: nothing to record
    try:
        workspace.restore(meta)
    finally:
        object.__setattr__(workspace, "owner", owner)


_VALIDATORS: dict[type, tuple[jsonschema_rs.Validator, dict[str, jsonschema_rs.Validator]]] = {}


def _validators(kind: type[Tracked]) -> tuple[jsonschema_rs.Validator, dict[str, jsonschema_rs.Validator]]:
    """A tracked workspace class's meta validator, and one per table for its records (from RECORD)."""
    if kind not in _VALIDATORS:
        _VALIDATORS[kind] = _build_validators(kind)
    return _VALIDATORS[kind]


def _build_validators(kind: type[Tracked]) -> tuple[jsonschema_rs.Validator, dict[str, jsonschema_rs.Validator]]:
    record = kind.RECORD
    properties = record["properties"]
    meta = record | {"properties": {name: schema for name, schema in properties.items() if name not in kind.TABLES},
                     "required": [name for name in record.get("required", ()) if name not in kind.TABLES]}
    return (jsonschema_rs.validator_for(meta),
            {name: jsonschema_rs.validator_for(properties[name]["items"]) for name in kind.TABLES})


def _validate(validator: jsonschema_rs.Validator, data: object, what: str) -> None:
    try:
        validator.validate(data)
    except jsonschema_rs.ValidationError as exc:
        raise StateError(f"{what}: {exc.message}") from None
