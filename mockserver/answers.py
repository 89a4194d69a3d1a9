"""Answers: a handler's result as ready ASGI messages, JSON encoding, and the cache of answers of
operations that change nothing."""

import json
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send


class Answer:
    """A handler's result as ASGI messages: status, header list and body bytes."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: list[Any], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})


def answer(status: int, body: bytes, headers: dict[str, Any] | None = None,
           media_type: str | None = "application/json") -> Answer:
    raw = [(b"content-length", str(len(body)).encode())]
    if media_type and body:
        raw.append((b"content-type", media_type.encode()))
    raw += [(key.lower().encode("latin-1"), str(value).encode("latin-1")) for key, value in (headers or {}).items()]
    return Answer(status, raw, body)


class AnswerCache:
    """Successful answers of operations that change nothing (GET), kept until anything may have
    changed: any state-changing request, an admin change, a background delivery. The key holds
    everything else an answer may depend on: tenant, credential, operation, path, query, Host.
    An answer whose handler read the clock is not kept, since a ticking clock moves on its own."""

    MAX_BYTES = 16 * 1024 * 1024

    def __init__(self) -> None:
        self.answers: dict[tuple[Any, ...], Answer] = {}
        self.size = 0
        self.generation = 0  # moves with every invalidation

    def invalidate(self) -> None:
        self.generation += 1
        self.answers.clear()
        self.size = 0

    def get(self, key: tuple[Any, ...]) -> Answer | None:
        return self.answers.get(key)

    def put(self, key: tuple[Any, ...], answer: Answer, generation: int) -> None:
        """Keep `answer`, computed while `generation` was current, if nothing changed since."""
        if generation != self.generation or not 200 <= answer.status < 300:
            return
        if self.size + len(answer.body) > self.MAX_BYTES:
            self.answers.clear()
            self.size = 0
        self.answers[key] = answer
        self.size += len(answer.body)


def dumps(data: object, omit_nulls: bool = False) -> bytes:
    """JSON through orjson; with `omit_nulls` (spec root `x-omit-nulls`), null fields are left
    out at every depth."""
    data = without_nulls(data) if omit_nulls else data
    try:
        return orjson.dumps(data)
    except orjson.JSONEncodeError:  # e.g. integers beyond 64 bits, which json handles
        return json.dumps(data).encode()


def without_nulls(data: Any) -> Any:
    """`data` with null fields left out at every depth (spec root `x-omit-nulls`)."""
    if isinstance(data, dict):
        return {key: without_nulls(value) for key, value in data.items() if value is not None}
    if isinstance(data, list):
        return [without_nulls(item) for item in data]
    return data
