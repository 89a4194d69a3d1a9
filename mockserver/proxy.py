"""`mockserver proxy`: a validating proxy between a client and the real vendor.

Every request is forwarded unchanged, its path and query byte for byte (only hop-by-hop headers
and `Accept-Encoding` are left out: the proxy asks for gzip or deflate itself and decodes the
answer, so it comes back uncompressed) and both directions are checked against the vendor's spec:
the request (would the vendor accept it as documented: operation, credentials, parameters, body)
and the answer (documented status, content type, headers, body schema, the vendor's error
envelope). The client gets the vendor's answer as it came, plus `X-Mockserver-Drift` naming what
did not match (an upstream's own `X-Mockserver-*` headers are not passed on). Like Prism's proxy
mode and WireMock's recording, for contract checks from one's own test runs instead of generated
traffic.

An answer is read as it comes and held whole (to check it) up to MAX_BODY_BYTES decoded bytes;
past that, or past the UPSTREAM_DEADLINE for the whole exchange, the client gets the proxy's 502
or 504 instead, and the report a finding.

Secrets (whatever the spec's security schemes name, and parameters of `format: password`) never
reach the report or a recording: their values are replaced wherever they occur.
"""

import asyncio
import base64
import json
import re
import socket
import xml.etree.ElementTree as ElementTree
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from mockserver.contract import Checker, Problem, drift_summary
from mockserver.errors import MAX_JSON_DEPTH, nested_deeper
from mockserver.routing import Router
from mockserver.vendor import Vendor

MAX_BODY_BYTES = 16 << 20  # a larger request is refused (413), a larger answer (decoded) too (502): never held whole
UPSTREAM_DEADLINE = 60.0  # seconds for a whole upstream exchange, from connecting to the answer's last byte (504)
DECODED = ("gzip", "x-gzip", "deflate")  # the content codings asked for (gzip, deflate) and decoded, bounded
MAX_PROBLEMS = 100  # distinct problems kept per operation and direction; more are only counted
MAX_UNDOCUMENTED = 200  # distinct undocumented calls kept
MAX_RECORDED = 10_000  # exchanges a --record folder takes
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
              "host", "content-length", "accept-encoding", "content-encoding"}
REDACTED = "[redacted]"
DRIFT_HEADER = "X-Mockserver-Drift"


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
            lines.append(f"Upstream unreachable, or its answer not passed on, {self.upstream_failures} time(s).")
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
            return {"json": parsed_json(text)}
        except ValueError:  # nested too deep too: kept as text
            pass
    return {"text": text}


class NestedTooDeep(ValueError):
    """JSON nested deeper than a bound."""


def parsed_json(text: str | bytes, limit: int = MAX_JSON_DEPTH) -> Any:
    """JSON that nests at most `limit` levels (what is checked, recorded and replayed walks it
    recursively): ValueError if it is no JSON, NestedTooDeep if it nests deeper."""
    try:
        document = json.loads(text)
    except RecursionError:  # the json module's parser spends a C call a level: far past any limit here
        raise NestedTooDeep(f"JSON nested deeper than {limit} levels") from None
    if nested_deeper(document, limit):
        raise NestedTooDeep(f"JSON nested deeper than {limit} levels")
    return document


def nested_too_deep(body: bytes) -> bool:
    """Whether the body is JSON nested past MAX_JSON_DEPTH levels: passed on, but not checked."""
    if body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH:  # too few brackets for it: no need to parse
        return False
    try:
        parsed_json(body)
    except NestedTooDeep:
        return True
    except ValueError:
        pass  # no JSON: the checks say so
    return False


def unchecked(direction: str) -> Problem:
    """The finding for a body nested too deep to check."""
    return Problem(direction, "body", "", f"JSON nested at most {MAX_JSON_DEPTH} levels (the proxy's bound)",
                   "deeper: not checked")


class Unpassable(Exception):
    """An upstream answer the proxy does not pass on: the status it answers instead (502, 504), a
    message for the client, and the finding for the report."""

    def __init__(self, status: int, message: str, expected: str, got: str) -> None:
        super().__init__(message)
        self.status = status
        self.problem = Problem("response", "upstream", "", expected, f"{got}: answered {status}")


