"""A vendor request from routing to the handler's answer, compiled once per operation.

Connexion reads each spec into operations (parameters with the path-level ones merged, request
bodies, the handler its resolver finds) and supplies the URI parser, validators and argument
mapping used here. What is not used is Connexion's ASGI middleware stack: its eight nested layers
rebuild request objects, routers and validators on every request and cost about three quarters of
the server's time per request (bench/README.md). Here each operation's validators are built once.
Answers of operations that change nothing are cached (AnswerCache).
"""

import copy
import functools
import json
import logging
import re
from dataclasses import dataclass
from typing import NamedTuple

import orjson
from connexion.datastructures import MediaTypeDict

# Connexion's own argument mapping, private helpers included: connexion is pinned (3.3.0), and
# handlers get their arguments exactly as Connexion would pass them.
from connexion.decorators.parameter import (
    _get_body_argument_form,
    _get_file_arguments,
    _get_query_defaults,
    _get_val_from_param,
    inspect_function_arguments,
    pythonic,
)
from connexion.exceptions import BadRequestProblem, UnsupportedMediaTypeProblem
from connexion.frameworks.starlette import FloatConverter, IntegerConverter
from connexion.operations import OpenAPIOperation
from connexion.resolver import Resolver
from connexion.spec import Specification
from connexion.uri_parsing import OpenAPIURIParser
from connexion.utils import deep_merge, is_json_mimetype, is_null, is_nullable
from jsonschema import Draft4Validator, ValidationError
from starlette.datastructures import Headers, QueryParams, UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import Response

from mockserver import validation
from mockserver.gateway import header, parse_json, set_content_type
from mockserver.vendor import METHODS, Operation, Vendor, snake_case

# Connexion's operations warn on every request to an operation that accepts several content types.
logging.getLogger("connexion.operations.openapi3").setLevel(logging.ERROR)

# Connexion's parameter names made Pythonic (`filter` -> `filter_`), remembered: the same few names
# come with every request.
python_name = functools.lru_cache(maxsize=1024)(pythonic)

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class Answer:
    """A handler's result as ASGI messages: status, header list and body bytes."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: list, body: bytes):
        self.status, self.headers, self.body = status, headers, body

    async def __call__(self, scope, receive, send):
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})


def answer(status: int, body: bytes, headers: dict | None = None, media_type: str | None = "application/json") -> Answer:
    raw = [(b"content-length", str(len(body)).encode())]
    if media_type and body:
        raw.append((b"content-type", media_type.encode()))
    raw += [(key.lower().encode("latin-1"), str(value).encode("latin-1")) for key, value in (headers or {}).items()]
    return Answer(status, raw, body)


class Parameter:
    """One path, query, header or cookie parameter with its schema validator, built once."""

    def __init__(self, definition: dict):
        self.name, self.where = definition["name"], definition["in"]
        self.required = definition.get("required", False)
        schema = definition.get("schema", definition)
        self.nullable = is_nullable(schema)
        self.validator = validation.QuickValidator(schema, Draft4Validator)

    def check(self, value) -> None:
        """Connexion's ParameterValidator rules, with the validator compiled once."""
        if self.nullable and is_null(value):
            return
        if value is not None:
            try:
                self.validator.validate(value)
            except ValidationError as error:
                raise BadRequestProblem(detail=str(error)) from None
        elif self.required:
            raise BadRequestProblem(detail=f"Missing {self.where} parameter '{self.name}'")


