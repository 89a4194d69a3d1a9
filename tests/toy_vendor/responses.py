"""Toybox handlers."""

from mockserver.gateway import exchange


async def list_things():
    return list(exchange().state.things.values())


async def create_thing(body):
    return exchange().state.make(body["name"]), 201
