"""Corteza's error dialect (reference notes): `{"error": {"message": "..."}}`, always with HTTP 200;
`Unauthorized` without a valid token."""

from mockserver.errors import ApiError

WORDING = {"not_authenticated": "Unauthorized", "authentication_failed": "Unauthorized"}


def render_error(error: ApiError, exchange=None) -> tuple[int, dict]:
    return 200, {"error": {"message": WORDING.get(error.code, error.message)}}


def corteza_error(message: str) -> ApiError:
    """A refusal in Corteza's words (the status is only for our journal: Corteza answers 200)."""
    return ApiError(400, message, "corteza")
