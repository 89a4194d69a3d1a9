"""One error type for every client-visible failure; each vendor renders it in its own dialect."""

import re
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from connexion.exceptions import ProblemException
from starlette.exceptions import HTTPException

# On an answer whose vendor dialect hides a failure's status (Corteza: 200), the status it stands for.
ERROR_STATUS_HEADER = "X-Mockserver-Error-Status"

# Machine-readable codes for failures the core raises before a vendor handler runs.
DEFAULT_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "request_timeout",
    409: "conflict",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    429: "rate_limited",
    500: "internal_error",
}


class StateError(ValueError):
    """Saved state this server cannot load; the message says which part and why."""


class ApiError(Exception):
    """A failure the client sees: HTTP status, a code, a message and optional headers."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or DEFAULT_CODES.get(status) or HTTPStatus(status).phrase.lower().replace(" ", "_")
        self.headers = headers or {}


MAX_QUOTED = 64  # characters of a client's value an error message repeats
MAX_MESSAGE = 500  # characters of a validation message


def readable(message: str) -> str:
    """A validation message as a client should read it: Python's literals in JSON's words
    (`true`, `false`, `null`), no value repeated longer than MAX_QUOTED characters, and no
    longer than MAX_MESSAGE in all."""
    message = _PYTHON_LITERAL.sub(lambda found: _JSON_LITERALS[found.group(0)], message)
    message = _QUOTED.sub(lambda found: found.group(1) + found.group(2)[:MAX_QUOTED - 4] + "..." + found.group(1)
                          if len(found.group(2)) > MAX_QUOTED else found.group(0), message)
    return message if len(message) <= MAX_MESSAGE else message[:MAX_MESSAGE - 3] + "..."


_JSON_LITERALS = {"True": "true", "False": "false", "None": "null"}
_PYTHON_LITERAL = re.compile(r"(?<![\w'\"])(True|False|None)(?![\w'\"])")
_QUOTED = re.compile(r"""(['"])(.*?)\1(?=[\s,:.;)\]}]|$)""", re.DOTALL)


def as_api_error(exc: Exception) -> ApiError:
    """Translate Connexion's and Starlette's exceptions (and anything unexpected) into an ApiError."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, ProblemException):
        # Validation details end with a dump of the failing schema: keep the sentence, not the dump.
        message = readable(str(exc.detail or exc.title).split("\n\n")[0])
        return ApiError(exc.status, message, headers=dict(exc.headers or {}))
    if isinstance(exc, HTTPException):
        return ApiError(exc.status_code, str(exc.detail), headers=dict(exc.headers or {}))
    return ApiError(500, "Internal server error")


def reworded(error: ApiError, wording: Mapping[str, tuple[str | None, str | None]], **values: str) -> tuple[str, str]:
    """The error's (code, message) after a vendor's table {core code: (its code, its message)}.

    None keeps the core's value; the vendor's messages may use `{retry_after}` and `values`.
    """
    code, template = wording.get(error.code, (None, None))
    message = template.format(retry_after=error.headers.get("Retry-After"), **values) if template else error.message
    return code or error.code, message


MAX_JSON_DEPTH = 64  # how deep JSON from outside (request bodies, admin bodies, webhook replies) may nest


def may_nest_deeper(text: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether JSON text has brackets enough to nest more than `limit` deep: if not, what it parses
    to need not be walked (`nested_deeper`)."""
    return text.count(b"[") + text.count(b"{") > limit


def nested_deeper(value: object, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether parsed JSON nests objects and arrays more than `limit` deep (walked without recursion)."""
    stack = [(value, 1)] if isinstance(value, (dict, list)) else []
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False
