"""`mockserver proxy`: a validating proxy between a client and the real vendor.

Every request is forwarded unchanged (only hop-by-hop headers and `Accept-Encoding` are left out,
so the answer comes back uncompressed) and both directions are checked against the vendor's spec:
the request (would the vendor accept it as documented: operation, credentials, parameters, body)
and the answer (documented status, content type, headers, body schema, the vendor's error
envelope). The client gets the vendor's answer as it came, plus `X-Mockserver-Drift` naming what
did not match. Like Prism's proxy mode and WireMock's recording, for contract checks from one's
own test runs instead of generated traffic.

Secrets (whatever the spec's security schemes name, and parameters of `format: password`) never
reach the report or a recording: their values are replaced wherever they occur.
"""

import asyncio
import base64
import itertools
import json
import re
import socket
import xml.etree.ElementTree as ElementTree
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
from jsonschema import Draft4Validator
from starlette.datastructures import Headers, QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from mockserver.bodies import parse_as_form_unless_json
from mockserver.errors import as_api_error
from mockserver.gateway import presented_credential
from mockserver.pipeline import CompiledOperation
from mockserver.routing import Router
from mockserver.validation import RequestValidator
from mockserver.vendor import Vendor

MAX_BODY_BYTES = 16 << 20  # a larger request or answer is refused (413) or cut (502), not buffered
MAX_PROBLEMS = 100  # distinct problems kept per operation and direction; more are only counted
MAX_UNDOCUMENTED = 200  # distinct undocumented calls kept
MAX_RECORDED = 10_000  # exchanges a --record folder takes
MAX_SHOWN = 200  # characters of a value a problem quotes
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
              "host", "content-length", "accept-encoding", "content-encoding"}
REDACTED = "[redacted]"
DRIFT_HEADER = "X-Mockserver-Drift"


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


@dataclass
class OperationReport:
    label: str  # "GET /users (listUsers)"
    calls: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    # (direction, part, pointer, expected) -> [Problem, n]
    problems: dict[tuple[str, ...], list[Any]] = field(default_factory=dict)
    more_problems: int = 0  # beyond MAX_PROBLEMS

    def add(self, problem: Problem) -> None:
        key = (problem.direction, problem.part, problem.pointer, problem.expected)
        if key in self.problems:
            self.problems[key][1] += 1
        elif len(self.problems) < MAX_PROBLEMS:
            self.problems[key] = [problem, 1]
        else:
            self.more_problems += 1

    def listed(self, direction: str) -> list[dict[str, Any]]:
        return [problem.as_dict() | {"count": count} for problem, count in self.problems.values()
                if problem.direction == direction]


class Report:
    """What the proxy saw, per operation in spec order."""

    def __init__(self, vendor: Vendor, router: Router) -> None:
        self.vendor = vendor
        self.operations = {op_id: OperationReport(f"{op.spec_operation.method.upper()} {op.spec_operation.path} ({op_id})")
                           for op_id, op in router.operations.items()}
        self.undocumented: Counter[str] = Counter()
        self.upstream_failures = 0

    @property
    def drift(self) -> int:
        return int(sum(count for op in self.operations.values() for _, count in op.problems.values())
                + sum(op.more_problems for op in self.operations.values()) + sum(self.undocumented.values()))

    def as_dict(self) -> dict[str, Any]:
        return {
            "vendor": self.vendor.name,
            "drift": self.drift,
            "operations": [{"operation": op_id, "label": op.label, "calls": op.calls,
                            "statuses": {str(status): count for status, count in sorted(op.statuses.items())},
                            "request_problems": op.listed("request"), "response_problems": op.listed("response"),
                            "more_problems": op.more_problems}
                           for op_id, op in self.operations.items() if op.calls],
            "undocumented": [{"call": call, "count": count} for call, count in self.undocumented.items()],
            "never_exercised": [op.label for op in self.operations.values() if not op.calls],
            "upstream_failures": self.upstream_failures,
        }

    def as_text(self) -> str:
        lines = [f"mockserver proxy report for {self.vendor.name}: {self.drift} drift finding(s)"]
        for op in self.operations.values():
            if op.calls:
                statuses = ", ".join(f"{status} x{count}" for status, count in sorted(op.statuses.items()))
                lines.append(f"{'DRIFT' if op.problems else 'ok   '} {op.label}: {op.calls} call(s); {statuses}")
                lines += [f"      {problem.line()} (x{count})" for problem, count in op.problems.values()]
        lines += [f"UNDOCUMENTED {call} (x{count})" for call, count in self.undocumented.items()]
        never = [op.label for op in self.operations.values() if not op.calls]
        if never:
            lines.append(f"Never exercised ({len(never)}): " + "; ".join(never))
        if self.upstream_failures:
            lines.append(f"Upstream unreachable {self.upstream_failures} time(s).")
        return "\n".join(lines) + "\n"

    def as_junit(self) -> bytes:
        root = ElementTree.Element("testsuites")
        suite = ElementTree.SubElement(root, "testsuite", name=f"mockserver proxy ({self.vendor.name})")
        cases = failures = 0
        for op in self.operations.values():
            if not op.calls:
                continue
            cases += 1
            case = ElementTree.SubElement(suite, "testcase", name=op.label, classname=f"proxy.{self.vendor.name}")
            if op.problems:
                failures += 1
                failure = ElementTree.SubElement(case, "failure", message=f"{len(op.problems)} kind(s) of drift")
                failure.text = "\n".join(f"{problem.line()} (x{count})" for problem, count in op.problems.values())
        for call, count in self.undocumented.items():
            cases += 1
            failures += 1
            case = ElementTree.SubElement(suite, "testcase", name=f"undocumented {call}", classname="proxy.undocumented")
            ElementTree.SubElement(case, "failure", message=f"called {count} time(s); not in the spec")
        suite.set("tests", str(cases))
        suite.set("failures", str(failures))
        return bytes(ElementTree.tostring(root, encoding="utf-8", xml_declaration=True))

    def write(self, path: str) -> None:
        """As JSON if the name ends in .json, JUnit XML if .xml, else text."""
        if path.endswith(".json"):
            data = json.dumps(self.as_dict(), indent=2).encode()
        elif path.endswith(".xml"):
            data = self.as_junit()
        else:
            data = self.as_text().encode()
        Path(path).write_bytes(data)


