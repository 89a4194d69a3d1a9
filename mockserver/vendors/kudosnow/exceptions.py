"""kudosnow's error dialect. The vendor promises JSON errors without documenting their shape;
inferred: `{"error": {"status": <HTTP status>, "code": "...", "message": "..."}}`."""

from mockserver.errors import ApiError, reworded

WORDING = {
    "not_authenticated": ("unauthorized", "Missing API key: send the apikey header or query parameter."),
    "authentication_failed": ("unauthorized", "Invalid API key."),
}


def render_error(error: ApiError, exchange=None) -> tuple[int, dict]:
    code, message = reworded(error, WORDING)
    return error.status, {"error": {"status": error.status, "code": code, "message": message}}


def bad_request(message: str) -> ApiError:
    return ApiError(400, message, "bad_request")


def not_found(message: str) -> ApiError:
    return ApiError(404, message, "not_found")


def forbidden(message: str) -> ApiError:
    return ApiError(403, message, "forbidden")
