"""A request's headers and body as the core reads them: a header's value, a body retyped for
the pipeline, JSON read strictly."""

import json
import math
import re
from typing import Any, NoReturn

import orjson
from starlette.types import Scope

from mockserver.errors import MAX_JSON_DEPTH, ApiError, may_nest_deeper, nested_deeper

FORM = b"application/x-www-form-urlencoded"


def parse_as_form_unless_json(scope: Scope) -> None:
    """Spec root `x-form-fallback`: like the real server, read any body that is not JSON or
    multipart as a form; JSON is a Content-Type of exactly `application/json` (Corteza compares
    the whole header, so `application/json; charset=utf-8` is a form there)."""
    content_type = (header(scope, b"content-type") or b"").strip().lower()
    kind = content_type.split(b";")[0].strip()
    if content_type != b"application/json" and kind not in (b"multipart/form-data", FORM):
        set_content_type(scope, FORM)


def header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of a header (its name in lower case), as sent."""
    for key, value in scope["headers"]:
        if key == name:
            return value  # type: ignore[no-any-return]
    return None


def set_content_type(scope: Scope, value: bytes) -> None:
    """Retype the body for the pipeline; a new header list, so the journal keeps what was sent."""
    scope["headers"] = [(k, v) for k, v in scope["headers"] if k != b"content-type"] + [(b"content-type", value)]


def parse_json(body: bytes) -> Any:
    """The body's JSON, or a 400 that says why not.

    orjson reads integers beyond 64 bits as floats, so a body with a run of 19 digits goes through
    the json module, which keeps them exact (as it reads the lone surrogates orjson refuses, to say
    what is wrong with them). NaN, Infinity and numbers beyond a double's range are not JSON
    (RFC 8259); the vendors' parsers refuse them, and so do we."""
    try:
        value = _exact_json(body) if _LONG_DIGITS.search(body) else orjson.loads(body)
    except orjson.JSONDecodeError:
        value = _exact_json(body)
    if may_nest_deeper(body) and nested_deeper(value):
        raise ApiError(400, f"Request body nests deeper than {MAX_JSON_DEPTH} levels.", "parse_error")
    return value


_LONG_DIGITS = re.compile(rb"\d{19}")


def _exact_json(body: bytes) -> Any:
    try:
        value = json.loads(body.decode("utf-8"), parse_constant=_not_json, parse_float=_finite)
        json.dumps(value, ensure_ascii=False).encode("utf-8")  # a lone surrogate ("\ud800") is no text
    except UnicodeError:
        raise ApiError(400, "Request body is not valid UTF-8 (or holds a lone surrogate).", "parse_error") from None
    except (ValueError, RecursionError):
        raise ApiError(400, "Request body is not valid JSON.", "parse_error") from None
    return value


def _not_json(constant: str) -> NoReturn:
    raise ValueError(f"{constant} is not JSON")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is beyond a double's range")
    return number
