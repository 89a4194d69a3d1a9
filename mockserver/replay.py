"""`mockserver replay`: exchanges recorded by `mockserver proxy --record` sent again, to this mock
(or any server), each answer's shape compared with the recorded one.

A recording holds no secrets (the proxy replaced them), so the caller's credentials are given
again; a request whose path held a secret (a webhook token) cannot be replayed and is skipped.
Recordings are untrusted files: each is checked to be the documented shape before use, and read
only if it is a regular file of at most MAX_RECORDING_BYTES.

A base URL nothing answers at (connection refused, no such host, no connection in time) is one
error, `Unreachable`, not a difference per exchange.
"""

import base64
import binascii
import json
import os
import re
import stat
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from mockserver.errors import MAX_JSON_DEPTH
from mockserver.proxy import HOP_BY_HOP, REDACTED, parsed_json

MAX_DIFFERENCES = 20  # per exchange
MAX_RECORDING_BYTES = 64 << 20  # a recording: two bodies of at most 16 MiB (the proxy's bound), as JSON or base64
RECORDING_DEPTH = MAX_JSON_DEPTH + 2  # a body recorded as JSON, inside the exchange and its request or response
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token
HEADER_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")  # RFC 9110 field content (obs-text: latin-1)
CONNECT_SECONDS = 10
NOT_CONNECTED = (httpx.ConnectError, httpx.ConnectTimeout, httpx.UnsupportedProtocol)  # DNS failures are ConnectError


class Unreachable(Exception):
    """Nothing answers at the base URL; the message says which and why, in one line."""


def unreachable(base_url: str, exc: Exception) -> Unreachable:
    """The error for a connection `exc` that did not happen, saying why in one line."""
    if isinstance(exc, httpx.ConnectTimeout):
        why = f"no connection within {CONNECT_SECONDS} s"
    else:
        why = " ".join(str(exc).split()) or type(exc).__name__
    return Unreachable(f"cannot reach {base_url}: {why}")


def check_reachable(base_url: str) -> None:
    """Unreachable unless something answers a HEAD of `base_url`, with any status."""
    try:
        httpx.head(base_url, timeout=httpx.Timeout(30, connect=CONNECT_SECONDS))
    except NOT_CONNECTED as exc:
        raise unreachable(base_url, exc) from None
    except httpx.HTTPError:
        pass  # it connected: what it then did is for the run to find


@dataclass
class Outcome:
    name: str
    differences: list[str] = field(default_factory=list)
    skipped: str = ""


def read_recording(path: Path) -> bytes:
    """A recording's bytes; OSError, or ValueError unless it is a regular file (a FIFO would block,
    a link to /dev/zero never end) of at most MAX_RECORDING_BYTES."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO opens at once, to be refused
    with open(descriptor, "rb") as file:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise ValueError("not a regular file")
        data = file.read(MAX_RECORDING_BYTES + 1)
    if len(data) > MAX_RECORDING_BYTES:
        raise ValueError(f"over {MAX_RECORDING_BYTES >> 20} MiB")
    return data


def load(path: Path) -> dict[str, Any]:
    """A recorded exchange; ValueError or OSError saying what is wrong with the file."""
    exchange = parsed_json(read_recording(path), RECORDING_DEPTH)
    if not isinstance(exchange, dict):
        raise ValueError("not a JSON object")
    request, response = exchange.get("request"), exchange.get("response")
    if not isinstance(request, dict) or not isinstance(response, dict):
        raise ValueError("no request and response objects")
    method, path_ = request.get("method"), request.get("path")
    if not isinstance(method, str) or not (method.isascii() and method.isalpha()) or not isinstance(path_, str):
        raise ValueError("request.method and request.path must be strings (a method: ASCII letters)")
    if path_ and (not path_.startswith("/") or ".." in path_.split("/") or "//" in path_ or "?" in path_
                  or "#" in path_ or not path_.isprintable()):
        raise ValueError("request.path must be a plain path under the base path")
    if not isinstance(request.get("headers", {}), dict) or not all(
            isinstance(key, str) and isinstance(value, str) and HEADER_NAME.fullmatch(key)
            and HEADER_VALUE.fullmatch(value) for key, value in request.get("headers", {}).items()):
        raise ValueError("request.headers must map header names to latin-1 values without control characters")
    query = request.get("query", [])
    if not isinstance(query, list) or not all(
            isinstance(pair, list) and len(pair) == 2 and all(isinstance(part, str) and _is_text(part) for part in pair)
            for pair in query):
        raise ValueError("request.query must be [name, value] pairs of strings")
    if type(response.get("status")) is not int:
        raise ValueError("response.status must be an integer")
    return exchange


def _is_text(value: str) -> bool:
    """Whether UTF-8 can carry it: a JSON string may hold a lone surrogate, which is no text."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def headers_sent(recorded: dict[str, str], given: dict[str, str]) -> list[tuple[bytes, bytes]]:
    """The recorded request's headers (less redacted and hop-by-hop ones, and those the caller gives:
    names are case-insensitive), then the caller's; latin-1, as the proxy received them."""
    given_names = {name.lower() for name in given}
    kept = [(name, value) for name, value in recorded.items()
            if value != REDACTED and name.lower() not in HOP_BY_HOP and name.lower() not in given_names]
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in kept + list(given.items())]


def body_of(message: dict[str, Any]) -> bytes:
    if "json" in message:
        return json.dumps(message["json"]).encode()
    text = message.get("text")
    if isinstance(text, str):
        return text.encode()
    if isinstance(message.get("body_base64"), str):
        try:
            return base64.b64decode(message["body_base64"], validate=True)
        except binascii.Error:
            raise ValueError("body_base64 is not base64") from None
    return b""


