"""`mockserver replay` with recordings other than `mockserver proxy --record` writes: each one is
named with what is wrong and the run exits 1, never a traceback or a hang; and the headers it
sends. (A recording's round trip through the proxy is in test_proxy.py.)"""

import json
import os
import subprocess
import sys

import pytest

from mockserver.replay import MAX_RECORDING_BYTES
from tests.hostile import DEEP, HostileUpstream

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
                          capture_output=True, text=True, timeout=60)


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
