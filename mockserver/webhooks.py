"""Outgoing webhook deliveries: allow-listed targets only, with a timeout, never blocking a request."""

import asyncio
import ipaddress
from typing import Callable
from urllib.parse import urlsplit

import httpx


class WebhookDispatcher:
    """Targets must be loopback (`localhost`, 127.0.0.0/8, ::1) or a host named in `allow`."""

    def __init__(self, allow: list[str] | tuple[str, ...] = (), timeout: float = 5.0,
                 on_change: Callable[[], None] = lambda: None):
        self.allow = {host.lower() for host in allow}
        self.timeout = timeout
        self.on_change = on_change  # called when a delivery has changed state (its record, a reply)
        self._tasks: set[asyncio.Task] = set()  # strong references until each delivery ends

    def allowed(self, url: str) -> bool:
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").lower()
        except ValueError:
            return False
        if parts.scheme not in ("http", "https") or not host:
            return False
        if host == "localhost" or host in self.allow:
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    def deliver(self, url: str, payload: dict, record: dict,
                on_reply: Callable[[httpx.Response], None] | None = None) -> None:
        """POST `payload` to `url` in the background; `record` (shown by the admin API) says how it went."""
        record.update(target_url=url, status="pending")
        if not self.allowed(url):
            record.update(status="refused", error="target not on the allow-list")
            return
        task = asyncio.get_running_loop().create_task(self._post(url, payload, record, on_reply))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post(self, url, payload, record, on_reply) -> None:
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.post(url, json=payload)
        except httpx.HTTPError as exc:
            record.update(status="failed", error=f"{type(exc).__name__}: {exc}")
            self.on_change()
            return
        record.update(status="delivered", response_status=response.status_code)
        if on_reply is not None:
            on_reply(response)
        self.on_change()
