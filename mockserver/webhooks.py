"""Webhooks the vendors send: allow-listed targets only, never this server itself, each with a
total deadline and a bounded reply. Deliveries run in the background, never blocking a request;
a call (a vendor whose answer is the target's reply) is waited for within the same bounds.

Every delivery or call leaves a record (shown by the admin API as `webhook_deliveries`) in its
workspace's `deliveries` table, a row per record keyed by its number (`DELIVERY_KEY`, counted up
from the newest's), so that writing one costs the same however many were made. Bound: a workspace
keeps its last MAX_DELIVERIES (1,000) records; adding one more deletes the oldest (`add_delivery`).
"""

import asyncio
import ipaddress
import itertools
import socket
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import httpx
import orjson

from mockserver.answers import without_nulls
from mockserver.errors import MAX_JSON_DEPTH, StateError, nested_deeper
from mockserver.tables import Table

if TYPE_CHECKING:
    from mockserver.tenants import TenantStore

Sent = tuple[str, str, dict[str, Any]]  # (tenant id, vendor name, the record a delivery's outcome lands in, as added)

# Every webhook and call this server sends carries this header, and every mockserver's admin API
# refuses a request that does: a tenant's hook can never reach the admin API of this server or of
# another on the machine (another port, a `--redis-join` sibling, an xdist worker's).
WEBHOOK_HEADER = "X-Mockserver-Webhook"
MAX_REPLY_BYTES = 64 * 1024  # a longer reply is not read (the delivery still counts as delivered)
MAX_DELIVERIES = 1000  # delivery records a workspace keeps: adding one more deletes the oldest
DELIVERY_KEY = "delivery"  # a delivery record's number: its key in the table, never shown
DELIVERY: dict[str, Any] = {"type": "object", "properties": {DELIVERY_KEY: {"type": "integer", "minimum": 1}},
                            "required": [DELIVERY_KEY]}  # a delivery record, in a vendor's RECORD (the rest: as shown)


def deliveries_table(rows: object = ()) -> Table:
    """A workspace's `deliveries` from its record's list (oldest first); StateError unless their
    numbers increase in that order."""
    if not isinstance(rows, list | tuple):
        raise StateError("deliveries: a list of records")
    table = Table("deliveries", DELIVERY_KEY, rows)
    numbers = list(table)
    if any(type(number) is not int for number in numbers) or any(
            older >= newer for older, newer in itertools.pairwise(numbers)):
        raise StateError("deliveries: numbered in increasing order, oldest first")
    return table


def numbered_deliveries(records: object) -> list[dict[str, Any]]:
    """Delivery records as kept before they had rows (a list in the meta, oldest first) numbered
    1, 2, ... in their order: the last MAX_DELIVERIES of them (a vendor's migration)."""
    if not isinstance(records, list) or not all(isinstance(record, dict) for record in records):
        raise StateError("deliveries: a list of records")
    if any(DELIVERY_KEY in record for record in records):
        raise StateError(f"a delivery record of that schema has a {DELIVERY_KEY!r} field")
    start = max(len(records) - MAX_DELIVERIES, 0)
    return [{DELIVERY_KEY: number} | record for number, record in enumerate(records[start:], start + 1)]


def add_delivery(deliveries: Table, record: dict[str, Any]) -> dict[str, Any]:
    """Add a delivery record to a workspace's `deliveries`, numbered one above the newest's (1 for
    the first), and delete the oldest ones beyond MAX_DELIVERIES (through the table: the deletions
    record themselves); the record as added (with its number)."""
    newest = next(reversed(deliveries), 0)
    added = deliveries.insert({DELIVERY_KEY: newest + 1} | record)
    while len(deliveries) > MAX_DELIVERIES:
        del deliveries[next(iter(deliveries))]
    return added


def settle_delivery(deliveries: Table | None, record: dict[str, Any], outcome: dict[str, Any]) -> None:
    """Write a delivery's `outcome` into its record (as `add_delivery` gave it), found by its
    number, if it is still that record: not when it was trimmed, or the workspace reset since (its
    number may then be another's)."""
    if deliveries is None:
        return
    number = record[DELIVERY_KEY]
    if deliveries.get(number) == record:
        deliveries.change(number, **outcome)