class DecodedBody:
    """An answer's body as it arrives, decoded (identity, gzip, deflate) and counted: Unpassable
    once past MAX_BODY_BYTES decoded bytes, so no more than that is held (a gzip bomb is refused,
    not inflated)."""

    def __init__(self, coding: str) -> None:
        self.coding = coding.strip().lower()
        if self.coding not in ("", "identity", *DECODED):
            raise Unpassable(502, f"Upstream answer in content coding {self.coding!r}, which the proxy does not decode.",
                             "content coding gzip, deflate or none", self.coding)
        # Either gzip or zlib (RFC 9110's deflate): zlib tells them apart by their headers.
        self.inflater = zlib.decompressobj(zlib.MAX_WBITS | 32) if self.coding in DECODED else None
        self.chunks: list[bytes] = []
        self.size = 0

    def add(self, data: bytes) -> None:
        if self.inflater is not None:
            try:
                # One byte past the bound at most; an output shorter than that used all the input.
                data = self.inflater.decompress(data, MAX_BODY_BYTES - self.size + 1)
            except zlib.error:
                raise Unpassable(502, f"Upstream answer is not valid {self.coding}.", f"a {self.coding} body",
                                 "not decodable") from None
        self.size += len(data)
        if self.size > MAX_BODY_BYTES:
            raise Unpassable(502, f"Upstream answer over {MAX_BODY_BYTES >> 20} MiB (the proxy's bound).",
                             f"a body of at most {MAX_BODY_BYTES >> 20} MiB (the proxy's bound)", "more")
        self.chunks.append(data)

    def content(self) -> bytes:
        return b"".join(self.chunks)


