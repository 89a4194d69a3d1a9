"""Karma bot's error dialect. The vendor does not document it; the spec marks it inferred:
`{"error": {"code": "...", "message": "..."}}` with the HTTP status."""

from mockserver.errors import ApiError, reworded

WORDING = {
    "not_authenticated": ("unauthorized", "Missing API key: send 'Authorization: Bearer krm_{{id}}_{{token}}'."),
    "authentication_failed": ("invalid_api_key", "Invalid API key."),
    "bad_request": ("invalid_request", None),
}


def render_error(error: ApiError, exchange=None) -> tuple[int, dict]:
    code, message = reworded(error, WORDING)
    return error.status, {"error": {"code": code, "message": message}}


def not_found(kind: str, id_: int) -> ApiError:
    return ApiError(404, f"{kind} {id_} not found.", "not_found")


def bad_request(message: str) -> ApiError:
    return ApiError(400, message, "invalid_request")
