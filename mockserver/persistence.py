"""Tenants saved to a file (`serve --state-file`) or exported and imported through the admin API.

What is kept: every tenant's id, number, rate-limit switch, clock and each vendor's state, plus
the server clock. Not kept: the request journal, faults and rate-limit counters. A file is
written next to its target, flushed to disk and renamed over it, so a crash leaves the old state
or the new one, never a torn file. Loading only builds mockserver's vendor state classes and
`random.Random` (the seeded generators inside them), never arbitrary objects.
"""

import io
import os
import pickle

FORMAT = 2  # raised whenever a vendor model changes shape (2: Community.last_display_order)


class StateError(ValueError):
    """A saved state this server cannot load."""


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in (("random", "Random"), ("mockserver.faults", "Fault")) or (
                module.startswith("mockserver.vendors.") and module.endswith(".models")):
            return super().find_class(module, name)
        raise StateError(f"a saved state may not contain {module}.{name}")


def dump(server) -> bytes:
    store = server.store
    return pickle.dumps({
        "format": FORMAT,
        "vendors": sorted(vendor.name for vendor in server.vendors),
        "seed": server.seed,
        "now": server.clock.now(),
        "created": store.created,
        "tenants": [{"id": t.id, "number": t.number, "rate_limits": t.rate_limits, "clock": t.clock.offset,
                     "states": t.states} for t in store.tenants.values()],
    }, protocol=pickle.HIGHEST_PROTOCOL)


def loads(blob: bytes):
    """A pickle of mockserver state, read back with only the classes such state holds."""
    try:
        return _Unpickler(io.BytesIO(blob)).load()
    except StateError:
        raise
    except Exception as exc:
        raise StateError(f"not a mockserver state: {exc}") from None


def load(server, blob: bytes) -> None:
    """Replace every tenant with the saved ones (StateError if the blob is not such a state)."""
    saved = loads(blob)
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise StateError("not a mockserver state of this version")
    if saved["vendors"] != sorted(vendor.name for vendor in server.vendors):
        raise StateError(f"saved for vendors {', '.join(saved['vendors'])}, this server serves others")
    server.clock.catch_up(saved["now"])
    server.store.restore(saved["created"], saved["tenants"], saved["seed"])


def save(server, path: str) -> None:
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "wb") as handle:
        handle.write(dump(server))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    directory = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a crash
    finally:
        os.close(directory)
