"""`mockserver replay` with recordings other than `mockserver proxy --record` writes: each one is
named with what is wrong and the run exits 1, never a traceback or a hang; and the headers it
sends. (A recording's round trip through the proxy is in test_proxy.py.)"""

import json
import os
import socket
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
from click.testing import CliRunner

from mockserver import replay as replaying
from mockserver.cli import main
from mockserver.replay import MAX_RECORDING_BYTES
from tests.helpers import QuietHandler, serve_locally, stop_serving
from tests.hostile import DEEP, HostileUpstream

ROOT = Path(__file__).parent.parent  # the checkout the commands import
KARMABOT = "/karmabot/api/v1"
NOWHERE = "http://127.0.0.1:9" + KARMABOT  # never reached: every recording here is refused first


@pytest.fixture(scope="module")
def upstream():
    with HostileUpstream() as server:
        yield server


def replay(folder, base_url: str, *headers: str) -> subprocess.CompletedProcess:
    """The command as a user runs it; a hang fails the test (after 60 s)."""
    return subprocess.run([sys.executable, "-m", "mockserver", "replay", str(folder), "--base-url", base_url,
                           *[arg for header in headers for arg in ("--header", header)]],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


def exchange(**request) -> dict:
    return {"request": {"method": "GET", "path": "/users"} | request, "response": {"status": 200}}


def nested(depth: int) -> object:
    document: object = 0
    for _ in range(depth):
        document = [document]
    return document


def refused(result: subprocess.CompletedProcess, name: str) -> str:
    """Why replay refused the recording `name`."""
    lines = result.stdout.splitlines()
    assert f"DIFF {name}" in lines, result.stdout + result.stderr
    return lines[lines.index(f"DIFF {name}") + 1].strip()


RECORDINGS = {
    "array.json": (b"[]", "not a JSON object"),
    "string.json": (b'"exchange"', "not a JSON object"),
    "request-array.json": (json.dumps({"request": [], "response": {}}).encode(), "no request and response objects"),
    "deep.json": (b"[" * DEEP + b"]" * DEEP, "nested deeper than 66 levels"),
    "deep-body.json": (json.dumps(exchange(json=nested(70))).encode(), "nested deeper than 66 levels"),
    "not-utf8.json": (b'{"request": "\xff"}', "can't decode"),
    "method.json": (json.dumps(exchange(method="G\u00c9T")).encode(), "a method: ASCII letters"),
    "path.json": (json.dumps(exchange(path="/users\n")).encode(), "request.path must be a plain path"),
    "header-name.json": (json.dumps(exchange(headers={"X Name": "1"})).encode(), "request.headers must map"),
    "header-value.json": (json.dumps(exchange(headers={"X-Name": "\u20ac"})).encode(), "request.headers must map"),
    "surrogate.json": (b'{"request": {"method": "GET", "path": "/users", "query": [["q", "\\ud800"]]}, '
                       b'"response": {"status": 200}}', "request.query must be"),
}


def test_a_recording_of_another_shape_is_named_with_what_is_wrong(tmp_path):
    for name, (content, _) in RECORDINGS.items():
        (tmp_path / name).write_bytes(content)
    result = replay(tmp_path, NOWHERE)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    for name, (_, why) in RECORDINGS.items():
        assert refused(result, name).startswith("unreadable recording: ") and why in refused(result, name), name
    assert f"Replayed {len(RECORDINGS)} exchange(s): {len(RECORDINGS)} with a different answer." in result.stdout


def test_only_a_regular_file_is_read_and_only_so_far(tmp_path):
    """A FIFO would block the read, /dev/zero never end it: neither is read. Nor is a file past the bound."""
    os.mkfifo(tmp_path / "fifo.json")
    (tmp_path / "zero.json").symlink_to("/dev/zero")
    (tmp_path / "folder.json").mkdir()
    with open(tmp_path / "large.json", "wb") as large:
        large.truncate(MAX_RECORDING_BYTES + 1)  # sparse: no disk taken
    result = replay(tmp_path, NOWHERE)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    for name in ("fifo.json", "zero.json"):
        assert refused(result, name) == "unreadable recording: not a regular file"
    assert refused(result, "folder.json") == "unreadable recording: Is a directory"
    assert refused(result, "large.json") == "unreadable recording: over 64 MiB"


def test_headers_are_sent_as_latin_1_and_the_callers_win_whatever_the_case(upstream, tmp_path):
    """The proxy records header values as latin-1 text; replay sends those bytes again. A recorded
    `authorization` gives way to the caller's `Authorization`: one header, the caller's."""
    recording = exchange(headers={"authorization": "Bearer stale", "x-name": "caf\u00e9"})
    recording["response"]["json"] = {"target": KARMABOT + "/users"}
    (tmp_path / "00001-listUsers.json").write_text(json.dumps(recording))
    result = replay(tmp_path, upstream.url + KARMABOT, "Authorization: Bearer fresh", "X-Caller: Zo\u00eb")
    assert result.returncode == 0 and "1 exchange(s): 0 with a different answer" in result.stdout, result.stdout
    received = [(name.lower(), value) for name, value in upstream.received[-1]["headers"]]
    assert [value for name, value in received if name == "authorization"] == ["Bearer fresh"]
    assert ("x-name", "caf\u00e9") in received and ("x-caller", "Zo\u00eb") in received


def test_a_header_that_cannot_be_sent_is_a_usage_error(tmp_path):
    """Not latin-1: no HTTP header can carry it (the request would fail on encoding it)."""
    (tmp_path / "00001-listUsers.json").write_text(json.dumps(exchange()))
    result = replay(tmp_path, NOWHERE, "X-Caller: \u20ac")
    assert result.returncode == 2 and "is not 'NAME: VALUE'" in result.stderr and "Traceback" not in result.stderr


class KindsUpstream(QuietHandler):
    """Answers GET /KIND with a body of that kind: JSON, JSON-looking text (text/plain), binary, none."""

    BODIES = {"/json": ("application/json", b'{"target": "/json"}'), "/text": ("text/plain", b'{"target": "/text"}'),
              "/binary": ("application/octet-stream", b"\xff\xfe\x00"), "/none": ("application/json", b"")}

    def do_GET(self):
        content_type, body = self.BODIES[self.path.removeprefix(KARMABOT)]
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def kinds_upstream():
    server, url = serve_locally(KindsUpstream)
    yield url + KARMABOT
    stop_serving(server)


RECORDED_BODIES = {"json": {"json": {"target": "/json"}}, "text": {"text": "Not found"},
                   "binary": {"body_base64": "AAE="}, "none": {}}
KIND_NAMES = {"json": "JSON", "text": "text", "binary": "binary", "none": "none"}


def test_the_kind_of_body_is_compared(kinds_upstream, tmp_path):
    """JSON where JSON was recorded, text where text was, and so on, pass; any other kind is a
    difference, JSON sent as text/plain too (the proxy would have recorded it as text)."""
    for recorded in RECORDED_BODIES:
        for answered in RECORDED_BODIES:
            recording = exchange(path=f"/{answered}")
            recording["response"] |= RECORDED_BODIES[recorded]
            (tmp_path / f"{recorded}-as-{answered}.json").write_text(json.dumps(recording))
    result = replay(tmp_path, kinds_upstream)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    for recorded in RECORDED_BODIES:
        for answered in RECORDED_BODIES:
            name = f"{recorded}-as-{answered}.json"
            if recorded == answered:
                assert f"ok   {name}" in result.stdout.splitlines(), result.stdout
            else:
                assert refused(result, name) == f"body: recorded {KIND_NAMES[recorded]}, got {KIND_NAMES[answered]}"


def test_a_junit_report_has_a_case_per_exchange(upstream, tmp_path):
    """Passed, failed with its differences, or skipped (a path that held a secret); the root's
    totals are its suite's."""
    recordings, report = tmp_path / "recorded", tmp_path / "replay.xml"
    recordings.mkdir()
    same = exchange()
    same["response"]["json"] = {"target": KARMABOT + "/users"}
    (recordings / "1-same.json").write_text(json.dumps(same))
    differs = exchange()
    differs["response"] |= {"status": 201, "json": {"users": []}}
    (recordings / "2-differs.json").write_text(json.dumps(differs))
    (recordings / "3-secret.json").write_text(json.dumps(exchange(path="/hooks/[redacted]", secret_in_path=True)))
    result = subprocess.run([sys.executable, "-m", "mockserver", "replay", str(recordings), "--base-url",
                             upstream.url + KARMABOT, "--junit", str(report)],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 1, result.stdout + result.stderr
    root = ElementTree.parse(report).getroot()
    (suite,) = root.findall("testsuite")
    cases = {case.get("name"): case for case in suite.findall("testcase")}
    assert list(cases) == ["1-same.json", "2-differs.json", "3-secret.json"]
    assert len(cases["1-same.json"]) == 0
    failure = cases["2-differs.json"].find("failure")
    assert failure.get("message") == "status: recorded 201, got 200"
    assert failure.text.splitlines() == ["status: recorded 201, got 200", "/users: missing",
                                         "/target: not in the recording"]
    assert "secret" in cases["3-secret.json"].find("skipped").get("message")
    counts = {"tests": "3", "failures": "1", "errors": "0", "skipped": "1"}
    assert {name: root.get(name) for name in counts} == counts == {name: suite.get(name) for name in counts}


@pytest.mark.parametrize("base_url, why", [
    ("http://127.0.0.1:9" + KARMABOT, "Connection refused"),
    ("http://nowhere.invalid" + KARMABOT, "nowhere.invalid"),
    ("127.0.0.1:9" + KARMABOT, "missing an 'http://' or 'https://' protocol"),
], ids=["refused", "no such host", "no scheme"])
def test_an_unreachable_base_url_is_one_line_and_exit_2(tmp_path, base_url, why):
    for number in range(3):
        (tmp_path / f"{number}.json").write_text(json.dumps(exchange()))
    result = replay(tmp_path, base_url)
    assert result.returncode == 2 and result.stdout == "", result.stdout + result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"Error: cannot reach {base_url}: ") and why in line


@pytest.fixture
def never_connecting():
    """A loopback port that takes no connection: its listen queue is full, so a connect waits."""
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen(0)
        queued = [socket.socket() for _ in range(3)]
        for client in queued:
            client.setblocking(False)
            client.connect_ex(listening.getsockname())
        yield f"http://127.0.0.1:{listening.getsockname()[1]}"
        for client in queued:
            client.close()


def test_no_connection_in_time_is_one_line_and_exit_2(never_connecting, tmp_path, monkeypatch):
    monkeypatch.setattr(replaying, "CONNECT_SECONDS", 1)
    (tmp_path / "1.json").write_text(json.dumps(exchange()))
    result = CliRunner().invoke(main, ["replay", str(tmp_path), "--base-url", never_connecting])
    assert result.exit_code == 2, result.output
    assert result.output == f"Error: cannot reach {never_connecting}: no connection within 1 s\n"
