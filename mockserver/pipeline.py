"""A vendor request from its operation to the handler's answer, compiled once per operation.

Connexion reads each spec into operations (parameters with the path-level ones merged, request
bodies, the handler its resolver finds) and supplies the URI parser, validators and argument
mapping used here. What is not used is Connexion's ASGI middleware stack, which rebuilds request
objects, routers and validators on every request (what that cost: bench/README.md). Here each
operation's validators are built once; routing is in routing.py, answers and their cache in
answers.py.
"""

import copy
import functools
import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

from connexion.datastructures import MediaTypeDict
from connexion.decorators.parameter import inspect_function_arguments, pythonic
from connexion.exceptions import BadRequestProblem, UnsupportedMediaTypeProblem
from connexion.operations import OpenAPIOperation
from connexion.uri_parsing import OpenAPIURIParser
from connexion.utils import deep_merge, is_json_mimetype, is_null, is_nullable
from connexion.validators import AbstractRequestBodyValidator
from jsonschema import Draft4Validator, ValidationError
from starlette.datastructures import Headers, UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope

from mockserver import upstream, validation
from mockserver.answers import Answer, answer, dumps
from mockserver.bodies import header, parse_json, set_content_type
from mockserver.vendor import Operation

# Connexion's operations warn on every request to an operation that accepts several content types.
logging.getLogger("connexion.operations.openapi3").setLevel(logging.ERROR)

# Connexion's parameter names made Pythonic (`filter` -> `filter_`), remembered: the same few names
# come with every request.
python_name = functools.lru_cache(maxsize=1024)(pythonic)

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class URIParser(OpenAPIURIParser):  # type: ignore[misc]  # Connexion is untyped
    """Connexion's, with the parameters' schemas and the form's fields read once: its properties
    build them again at every look-up, one per parameter sent."""

    @functools.cached_property
    def param_schemas(self) -> dict[str, Any]:
        return super().param_schemas  # type: ignore[no-any-return]

    @functools.cached_property
    def form_defns(self) -> dict[str, Any]:
        return super().form_defns  # type: ignore[no-any-return]


