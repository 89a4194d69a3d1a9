"""The request path's shortcuts answer exactly as what they stand in for: CORS for requests without
an Origin (Starlette's CORSMiddleware), the access line written without a log record (logging's
formatters), a body read without a deadline only when none can come."""

import asyncio
import io
import json
import logging
import re
import sys
import time

import pytest
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware

from mockserver import app, logs
from mockserver.app import MockServer

KARMA = {"authorization": "Bearer krm_1_d020104626bf82b1420f719a67ad9420"}


async def _call(asgi, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> list[dict]:
    """The messages `asgi` sends for one request."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"127.0.0.1:8080")] + [(k.encode(), v.encode()) for k, v in headers.items()],
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8080)}
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    await asgi(scope, receive, send)
    return sent


def _requests(server: MockServer) -> list[tuple[str, str, dict[str, str], bytes]]:
    credentials = server.store.tenants["default"].credentials()
    corteza = credentials["corteza"]["headers"]
    return [
        ("GET", "/karmabot/api/v1/users", KARMA, b""),
        ("GET", "/karmabot/api/v1/users", {}, b""),  # an auth failure (WWW-Authenticate)
        ("POST", "/karmabot/api/v1/pluses", KARMA | {"content-type": "application/json"}, b'{"from_id": "x"}'),
        ("DELETE", "/karmabot/api/v1/users", KARMA, b""),  # 405
        ("GET", "/karmabot/api/v1/nothing", KARMA, b""),  # the vendor's 404
        ("GET", "/karmabot/api/v1/users/", KARMA, b""),  # the trailing-slash answer
        ("GET", "/nowhere", {}, b""),  # under no vendor
        ("GET", "/corteza/messaging/channels/", corteza, b""),  # Corteza's own CORS (spec root x-cors)
        ("GET", "/corteza/messaging/channels/", {}, b""),
        ("GET", "/dailybot/v1/kudos/", credentials["dailybot"]["headers"], b""),
        ("GET", "/kudosnow/v1/redemptions", credentials["kudosnow"]["headers"], b""),
        ("GET", "/community/api/v1/boards", credentials["community"]["headers"], b""),
    ]


@pytest.mark.parametrize("cors", [True, False])
def test_requests_without_an_origin_are_answered_as_by_starlettes_cors_middleware(cors):
    ours, theirs = MockServer(ticking=False, cors=cors), MockServer(ticking=False, cors=cors)

    def middleware(path: str):  # what the server ran every vendor request through before
        for base_path, own in theirs._own_cors.items():
            if path.startswith(base_path + "/"):
                return own
        return theirs._cors or theirs._vendor

    async def compare() -> None:
        for method, path, headers, body in _requests(ours):
            mine = await _call(ours, method, path, {k.lower(): v for k, v in headers.items()}, body)
            reference = await _call(middleware(path), method, path, {k.lower(): v for k, v in headers.items()}, body)
            assert mine == reference, (method, path)
            assert (b"vary", b"Origin") in mine[0]["headers"] or (not cors and not path.startswith("/corteza/"))

    asyncio.run(compare())


@pytest.mark.parametrize("headers", [
    [],
    [(b"content-type", b"application/json")],
    [(b"vary", b"Accept"), (b"content-length", b"2")],
    [(b"x-a", b"1"), (b"vary", b"Accept"), (b"x-b", b"2"), (b"vary", b"Cookie"), (b"x-c", b"3")],
])
def test_vary_origin_is_added_as_the_middleware_adds_it(headers):
    middleware = CORSMiddleware(lambda *_: None, allow_origin_regex=".*", allow_credentials=True)

    async def sent(sending) -> list[dict]:
        out: list[dict] = []

        async def send(message: dict) -> None:
            out.append(message)

        await sending(send)({"type": "http.response.start", "status": 200, "headers": list(headers)})
        await sending(send)({"type": "http.response.body", "body": b"{}"})
        return out

    def theirs(send):
        async def sending(message):
            await middleware.send(message, send, request_headers=Headers(raw=[]))
        return sending

    assert asyncio.run(sent(app._varying_on_origin)) == asyncio.run(sent(theirs))


@pytest.mark.parametrize("fmt", logs.FORMATS)
def test_the_access_line_is_what_the_log_record_would_have_been(monkeypatch, fmt):
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    root = logging.getLogger("mockserver")
    handlers, level, propagate = root.handlers[:], root.level, root.propagate
    try:
        logs.configure("info", fmt)
        lines = logs._access_lines
        for fast in (True, False):
            monkeypatch.setattr(logs, "_access_lines", lines if fast else None)
            logs.log_access("karmabot", "default", "listUsers", "GET", "/karmabot/api/v1/users", 200,
                            time.perf_counter())
            logs.log_access(None, None, None, "GET", "/nowhere", 404, time.perf_counter())
    finally:
        root.handlers[:], root.propagate = handlers, propagate
        root.setLevel(level)
    written = stream.getvalue().splitlines()
    assert len(written) == 4
    if fmt == "json":
        written = [json.dumps(json.loads(line) | {"duration_ms": 0, "message": re.sub(r"[\d.]+ ms$", "", json.loads(
            line)["message"])}) for line in written]
    else:
        written = [re.sub(r"[\d.]+ ms$", "", line) for line in written]
    assert written[:2] == written[2:]


def test_a_request_without_a_body_is_read_without_a_timer(monkeypatch):
    armed, timeout = [], asyncio.timeout
    monkeypatch.setattr(asyncio, "timeout", lambda seconds: armed.append(seconds) or timeout(seconds))
    server = MockServer(ticking=False)

    async def run() -> None:
        await _call(server, "GET", "/karmabot/api/v1/users", KARMA)
        assert armed == []
        await _call(server, "POST", "/karmabot/api/v1/pluses", KARMA | {"content-length": "2"}, b"{}")
        assert armed == [server.body_deadline]

    asyncio.run(run())


# The pipeline's shortcuts (pipeline.py) against what they stand in for: Starlette's QueryParams
# and Headers, Connexion's URI parser and its deep copy of the query defaults.

def _compiled_operations():
    server = MockServer(ticking=False)
    return [compiled for router in server.routers.values() for compiled in router.operations.values()]


@pytest.mark.parametrize("query_string", [
    b"", b"a=1", b"a=1&a=2&b=", b"k", b"x[]=1&x[]=2&x=3", b"a=%20b+c&d=%ZZ&e=%", b"\xe9=\xff&%C3%A9=%E2%82%AC",
    b"a=1;b=2", b"&&a==&=b", b"filter=kudos_received&limit=10&offset=x"])
def test_query_strings_are_read_as_starlettes_query_params_read_them(query_string):
    from starlette.datastructures import QueryParams

    from mockserver.pipeline import query_lists

    expected: dict[str, list[str]] = {}
    for key, value in QueryParams(query_string).multi_items():
        expected.setdefault(key, []).append(value)
    assert query_lists(query_string) == expected


def test_the_uri_parser_reads_each_operations_schemas_as_connexions_does():
    from connexion.uri_parsing import OpenAPIURIParser

    for compiled in _compiled_operations():
        ours = compiled.uri_parser
        theirs = OpenAPIURIParser(compiled.spec_operation.parameters, compiled.spec_operation.body_definition())
        for _ in range(2):  # built once, then remembered
            assert ours.param_schemas == theirs.param_schemas
            assert ours.form_defns == theirs.form_defns
        assert ours.resolve_query({}) == {} and ours.resolve_path({}) == {}  # what the pipeline skips


@pytest.mark.parametrize("content_type", [
    None, b"", b"application/json", b"Application/JSON; charset=utf-8", b" text/plain ;x=1",
    b"multipart/form-data; boundary=x", b"\xe9/x", b";"])
def test_the_media_type_is_read_as_from_starlettes_headers(content_type):
    sent = [(b"host", b"x")] + ([] if content_type is None else [(b"content-type", content_type)])
    for compiled in _compiled_operations():
        scope = {"headers": sent + [(b"content-type", b"application/other")]}  # the first one counts
        for _ in range(2):  # read, then remembered
            assert compiled._media_type(scope) == compiled.media_type(Headers(scope=scope))


def test_header_parameters_are_read_as_from_starlettes_headers():
    from mockserver.bodies import header

    checked = 0
    for compiled in _compiled_operations():
        for parameter in compiled.parameters:
            if parameter.where == "header":
                for name in (parameter.name, parameter.name.lower(), parameter.name.upper()):
                    scope = {"headers": [(b"host", b"x"), (name.lower().encode(), b"v\xe9")]}
                    sent = header(scope, parameter.header)
                    assert (sent and sent.decode("latin-1")) == Headers(scope=scope).get(name)
                checked += 1
    assert checked


def test_query_defaults_reach_handlers_as_connexions_deep_copies_of_them():
    checked = 0
    for compiled in _compiled_operations():
        if not compiled.query_defaults:
            continue
        media_type = compiled.consumes[0] if compiled.consumes else "application/octet-stream"
        for query in ({}, dict(compiled.query_defaults), {"page": 3, "unknown": "x"}):
            shortcut = compiled._arguments({}, dict(query), None, {}, media_type, {})
            compiled.defaults_immutable = False  # Connexion's deep copy, as the pipeline did
            try:
                assert shortcut == compiled._arguments({}, dict(query), None, {}, media_type, {})
            finally:
                compiled.defaults_immutable = True
            checked += 1
    assert checked
