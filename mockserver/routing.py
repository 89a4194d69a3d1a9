"""Routing: a vendor request's method and path to its operation (or a 405), built once per vendor
from its spec as Connexion's Starlette routes would match them."""

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from connexion.frameworks.starlette import FloatConverter, IntegerConverter
from connexion.operations import OpenAPIOperation
from connexion.resolver import Resolver
from connexion.spec import Specification

from mockserver.pipeline import CompiledOperation
from mockserver.vendor import METHODS, Vendor, snake_case


@dataclass
class Match:
    operation: CompiledOperation | None  # None: the path exists, the method does not (405)
    path_params: dict[str, Any]
    allowed: tuple[str, ...] = ()  # with no operation: the methods the spec declares for the path


# Path parameter patterns by schema type, as Connexion's routes (Starlette convertors) have them.
PATH_PATTERNS: dict[str, str] = {"integer": IntegerConverter.regex, "number": FloatConverter.regex, "path": ".*"}


class Route(NamedTuple):
    pattern: re.Pattern[str]
    depth: int | None  # path segments; None when a `path` parameter may span several
    names: list[str]  # path parameters, in the order of the pattern's groups
    method: str
    operation: CompiledOperation
    allowed: tuple[str, ...]  # every method the spec declares for this path (HEAD with GET)


def _parameter_pattern(types: dict[str, Any]) -> Callable[[re.Match[str]], str]:
    """The regex replacement for a path parameter placeholder: a pattern by its declared type."""
    def pattern(found: re.Match[str]) -> str:
        return "(" + PATH_PATTERNS.get(str(types.get(found.group(1))), "[^/]+") + ")"
    return pattern


class Router:
    """A vendor's operations in spec order, each with its path pattern; the first operation
    whose pattern and method match wins, as in Connexion's Starlette routes. Paths without
    parameters that no earlier pattern shadows are one dictionary lookup; the others are tried
    only among routes with as many path segments (or a `path` parameter, which spans several)."""

    def __init__(self, vendor: Vendor, specification: Specification) -> None:
        handlers = vendor.handlers
        resolver = Resolver(lambda op_id: getattr(handlers, snake_case(op_id)))
        routes: list[Route] = []
        self.static: dict[tuple[str, str], CompiledOperation] = {}
        self.operations: dict[str, CompiledOperation] = {}  # by operationId
        for path, item in specification["paths"].items():
            declared = [method for method in METHODS if method in item]
            allowed = tuple(method.upper() for method in declared) + (
                ("HEAD",) if "get" in declared and "head" not in declared else ())
            for method in declared:
                spec_operation = OpenAPIOperation.from_spec(specification, path=path, method=method, resolver=resolver)
                compiled = CompiledOperation(vendor.operations[spec_operation.operation_id], spec_operation,
                                             vendor.omit_nulls)
                self.operations[spec_operation.operation_id] = compiled
                types = spec_operation.get_path_parameter_types()
                full_path = vendor.base_path + path
                names = re.findall(r"\{([^}]+)\}", full_path)
                pattern = re.compile("^" + re.sub(r"\\\{([^}]+)\\\}", _parameter_pattern(types), re.escape(full_path)) + "$")
                depth = None if "path" in types.values() else full_path.count("/")
                for verb in [method.upper()] + (["HEAD"] if method == "get" else []):
                    if not names and not any(route.pattern.match(full_path) for route in routes if route.names):
                        self.static.setdefault((verb, full_path), compiled)
                    routes.append(Route(pattern, depth, names, verb, compiled, allowed))
        self.spanning = [route for route in routes if route.depth is None]
        self.by_depth: dict[int, list[Route]] = {}
        for route in routes:
            if route.depth is not None:
                self.by_depth.setdefault(route.depth, []).append(route)
        if self.spanning:  # keep spec order among them and the spanning routes
            for depth, bucket in self.by_depth.items():
                self.by_depth[depth] = sorted(bucket + self.spanning, key=routes.index)

    def match(self, method: str, path: str) -> Match | None:
        """The operation for this request, a 405 match, or None (no such path)."""
        compiled = self.static.get((method, path))
        if compiled is not None:
            return Match(compiled, {})
        partial = None
        for route in self.by_depth.get(path.count("/"), self.spanning):
            found = route.pattern.match(path)
            if found is None:
                continue
            if route.method == method:
                return Match(route.operation, dict(zip(route.names, found.groups(), strict=True)))
            partial = partial or Match(None, {}, route.allowed)
        return partial
