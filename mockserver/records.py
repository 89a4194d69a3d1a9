"""A vendor workspace's records (the contract, `vendor.Workspace`): how a workspace becomes plain
JSON data and back, and the JSON Schema vocabulary vendors write their `RECORD` with.

Handlers reach their request through `exchange.exchange()`: `state`, `principal`, `now()`,
`deliver(...)`, `allowed(url)`, `register_handles()`.

What is read back is checked, never executed: `load_workspace` accepts a record only when it
matches the vendor's `RECORD` schema (every field's type), the vendor's `load` builds a workspace
from it (and its own checks of what refers to what pass), that workspace dumps back to the very
same data, and its admin view and credentials render.
"""

import base64
import functools
import random
from collections.abc import Container, Iterable
from typing import TYPE_CHECKING, Any

import jsonschema_rs

from mockserver.errors import StateError as StateError  # where vendors find it

if TYPE_CHECKING:
    from mockserver.vendor import SeedContext, Vendor, Workspace

MT_STATE_WORDS = 625  # random.Random's state: 624 words of Mersenne Twister and a position


def load_workspace(vendor: "Vendor", data: object, schema: object, ctx: "SeedContext") -> "Workspace":
    """A vendor's workspace rebuilt from its dumped `data` (StateError if it is not one)."""
    if not isinstance(data, dict) or isinstance(schema, bool) or not isinstance(schema, int):
        raise StateError(f"{vendor.name}: a workspace record is a JSON object with an integer schema")
    if schema > vendor.state.SCHEMA or schema < 1:
        raise StateError(f"{vendor.name}: records of schema {schema}; this server reads schema "
                         f"{vendor.state.SCHEMA} and older ones it knows how to migrate")
    try:
        if schema == vendor.state.SCHEMA:  # older ones are checked once migrated, as dumped below
            _check(vendor.state, data)
        workspace = vendor.state.load(data, schema, ctx)
        if schema != vendor.state.SCHEMA:
            _check(vendor.state, workspace.dump())
        if schema == vendor.state.SCHEMA and workspace.dump() != data:
            raise StateError("it does not read back as written (unknown or malformed fields)")
        workspace.snapshot()
        workspace.credentials()
    except StateError as exc:
        raise StateError(f"{vendor.name}: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError, RecursionError) as exc:
        raise StateError(f"{vendor.name}: malformed workspace record ({type(exc).__name__}: {exc})") from None
    return workspace


@functools.cache
def _validator(state_class: "type[Workspace]") -> jsonschema_rs.Validator:
    return jsonschema_rs.validator_for(state_class.RECORD)


def _check(state_class: "type[Workspace]", data: object) -> None:
    try:
        _validator(state_class).validate(data)
    except jsonschema_rs.ValidationError as exc:
        where = "/".join(map(str, exc.instance_path)) or "the record"
        raise StateError(f"{where}: {exc.message}") from None


# JSON Schema, briefly: what a vendor's RECORD is written with.
INT = {"type": "integer"}
NUM = {"type": "number"}
STR = {"type": "string"}
BOOL = {"type": "boolean"}
ANY: dict[str, Any] = {}  # any JSON value: fields only shown back, never computed with
RNG = {"type": "array"}  # a generator's state (checked in full by rng_load)


def obj(optional: tuple[str, ...] = (), /, **properties: dict[str, Any]) -> dict[str, Any]:
    """An object with exactly these properties, all required but the `optional` ones."""
    return {"type": "object", "properties": properties, "additionalProperties": False,
            "required": [name for name in properties if name not in optional]}


def arr(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def mapping(values: dict[str, Any]) -> dict[str, Any]:
    """An object used as a map: any keys, values of one kind."""
    return {"type": "object", "additionalProperties": values}


def tuple_of(*items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "prefixItems": list(items), "minItems": len(items), "maxItems": len(items)}


def refers(values: Iterable[object], to: Container[object], what: str) -> None:
    """Every value names one of `to` (a record's reference to another), else StateError."""
    missing = [value for value in values if value not in to]
    if missing:
        raise StateError(f"{what} {missing[0]!r} names nothing")


def rng_dump(rng: random.Random) -> list[Any]:
    """A seeded generator's state as JSON data (ids drawn after a reload go on where they were)."""
    version, words, gauss = rng.getstate()
    return [version, list(words), gauss]


def rng_load(data: object) -> random.Random:
    if not (isinstance(data, list) and len(data) == 3 and data[0] == 3 and isinstance(data[1], list)
            and len(data[1]) == MT_STATE_WORDS and all(type(w) is int and 0 <= w < 2**32 for w in data[1])
            and (data[2] is None or isinstance(data[2], float))):
        raise StateError("malformed generator state")
    rng = random.Random()
    rng.setstate((3, tuple(data[1]), data[2]))
    return rng


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)