def delivery_views(deliveries: Table) -> list[dict[str, Any]]:
    """The records as the admin API shows them (`webhook_deliveries`), oldest first, without their numbers."""
    return [{field: value for field, value in record.items() if field != DELIVERY_KEY}
            for record in deliveries.values()]


def _names_this_machine(host: str) -> bool:
    """Whether an allowed host is an address of this machine (any interface): one it can bind."""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)}
    except (OSError, UnicodeError):
        return False
    for address in addresses:
        family = socket.AF_INET6 if ":" in str(address) else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((address, 0))
                return True
            except OSError:
                continue
    return False


class Reply:
    """A target's answer to a `call`, read whole (at most MAX_REPLY_BYTES)."""

    def __init__(self, status_code: int, content: bytes, content_type: str = "") -> None:
        self.status_code, self.content, self.content_type = status_code, content, content_type
        self.text = content.decode("utf-8", "replace")

    def json(self) -> Any:
        """The reply as JSON; ValueError if it is not JSON, or nests deeper than MAX_JSON_DEPTH."""
        data = orjson.loads(self.content)
        if nested_deeper(data):
            raise ValueError(f"the reply nests deeper than {MAX_JSON_DEPTH} levels")
        return data


class ReplyTooLarge(Exception):
    pass


class CallFailed(Exception):
    """A synchronous call that got no usable answer; the message says why."""


