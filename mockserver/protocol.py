"""uvicorn's HTTP protocol with a deadline on request heads: a client that starts a request must
send its whole head (request line and headers) within HEAD_SECONDS, or it gets a 408 and the
connection is closed. uvicorn bounds idle connections (keep-alive) and head sizes, not the time a
head may take, so a client trickling header bytes could hold a connection open for ever."""

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEAD_SECONDS = 10.0


class HeadDeadlineProtocol(HttpToolsProtocol):
    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.head_deadline: asyncio.TimerHandle | None = None
        self.head_started: float | None = None  # when the head under way began (None: none is)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.head_started = self.loop.time()

    def on_headers_complete(self) -> None:
        self.head_started = None
        self._disarm()
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # Armed only for a head still coming when the bytes that arrived are parsed: most heads
        # arrive whole, and need no timer.
        if self.head_started is not None and self.head_deadline is None:
            self.head_deadline = self.loop.call_at(self.head_started + HEAD_SECONDS, self._head_too_slow)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _disarm(self) -> None:
        if self.head_deadline is not None:
            self.head_deadline.cancel()
            self.head_deadline = None

    def _head_too_slow(self) -> None:
        self.head_deadline = None
        if not self.transport.is_closing():
            message = f"Request head not received within {HEAD_SECONDS:g} seconds."
            self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
                                 b"content-length: %d\r\nconnection: close\r\n\r\n%s"
                                 % (len(message), message.encode()))
            self.transport.close()
