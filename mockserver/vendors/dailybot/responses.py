"""Dailybot handlers (operationIds in snake_case)."""

from urllib.parse import parse_qs, urlencode

from starlette.datastructures import URL

from mockserver.gateway import exchange


def _page_url(url: URL, offset: int | None, limit: int) -> str:
    """DRF LimitOffsetPagination's absolute link: this request's URL with limit/offset replaced,
    its query keys sorted (DRF's replace_query_param and remove_query_param sort them)."""
    query = parse_qs(url.query, keep_blank_values=True) | {"limit": [str(limit)]}
    query.pop("offset", None)
    if offset is not None:
        query["offset"] = [str(offset)]
    return str(url).partition("?")[0] + "?" + urlencode(sorted(query.items()), doseq=True)


async def list_kudos(filter_="kudos_received", limit=250, offset=0):
    ex = exchange()
    kudos = ex.state.listing(ex.principal, filter_)
    count = len(kudos)
    next_url = _page_url(ex.url, offset + limit, limit) if offset + limit < count else None
    if offset <= 0:
        previous_url = None
    else:
        previous_url = _page_url(ex.url, offset - limit if offset - limit > 0 else None, limit)
    page = [ex.state.list_view(kudo, ex.principal) for kudo in kudos[offset:offset + limit]]
    return {"count": count, "next": next_url, "previous": previous_url, "results": page}


async def create_kudo(body):
    ex = exchange()
    return ex.state.give(ex.principal, body, ex.now())


async def boost_kudo(kudo_id):
    ex = exchange()
    return ex.state.boost(kudo_id, ex.principal, ex.now()), 201
