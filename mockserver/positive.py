"""The positive phase of `mockserver fuzz`: every documented operation performed once with valid
data, as a client would, and every documented success status required.

Identifiers come from other operations' answers along the spec's OpenAPI links (a link's
`parameters` and `requestBody` hold runtime expressions such as `$response.body#/users/0/id`).
A body that links fill is laid over the least its schema allows (required properties, from the
schema's examples where it has them); a body no link fills is the media type's `example` (the
documented one, naming the people the mock's fixtures hold), or else the least the schema allows.
Parameters no link fills take their `example`, or the least their schema allows if required. Each answer is
checked against the spec with Schemathesis' checks (status, content type, headers, body schema).
Generated data cannot do this: it names users and boards that do not exist, so creates are
refused and a server answering them with an undocumented status goes unnoticed.
"""

import copy
import json
import re
import time
import urllib.parse
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from schemathesis import APIOperation, BaseSchema, Response
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup
from schemathesis.core.file_samples import iter_media_type_file_samples
from schemathesis.core.result import Err

from mockserver.vendor import Vendor, resolve_ref

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
WRITES_LAST = ("delete",)
Operation = APIOperation[Any, Any, Any, Any]  # a Schemathesis operation


def consumes(operation: Operation) -> bool:
    """A delete, or an operation marked `x-consumes` (Corteza's archive/delete state change), ends
    what it was given: whoever needs the same kind of thing afterwards makes a new one."""
    return operation.method.lower() in WRITES_LAST or bool(operation.definition.raw.get("x-consumes"))


@dataclass
class Step:
    """One operation performed: what was sent and what came back, for links to read and the report."""
    operation: str  # e.g. "POST /pluses (createPlus)"
    documented: set[int] = field(default_factory=set)  # its documented success statuses
    path: dict[str, Any] = field(default_factory=dict)
    query: dict[str, Any] = field(default_factory=dict)
    body: object = None
    status: int | None = None  # the status the answer stands for (Corteza's 200 errors as their own)
    headers: dict[str, Any] = field(default_factory=dict)
    json: object = None
    problems: list[str] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.status in self.documented


class Phase:
    """Performs each operation of `schema` once, deletes last. Before an operation, every
    operation linked to it is performed, and the values of all their links are combined (where two
    give the same value, the producer first in the spec wins: paths in order, then by method)."""

    def __init__(self, vendor: Vendor, schema: BaseSchema, headers: dict[str, str], *,
                 status_of: Callable[[Response], int], interval: float = 0.0) -> None:
        self.vendor, self.headers, self.status_of, self.interval = vendor, headers, status_of, interval
        self.operations: dict[str, Operation] = {}
        for result in schema.get_all_operations():
            if isinstance(result, Err):  # a spec Schemathesis cannot read: ours are checked by tests/test_specs.py
                raise result.err()
            operation = result.ok()
            self.operations[operation.definition.raw["operationId"]] = operation
        # operationId: [(its producer, the link)], from our spec (Schemathesis adds links of its own)
        self.producers: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for producer, spec_operation in vendor.operations.items():
            for status, response in spec_operation.responses.items():
                if str(status).startswith("2"):
                    for link in response.get("links", {}).values():
                        self.producers.setdefault(link["operationId"], []).append((producer, link))
        self.steps: dict[str, Step] = {}  # each operation's first performance: the report
        self.latest: dict[str, Step] = {}  # each operation's latest performance: what links read
        self.consumed: set[str] = set()  # operations whose latest result a delete has used up
        self._last_call = 0.0

    def run(self) -> list[Step]:
        order = sorted(self.operations, key=lambda op_id: self.operations[op_id].method.lower() in WRITES_LAST)
        for op_id in order:
            if op_id not in self.steps:
                self.perform(op_id, ())
        return [self.steps[op_id] for op_id in order]

    def perform(self, op_id: str, waiting: tuple[str, ...]) -> Step:
        """The operation's latest result, performing it (and what it needs) unless there is one
        that no delete has used up yet."""
        if op_id in self.latest and op_id not in self.consumed:
            return self.latest[op_id]
        values: dict[str, Any] = {}
        used = []
        for producer, link in self.producers.get(op_id, ()):
            if producer in waiting:
                continue
            made = self.perform(producer, (*waiting, op_id))
            if made.succeeded:
                used.append(producer)
                linked = evaluate_link(link, made, self.operations[op_id].path)
                body = linked["body"] | values["body"] if _both_dicts(linked.get("body"), values.get("body")) else None
                values = linked | values
                if body is not None:
                    values["body"] = body
        step = self.latest[op_id] = self.call(op_id, values)
        self.steps.setdefault(op_id, step)
        self.consumed.discard(op_id)
        if consumes(self.operations[op_id]):
            self.consumed.update(used)
        return step

    def call(self, op_id: str, linked: dict[str, Any]) -> Step:
        operation = self.operations[op_id]
        raw = operation.definition.raw
        step = Step(f"{operation.method.upper()} {operation.path} ({op_id})",
                    {int(status) for status in raw["responses"] if str(status).startswith("2")})
        for parameter in [*operation.path_parameters, *operation.query]:
            definition = resolve_ref(self.vendor.spec, parameter.definition)
            name = definition["name"]
            where = "path" if definition["in"] == "path" else "query"
            value = linked.get(f"{where}.{name}", linked.get(name, NOTHING))
            if value is NOTHING and (where == "path" or "example" in definition or definition.get("required")):
                value = definition.get("example", example_of(self.vendor.spec, definition.get("schema", {})))
            if value is not NOTHING:
                getattr(step, where)[name] = value
        media_type = None
        content = resolve_ref(self.vendor.spec, raw.get("requestBody", {})).get("content", {})
        if content:
            media_type = next((kind for kind in content if "json" in kind), next(iter(content)))
            declared = content[media_type]
            if "body" not in linked:
                step.body = copy.deepcopy(declared["example"]) if "example" in declared else example_of(
                    self.vendor.spec, declared.get("schema", {}))
            elif isinstance(linked["body"], dict):
                step.body = example_of(self.vendor.spec, declared.get("schema", {})) | linked["body"]
            else:
                step.body = linked["body"]
            step.body = with_files(self.vendor.spec, declared, step.body)
        body: dict[str, Any] = {"body": step.body} if content else {}
        case = operation.Case(path_parameters=step.path, query=step.query or None, media_type=media_type, **body)
        self._pace()
        try:
            response = case.call(headers=self.headers)
        except Exception as exc:  # the server could not be reached or hung up: that is the finding
            step.problems.append(f"no answer: {exc}")
            return step
        step.status = self.status_of(response)
        step.headers = dict(response.headers)
        try:
            step.json = json.loads(response.content)
        except ValueError:
            step.json = None
        if not step.succeeded:
            step.problems.append(f"answered {step.status}, not its documented success: {response.content[:300]!r}")
        try:
            case.validate_response(response, checks=CHECKS)
        except (AssertionError, FailureGroup) as exc:
            step.problems.append(str(exc).strip())
        return step

    def _pace(self) -> None:
        """At most one request per `interval` seconds (a real vendor's rate limit)."""
        wait = self._last_call + self.interval - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self._last_call = time.monotonic()


