"""A vendor's spec as traffic is checked against it: what a request and an answer must be, and
each place they are not (`Problem`). One validator for every check there is: `mockserver proxy`
checks the real vendor's answers with it, `serve --check-answers` the mock's own (answercheck).

Answers are read as OpenAPI 3.0 has them: `nullable: true` allows null wherever it stands (beside
`allOf` too, which Connexion's validators miss), as Schemathesis reads it.
"""

import itertools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft4Validator, ValidationError
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import Scope

from mockserver.bodies import parse_as_form_unless_json
from mockserver.errors import as_api_error
from mockserver.gateway import presented_credential
from mockserver.pipeline import CompiledOperation
from mockserver.routing import Router
from mockserver.validation import QuickValidator, RequestValidator
from mockserver.vendor import Vendor

MAX_SHOWN = 200  # characters of a value a problem quotes


@dataclass
class Problem:
    direction: str  # "request" or "response"
    part: str  # operation, credentials, parameter, body, status, content-type, header
    pointer: str  # a JSON pointer into the body, or the parameter's / header's name
    expected: str  # what the spec says
    got: str  # what came

    def as_dict(self) -> dict[str, Any]:
        return {"direction": self.direction, "part": self.part, "pointer": self.pointer, "expected": self.expected,
                "got": self.got}

    def line(self) -> str:
        where = f" {self.pointer}" if self.pointer else ""
        return f"{self.direction} {self.part}{where}: expected {self.expected}; got {self.got}"


def shown(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN - 3] + "..."


def pointer(path: Iterable[object]) -> str:
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path) or "/"


def json_schema(node: Any) -> Any:
    """An OpenAPI 3.0 schema as JSON Schema: `nullable: true` becomes "or null" wherever it is
    (beside `allOf` too, which Connexion's validators miss)."""
    if isinstance(node, list):
        return [json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: json_schema(value) for key, value in node.items() if key != "nullable"}
    return {"anyOf": [{"type": "null"}, converted]} if node.get("nullable") is True else converted


def schema_problems(direction: str, validator: Draft4Validator, document: object) -> list[Problem]:
    """Each place the document breaks its schema; for oneOf/anyOf, the deepest branch's complaint."""
    problems = []
    for error in itertools.islice(validator.iter_errors(document), 20):
        while error.context:  # the branch that matched furthest is the one meant
            error = max(error.context, key=lambda branch: (len(branch.path), branch.validator != "required"))
        if error.validator == "required" and isinstance(error.instance, dict):
            found = [Problem(direction, "body", pointer([*error.absolute_path, name]), "present (required)", "absent")
                     for name in error.validator_value if name not in error.instance]
        else:
            found = [Problem(direction, "body", pointer(error.absolute_path),
                             f"{error.validator}: {shown(error.validator_value)}", shown(error.instance))]
        # jsonschema reports each missing property of an object once per `required` list entry
        problems += [problem for problem in found if problem not in problems]
    return problems


def drift_summary(problems: list[Problem]) -> str:
    """A header naming the drift: how many findings and the first few, printable ASCII."""
    text = f"{len(problems)}: " + "; ".join(f"{p.direction} {p.part} {p.pointer}".strip() for p in problems[:5])
    return re.sub(r"[^\x20-\x7e]", "?", text)[:500]