class Secrets:
    """Where a vendor's requests carry secrets, from its spec, and the values seen in one request."""

    def __init__(self, vendor: Vendor, router: Router) -> None:
        self.headers = {"authorization", "proxy-authorization", "cookie"}
        self.query: set[str] = set()
        self.cookies: set[str] = set()
        self.path: set[str] = set()
        for scheme in vendor.spec.get("components", {}).get("securitySchemes", {}).values():
            if scheme["type"] == "apiKey":
                {"header": self.headers, "query": self.query, "cookie": self.cookies}[scheme["in"]].add(
                    scheme["name"].lower() if scheme["in"] == "header" else scheme["name"])
        for compiled in router.operations.values():
            for parameter in compiled.spec_operation.parameters:
                if parameter.get("schema", {}).get("format") == "password":
                    where = {"header": self.headers, "query": self.query, "cookie": self.cookies,
                             "path": self.path}[parameter["in"]]
                    where.add(parameter["name"].lower() if parameter["in"] == "header" else parameter["name"])

    def values(self, request: Request, path_params: dict[str, Any]) -> list[str]:
        """The secret values this request carries, longest first (so a token is replaced before a part of it)."""
        found = [value for name, value in request.headers.items() if name in self.headers]
        for value in list(found):  # "Bearer X" / "Basic X": X alone too, and what Basic wraps
            scheme, _, rest = value.partition(" ")
            if rest:
                found.append(rest.strip())
                if scheme.lower() == "basic":
                    try:
                        found += [part for part in base64.b64decode(rest).decode().split(":") if len(part) >= 4]
                    except (ValueError, UnicodeDecodeError):
                        pass
        found += [value for name, value in request.query_params.multi_items() if name in self.query]
        found += [value for name, value in request.cookies.items() if name in self.cookies]
        found += [str(value) for name, value in path_params.items() if name in self.path]
        return sorted({value for value in found if len(value) >= 4}, key=len, reverse=True)


def scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


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
            for name in [name for name in error.validator_value if name not in error.instance]:
                problems.append(Problem(direction, "body", pointer([*error.absolute_path, name]),
                                        "present (required)", "absent"))
            continue
        problems.append(Problem(direction, "body", pointer(error.absolute_path),
                                f"{error.validator}: {shown(error.validator_value)}", shown(error.instance)))
    return problems


