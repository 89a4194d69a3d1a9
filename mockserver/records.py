"""The vendor workspace contract, and its records: how a workspace becomes plain JSON data and back.

A vendor's `state` class (see `Vendor`) is a workspace: one tenant's data for one vendor. It has

- `SCHEMA: int`, the version of what `dump()` writes; raised whenever that shape changes;
- `seed(ctx) -> workspace` (classmethod): a fresh workspace from a `tenants.SeedContext`;
- `principals(ctx) -> (admin_entry, {credential: principal})` (classmethod): what `credentials()`
  of the seeded workspace would give, without seeding it (a tenant's credentials are known, and
  indexed, before any of its workspaces is built; a test holds the two equal);
- `dump() -> dict` and `load(data, schema, ctx) -> workspace` (classmethod): plain JSON data and
  back; `load` migrates older schemas it knows and raises `StateError` for any other;
- `snapshot() -> dict`: the admin view (`GET /__admin/tenants/{id}/state`);
- `credentials() -> (admin_entry, {credential: principal})`: the second map may also hold handles
  that public operations resolve with `Exchange.adopt` (re-indexed by `Exchange.register_handles`);
- `deliveries: list` when it sends webhooks (every record handed to `Exchange.deliver` is kept
  there, where the delivery's outcome finds it again);
- optionally `accepts_credential(credential, now)`, to refuse a known credential (an expiry).

Handlers reach their request through `gateway.exchange()`: `state`, `principal`, `now()`,
`deliver(...)`, `allowed(url)`, `register_handles()`.

What is read back is checked, never executed: `load_workspace` accepts a record only when the
vendor's `load` builds a workspace from it, that workspace dumps back to the very same data, and
its admin view and credentials render.
"""

import base64
import random

MT_STATE_WORDS = 625  # random.Random's state: 624 words of Mersenne Twister and a position


class StateError(ValueError):
    """Saved state this server cannot load; the message says which part and why."""


def load_workspace(vendor, data, schema, ctx):
    """A vendor's workspace rebuilt from its dumped `data` (StateError if it is not one)."""
    if not isinstance(data, dict) or isinstance(schema, bool) or not isinstance(schema, int):
        raise StateError(f"{vendor.name}: a workspace record is a JSON object with an integer schema")
    if schema > vendor.state.SCHEMA or schema < 1:
        raise StateError(f"{vendor.name}: records of schema {schema}; this server reads schema "
                         f"{vendor.state.SCHEMA} and older ones it knows how to migrate")
    try:
        workspace = vendor.state.load(data, schema, ctx)
        if schema == vendor.state.SCHEMA and workspace.dump() != data:
            raise StateError("it does not read back as written (unknown or malformed fields)")
        workspace.snapshot()
        workspace.credentials()
    except StateError as exc:
        raise StateError(f"{vendor.name}: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError, RecursionError) as exc:
        raise StateError(f"{vendor.name}: malformed workspace record ({type(exc).__name__}: {exc})") from None
    return workspace


def rng_dump(rng: random.Random) -> list:
    """A seeded generator's state as JSON data (ids drawn after a reload go on where they were)."""
    version, words, gauss = rng.getstate()
    return [version, list(words), gauss]


def rng_load(data) -> random.Random:
    if not (isinstance(data, list) and len(data) == 3 and data[0] == 3 and isinstance(data[1], list)
            and len(data[1]) == MT_STATE_WORDS and all(type(w) is int and 0 <= w < 2**32 for w in data[1])
            and (data[2] is None or isinstance(data[2], float))):
        raise StateError("malformed generator state")
    rng = random.Random()
    rng.setstate((3, tuple(data[1]), data[2]))
    return rng


def by_id(records: list, field: str, key=lambda value: value) -> dict:
    """Records (JSON objects) keyed by their `field`, in the listed order; duplicates refused."""
    if not isinstance(records, list) or not all(isinstance(record, dict) for record in records):
        raise StateError(f"records keyed by {field} must be a list of objects")
    keyed = {key(record[field]): record for record in records}
    if len(keyed) != len(records):
        raise StateError(f"duplicate {field}")
    return keyed


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)
