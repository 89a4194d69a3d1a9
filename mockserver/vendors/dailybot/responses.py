"""Dailybot handlers (operationIds in snake_case)."""

import hashlib
import uuid
from datetime import UTC, date, datetime
from urllib.parse import parse_qs, urlencode

from starlette.datastructures import URL

from mockserver.bodies import header
from mockserver.exchange import exchange
from mockserver.vendors.dailybot.exceptions import InvalidExchangeToken, NotFound, ParamsValidationError

PAGE_SIZE, MAX_PAGE_SIZE = 25, 100  # DRF page-number pagination as the official CLI expects it


def _numbered_page(url: URL, items: list, page: int | None, page_size: int | None, view) -> dict:
    """DRF PageNumberPagination: `page` from 1, `page_size` (default 25, at most 100); a page past
    the end is DRF's 404 "Invalid page."; `next`/`previous` are absolute links (page 1 has none)."""
    size = min(page_size or PAGE_SIZE, MAX_PAGE_SIZE)
    page = page or 1
    if page > 1 and (page - 1) * size >= len(items):
        raise NotFound("Invalid page.")

    def link(number: int | None) -> str:
        query = parse_qs(url.query, keep_blank_values=True)
        query.pop("page", None)
        if number is not None:
            query["page"] = [str(number)]
        return str(url).partition("?")[0] + ("?" + urlencode(sorted(query.items()), doseq=True) if query else "")

    return {"count": len(items),
            "next": link(page + 1) if page * size < len(items) else None,
            "previous": (link(page - 1 if page > 2 else None)) if page > 1 else None,
            "results": [view(item) for item in items[(page - 1) * size:page * size]]}


def _day(value: str | None, name: str) -> float | None:
    if value is None:
        return None
    try:
        return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC).timestamp()
    except ValueError:
        raise ParamsValidationError(f"{name} must be a date (YYYY-MM-DD).") from None


def _page_url(url: URL, offset: int | None, limit: int) -> str:
    """DRF LimitOffsetPagination's absolute link: this request's URL with limit/offset replaced,
    its query keys sorted (DRF's replace_query_param and remove_query_param sort them)."""
    query = parse_qs(url.query, keep_blank_values=True) | {"limit": [str(limit)]}
    query.pop("offset", None)
    if offset is not None:
        query["offset"] = [str(offset)]
    return str(url).partition("?")[0] + "?" + urlencode(sorted(query.items()), doseq=True)


def _whole(value: str | None, default: int, strict: bool, cutoff: int | None = None) -> int:
    """DRF's `_positive_int`, as LimitOffsetPagination reads `limit` (strict: 0 is no good) and
    `offset`: anything else gives the default; `cutoff` caps it."""
    try:
        number = int(value) if value is not None else default
    except ValueError:
        return default
    if number < 0 or (strict and number == 0):
        return default
    return min(number, cutoff) if cutoff else number


async def list_kudos(filter_="kudos_received", limit=None, offset=None, page=None, page_size=None, search=None,
                     start_date=None, end_date=None):
    ex = exchange()
    limit, offset = _whole(limit, 250, strict=True, cutoff=250), _whole(offset, 0, strict=False)
    until = _day(end_date, "end_date")
    kudos = ex.state.listing(ex.principal, filter_, search, _day(start_date, "start_date"),
                             None if until is None else until + 86400)  # end_date is inclusive
    if page is not None or page_size is not None:  # page-number paging, as the official CLI asks
        return _numbered_page(ex.url, kudos, page, page_size, lambda kudo: ex.state.list_view(kudo, ex.principal))
    count = len(kudos)
    next_url = _page_url(ex.url, offset + limit, limit) if offset + limit < count else None
    if offset <= 0:
        previous_url = None
    else:
        previous_url = _page_url(ex.url, offset - limit if offset - limit > 0 else None, limit)
    page = [ex.state.list_view(kudo, ex.principal) for kudo in kudos[offset:offset + limit]]
    return {"count": count, "next": next_url, "previous": previous_url, "results": page}


async def create_kudo(body):
    """With an exchange token, the kudo is sent by the token's user instead of the key's owner."""
    ex = exchange()
    sender, token = ex.principal, header(ex.scope, b"x-exchange-token")
    if token is not None:
        sender = ex.state.exchange_user(token.decode("latin-1"))
        if sender is None:
            raise InvalidExchangeToken()
    return ex.state.give(sender, body, ex.now())


async def boost_kudo(kudo_id):
    ex = exchange()
    return ex.state.boost(kudo_id, ex.principal, ex.now()), 201


def _asked(flag: str | None) -> bool:
    """A DRF boolean query flag, as the CLI sends it (`include_email=true`)."""
    return (flag or "").lower() == "true"


async def list_users(page=None, page_size=None, include_email=None):
    ex = exchange()
    return _numbered_page(ex.url, list(ex.state.users), page, page_size,
                          lambda user: ex.state.user_view(user, ex.principal, _asked(include_email)))


async def get_user(user_uuid, include_email=None):
    ex = exchange()
    return ex.state.user_view(user_uuid, ex.principal, _asked(include_email))


async def list_teams(page=None, page_size=None):
    ex = exchange()
    return _numbered_page(ex.url, ex.state.visible_teams(ex.principal), page, page_size, ex.state.team_view)


async def get_team(team_uuid):
    ex = exchange()
    return ex.state.team(team_uuid, ex.principal)


def _organization() -> dict:
    """The organisation the key belongs to: a name from the fixtures, a UUID from the tenant."""
    ex = exchange()
    digest = hashlib.sha256(f"dailybot-organization:{ex.tenant.id if ex.tenant else ''}".encode()).digest()
    return {"uuid": str(uuid.UUID(bytes=digest[:16], version=4)), "name": ex.routed[0].fixtures["organization"],
            "platform": "slack", "timezone": "UTC"}


async def get_organization():
    return _organization()


async def get_me(include_email=None):
    ex = exchange()
    organization = _organization()
    return ex.state.user_view(ex.principal, ex.principal, _asked(include_email)) | {
        "organization_uuid": organization["uuid"], "organization_name": organization["name"], "timezone": "UTC"}