class Checker:
    """A vendor's spec as the proxy checks traffic against it."""

    def __init__(self, vendor: Vendor) -> None:
        self.vendor = vendor
        self.router = Router(vendor, vendor.specification)
        self.error_validator = Draft4Validator(vendor.error_schema) if vendor.error_schema else None
        self._validators: dict[int, Draft4Validator] = {}

    def validator(self, schema: dict[str, Any], full: type[Draft4Validator] | None = None) -> Draft4Validator:
        """A cached validator: `full` (the request rules) or, for answers, JSON Schema Draft 4 over
        the schema with OpenAPI's `nullable` spelled out (as Schemathesis reads it)."""
        found = self._validators.get(id(schema))
        if found is None:
            found = self._validators[id(schema)] = (full(schema, format_checker=Draft4Validator.FORMAT_CHECKER) if full
                                                    else Draft4Validator(json_schema(schema),
                                                                         format_checker=Draft4Validator.FORMAT_CHECKER))
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

    def response(self, op_id: str, status: int, headers: httpx.Headers, body: bytes) -> tuple[str, list[Problem]]:
        """(the status as reported, problems) for an answer."""
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
        if content and body:
            media_type = headers.get("content-type", "").split(";")[0].strip().lower()
            chosen = content.get(media_type) or next(
                (value for key, value in content.items() if key == "*/*" or (key.endswith("/*") and
                                                                             media_type.startswith(key[:-1]))), None)
            if chosen is None:
                problems.append(Problem("response", "content-type", "", ", ".join(content), media_type or "none"))
            elif "schema" in chosen and "json" in media_type:
                if document is None:
                    problems.append(Problem("response", "body", "", "JSON", "not valid JSON"))
                else:
                    problems += schema_problems("response", self.validator(chosen["schema"]), document)
        return seen, problems


def _json(headers: httpx.Headers, body: bytes) -> Any:
    if "json" not in headers.get("content-type", "") or not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


class Recorder:
    """Exchanges saved as JSON files, secrets replaced, for `mockserver replay`."""

    def __init__(self, folder: str, vendor: Vendor, secrets: Secrets) -> None:
        self.folder, self.vendor, self.secrets = Path(folder), vendor, secrets
        self.folder.mkdir(parents=True, exist_ok=True)
        self.count = len(list(self.folder.glob("*.json")))

    def save(self, op_id: str | None, request: Request, path_params: dict[str, Any], body: bytes, status: int,
             headers: httpx.Headers, answer: bytes, secrets: list[str]) -> None:
        if self.count >= MAX_RECORDED:
            return
        self.count += 1
        relative = request.url.path[len(self.vendor.base_path):]
        exchange = {
            "vendor": self.vendor.name, "operation": op_id,
            "request": {
                "method": request.method, "path": scrub(relative, secrets),
                "secret_in_path": any(name in self.secrets.path for name in path_params),
                "query": [[name, REDACTED if name in self.secrets.query else scrub(value, secrets)]
                          for name, value in request.query_params.multi_items()],
                "headers": {name: REDACTED if name in self.secrets.headers else scrub(value, secrets)
                            for name, value in request.headers.items() if name not in HOP_BY_HOP},
                **_content(request.headers.get("content-type", ""), body, secrets),
            },
            "response": {"status": status,
                         "headers": {name: scrub(value, secrets) for name, value in headers.items()
                                     if name.lower() not in HOP_BY_HOP},
                         **_content(headers.get("content-type", ""), answer, secrets)},
        }
        name = f"{self.count:05d}-{op_id or 'undocumented'}.json"
        (self.folder / name).write_text(json.dumps(exchange, indent=1, ensure_ascii=False))


def _content(content_type: str, body: bytes, secrets: list[str]) -> dict[str, Any]:
    """A body as a recording keeps it: JSON, text, or base64 for anything else."""
    if not body:
        return {}
    try:
        text = scrub(body.decode("utf-8"), secrets)
    except UnicodeDecodeError:
        return {"body_base64": base64.b64encode(body).decode()}
    if "json" in content_type:
        try:
            return {"json": json.loads(text)}
        except ValueError:
            pass
    return {"text": text}