def _both_dicts(one: object, other: object) -> bool:
    return isinstance(one, dict) and isinstance(other, dict)


class _Nothing:
    pass


NOTHING = _Nothing()


def evaluate_link(link: dict[str, Any], made: Step, path_template: str) -> dict[str, Any]:
    """A link's values after `made`: `{"path.id": ..., "id": ..., "body": ...}`.

    `x-from-url` (an extension) names a URL in the answer, such as Corteza's signed attachment
    URLs, whose path (matched against the target's path template) and query give parameters."""
    values: dict[str, Any] = {}
    if "x-from-url" in link:
        url = urllib.parse.urlsplit(str(evaluate(link["x-from-url"], made) or ""))
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path_template)) + "$"
        if found := re.search(pattern, url.path):
            values |= {f"path.{name}": urllib.parse.unquote(value) for name, value in found.groupdict().items()}
            values |= {f"query.{name}": value for name, value in urllib.parse.parse_qsl(url.query)}
    values |= {name: evaluate(expression, made) for name, expression in link.get("parameters", {}).items()}
    if "requestBody" in link:
        values["body"] = evaluate(link["requestBody"], made)
    return values


def evaluate(expression: object, made: Step) -> Any:
    """An OpenAPI runtime expression (or an object or list of them) against a performed step:
    `$response.body#/pointer`, `$response.header.NAME`, `$request.path.NAME`, `$request.query.NAME`,
    `$request.body#/pointer`, `$statusCode`; anything else is a constant."""
    if isinstance(expression, dict):  # keys too, as Schemathesis evaluates them
        return {str(evaluate(key, made)): evaluate(value, made) for key, value in expression.items()}
    if isinstance(expression, list):
        return [evaluate(value, made) for value in expression]
    if not isinstance(expression, str) or not expression.startswith("$"):
        return expression
    if expression == "$statusCode":
        return made.status
    source, _, pointer = expression.partition("#")
    if source == "$response.body":
        return _pointed(made.json, pointer)
    if source == "$request.body":
        return _pointed(made.body, pointer)
    if source.startswith("$response.header."):
        wanted = source.removeprefix("$response.header.").lower()
        found = next((value for name, value in made.headers.items() if name.lower() == wanted), None)
        return found[0] if isinstance(found, list) and found else found
    if source.startswith("$request.path."):
        return made.path.get(source.removeprefix("$request.path."))
    if source.startswith("$request.query."):
        return made.query.get(source.removeprefix("$request.query."))
    raise ValueError(f"runtime expression not understood: {expression}")


