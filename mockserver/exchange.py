"""A vendor request as the core and its handlers see it (`Exchange`, reached through
`exchange()`), and what it reaches of the server (`Server`, `Turns`)."""

import functools
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from starlette.datastructures import URL
from starlette.types import Scope

from mockserver.state import ServerState
from mockserver.tenants import Tenant
from mockserver.turns import Turn
from mockserver.vendor import Operation, Vendor

if TYPE_CHECKING:
    from mockserver.webhooks import Reply, WebhookDispatcher

current: ContextVar["Exchange"] = ContextVar("mockserver_exchange")


class Turns(Protocol):
    """How requests take turns: `LocalTurns` in one process, `shared.SharedTurns` with workers."""

    async def begin(self, numbered: bool = False, journal: bool = False, whole: bool = False) -> Turn: ...
    async def enter(self, turn: Turn, tenant: Tenant) -> bool: ...
    async def enter_world(self, turn: Turn) -> None: ...
    async def sync(self) -> None: ...
    async def refresh(self) -> bool: ...
    async def number(self, turn: Turn) -> int: ...
    async def end(self, turn: Turn) -> bool: ...
    async def note(self, entry: dict[str, Any]) -> None: ...
    async def pause(self, turn: Turn, seconds: float) -> None: ...
    async def close(self) -> None: ...


class Server(Protocol):
    """What a request reaches of the server (app.MockServer provides it)."""

    @property
    def state(self) -> ServerState: ...
    @property
    def turns(self) -> Turns: ...
    @property
    def webhooks(self) -> "WebhookDispatcher": ...
    @property
    def max_body_bytes(self) -> int: ...


@dataclass
class Exchange:
    """One request as the core sees it; handlers reach it through `exchange()`."""

    server: Server
    scope: Scope  # the ASGI scope
    sent_headers: list[Any]  # as the client sent them (the gateway may retype the body for the pipeline)
    body: bytes
    too_large: bool
    vendor: Vendor | None
    operation: Operation | None = None
    tenant: Tenant | None = None
    principal: object = None
    credential: str | None = None
    refused_credential: str | None = None  # a credential presented and refused, for the vendor's wording
    status: int | None = None
    failed: int = 0  # the status of the failure its answer renders, if it is one
    json: object = None  # the body, parsed once, when it is JSON
    counted_on_success: list[Any] = field(default_factory=list)  # rate-limit rules a success counts against
    read_clock: bool = False  # whether anything asked for the time (the answer then depends on it)
    turn: Turn = field(default_factory=Turn)  # this request's go at the state; what it changes is noted there

    @property
    def number(self) -> int:
        """This request's sequence number on the server (0 until taken: see turns)."""
        return self.turn.number

    @property
    def routed(self) -> tuple[Vendor, Operation]:
        """The vendor and operation (known once routed: handlers and the gateway run only then)."""
        assert self.vendor is not None and self.operation is not None
        return self.vendor, self.operation

    @property
    def held(self) -> tuple[Vendor, Tenant]:
        """The vendor and tenant (known once authenticated or adopted)."""
        assert self.vendor is not None and self.tenant is not None
        return self.vendor, self.tenant

    @functools.cached_property
    def url(self) -> URL:
        """The request's absolute URL, from its Host header."""
        return URL(scope=self.scope)

    @property
    def state(self) -> Any:
        """This tenant's workspace for this vendor (the vendor's own class: its handlers call its
        methods), opened as the request was authenticated or adopted its tenant."""
        vendor, tenant = self.held
        return tenant.states[vendor.name]

    def now(self) -> float:
        self.read_clock = True
        return self.tenant.clock.now() if self.tenant else self.server.state.clock.now()

    def deliver(self, url: str, payload: dict[str, Any], record: dict[str, Any]) -> None:
        """Send a webhook in the background; `record` goes to the workspace's `deliveries` table
        with how it went (see webhooks.WebhookDispatcher.deliver)."""
        vendor, tenant = self.held
        self.server.webhooks.deliver(url, payload, record, self.state.deliveries, (tenant.id, vendor.name),
                                     self.scope.get("server"), self.url.hostname, vendor.omit_nulls)

    async def call_webhook(self, url: str, payload: dict[str, Any]) -> "Reply":
        """Send a webhook and wait for its reply (webhooks.WebhookDispatcher.call; CallFailed)."""
        return await self.server.webhooks.call(url, payload, self.scope.get("server"), self.url.hostname)

    def allowed(self, url: str) -> bool:
        """Whether a webhook may target `url` (never this server itself)."""
        return self.server.webhooks.allowed(url, self.scope.get("server"), self.url.hostname)

    def register_handles(self) -> None:
        """Index the public handles (tokens, attachment ids) the workspace has just created."""
        self.server.state.store.index(self.held[1])

    async def adopt(self, handle: str) -> bool:
        """For public operations: take the tenant and principal a state registered for `handle`
        (an incoming-webhook token, an attachment id), and hold the tenant. False when no tenant
        knows it."""
        turns, (vendor, _) = self.server.turns, self.routed
        found = self.server.state.store.lookup(vendor.name, handle)
        if found is None and await turns.refresh():  # made on another worker?
            found = self.server.state.store.lookup(vendor.name, handle)
        if found is None:
            return False
        if await turns.enter(self.turn, found[0]):  # read afresh: is the handle still there?
            found = self.server.state.store.lookup(vendor.name, handle)
            if found is None:
                return False
        found[0].open(vendor.name)
        self.tenant, self.principal = found
        return True


def exchange() -> Exchange:
    return current.get()
