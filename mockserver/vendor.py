"""What a vendor is, where its spec and fixtures live, and how the core finds them."""

import functools
import importlib
import pkgutil
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlparse

import yaml
from connexion.spec import Specification

from mockserver.errors import ApiError
from mockserver.ratelimit import Rule
from mockserver.records import Workspace
from mockserver.tables import Tracked

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


@dataclass(frozen=True)
class Operation:
    """What the core needs to know of one spec operation before its handler runs."""

    id: str
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
        self.negotiates_accept = bool(self.spec.get("x-accept-negotiation", False))
        self.omit_nulls = bool(self.spec.get("x-omit-nulls", False))
        self.form_fallback = bool(self.spec.get("x-form-fallback", False))
        self.query_as_form = bool(self.spec.get("x-query-as-form", False))
        self.first_credential_decides = bool(self.spec.get("x-first-credential-decides", False))
        self.max_body_bytes = max((op.extensions.get("x-max-body-bytes", 0) for op in self.operations.values()),
                                  default=0)
        self.error_schema = (resolve_ref(self.spec, {"$ref": self.spec["x-error-schema"]})
                             if "x-error-schema" in self.spec else None)


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, Operation]]:
    schemes = spec.get("components", {}).get("securitySchemes", {})
    shared = [Rule.from_spec(entry, "*") for entry in spec.get("x-rate-limit", [])]
    for path_item in spec["paths"].values():
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
            yield op_id, Operation(op_id, security, shared + own, extensions, responses)


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