class Proxy:
    """The ASGI app: the vendor's base path forwarded and checked; `/__admin/proxy/report` and
    `/__admin/health` answered here; anything else a 404."""

    def __init__(self, vendor: Vendor, upstream: str, record: str | None = None,
                 deadline: float = UPSTREAM_DEADLINE) -> None:
        self.vendor, self.upstream, self.deadline = vendor, upstream.rstrip("/"), deadline
        self.upstream_path = httpx.URL(self.upstream).raw_path.partition(b"?")[0].rstrip(b"/")
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
        elif (suffix := self._suffix(scope)) is not None:
            answer = await self._forward(scope, receive, suffix)
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

    def _suffix(self, scope: Scope) -> bytes | None:
        """The path after the vendor's base path exactly as the client sent it (`%2F` stays `%2F`:
        decoded, it would be another path), or None if it is not under the base path."""
        raw, base = scope.get("raw_path") or scope["path"].encode(), self.vendor.base_path.encode()
        return raw[len(base):] if raw == base or raw.startswith(base + b"/") else None

    async def _forward(self, scope: Scope, receive: Receive, suffix: bytes) -> Response:
        request = Request(scope, receive)
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                return JSONResponse({"error": {"code": 413, "message": "Request body over 16 MiB."}}, status_code=413)
        if nested_too_deep(body):
            (op_id, path_params), problems = self._operation(scope), [unchecked("request")]
        else:
            op_id, path_params, problems = await self.checker.request(scope, body)
        if op_id is None:
            self._note_undocumented(request)
        headers = [(name, value) for name, value in request.headers.items() if name not in HOP_BY_HOP]
        headers.append(("accept-encoding", "gzip, deflate"))  # what DecodedBody decodes
        query = scope["query_string"]
        target = self.upstream_path + suffix + (b"?" + query if query else b"")
        secrets = self.secrets.values(request, path_params)
        try:
            upstream, answer = await self._exchange(request.method, target, headers, body)
        except httpx.HTTPError as exc:
            self.report.upstream_failures += 1
            return JSONResponse({"error": {"code": 502, "message": f"Upstream unreachable: {type(exc).__name__}"}},
                                status_code=502)
        except Unpassable as refused:
            self.report.upstream_failures += 1
            problems.append(refused.problem)
            self._note(op_id, str(refused.status), problems, secrets)
            return JSONResponse({"error": {"code": refused.status, "message": str(refused)}}, status_code=refused.status,
                                headers=dict(_drift(op_id, problems)))
        if op_id is not None:
            deep = "json" in upstream.headers.get("content-type", "").lower() and nested_too_deep(answer)
            seen, found = self.checker.response(op_id, upstream.status_code, upstream.headers, b"" if deep else answer)
            problems += found
            if deep:  # its status and headers are checked; its body is passed on unchecked
                problems.append(unchecked("response"))
            self._note(op_id, seen, problems, secrets)
        if self.recorder is not None:
            self.recorder.save(op_id, request, path_params, body, upstream.status_code, upstream.headers, answer,
                               secrets)
        # The upstream's own X-Mockserver-* headers could pass for the proxy's (or the mock's).
        headers_out = [(name, value) for name, value in upstream.headers.multi_items()
                       if name.lower() not in HOP_BY_HOP and not name.lower().startswith("x-mockserver-")]
        return Response(answer, status_code=upstream.status_code,
                        headers=_header_dict(headers_out + _drift(op_id, problems)))

    async def _exchange(self, method: str, target: bytes, headers: list[tuple[str, str]],
                        body: bytes) -> tuple[httpx.Response, bytes]:
        """The upstream's answer to the request for `target` (its path and query), and the answer's
        body, decoded; Unpassable past MAX_BODY_BYTES or the deadline."""
        if self.client is None:  # no timeouts of its own: the deadline covers the whole exchange
            self.client = httpx.AsyncClient(timeout=None, follow_redirects=False)
        try:
            async with asyncio.timeout(self.deadline):
                async with self.client.stream(method, self.upstream, headers=headers, content=body,
                                              extensions={"target": target}) as upstream:
                    decoded = DecodedBody(upstream.headers.get("content-encoding", ""))
                    async for chunk in upstream.aiter_raw():
                        decoded.add(chunk)
                    return upstream, decoded.content()
        except TimeoutError:
            raise Unpassable(504, f"No whole upstream answer within {self.deadline:g} s (the proxy's deadline).",
                             f"a whole answer within {self.deadline:g} s (the proxy's deadline)", "none") from None

    def _operation(self, scope: Scope) -> tuple[str | None, dict[str, Any]]:
        """The documented operation a request calls (None if none) and its path parameters."""
        found = self.checker.router.match(scope["method"], scope["path"])
        if found is None or found.operation is None:
            return None, {}
        return found.operation.operation.id, found.path_params

    def _note(self, op_id: str | None, seen: str, problems: list[Problem], secrets: list[str]) -> None:
        """A call to a documented operation, in the report: its status as seen, and its problems."""
        if op_id is None:
            return
        entry = self.report.operations[op_id]
        entry.calls += 1
        entry.statuses[seen] += 1
        for problem in problems:
            problem.got = scrub(problem.got, secrets)
            entry.add(problem)

    def _note_undocumented(self, request: Request) -> None:
        call = f"{request.method} {request.url.path[len(self.vendor.base_path):] or '/'}"
        call = re.sub(r"\d{3,}", "{id}", call)  # ids vary; the call is the same undocumented operation
        if call in self.report.undocumented or len(self.report.undocumented) < MAX_UNDOCUMENTED:
            self.report.undocumented[call] += 1


def _drift(op_id: str | None, problems: list[Problem]) -> list[tuple[str, str]]:
    """The drift header an answer carries, if any."""
    if op_id is None:
        return [(DRIFT_HEADER, "undocumented operation")]
    return [(DRIFT_HEADER, drift_summary(problems))] if problems else []


def _header_dict(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    # Starlette's Response takes a mapping; a repeated header (Set-Cookie) is joined per RFC 9110,
    # except Set-Cookie, whose last value wins (a proxy for API traffic; documented).
    merged: dict[str, str] = {}
    for name, value in pairs:
        merged[name] = f"{merged[name]}, {value}" if name in merged and name.lower() != "set-cookie" else value
    return merged


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