class Proxy:
    """The ASGI app: the vendor's base path forwarded and checked; `/__admin/proxy/report` and
    `/__admin/health` answered here; anything else a 404."""

    def __init__(self, vendor: Vendor, upstream: str, record: str | None = None) -> None:
        self.vendor, self.upstream = vendor, upstream.rstrip("/")
        self.checker = Checker(vendor)
        self.report = Report(vendor, self.checker.router)
        self.secrets = Secrets(vendor, self.checker.router)
        self.recorder = Recorder(record, vendor, self.secrets) if record else None
        self.client: httpx.AsyncClient | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if self.client is not None:
                        await self.client.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/__admin/proxy/report":
            answer = self._report_answer(QueryParams(scope["query_string"]).get("format", "json"))
        elif path == "/__admin/health":
            answer = JSONResponse({"status": "ok", "vendor": self.vendor.name, "upstream": self.upstream})
        elif path == self.vendor.base_path or path.startswith(self.vendor.base_path + "/"):
            answer = await self._forward(scope, receive)
        else:
            answer = JSONResponse({"error": {"code": 404, "message": f"Not under {self.vendor.base_path}."}},
                                  status_code=404)
        await answer(scope, receive, send)

    def _report_answer(self, kind: str) -> Response:
        if kind == "text":
            return Response(self.report.as_text(), media_type="text/plain")
        if kind == "junit":
            return Response(self.report.as_junit(), media_type="application/xml")
        return JSONResponse(self.report.as_dict())

    async def _forward(self, scope: Scope, receive: Receive) -> Response:
        request = Request(scope, receive)
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                return JSONResponse({"error": {"code": 413, "message": "Request body over 16 MiB."}}, status_code=413)
        op_id, path_params, problems = await self.checker.request(scope, body)
        if op_id is None:
            self._note_undocumented(request)
        if self.client is None:
            self.client = httpx.AsyncClient(timeout=httpx.Timeout(60.0), follow_redirects=False)
        url = self.upstream + scope["path"][len(self.vendor.base_path):]
        headers = [(name, value) for name, value in request.headers.items() if name not in HOP_BY_HOP]
        try:
            upstream = await self.client.request(request.method, url, params=scope["query_string"].decode("latin-1"),
                                                 headers=headers, content=body)
        except httpx.HTTPError as exc:
            self.report.upstream_failures += 1
            return JSONResponse({"error": {"code": 502, "message": f"Upstream unreachable: {type(exc).__name__}"}},
                                status_code=502)
        answer = upstream.content[:MAX_BODY_BYTES]
        secrets = self.secrets.values(request, path_params)
        if op_id is not None:
            seen, found = self.checker.response(op_id, upstream.status_code, upstream.headers, answer)
            problems += found
            entry = self.report.operations[op_id]
            entry.calls += 1
            entry.statuses[seen] += 1
            for problem in problems:
                problem.got = scrub(problem.got, secrets)
                entry.add(problem)
        if self.recorder is not None:
            self.recorder.save(op_id, request, path_params, body, upstream.status_code, upstream.headers, answer,
                               secrets)
        headers_out = [(name, value) for name, value in upstream.headers.multi_items() if name.lower() not in HOP_BY_HOP]
        if problems or op_id is None:
            headers_out.append((DRIFT_HEADER, drift_summary(problems) if op_id else "undocumented operation"))
        return Response(answer, status_code=upstream.status_code, headers=_header_dict(headers_out))

    def _note_undocumented(self, request: Request) -> None:
        call = f"{request.method} {request.url.path[len(self.vendor.base_path):] or '/'}"
        call = re.sub(r"\d{3,}", "{id}", call)  # ids vary; the call is the same undocumented operation
        if call in self.report.undocumented or len(self.report.undocumented) < MAX_UNDOCUMENTED:
            self.report.undocumented[call] += 1


def _header_dict(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    # Starlette's Response takes a mapping; a repeated header (Set-Cookie) is joined per RFC 9110,
    # except Set-Cookie, whose last value wins (a proxy for API traffic; documented).
    merged: dict[str, str] = {}
    for name, value in pairs:
        merged[name] = f"{merged[name]}, {value}" if name in merged and name.lower() != "set-cookie" else value
    return merged


def drift_summary(problems: list[Problem]) -> str:
    """The header naming the drift: how many findings and the first few, printable ASCII."""
    text = f"{len(problems)}: " + "; ".join(f"{p.direction} {p.part} {p.pointer}".strip() for p in problems[:5])
    return re.sub(r"[^\x20-\x7e]", "?", text)[:500]


def serve(vendor: Vendor, upstream: str, listening: socket.socket, root: str, *, record: str | None,
          report_path: str | None, junit_path: str | None, fail_on: str, announce: Callable[[str], None]) -> int:
    """Run the proxy on the bound socket `listening` (reached at `root`) until interrupted; write
    the reports; the exit status (1 on drift with `fail_on == "drift"`)."""
    import signal

    import uvicorn

    proxy = Proxy(vendor, upstream, record)
    announce(f"mockserver proxy for {vendor.name}: {root}{vendor.base_path} -> {upstream}\n"
             f"Report: {root}/__admin/proxy/report (?format=text|junit)")

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            # Ends the run as uvicorn's does, without raising the signal again once stopped, so
            # the reports get written and the exit status says whether there was drift.
            self.force_exit = self.should_exit and sig == signal.SIGINT
            self.should_exit = True

    # The upstream's own Date and Server headers pass through; uvicorn adds none of its own.
    server = Server(uvicorn.Config(proxy, log_level="warning", access_log=False, lifespan="on",
                                   server_header=False, date_header=False))
    try:
        asyncio.run(server.serve(sockets=[listening]))
    finally:
        listening.close()
    if report_path:
        proxy.report.write(report_path)
    if junit_path:
        Path(junit_path).write_bytes(proxy.report.as_junit())
    announce(proxy.report.as_text().rstrip())
    return 1 if fail_on == "drift" and proxy.report.drift else 0