def recorded_kind(message: dict[str, Any]) -> str:
    """The kind of a recorded body: "JSON", "text", "binary" or "none" (see `proxy._content`)."""
    for key, kind in (("json", "JSON"), ("text", "text"), ("body_base64", "binary")):
        if key in message:
            return kind
    return "none"


def answer_body(answer: httpx.Response) -> tuple[str, Any]:
    """The kind of an answer's body as the proxy would record it, and its JSON document (or None).
    As there, JSON is JSON only under a JSON content type, and JSON nested too deep is text."""
    if not answer.content:
        return "none", None
    try:
        text = answer.content.decode("utf-8")
    except UnicodeDecodeError:
        return "binary", None
    if "json" in answer.headers.get("content-type", ""):
        try:
            return "JSON", parsed_json(text)
        except ValueError:  # NestedTooDeep too
            pass
    return "text", None


def body_differences(recorded: dict[str, Any], answer: httpx.Response) -> list[str]:
    """A body of another kind than the recorded one; for JSON, where its shape differs."""
    expected = recorded_kind(recorded)
    got, document = answer_body(answer)
    if got != expected:
        return [f"body: recorded {expected}, got {got}"]
    return shape_differences(recorded["json"], document) if got == "JSON" else []


def shape_differences(recorded: object, got: object, at: str = "") -> list[str]:
    """Where `got` does not have the recorded answer's shape: the same keys, the same kinds of
    values (null goes with anything: optional values come and go), list items alike."""
    if recorded is None or got is None:
        return []
    if isinstance(recorded, dict):
        if not isinstance(got, dict):
            return [f"{at or '/'}: recorded an object, got {_kind(got)}"]
        found = [f"{at}/{key}: missing" for key in recorded if key not in got]
        found += [f"{at}/{key}: not in the recording" for key in got if key not in recorded]
        for key in recorded:
            if key in got:
                found += shape_differences(recorded[key], got[key], f"{at}/{key}")
        return found
    if isinstance(recorded, list):
        if not isinstance(got, list):
            return [f"{at or '/'}: recorded an array, got {_kind(got)}"]
        return shape_differences(recorded[0], got[0], f"{at}/0") if recorded and got else []
    if _kind(recorded) != _kind(got):
        return [f"{at or '/'}: recorded {_kind(recorded)}, got {_kind(got)}"]
    return []


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return "string" if isinstance(value, str) else "null"


def replay(folder: str, base_url: str, headers: dict[str, str]) -> list[Outcome]:
    """Each recording in `folder` sent to `base_url`, and how its answer differs. Unreachable if
    the first request sent cannot connect (later ones that cannot are differences: it went away)."""
    outcomes = []
    answered = False
    with httpx.Client(timeout=httpx.Timeout(30, connect=CONNECT_SECONDS)) as client:
        for path in sorted(Path(folder).glob("*.json")):
            outcome = Outcome(path.name)
            outcomes.append(outcome)
            try:
                exchange = load(path)
                request, recorded = exchange["request"], exchange["response"]
                content = body_of(request)
            except OSError as exc:
                outcome.differences.append(f"unreadable recording: {exc.strerror or exc}")
                continue
            except ValueError as exc:  # UnicodeError too
                outcome.differences.append(f"unreadable recording: {exc}")
                continue
            if request.get("secret_in_path"):
                outcome.skipped = "its path held a secret (redacted in the recording)"
                continue
            query = [(name, value) for name, value in request.get("query", []) if value != REDACTED]
            try:
                answer = client.request(request["method"], base_url + request["path"], params=query,
                                        headers=headers_sent(request.get("headers", {}), headers), content=content)
            except NOT_CONNECTED as exc:
                if not answered:
                    raise unreachable(base_url, exc) from None
                outcome.differences.append(f"no answer: {type(exc).__name__}")
                continue
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                outcome.differences.append(f"no answer: {type(exc).__name__}")
                continue
            answered = True
            if answer.status_code != recorded["status"]:
                outcome.differences.append(f"status: recorded {recorded['status']}, got {answer.status_code}")
            outcome.differences += body_differences(recorded, answer)
            del outcome.differences[MAX_DIFFERENCES:]
    return outcomes


def report(outcomes: list[Outcome]) -> str:
    lines = []
    for outcome in outcomes:
        if outcome.skipped:
            lines.append(f"skip {outcome.name}: {outcome.skipped}")
        elif outcome.differences:
            lines.append(f"DIFF {outcome.name}")
            lines += [f"       {difference}" for difference in outcome.differences]
        else:
            lines.append(f"ok   {outcome.name}")
    differing = sum(bool(outcome.differences) for outcome in outcomes)
    lines.append(f"Replayed {len(outcomes)} exchange(s): {differing} with a different answer.")
    return "\n".join(lines)


def junit(outcomes: list[Outcome]) -> ElementTree.ElementTree:
    """A JUnit report: a test case per exchange (its differences as a failure, or skipped), in one
    suite whose counts are also the root's."""
    root = ElementTree.Element("testsuites")
    suite = ElementTree.SubElement(root, "testsuite", name="mockserver replay")
    for outcome in outcomes:
        case = ElementTree.SubElement(suite, "testcase", name=outcome.name, classname="replay")
        if outcome.skipped:
            ElementTree.SubElement(case, "skipped", message=outcome.skipped)
        elif outcome.differences:
            failure = ElementTree.SubElement(case, "failure", message=outcome.differences[0][:200])
            failure.text = "\n".join(outcome.differences)
    counts = {"tests": len(outcomes), "failures": sum(bool(outcome.differences) for outcome in outcomes),
              "errors": 0, "skipped": sum(bool(outcome.skipped) for outcome in outcomes)}
    for element in (root, suite):
        for name, count in counts.items():
            element.set(name, str(count))
    return ElementTree.ElementTree(root)