def _pointed(document: object, pointer: str) -> Any:
    for token in [part.replace("~1", "/").replace("~0", "~") for part in pointer.split("/")[1:]]:
        if isinstance(document, list):
            document = document[int(token)] if token.isdigit() and int(token) < len(document) else None
        elif isinstance(document, dict):
            document = document.get(token)
        else:
            return None
    return document


_FORMATS = {"date-time": "2026-01-01T00:00:00Z", "date": "2026-01-01", "email": "someone@example.com",
            "uri": "https://example.com/", "url": "https://example.com/", "uuid": "00000000-0000-4000-8000-000000000000"}


def example_of(spec: dict[str, Any], schema: dict[str, Any]) -> Any:
    """The schema's example, default or first enum value; else the least valid value: objects with
    their required (writable) properties, one-item arrays, the minimum, false."""
    schema = resolve_ref(spec, schema)
    for key in ("example", "default"):
        if key in schema:
            return copy.deepcopy(schema[key])
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("allOf", "oneOf", "anyOf"):
        if schema.get(key):
            parts = [example_of(spec, part) for part in schema[key]]
            if key == "allOf" and all(isinstance(part, dict) for part in parts):
                return {name: value for part in parts for name, value in part.items()}
            return parts[0]
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if kind == "object":
        properties = schema.get("properties", {})
        return {name: example_of(spec, properties.get(name, {})) for name in schema.get("required", ())
                if not resolve_ref(spec, properties.get(name, {})).get("readOnly")}
    if kind == "array":
        return [example_of(spec, schema.get("items", {})) for _ in range(max(1, schema.get("minItems", 1)))]
    if kind in ("integer", "number"):
        least = schema.get("minimum", 1)
        return least + 1 if schema.get("exclusiveMinimum") else least
    if kind == "boolean":
        return False
    text = _FORMATS.get(schema.get("format", ""), "example")
    return text.ljust(schema.get("minLength", 0), "x")[:schema.get("maxLength", len(text) + 64)]


def with_files(spec: dict[str, Any], declared: dict[str, Any], body: object) -> object:
    """A form's file parts (`format: binary`) as a real file of the first type its `encoding`
    names, from Schemathesis' samples (an image for `image/png`), where the schema gave text:
    servers read uploads by their bytes."""
    if not isinstance(body, dict):
        return body
    properties = resolve_ref(spec, declared.get("schema", {})).get("properties", {})
    files = {}
    for name, value in body.items():
        if isinstance(value, str) and resolve_ref(spec, properties.get(name, {})).get("format") == "binary":
            types = declared.get("encoding", {}).get(name, {}).get("contentType", "application/octet-stream")
            sample = next(iter_media_type_file_samples(types.split(",")[0].strip()), None)
            if sample is not None:
                files[name] = sample[1]
    return body | files


def report(steps: list[Step]) -> str:
    lines = []
    for step in steps:
        mark = "ok  " if not step.problems else "FAIL"
        lines.append(f"{mark} {step.status or '---'} {step.operation}")
        lines += [f"       {line}" for problem in step.problems for line in problem.splitlines()]
    reached = sum(step.succeeded for step in steps)
    failed = sum(bool(step.problems) for step in steps)
    lines.append(f"Positive phase: {reached}/{len(steps)} documented success statuses reached, "
                 f"{failed} operation(s) with problems.")
    return "\n".join(lines)


def add_to_junit(path: str, steps: list[Step], seconds: float = 0.0) -> None:
    """The phase (which took `seconds`) as a test suite of its own in a JUnit report (Schemathesis'
    file, when it wrote one); the root's totals then the sums of its suites'."""
    try:
        root = ElementTree.parse(path).getroot()
    except (OSError, ElementTree.ParseError):
        root = ElementTree.Element("testsuites")
    suite = ElementTree.SubElement(root, "testsuite", name="positive phase", tests=str(len(steps)),
                                   failures=str(sum(bool(step.problems) for step in steps)), errors="0", skipped="0",
                                   time=f"{seconds:.3f}")
    for step in steps:
        case = ElementTree.SubElement(suite, "testcase", name=step.operation, classname="positive")
        if step.problems:
            failure = ElementTree.SubElement(case, "failure", message=step.problems[0].splitlines()[0][:200])
            failure.text = "\n\n".join(step.problems)
    sum_suites(root)
    ElementTree.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


JUNIT_COUNTS = ("tests", "failures", "errors", "skipped")


def sum_suites(root: ElementTree.Element) -> None:
    """The root's counts and time as the sums of its suites'."""
    suites = root.findall("testsuite")
    for name in JUNIT_COUNTS:
        root.set(name, str(sum(int(suite.get(name) or 0) for suite in suites)))
    root.set("time", f"{sum(float(suite.get('time') or 0) for suite in suites):.3f}")
