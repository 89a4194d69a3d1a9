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
