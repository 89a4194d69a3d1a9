"""Toybox handlers."""

from mockserver.exchange import exchange


async def list_things():
    return list(exchange().state.things.values())


async def create_thing(body):
    return exchange().state.make(body["name"]), 201