class Parameter:
    """One path, query, header or cookie parameter with its schema validator, built once. An
    `x-lenient` one is only checked for presence: its schema says what clients should send, the
    handler reads whatever they do (Django REST framework's paginators ignore a limit they cannot
    read)."""

    def __init__(self, definition: dict[str, Any]) -> None:
        self.name, self.where = definition["name"], definition["in"]
        self.header = self.name.lower().encode("latin-1")  # as Starlette's Headers looks one up
        self.required = definition.get("required", False)
        self.lenient = bool(definition.get("x-lenient", False))
        schema = definition.get("schema", definition)
        self.nullable = is_nullable(schema)
        self.validator = validation.QuickValidator(schema, Draft4Validator)

    def check(self, value: object) -> None:
        """Connexion's ParameterValidator rules, with the validator compiled once."""
        if (self.nullable and is_null(value)) or (self.lenient and value is not None):
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

    def __init__(self, operation: Operation, spec_operation: OpenAPIOperation, omit_nulls: bool) -> None:
        self.operation = operation
        self.spec_operation = spec_operation
        # GET is safe, as HTTP has it: its answer may be cached unless it wrote (tables record that).
        self.changes_state = spec_operation.method != "get"
        self.handler = spec_operation.function
        self.arguments, self.has_kwargs = inspect_function_arguments(self.handler)
        self.uri_parser = URIParser(spec_operation.parameters, spec_operation.body_definition())
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
        self.query_defaults = upstream.get_query_defaults(self.query_definitions)
        # Copied for each request as Connexion copies them (deep), unless a shallow copy is the same.
        self.defaults_immutable = all(isinstance(value, (str, int, float, bool, type(None)))
                                      for value in self.query_defaults.values())
        self.body_defined = spec_operation.is_request_body_defined
        # `x-bracketed` array parameters are read as `name[]` first, then `name` (Corteza's Go
        # request parsers, for axios clients).
        self.bracketed = [name for name, p in self.query_definitions.items() if p.get("x-bracketed")]
        # `x-lenient` query parameters reach the handler as sent: the last value, a string, unchecked.
        self.lenient = {name for name, p in self.query_definitions.items() if p.get("x-lenient")}
        self.omit_nulls = omit_nulls
        self._rules_by_media_type: dict[str, tuple[Any, ...]] = {}
        self._media_types: dict[bytes | None, str] = {}

    def media_type(self, headers: Headers) -> str:
        """The body's media type; without a Content-Type, the first the operation consumes."""
        content_type = headers.get("content-type")
        if content_type:
            return content_type.split(";")[0].strip().lower()
        return self.consumes[0] if self.consumes else "application/octet-stream"

    def _media_type(self, scope: Scope) -> str:
        """media_type() of the request's headers, remembered by Content-Type as sent."""
        content_type = header(scope, b"content-type")
        media_type = self._media_types.get(content_type)
        if media_type is None:
            media_type = self.media_type(Headers(raw=[(b"content-type", content_type)] if content_type else []))
            if len(self._media_types) < 16:  # the Content-Types clients send; bounded all the same
                self._media_types[content_type] = media_type
        return media_type

    async def run(self, scope: Scope, path_params: dict[str, Any], body: bytes, parsed_json: object) -> Answer | Response:
        """Validate the request as the spec says, call the handler, shape its result."""
        path, query, request_body, files, media_type, body_schema = await self.checked(
            scope, path_params, body, parsed_json)
        return self.shape(await self.handler(**self._arguments(path, query, request_body, files, media_type,
                                                              body_schema)))

    async def checked(self, scope: Scope, path_params: dict[str, Any], body: bytes,
                      parsed_json: object) -> tuple[Any, ...]:
        """The request's (path, query, body, files, media type, body schema) as the handler's
        arguments are made from them, once its parameters and body are valid; Connexion's
        problems (400, 415) otherwise."""
        query_string: bytes = scope["query_string"]
        query: dict[str, Any] = {}
        if query_string:  # (the parser makes {} of no parameters)
            raw_query = query_lists(query_string)
            for name in self.bracketed:
                if f"{name}[]" in raw_query:
                    raw_query[name] = raw_query.pop(f"{name}[]")
            query = self.uri_parser.resolve_query(raw_query)
            for name in self.lenient & raw_query.keys():
                query[name] = raw_query[name][-1]
        path = self.uri_parser.resolve_path(path_params) if path_params else {}
        for parameter in self.parameters:
            if parameter.where == "query":
                parameter.check(query.get(parameter.name))
            elif parameter.where == "path":
                parameter.check(path.get(parameter.name))
            elif parameter.where == "header":
                sent = header(scope, parameter.header)
                parameter.check(None if sent is None else sent.decode("latin-1"))
            else:
                parameter.check(Request(scope).cookies.get(parameter.name))

        media_type = self._media_type(scope)
        request_body: object = None
        files: dict[str, Any] = {}
        body_schema: dict[str, Any] = {}
        if self.consumes:
            validator, body_schema = self._body_rules(media_type)
            request_body, files = await self._body(scope, body, parsed_json, media_type, validator)
        return path, query, request_body, files, media_type, body_schema

    def _body_rules(self, media_type: str) -> tuple[Any, ...]:
        """(validator, schema) of the body for a media type the operation takes; 415 for others."""
        rules = self._rules_by_media_type.get(media_type)
        if rules is None:
            if media_type not in self.body_schemas:
                raise UnsupportedMediaTypeProblem(detail=f"Invalid Content-type ({media_type}), expected {self.consumes}")
            rules = self.body_validators.get(media_type), self.body_schemas.get(media_type, {})
            if len(self._rules_by_media_type) < 16:  # the media types clients send; bounded all the same
                self._rules_by_media_type[media_type] = rules
        return rules

    def _arguments(self, path: dict[str, Any], query: dict[str, Any], body: object, files: dict[str, Any],
                   media_type: str, schema: dict[str, Any]) -> dict[str, Any]:
        """The handler's keyword arguments, as Connexion's parameter decorator makes them
        (Pythonic names, query defaults, the body or its default, files), from tables built once."""
        kwargs: dict[str, Any] = {}
        for name, value in path.items():
            definition = self.path_definitions.get(name)
            kwargs[python_name(name)] = value if definition is None else upstream.get_val_from_param(value, definition)
        if not self.query_defaults:
            merged = query
        elif self.defaults_immutable:
            merged = deep_merge(dict(self.query_defaults), query)
        else:
            merged = deep_merge(copy.deepcopy(self.query_defaults), query)
        for name, value in merged.items():
            definition = self.query_definitions.get(name)
            if definition is not None and (self.has_kwargs or python_name(name) in self.arguments):
                kwargs[python_name(name)] = (value if name in self.lenient
                                             else upstream.get_val_from_param(value, definition))
        if not self.body_defined or not (self.arguments or self.has_kwargs):
            return kwargs
        if media_type in FORM_TYPES:
            body = upstream.get_body_argument_form(body, operation=self.spec_operation, content_type=media_type)
        else:
            if is_nullable(schema) and is_null(body):
                body = None
            elif body is None:
                body = copy.deepcopy(schema.get("default", {}))
        if self.body_argument in self.arguments or self.has_kwargs:
            kwargs[self.body_argument] = body
        if files:
            kwargs.update(upstream.get_file_arguments(files, self.arguments, schema, self.has_kwargs))
        return kwargs

    async def _body(self, scope: Scope, body: bytes, parsed_json: object, media_type: str,
                    validator: AbstractRequestBodyValidator | None) -> tuple[object, dict[str, Any]]:
        """The body as the handler gets it (parsed, or the schema's default) and any files."""
        if is_json_mimetype(media_type):
            if not body:
                parsed_json = upstream.body_schema(validator).get("default") if validator else None
                if parsed_json is None and self.body_required:
                    raise BadRequestProblem("RequestBody is required")
                parsed_json = copy.deepcopy(parsed_json)
            elif parsed_json is None:  # sent without a Content-Type; read as the JSON the spec takes
                parsed_json = parse_json(body)
            if validator and not (parsed_json is None and upstream.body_nullable(validator)):
                upstream.validate_body(validator, parsed_json)
            return parsed_json, {}
        if media_type in FORM_TYPES:
            if not body:  # nothing to parse (a multipart parser would want a boundary)
                if validator:
                    upstream.validate_body(validator, {})
                return self.uri_parser.resolve_form({}), {}
            if header(scope, b"content-type") is None:  # sent without one: read as the form the spec takes
                set_content_type(scope, media_type.encode())
            try:
                if validator:
                    upstream.validate_body(validator, await upstream.parse_body(validator, _stream(body), scope))
                form_data = await Request(scope, _replay(body)).form()
            except MultiPartException as exc:  # no boundary, a broken body, too many parts
                raise BadRequestProblem(detail=f"Malformed form body: {exc}") from None
            form: dict[str, Any] = {}
            files: dict[str, Any] = {}
            fields = self.body_schemas.get(media_type, {}).get("properties", {})
            for key, value in form_data.multi_items():
                if isinstance(value, UploadFile):
                    files.setdefault(key, []).append(value)
                elif fields.get(key, {}).get("format") != "binary":  # a file sent as plain text is no file
                    form.setdefault(key, []).append(value)
            return self.uri_parser.resolve_form(form), files
        return body or None, {}

    def shape(self, result: object) -> Answer | Response:
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


def query_lists(query_string: bytes) -> dict[str, list[str]]:
    """Each query parameter's values, as Starlette's QueryParams parses them (without building
    one); in one pass, as getlist per key is quadratic."""
    return parse_qs(query_string.decode("latin-1"), keep_blank_values=True)


async def _stream(body: bytes) -> AsyncIterator[bytes]:
    yield body
    yield b""


def _replay(body: bytes) -> Receive:
    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