class WebhookDispatcher:
    """Targets must be loopback (`localhost`, 127.0.0.0/8, ::1) or a host named in `allow`, and
    never this server's own listening port on a loopback or its own address (a tenant pointing a
    hook at `/__admin/reset` would wipe other teams' data).

    A delivery's outcome is written into its record when it ends, in a turn of its own (`settle`
    runs the change as a request would: see turns): `delivered` (with the target's status) or
    `failed`, with the reason in `error`. By then the workspace may have been reloaded (another
    worker changed it) or reset, so the record is found again by its number in the workspace's
    `deliveries` table (see `settle_delivery`), where `deliver` adds every record handed to it.
    """

    def __init__(self, store: "TenantStore", settle: Callable[[str, Callable[[], None]], Awaitable[None]],
                 allow: list[str] | tuple[str, ...] = (), timeout: float = 5.0) -> None:
        self.store = store
        self.settle = settle  # runs a change to a tenant's state in a turn of its own
        self.allow = {host.lower() for host in allow}
        self.this_machine = {host for host in self.allow if _names_this_machine(host)}  # allowed, but us
        self.timeout = timeout  # for a whole delivery: connecting, sending, reading the reply
        self._tasks: set[asyncio.Task[None]] = set()  # strong references until each delivery ends
        self._client: tuple[asyncio.AbstractEventLoop, httpx.AsyncClient] | None = None  # shared, per event loop

    def allowed(self, url: str, own: tuple[Any, ...] | None = None, own_host: str | None = None) -> bool:
        """Whether `url` is a target deliveries may go to. `own` is this server's (address,
        port) as the request saw it, `own_host` the host name the client used for it."""
        try:
            parsed = httpx.URL(url)
            host, port = parsed.host.lower(), parsed.port or {"http": 80, "https": 443}.get(parsed.scheme)
        except (httpx.InvalidURL, TypeError, ValueError):  # e.g. a tab or a space in the host
            return False
        if parsed.scheme not in ("http", "https") or not host or port is None or not 0 < port < 65536:
            return False
        if "/__admin" in unquote(parsed.path):  # any mockserver's admin API, however spelt (and the marker)
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        local = host == "localhost" or (address is not None and (address.is_loopback or address.is_unspecified))
        if own is not None and port == own[1] and (
                local or host in self.this_machine or host in {str(own[0]).lower(), (own_host or "").lower()}):
            return False  # this server itself, on any of its interfaces
        return local or host in self.allow

    def deliver(self, url: str, payload: dict[str, Any], record: dict[str, Any], deliveries: Table,
                owner: tuple[str, str], own: tuple[Any, ...] | None, own_host: str | None,
                omit_nulls: bool = False) -> None:
        """POST `payload` to `url` in the background, for `owner` (tenant id, vendor); `record`
        (shown by the admin API), with the target and how it went, is added to the workspace's
        `deliveries` (`add_delivery`). `own` and `own_host` as for `allowed`; `omit_nulls`, the
        vendor's null rule (it holds for what it sends, too)."""
        record = record | {"target_url": url, "status": "pending"}
        if not self.allowed(url, own, own_host):
            add_delivery(deliveries, record | {"status": "refused",
                                               "error": "target not on the allow-list, or this server itself"})
            return
        sent = (*owner, add_delivery(deliveries, record))
        if omit_nulls:
            payload = without_nulls(payload)
        task = asyncio.get_running_loop().create_task(self._post(url, payload, sent))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def call(self, url: str, payload: dict[str, Any], own: tuple[Any, ...] | None, own_host: str | None) -> Reply:
        """POST `payload` to `url` and wait for the answer, within the same bounds as a delivery
        (allow-list, deadline, reply size): for a vendor whose webhook's reply is its answer
        (Corteza's outgoing webhooks). CallFailed says why there is none."""
        if not self.allowed(url, own, own_host):
            raise CallFailed("target not on the allow-list, or this server itself")
        try:
            async with asyncio.timeout(self.timeout):
                return await self._exchange(url, payload)
        except TimeoutError:
            raise CallFailed(f"Timeout: no whole answer within {self.timeout:g} s") from None
        except ReplyTooLarge:
            raise CallFailed(f"reply over {MAX_REPLY_BYTES} bytes") from None
        except Exception as exc:  # any failure is the call's outcome, never a crash
            raise CallFailed(f"{type(exc).__name__}: {exc}"[:500]) from None

    async def _post(self, url: str, payload: dict[str, Any], sent: Sent) -> None:
        outcome: dict[str, object]
        try:
            async with asyncio.timeout(self.timeout):
                reply = await self._exchange(url, payload)
        except TimeoutError:
            outcome = {"status": "failed", "error": f"Timeout: no whole answer within {self.timeout:g} s"}
        except ReplyTooLarge as exc:
            outcome = {"status": "delivered", "response_status": exc.args[0],
                       "error": f"reply over {MAX_REPLY_BYTES} bytes, not read"}
        except Exception as exc:  # any failure is the delivery's outcome, never a task's crash
            outcome = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"[:500]}
        else:
            outcome = {"status": "delivered", "response_status": reply.status_code}
        await self.settle(sent[0], lambda: self._record(sent, outcome))

    def client(self) -> httpx.AsyncClient:
        """One client for every delivery (its connections pooled), made in the running event loop."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._client[0] is not loop:
            self._client = loop, httpx.AsyncClient(headers={WEBHOOK_HEADER: "1"})
        return self._client[1]

    async def close(self) -> None:
        if self._client is not None and not self._client[0].is_closed():
            await self._client[1].aclose()
        self._client = None

    async def _exchange(self, url: str, payload: dict[str, Any]) -> Reply:
        async with self.client().stream("POST", url, json=payload) as response:
            content = bytearray()
            async for chunk in response.aiter_bytes():
                content += chunk
                if len(content) > MAX_REPLY_BYTES:
                    raise ReplyTooLarge(response.status_code)
            return Reply(response.status_code, bytes(content), response.headers.get("content-type", ""))

    def _record(self, sent: Sent, outcome: dict[str, object]) -> None:
        """Write the outcome into the record, if it is still there (not when the tenant was reset
        or deleted meanwhile, or the record trimmed): one record of the workspace's `deliveries`
        replaced through the table (so the change records itself)."""
        tenant_id, vendor, record = sent
        tenant = self.store.tenants.get(tenant_id)
        state: Any = tenant.opened().get(vendor) if tenant else None
        deliveries = getattr(state, "deliveries", None)
        settle_delivery(deliveries if isinstance(deliveries, Table) else None, record, outcome)
