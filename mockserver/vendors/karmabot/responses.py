"""Karma bot handlers: HTTP in, model calls, JSON out (operationIds in snake_case)."""

from mockserver.exchange import exchange


def _page(name: str, cursor: int | None) -> dict:
    ex = exchange()
    return {name: ex.state.page(name, cursor, ex.routed[1].extensions["x-page-size"])}


async def list_channels(cursor=None):
    return _page("channels", cursor)


async def list_users(cursor=None):
    return _page("users", cursor)


async def list_values(cursor=None):
    return _page("values", cursor)


async def list_achievements(cursor=None):
    return _page("achievements", cursor)


async def create_plus(body):
    ex = exchange()
    return ex.state.add_plus(body, ex.now()), 201
