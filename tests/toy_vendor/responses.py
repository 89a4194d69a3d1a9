"""Toybox handlers."""

from mockserver.gateway import exchange


async def list_things():
    return exchange().state.things


async def create_thing(body):
    return exchange().state.make(body["name"]), 201