class CompiledOperation:
    """A spec operation with its handler, parameters and body validators ready to run."""

    def __init__(self, operation: Operation, spec_operation: OpenAPIOperation, omit_nulls: bool):
        self.operation = operation
        self.spec_operation = spec_operation
        # GET is safe, as HTTP has it, unless the spec says this vendor's GET changes state.
        self.changes_state = spec_operation.method != "get" or operation.extensions.get("x-changes-state", False)
        self.handler = spec_operation.function
        self.arguments, self.has_kwargs = inspect_function_arguments(self.handler)
        self.uri_parser = OpenAPIURIParser(spec_operation.parameters, spec_operation.body_definition())
        self.parameters = [Parameter(definition) for definition in spec_operation.parameters]
        self.consumes = spec_operation.consumes
        self.body_required = spec_operation.request_body.get("required", False)
        # By the media types (or ranges) the spec names, in lower case as requests' are compared.
        self.body_schemas = MediaTypeDict({kind.lower(): spec_operation.body_schema(kind) for kind in self.consumes})
        self.body_validators = MediaTypeDict()
        for media_type in self.consumes:
            schema = spec_operation.body_schema(media_type)
            factory = validation.VALIDATOR_MAP["body"].get(media_type)
            if schema and factory:
                self.body_validators[media_type.lower()] = factory(
                    schema=schema, required=self.body_required, encoding="utf-8", strict_validation=False,
                    nullable=is_nullable(spec_operation.body_definition(media_type)), uri_parser=self.uri_parser)
        self.body_argument = python_name(spec_operation.body_name(None))
        self.path_definitions = {p["name"]: p for p in spec_operation.parameters if p["in"] == "path"}
        self.query_definitions = {p["name"]: p for p in spec_operation.parameters if p["in"] == "query"}
        self.query_defaults = _get_query_defaults(self.query_definitions)
        self.omit_nulls = omit_nulls
        self._rules_by_media_type: dict[str, tuple] = {}

    def media_type(self, headers: Headers) -> str:
        """The body's media type; without a Content-Type, the first the operation consumes."""
        content_type = headers.get("content-type")
        if content_type:
            return content_type.split(";")[0].strip().lower()
        return self.consumes[0] if self.consumes else "application/octet-stream"

    async def run(self, scope, path_params: dict, body: bytes, parsed_json) -> Answer | Response:
        """Validate the request as the spec says, call the handler, shape its result."""
        headers = Headers(scope=scope)
        raw_query: dict[str, list[str]] = {}
        for key, value in QueryParams(scope["query_string"]).multi_items():  # one pass: getlist per key is quadratic
            raw_query.setdefault(key, []).append(value)
        query = self.uri_parser.resolve_query(raw_query)
        path = self.uri_parser.resolve_path(path_params)
        for parameter in self.parameters:
            if parameter.where == "query":
                parameter.check(query.get(parameter.name))
            elif parameter.where == "path":
                parameter.check(path.get(parameter.name))
            elif parameter.where == "header":
                parameter.check(headers.get(parameter.name))
            else:
                parameter.check(Request(scope).cookies.get(parameter.name))

        media_type = self.media_type(headers)
        request_body, files, body_schema = None, {}, {}
        if self.consumes:
            validator, body_schema = self._body_rules(media_type)
            request_body, files = await self._body(scope, body, parsed_json, media_type, validator)
        return self.shape(await self.handler(**self._arguments(path, query, request_body, files, media_type,
                                                              body_schema)))

    def _body_rules(self, media_type: str) -> tuple:
        """(validator, schema) of the body for a media type the operation takes; 415 for others."""
        rules = self._rules_by_media_type.get(media_type)
        if rules is None:
            if media_type not in self.body_schemas:
                raise UnsupportedMediaTypeProblem(detail=f"Invalid Content-type ({media_type}), expected {self.consumes}")
            rules = self.body_validators.get(media_type), self.body_schemas.get(media_type, {})
            if len(self._rules_by_media_type) < 16:  # the media types clients send; bounded all the same
                self._rules_by_media_type[media_type] = rules
        return rules

    def _arguments(self, path: dict, query: dict, body, files: dict, media_type: str, schema: dict) -> dict:
        """The handler's keyword arguments, as Connexion's parameter decorator makes them
        (Pythonic names, query defaults, the body or its default, files), from tables built once."""
        kwargs = {}
        for name, value in path.items():
            definition = self.path_definitions.get(name)
            kwargs[python_name(name)] = value if definition is None else _get_val_from_param(value, definition)
        for name, value in deep_merge(copy.deepcopy(self.query_defaults), query).items():
            definition = self.query_definitions.get(name)
            if definition is not None and (self.has_kwargs or python_name(name) in self.arguments):
                kwargs[python_name(name)] = _get_val_from_param(value, definition)
        if not self.spec_operation.is_request_body_defined or not (self.arguments or self.has_kwargs):
            return kwargs
        if media_type in FORM_TYPES:
            body = _get_body_argument_form(body, operation=self.spec_operation, content_type=media_type)
        else:
            if is_nullable(schema) and is_null(body):
                body = None
            elif body is None:
                body = copy.deepcopy(schema.get("default", {}))
        if self.body_argument in self.arguments or self.has_kwargs:
            kwargs[self.body_argument] = body
        if files:
            kwargs.update(_get_file_arguments(files, self.arguments, schema, self.has_kwargs))
        return kwargs

    async def _body(self, scope, body: bytes, parsed_json, media_type: str, validator):
        """The body as the handler gets it (parsed, or the schema's default) and any files."""
        if is_json_mimetype(media_type):
            if not body:
                parsed_json = validator._schema.get("default") if validator else None
                if parsed_json is None and self.body_required:
                    raise BadRequestProblem("RequestBody is required")
                parsed_json = copy.deepcopy(parsed_json)
            elif parsed_json is None:  # sent without a Content-Type; read as the JSON the spec takes
                parsed_json = parse_json(body)
            if validator and not (parsed_json is None and validator._nullable):
                validator._validate(parsed_json)
            return parsed_json, {}
        if media_type in FORM_TYPES:
            if not body:  # nothing to parse (a multipart parser would want a boundary)
                if validator:
                    validator._validate({})
                return self.uri_parser.resolve_form({}), {}
            if header(scope, b"content-type") is None:  # sent without one: read as the form the spec takes
                set_content_type(scope, media_type.encode())
            try:
                if validator:
                    validator._validate(await validator._parse(_stream(body), scope))
                form_data = await Request(scope, _replay(body)).form()
            except MultiPartException as exc:  # no boundary, a broken body, too many parts
                raise BadRequestProblem(detail=f"Malformed form body: {exc}") from None
            form: dict = {}
            files: dict = {}
            for key, value in form_data.multi_items():
                (files if isinstance(value, UploadFile) else form).setdefault(key, []).append(value)
            return self.uri_parser.resolve_form(form), files
        return body or None, {}

    def shape(self, result) -> Answer | Response:
        """A handler's return value (body, (body, status) or (body, status, headers)) as an answer."""
        if isinstance(result, Response):
            return result
        status, headers = 200, None
        if isinstance(result, tuple):
            if len(result) == 3:
                result, status, headers = result
            elif isinstance(result[1], int):
                result, status = result
            else:
                result, headers = result
        if result is None:
            return answer(status, b"", headers)
        if isinstance(result, (bytes, str)):
            media_type = self.spec_operation.produces[0] if self.spec_operation.produces else "text/plain"
            return answer(status, result.encode() if isinstance(result, str) else result, headers, media_type)
        return answer(status, dumps(result, self.omit_nulls), headers)


