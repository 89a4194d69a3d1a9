"""Outgoing webhook deliveries: allow-listed targets only, with a timeout, never blocking a request."""

import asyncio
import ipaddress
from typing import Awaitable, Callable
from urllib.parse import urlsplit

import httpx

from mockserver import gateway


class WebhookDispatcher:
    """Targets must be loopback (`localhost`, 127.0.0.0/8, ::1) or a host named in `allow`.

    A delivery's outcome is written into its record when it ends, in a turn of its own (`settle`
    runs the change as a request would: see turns). By then the workspace may have been reloaded
    (another worker changed it) or reset, so the record is found again in the workspace's
    `deliveries` list, where vendors keep every record they hand to `deliver`.
    """

    def __init__(self, store, settle: Callable[[Callable[[], tuple | None]], Awaitable[None]],
                 allow: list[str] | tuple[str, ...] = (), timeout: float = 5.0):
        self.store = store
        self.settle = settle  # runs a change to state in a turn; the change returns what it changed
        self.allow = {host.lower() for host in allow}
        self.timeout = timeout
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

    def deliver(self, url: str, payload: dict, record: dict, on_reply: Callable | None = None) -> None:
        """POST `payload` to `url` in the background; `record` (shown by the admin API) says how it
        went. `on_reply(state, now, response)` may change the workspace after a delivery."""
        record.update(target_url=url, status="pending")
        if not self.allowed(url):
            record.update(status="refused", error="target not on the allow-list")
            return
        ex = gateway.exchange()
        sent = (ex.tenant.id, ex.vendor.name, dict(record))
        task = asyncio.get_running_loop().create_task(self._post(url, payload, sent, on_reply))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post(self, url, payload, sent, on_reply) -> None:
        response = None
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.post(url, json=payload)
        except httpx.HTTPError as exc:
            outcome = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
        else:
            outcome = {"status": "delivered", "response_status": response.status_code}
        await self.settle(lambda: self._record(sent, outcome, response, on_reply))

    def _record(self, sent, outcome, response, on_reply) -> tuple | None:
        """Write the outcome into the record; (tenant id, vendor) if it is still there."""
        tenant_id, vendor, record = sent
        tenant = self.store.tenants.get(tenant_id)
        state = tenant.states.get(vendor) if tenant else None
        found = next((kept for kept in getattr(state, "deliveries", ()) if kept == record), None)
        if found is None:  # the tenant was reset or deleted meanwhile
            return None
        found.update(outcome)
        if response is not None and on_reply is not None:
            on_reply(state, tenant.clock.now(), response)
        return tenant_id, vendor