class Checker:
    """A vendor's spec as requests and answers are checked against it."""

    def __init__(self, vendor: Vendor, router: Router | None = None) -> None:
        self.vendor = vendor
        self.router = router or Router(vendor, vendor.specification)
        self.error_validator = Draft4Validator(vendor.error_schema) if vendor.error_schema else None
        self._validators: dict[int, Draft4Validator] = {}
        self._answer_validators: dict[int, QuickValidator] = {}

    def validator(self, schema: dict[str, Any], full: type[Draft4Validator] | None = None) -> Draft4Validator:
        """A cached validator: `full` (the request rules) or, for answers, JSON Schema Draft 4 over
        the schema with OpenAPI's `nullable` spelled out (as Schemathesis reads it)."""
        found = self._validators.get(id(schema))
        if found is None:
            found = self._validators[id(schema)] = (full(schema, format_checker=Draft4Validator.FORMAT_CHECKER) if full
                                                    else self.answer_validator(schema).full)
        return found

    def answer_validator(self, schema: dict[str, Any]) -> QuickValidator:
        """The answer rules (see `validator`), compiled: a valid answer, the common case, costs little."""
        found = self._answer_validators.get(id(schema))
        if found is None:
            found = self._answer_validators[id(schema)] = QuickValidator(json_schema(schema), Draft4Validator)
        return found

    async def request(self, scope: Scope, body: bytes) -> tuple[str | None, dict[str, Any], list[Problem]]:
        """(operationId or None, path parameters, problems) for a request."""
        found = self.router.match(scope["method"], scope["path"])
        if found is None or found.operation is None:
            return None, {}, []
        compiled = found.operation
        problems: list[Problem] = []
        scope = dict(scope)  # read as the vendor reads it, without touching what is forwarded
        if self.vendor.form_fallback and body:
            parse_as_form_unless_json(scope)
        request = Request(scope)
        schemes = compiled.operation.security
        if schemes and all(presented_credential(scheme, request) is None for _, scheme in schemes):
            problems.append(Problem("request", "credentials", "", "credentials as " + " or ".join(
                name for name, _ in schemes), "none"))
        try:
            await compiled.checked(scope, found.path_params, body, None)
        except Exception as exc:  # noqa: BLE001 - whatever the pipeline refuses is the finding
            message = as_api_error(exc).message
            problems += self._body_problems(compiled, scope, body) or [
                Problem("request", "parameter" if "parameter" in message else "body", "", "as documented",
                        shown(message))]
        return compiled.operation.id, found.path_params, problems

    def _body_problems(self, compiled: CompiledOperation, scope: Scope, body: bytes) -> list[Problem]:
        media_type = compiled.media_type(Headers(scope=scope))
        schema = compiled.body_schemas.get(media_type)
        if not schema or "json" not in media_type or not body:
            return []
        try:
            document = json.loads(body)
        except ValueError:
            return [Problem("request", "body", "", "JSON", "not valid JSON")]
        return schema_problems("request", self.validator(schema, RequestValidator), document)

    def response(self, op_id: str, status: int, headers: Mapping[str, str], body: bytes) -> tuple[str, list[Problem]]:
        """(the status as reported, problems) for an answer: a documented status (or its range, or
        `default`), its required headers as documented, a documented content type, and a JSON
        body by its schema; a body where none is documented is a problem too."""
        compiled = self.router.operations[op_id]
        responses = compiled.spec_operation.responses
        declared = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX") or responses.get("default")
        seen = str(status)
        problems: list[Problem] = []
        document = _json(headers, body)
        if self.error_validator is not None and document is not None and self.error_validator.is_valid(document):
            seen += " (error)"  # Corteza: an error in an HTTP 200 answer
        if declared is None:
            documented = ", ".join(sorted(responses))
            return seen, [Problem("response", "status", "", documented, str(status))]
        for name, header in declared.get("headers", {}).items():
            value = headers.get(name)
            if value is None:
                if header.get("required"):
                    problems.append(Problem("response", "header", name, "present (required)", "absent"))
                continue
            schema = header.get("schema", {})
            try:
                typed = int(value) if schema.get("type") == "integer" else value
            except ValueError:
                typed = value
            for error in itertools.islice(self.validator(schema).iter_errors(typed), 1):
                problems.append(Problem("response", "header", name, f"{error.validator}: {shown(error.validator_value)}",
                                        shown(value)))
        content = declared.get("content", {})
        media_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if body and not content:
            problems.append(Problem("response", "content-type", "", "no body", media_type or "none"))
        elif content and body:
            chosen = content.get(media_type) or next(
                (value for key, value in content.items() if key == "*/*" or (key.endswith("/*") and
                                                                             media_type.startswith(key[:-1]))), None)
            if chosen is None:
                problems.append(Problem("response", "content-type", "", ", ".join(content), media_type or "none"))
            elif "schema" in chosen and "json" in media_type:
                if document is None:
                    problems.append(Problem("response", "body", "", "JSON", "not valid JSON"))
                else:
                    problems += self._answer_problems(chosen["schema"], document)
        return seen, problems

    def _answer_problems(self, schema: dict[str, Any], document: object) -> list[Problem]:
        validator = self.answer_validator(schema)
        try:
            validator.validate(document)
        except ValidationError:
            return schema_problems("response", validator.full, document)
        return []


def _json(headers: Mapping[str, str], body: bytes) -> Any:
    if "json" not in headers.get("content-type", "") or not body:
        return None
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # not JSON, or nested past what the parser follows
        return None
