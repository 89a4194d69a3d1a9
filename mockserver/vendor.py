"""What a vendor is, where its spec and fixtures live, and how the core finds them."""

import functools
import hashlib
import importlib
import pkgutil
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol
from urllib.parse import urlparse

import yaml
from connexion.spec import Specification
from faker import Faker

from mockserver.errors import ApiError
from mockserver.ratelimit import Rule
from mockserver.tables import Table, Tracked

_PACKAGE_DIR = Path(__file__).resolve().parent
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def data_dir(name: str) -> Path:
    """`specs/` or `fixtures/`: inside an installed wheel, else at the top of the checkout."""
    for candidate in (_PACKAGE_DIR / "_data" / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"no {name}/ directory next to the mockserver package")


@functools.cache
def load_yaml(path: Path) -> dict[str, Any]:
    """Parse YAML once per process with the C loader (the pure-Python one dominates start-up)."""
    with open(path, "rb") as handle:
        document: dict[str, Any] = yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return document


def digest(*parts: object) -> bytes:
    """The SHA-256 of the parts, joined: what seeds and secrets derive from."""
    return hashlib.sha256(":".join(map(str, parts)).encode()).digest()


@dataclass
class SeedContext:
    """Everything a vendor's `seed(ctx)`, `principals(ctx)` and `load(data, schema, ctx)` may use;
    the same inputs give the same workspace.

    `fake` is only valid during `seed()`; keep `rng` for ids and choices made later.
    `now` is the server clock's start: seeded history lies before it, whenever seeding happens.
    """

    vendor: "Vendor"
    tenant_id: str
    number: int  # 1 for the default tenant, then 2, 3, ... in creation order (custom ids: see CUSTOM_NUMBERS)
    seed: int
    now: float
    fake: Faker
    rng: random.Random
    fixed: bool = False  # the default tenant's: its secrets are the same for every seed (documented)

    def secret(self, label: str) -> str:
        """A 32-hex-digit token: fixed for the default tenant (documented), seeded for others."""
        if self.fixed:
            return digest("mockserver-default", self.vendor.name, label).hex()[:32]
        return digest(self.seed, self.tenant_id, self.vendor.name, label).hex()[:32]


