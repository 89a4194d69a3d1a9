"""Dailybot's error dialect: Django REST framework's `{"detail": "...", "code": "..."}`."""

from mockserver.errors import ApiError, reworded

WORDING = {
    "not_authenticated": (None, "Authentication credentials were not provided."),
    "authentication_failed": (None, "Invalid API key."),
    "bad_request": ("params_validation_error", None),
    "parse_error": ("parse_error", None),
    "not_found": (None, "Not found."),
    "method_not_allowed": (None, 'Method "{method}" not allowed.'),
    "not_acceptable": (None, "Could not satisfy the request Accept header."),
    "unsupported_media_type": (None, 'Unsupported media type "{content_type}" in request.'),
    "rate_limited": ("throttled", "Request was throttled. Expected available in {retry_after} seconds."),
}


def render_error(error: ApiError, exchange=None) -> tuple[int, dict]:
    if isinstance(error, DailybotError):  # already in Dailybot's words
        return error.status, {"detail": error.message, "code": error.code}
    # DRF names the method and the media type it refused (inferred: DRF's wording).
    sent = dict(exchange.sent_headers) if exchange is not None else {}
    code, message = reworded(error, WORDING, method=exchange.scope["method"] if exchange is not None else "",
                             content_type=sent.get(b"content-type", b"").decode("latin-1"))
    if code == "parse_error":  # DRF's ParseError wording, then what was wrong
        message = f"JSON parse error - {error.message}"
    return error.status, {"detail": message, "code": code}


class DailybotError(ApiError):
    """A documented Dailybot failure: subclasses fix status, detail and code."""

    status, detail, code = 400, "", ""

    def __init__(self, detail: str | None = None):
        super().__init__(type(self).status, detail or type(self).detail, type(self).code)


class ParamsValidationError(DailybotError):
    detail, code = "Invalid parameters.", "params_validation_error"


class EmptyReceivers(DailybotError):
    detail, code = "The receivers list should not be empty", "params_validation_error"


class SelfKudo(DailybotError):
    detail, code = "You cannot give kudos to yourself", "cant_give_kudos_to_yourself"


class NoUsersFound(DailybotError):
    status = 404
    detail = "One or more receivers were not found in Dailybot, or were duplicated in the input"
    code = "no_users_found"


class InvalidCompanyValue(DailybotError):  # inferred: the seed documents no error for this
    detail, code = "The company value was not found in this organization", "invalid_company_value"


class BoostOwn(DailybotError):
    detail, code = "You cannot boost your own kudo.", "cannot_boost_own_kudo"


class BoostChild(DailybotError):
    detail, code = "You can only boost original kudos.", "cannot_boost_child_kudo"


class AlreadyBoosted(DailybotError):
    status, detail, code = 409, "You have already boosted this kudo.", "already_boosted"


class NotFound(DailybotError):
    status, detail, code = 404, "Not found.", "not_found"


class InvalidExchangeToken(DailybotError):  # inferred: DRF's AuthenticationFailed
    status, detail, code = 403, "Invalid exchange token.", "authentication_failed"
