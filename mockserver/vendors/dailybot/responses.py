"""Dailybot handlers (operationIds in snake_case)."""

from mockserver.gateway import exchange


def _page_url(offset: int | None, limit: int) -> str:
    """DRF LimitOffsetPagination's absolute link: this request's URL with limit/offset replaced."""
    url = exchange().url.include_query_params(limit=limit)
    return str(url.remove_query_params("offset") if offset is None else url.include_query_params(offset=offset))


async def list_kudos(filter_="kudos_received", limit=250, offset=0):
    ex = exchange()
    kudos = ex.state.listing(ex.principal, filter_)
    count = len(kudos)
    next_url = _page_url(offset + limit, limit) if offset + limit < count else None
    if offset <= 0:
        previous_url = None
    else:
        previous_url = _page_url(offset - limit if offset - limit > 0 else None, limit)
    return {"count": count, "next": next_url, "previous": previous_url, "results": kudos[offset:offset + limit]}


async def create_kudo(body):
    ex = exchange()
    return ex.state.give(ex.principal, body, ex.now())


async def boost_kudo(kudo_id):
    ex = exchange()
    return ex.state.boost(kudo_id, ex.principal, ex.now()), 201