class Workspace(Protocol):
    """One tenant's data for one vendor: what a vendor's `state` class (see `Vendor`) provides. It
    is a `tables.Tracked`: its `TABLES` name the fields of RECORD kept as `tables.Table`s."""

    SCHEMA: int  # the version of what `dump()` writes; raised whenever that shape changes
    RECORD: dict[str, Any]  # the JSON Schema of what `dump()` writes (see `obj`, `arr`, ...)

    @classmethod
    def seed(cls, ctx: "SeedContext") -> "Workspace":
        """A fresh workspace from a `SeedContext`: the same context, the same bytes."""

    @classmethod
    def principals(cls, ctx: "SeedContext") -> tuple[dict[str, Any], dict[str, Any]]:
        """What `credentials()` of the seeded workspace gives, without seeding it: a tenant's
        credentials are indexed before any of its workspaces is built."""

    @classmethod
    def load(cls, data: dict[str, Any], schema: int, ctx: "SeedContext") -> "Workspace":
        """A workspace from `dump()`'s data of `schema` (older schemas migrated, or StateError)."""

    def dump(self) -> dict[str, Any]:
        """Everything the workspace holds, as plain JSON data (`tables.Tracked` gives it: the meta
        with each table's records)."""

    def meta(self) -> dict[str, Any]:
        """The record's fields outside its tables: small, written with each change."""

    def tables(self) -> dict[str, Table]:
        """The tables, by their field in the record."""

    def restore(self, meta: dict[str, Any]) -> None:
        """Take another worker's meta once its records are in the tables (tables.apply_changes);
        optional: `tables.Tracked` raises NotImplementedError, and the workspace is read whole."""

    def snapshot(self) -> dict[str, Any]:
        """The admin view (`GET /__admin/tenants/{id}/state`): collections as the API shows them."""

    def credentials(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(the admin API's entry, {credential: principal}); the second map may also hold
        handles that public operations resolve with `Exchange.adopt`."""

    # Optional: `accepts_credential(credential, now) -> bool`, to refuse a known credential (an expiry);
    # `deliveries`, a `tables.Table` named in TABLES, when it sends webhooks: every record handed to
    # `Exchange.deliver` is added to it, bounded, and its outcome written in (see `webhooks`).


@dataclass(frozen=True)
class Operation:
    """What the core needs to know of one spec operation before its handler runs."""

    id: str
    method: str  # upper case
    path: str  # the spec's path template, under the vendor's base path
    security: list[tuple[str, dict[str, Any]]]  # alternatives, any one suffices; empty means public
    rate_limits: list[Rule]
    extensions: dict[str, Any]  # the operation's own `x-` keys, for handlers
    responses: dict[str, Any]  # status -> response object, `$ref`s resolved


@dataclass
class Vendor:
    """A vendor: its spec (specs/<name>.yaml), handlers, workspace class and error dialect.

    `state` is its workspace class, a `tables.Tracked` whose contract (seed, principals, tables
    and meta, load with a schema version, restore, snapshot, credentials, deliveries) is written
    down once in `mockserver.records`.
    `render_error(error, exchange)` returns `(status, body)` in the vendor's own format
    (`exchange` is the request, or None outside a vendor route).
    """

    name: str
    handlers: ModuleType
    state: type[Workspace]  # its workspace class
    render_error: Callable[[ApiError, object], tuple[int, object]]
    spec: dict[str, Any] = field(init=False, repr=False)
    base_path: str = field(init=False)
    operations: dict[str, Operation] = field(init=False, repr=False)
    fixtures: dict[str, Any] = field(init=False, repr=False)
    negotiates_accept: bool = field(init=False)  # spec root `x-accept-negotiation`: 406 unless JSON is acceptable
    omit_nulls: bool = field(init=False)  # spec root `x-omit-nulls`: null fields never appear in answers
    form_fallback: bool = field(init=False)  # spec root `x-form-fallback`: non-JSON bodies read as forms
    query_as_form: bool = field(init=False)  # spec root `x-query-as-form`: query values are body values too
    first_credential_decides: bool = field(init=False)  # spec root `x-first-credential-decides`
    max_body_bytes: int = field(init=False)  # the largest `x-max-body-bytes` of any operation (0: none)
    # spec root `x-trailing-slash`: the status of the redirect to a path with its trailing slash
    # added or removed, when only that one names an operation; None: the vendor's own 404
    slash_redirect: int | None = field(init=False)
    schemes: list[dict[str, Any]] = field(init=False, repr=False)  # every security scheme of the spec
    # spec root `x-error-schema`, resolved: its error bodies
    error_schema: dict[str, Any] | None = field(init=False, repr=False)

    @functools.cached_property
    def specification(self) -> Specification:
        """The spec as Connexion reads it, once per process: loading checks it against OpenAPI's
        schema, most of what building a server costs, and every server built in the process after
        the first (as tests do) shares it. Connexion sets its base path on it: always ours."""
        return Specification.load(self.spec)

    def __post_init__(self) -> None:
        if not issubclass(self.state, Tracked):  # its changes could not record themselves
            raise TypeError(f"{self.name}: its workspace class must be a mockserver.tables.Tracked")
        self.spec = load_yaml(data_dir("specs") / f"{self.name}.yaml")
        fixture_file = data_dir("fixtures") / f"{self.name}.yaml"
        self.fixtures = load_yaml(fixture_file) if fixture_file.exists() else {}
        self.base_path = urlparse(self.spec["servers"][0]["url"]).path.rstrip("/")
        self.operations = dict(_operations(self.spec))
        self.schemes = list(self.spec.get("components", {}).get("securitySchemes", {}).values())
        self.negotiates_accept = bool(self.spec.get("x-accept-negotiation", False))
        self.omit_nulls = bool(self.spec.get("x-omit-nulls", False))
        self.form_fallback = bool(self.spec.get("x-form-fallback", False))
        self.query_as_form = bool(self.spec.get("x-query-as-form", False))
        self.first_credential_decides = bool(self.spec.get("x-first-credential-decides", False))
        self.max_body_bytes = max((op.extensions.get("x-max-body-bytes", 0) for op in self.operations.values()),
                                  default=0)
        trailing_slash = self.spec.get("x-trailing-slash", {"answer": "redirect", "status": 307})  # Starlette's
        self.slash_redirect = trailing_slash.get("status", 307) if trailing_slash["answer"] == "redirect" else None
        self.error_schema = (resolve_ref(self.spec, {"$ref": self.spec["x-error-schema"]})
                             if "x-error-schema" in self.spec else None)


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, Operation]]:
    schemes = spec.get("components", {}).get("securitySchemes", {})
    shared = [Rule.from_spec(entry, "*") for entry in spec.get("x-rate-limit", [])]
    for path, path_item in spec["paths"].items():
        for method in METHODS:
            operation = path_item.get(method)
            if operation is None:
                continue
            op_id = operation["operationId"]
            requirements = operation.get("security", spec.get("security", []))
            security = [(name, schemes[name]) for requirement in requirements for name in requirement]
            own = [Rule.from_spec(entry, op_id) for entry in operation.get("x-rate-limit", [])]
            extensions = {key: value for key, value in operation.items() if key.startswith("x-")}
            responses = {status: resolve_ref(spec, response) for status, response in operation["responses"].items()}
            yield op_id, Operation(op_id, method.upper(), path, security, shared + own, extensions, responses)


def resolve_ref(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """A local `$ref` (`#/components/...`) followed to what it names."""
    while "$ref" in node:
        target = spec
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def discover(names: list[str] | None = None) -> list[Vendor]:
    """Every vendor package under mockserver.vendors (each exposes `vendor`), or the named ones."""
    import mockserver.vendors as package

    found = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda info: info.name):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        found[module.vendor.name] = module.vendor
    if not names:
        return list(found.values())
    unknown = sorted(set(names) - set(found))
    if unknown:
        raise ValueError(f"unknown vendor(s): {', '.join(unknown)}; known: {', '.join(found)}")
    return [found[name] for name in names]
