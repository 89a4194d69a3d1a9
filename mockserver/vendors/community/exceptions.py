"""Habitate's error dialect (documented): `{"id", "status", "time", "message"}`, the status as its
name (BAD_REQUEST, NOT_FOUND, ...) and the message prefixed `ERR_V1█` as in the seed's sample."""

import base64
import hashlib
from datetime import UTC, datetime
from http import HTTPStatus

from mockserver.errors import ApiError

WORDING = {
    "not_authenticated": "Missing credentials: use basic auth, username = your system, password = the API key",
    "authentication_failed": "Incorrect api key",
}


def render_error(error: ApiError, exchange=None) -> tuple[int, dict]:
    number, now = (exchange.number, exchange.now()) if exchange else (0, 0.0)
    tenant = exchange.tenant.id if exchange and exchange.tenant else ""
    digest = hashlib.sha256(f"{tenant}:{number}:{error.status}".encode()).digest()
    return error.status, {
        "id": base64.urlsafe_b64encode(digest[:15]).decode(),
        "status": HTTPStatus(error.status).name,
        "time": datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "message": "ERR_V1█" + _worded(error),
    }


VALIDATION = "Request payload validation errors"  # the seed's 400 message, what was wrong after it


def _worded(error: ApiError) -> str:
    message = WORDING.get(error.code, error.message)
    if error.code in ("bad_request", "parse_error") and not message.startswith(VALIDATION):
        return f"{VALIDATION}: {message}"
    return message


def not_found(kind: str, key) -> ApiError:
    return ApiError(404, f"{kind} {key} not found")


def conflict(message: str) -> ApiError:
    return ApiError(409, message)


def forbidden(message: str) -> ApiError:
    return ApiError(403, message)


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)
