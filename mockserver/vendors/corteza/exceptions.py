"""Corteza's error dialect (reference notes): `{"error": {"message": "..."}}`, always with HTTP 200;
`Unauthorized` without a valid token."""

from mockserver.errors import ApiError

WORDING = {"not_authenticated": "Unauthorized", "credential_expired": "jwtauth: token is expired"}


def render_error(error: ApiError, exchange=None) -> tuple[int, dict]:
    return 200, {"error": {"message": WORDING.get(error.code) or _refused_token(error, exchange) or error.message}}


def _refused_token(error: ApiError, exchange) -> str | None:
    """What the real server's JWT check (go-chi/jwtauth, dgrijalva/jwt-go) says of a token it
    cannot use: one that is not three segments, or one no tenant here signed."""
    if error.code != "authentication_failed":
        return None
    token = getattr(exchange, "refused_credential", None) or ""
    return "token contains an invalid number of segments" if token.count(".") != 2 else "signature is invalid"


def corteza_error(message: str) -> ApiError:
    """A refusal in Corteza's words (the status is only for our journal: Corteza answers 200)."""
    return ApiError(400, message, "corteza")