class AnswerCache:
    """Successful answers of operations that change nothing (GET), kept until anything may have
    changed: any state-changing request, an admin change, a background delivery. The key holds
    everything else an answer may depend on: tenant, credential, operation, path, query, Host.
    An answer whose handler read the clock is not kept, since a ticking clock moves on its own."""

    MAX_BYTES = 16 * 1024 * 1024

    def __init__(self):
        self.answers: dict[tuple, Answer] = {}
        self.size = 0
        self.generation = 0  # moves with every invalidation

    def invalidate(self) -> None:
        self.generation += 1
        self.answers.clear()
        self.size = 0

    def get(self, key: tuple) -> Answer | None:
        return self.answers.get(key)

    def put(self, key: tuple, answer: Answer, generation: int) -> None:
        """Keep `answer`, computed while `generation` was current, if nothing changed since."""
        if generation != self.generation or not 200 <= answer.status < 300:
            return
        if self.size + len(answer.body) > self.MAX_BYTES:
            self.answers.clear()
            self.size = 0
        self.answers[key] = answer
        self.size += len(answer.body)


def dumps(data, omit_nulls: bool = False) -> bytes:
    """JSON through orjson; with `omit_nulls` (spec root `x-omit-nulls`), null fields are left
    out at every depth."""
    data = _without_nulls(data) if omit_nulls else data
    try:
        return orjson.dumps(data)
    except orjson.JSONEncodeError:  # e.g. integers beyond 64 bits, which json handles
        return json.dumps(data).encode()


def _without_nulls(data):
    if isinstance(data, dict):
        return {key: _without_nulls(value) for key, value in data.items() if value is not None}
    if isinstance(data, list):
        return [_without_nulls(item) for item in data]
    return data


async def _stream(body: bytes):
    yield body
    yield b""


def _replay(body: bytes):
    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


@dataclass
class Match:
    operation: CompiledOperation | None  # None: the path exists, the method does not (405)
    path_params: dict
    allowed: tuple[str, ...] = ()  # with no operation: the methods the spec declares for the path


# Path parameter patterns by schema type, as Connexion's routes (Starlette convertors) have them.
PATH_PATTERNS = {"integer": IntegerConverter.regex, "number": FloatConverter.regex, "path": ".*"}


class Route(NamedTuple):
    pattern: re.Pattern
    depth: int | None  # path segments; None when a `path` parameter may span several
    names: list[str]  # path parameters, in the order of the pattern's groups
    method: str
    operation: CompiledOperation
    allowed: tuple[str, ...]  # every method the spec declares for this path (HEAD with GET)


def _parameter_pattern(types: dict):
    """The regex replacement for a path parameter placeholder: a pattern by its declared type."""
    def pattern(found: re.Match) -> str:
        return "(" + PATH_PATTERNS.get(str(types.get(found.group(1))), "[^/]+") + ")"
    return pattern


class Router:
    """A vendor's operations in spec order, each with its path pattern; the first operation
    whose pattern and method match wins, as in Connexion's Starlette routes. Paths without
    parameters that no earlier pattern shadows are one dictionary lookup; the others are tried
    only among routes with as many path segments (or a `path` parameter, which spans several)."""

    def __init__(self, vendor: Vendor, specification: Specification):
        handlers = vendor.handlers
        resolver = Resolver(lambda op_id: getattr(handlers, snake_case(op_id)))
        routes: list[Route] = []
        self.static: dict[tuple[str, str], CompiledOperation] = {}
        for path, item in specification["paths"].items():
            declared = [method for method in METHODS if method in item]
            allowed = tuple(method.upper() for method in declared) + (
                ("HEAD",) if "get" in declared and "head" not in declared else ())
            for method in declared:
                spec_operation = OpenAPIOperation.from_spec(specification, path=path, method=method, resolver=resolver)
                compiled = CompiledOperation(vendor.operations[spec_operation.operation_id], spec_operation,
                                             vendor.omit_nulls)
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
