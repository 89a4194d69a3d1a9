"""`mockserver replay`: exchanges recorded by `mockserver proxy --record` sent again, to this mock
(or any server), each answer's shape compared with the recorded one.

A recording holds no secrets (the proxy replaced them), so the caller's credentials are given
again; a request whose path held a secret (a webhook token) cannot be replayed and is skipped.
Recordings are untrusted files: each is checked to be the documented shape before use.
"""

import base64
import binascii
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from mockserver.proxy import HOP_BY_HOP, REDACTED

MAX_DIFFERENCES = 20  # per exchange


@dataclass
class Outcome:
    name: str
    differences: list[str] = field(default_factory=list)
    skipped: str = ""


def load(path: Path) -> dict[str, Any]:
    """A recorded exchange, or ValueError saying what is wrong with the file."""
    exchange: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    request, response = exchange.get("request"), exchange.get("response")
    if not isinstance(request, dict) or not isinstance(response, dict):
        raise ValueError("no request and response objects")
    method, path_ = request.get("method"), request.get("path")
    if not isinstance(method, str) or not method.isalpha() or not isinstance(path_, str):
        raise ValueError("request.method and request.path must be strings")
    if path_ and (not path_.startswith("/") or ".." in path_.split("/") or "//" in path_ or "?" in path_):
        raise ValueError("request.path must be a plain path under the base path")
    if not isinstance(request.get("headers", {}), dict) or not all(
            isinstance(key, str) and isinstance(value, str) for key, value in request.get("headers", {}).items()):
        raise ValueError("request.headers must map names to strings")
    query = request.get("query", [])
    if not isinstance(query, list) or not all(
            isinstance(pair, list) and len(pair) == 2 and all(isinstance(part, str) for part in pair) for pair in query):
        raise ValueError("request.query must be [name, value] pairs of strings")
    if type(response.get("status")) is not int:
        raise ValueError("response.status must be an integer")
    return exchange


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
    outcomes = []
    with httpx.Client(timeout=30) as client:
        for path in sorted(Path(folder).glob("*.json")):
            outcome = Outcome(path.name)
            outcomes.append(outcome)
            try:
                exchange = load(path)
                request, recorded = exchange["request"], exchange["response"]
                content = body_of(request)
            except (ValueError, UnicodeDecodeError) as exc:
                outcome.differences.append(f"unreadable recording: {exc}")
                continue
            if request.get("secret_in_path"):
                outcome.skipped = "its path held a secret (redacted in the recording)"
                continue
            sent = {name: value for name, value in request.get("headers", {}).items()
                    if value != REDACTED and name.lower() not in HOP_BY_HOP} | headers
            query = [(name, value) for name, value in request.get("query", []) if value != REDACTED]
            try:
                answer = client.request(request["method"], base_url + request["path"], params=query, headers=sent,
                                        content=content)
            except httpx.HTTPError as exc:
                outcome.differences.append(f"no answer: {type(exc).__name__}")
                continue
            if answer.status_code != recorded["status"]:
                outcome.differences.append(f"status: recorded {recorded['status']}, got {answer.status_code}")
            if "json" in recorded:
                try:
                    got = answer.json()
                except ValueError:
                    outcome.differences.append("body: recorded JSON, got none")
                else:
                    outcome.differences += shape_differences(recorded["json"], got)
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
