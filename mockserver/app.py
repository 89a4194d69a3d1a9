"""The ASGI application: every vendor's spec-driven API under its base path, plus the admin API."""

import asyncio
import functools
import hmac
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import orjson
from connexion.middleware.swagger_ui import SwaggerUIMiddleware
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mockserver import admin, answercheck, dashboard, exchange, gateway, persistence
from mockserver.answers import Answer, AnswerCache, answer, dumps
from mockserver.bodies import header
from mockserver.clock import DEFAULT_START, ServerClock, isoformat
from mockserver.errors import ERROR_STATUS_HEADER, ApiError, as_api_error, may_nest_deeper, nested_deeper
from mockserver.exchange import Exchange
from mockserver.faults import FaultBook
from mockserver.journal import MAX_BODY_BYTES, Journal
from mockserver.logs import log_access
from mockserver.routing import Match, Router
from mockserver.shared import SharedTurns
from mockserver.state import ServerState
from mockserver.tenants import TenantStore
from mockserver.turns import LocalTurns, Turn, current, unsaved
from mockserver.vendor import Vendor, discover
from mockserver.webhooks import WEBHOOK_HEADER, WebhookDispatcher

logger = logging.getLogger("mockserver")

OPEN_ADMIN_PATHS = ("/__admin/health",)  # for health checks: no token needed
JOURNAL_PATHS = ("/__admin/requests", "/__admin/coverage")  # admin calls that read the journal


class MockServer:
    """The ASGI application: admin API at /__admin, vendors at their spec's server path."""

    def __init__(self, seed: int = 0, vendors: list[str] | None = None, ticking: bool = True,
                 start: datetime = DEFAULT_START, journal_limit: int = 1000,
                 max_body_bytes: int = 1_048_576, webhook_allow: tuple[str, ...] = (),
                 webhook_timeout: float = 5.0, state_file: str | None = None, redis_url: str | None = None,
                 redis_prefix: str = "mockserver", body_deadline: float = 30.0, admin_token: str | None = None,
                 cors: bool = True, clock: str | None = None, check_answers: bool | None = None) -> None:
        if clock is not None:  # as `serve --clock` takes it; `ticking` is the same as a switch
            if clock not in ("ticking", "frozen"):
                raise ValueError(f"clock is 'ticking' or 'frozen', not {clock!r}")
            ticking = clock == "ticking"
        self.vendors = discover(vendors)
        self.state = ServerState(self.vendors, seed, ServerClock(start, ticking), journal_limit)
        self.max_body_bytes = max_body_bytes
        self.body_deadline = body_deadline
        # CORS for the vendors' APIs (browser clients), never for the admin API: a page the
        # developer happens to open must not read every tenant's credentials from localhost. A
        # vendor whose real server always answers CORS (spec root `x-cors`) does so here too,
        # with its own rules, whatever `cors` says.
        exposed = _exposed_headers(self.vendors)
        self._cors = CORSMiddleware(self._vendor, allow_origin_regex=".*", allow_credentials=True,
                                    allow_methods=["*"], allow_headers=["*"], max_age=600,
                                    expose_headers=exposed) if cors else None
        self._own_cors = {vendor.base_path: CORSMiddleware(
            self._vendor, allow_origin_regex=".*", allow_credentials=True, allow_methods=vendor.spec["x-cors"]["methods"],
            allow_headers=vendor.spec["x-cors"]["headers"], max_age=vendor.spec["x-cors"]["max-age"],
            expose_headers=exposed) for vendor in self.vendors if "x-cors" in vendor.spec}
        self.admin_token = admin_token or None  # required on /__admin/* (but health) when set
        # Bodies are read before routing; operations may allow more (`x-max-body-bytes`).
        self.read_limit = max([max_body_bytes] + [vendor.max_body_bytes for vendor in self.vendors])
        self.webhooks = WebhookDispatcher(self.store, self._settle, webhook_allow, webhook_timeout)
        if state_file and redis_url:
            raise ValueError("a state file keeps one process's state; workers keep theirs in Redis (use one or the other)")
        # Several worker processes share one state through Redis; one process needs nothing.
        self.turns = SharedTurns(self.state, redis_url, redis_prefix) if redis_url else LocalTurns()
        self.saved: persistence.StateFile | None = None
        self.notes: list[str] = []  # what loading the state file skipped, for the start-up banner
        if state_file:
            self.saved = self.store.saved = persistence.StateFile(state_file)
            self.notes = self.saved.load(self.state)
        self._build_docs()
        self.admin = admin.build(self.state)
        # `serve --check-answers` (unset: MOCKSERVER_CHECK_ANSWERS): every answer checked against the spec.
        self.answer_check = (answercheck.AnswerCheck(self.vendors, self.routers, self.faults)
                             if answercheck.wanted(check_answers) else None)

    # What the server holds, in `state` (a ServerState): these name its parts for the request path.
    @property
    def store(self) -> TenantStore:
        return self.state.store

    @property
    def clock(self) -> ServerClock:
        return self.state.clock

    @property
    def journal(self) -> Journal:
        return self.state.journal

    @property
    def faults(self) -> FaultBook:
        return self.state.faults

    @property
    def answers(self) -> AnswerCache:
        return self.state.answers

    @property
    def routers(self) -> dict[str, Router]:
        return self.state.routers

    def commit(self, turn: Turn) -> bool:
        """What the turn changed is final: cached answers go, and the state file (if any) gets the
        rows it changed. False when they could not be written: the change is then undone in
        memory too (read back from the file), and the request must be refused."""
        if turn.changed:
            self.answers.invalidate()
        if self.saved is None:
            return True
        try:
            self.saved.commit(self.state, turn)
        except persistence.StateFileError as exc:
            logger.error("%s; the change is undone", exc)
            self.undo(turn)
            return False
        return True

    def undo(self, turn: Turn) -> None:
        """Forget a change that could not be saved: the workspaces it touched are read back from
        the state file when next used; a change to tenants reloads them all from it."""
        if self.saved is not None and (turn.tenants or turn.resets or turn.reset_all):
            try:
                self.saved.load(self.state)
            except Exception as exc:  # the file cannot even be read: memory stays as it is
                logger.error("the state file could not be read back either", exc_info=exc)
        for tenant_id, vendor in turn.states:
            self.store.evict(tenant_id, vendor)

    def _after_admin(self, scope: Scope, send: Send, turn: Turn) -> Send:
        """An admin call's change is committed as its answer starts (see `commit`); the turn ends
        before the answer starts."""
        refused = False

        async def committing_send(message: Message) -> None:
            nonlocal refused
            if message["type"] == "http.response.start":
                saved = not 200 <= message["status"] < 300 or self.commit(turn)
                if not await self.turns.end(turn) or not saved:
                    refused = True
                    return await admin.error(503, unsaved(turn).message)(scope, _nothing, send)
            if not refused:
                await send(message)

        return committing_send

    async def _settle(self, tenant_id: str, change: Callable[[], None]) -> None:
        """A background change to a tenant's state (a webhook delivery's outcome), in a turn of its
        own (where the change records itself), committed like a request's."""
        turn = await self.turns.begin()
        recording = current.set(turn)
        try:
            tenant = self.store.tenants.get(tenant_id)
            if tenant is None:
                return
            try:
                await self.turns.enter(turn, tenant)
            except ApiError as exc:  # no lease to be had (Redis unreachable): the outcome is not noted
                logger.warning("a webhook delivery's outcome was not noted: %s", exc.message)
                return
            change()
            self.commit(turn)
        finally:
            current.reset(recording)
            await self.turns.end(turn)

    async def _error_app(self, exc: Exception, ex: Exchange) -> Answer:
        """The vendor's error answer; a request no tenant holds takes its number now (a dialect
        may show it)."""
        if ex.tenant is None:
            try:
                await self.turns.number(ex.turn)
            except ApiError as unavailable:
                exc = unavailable
        return self.render_error(exc, ex)

    def _build_docs(self) -> None:
        """Connexion's Swagger UI and spec downloads under each base path (operations are routed by
        `state.routers`); any other path there is a 404 in the vendor's dialect."""
        self.docs = SwaggerUIMiddleware(self._not_found)
        for vendor in self.vendors:
            self.docs.add_api(vendor.specification, base_path=vendor.base_path)

    def render_error(self, exc: Exception, ex: Exchange) -> Answer:
        """Any failure as the vendor's error answer (the core's generic one outside a vendor)."""
        error = as_api_error(exc)
        ex.failed = error.status
        if error.status >= 500 and not isinstance(exc, ApiError):  # a crash, not an injected fault
            logger.error("unhandled error on %s", ex.operation.id if ex.operation else ex.vendor, exc_info=exc)
        status = error.status
        body: object = admin.error_body(error.status, error.message)  # outside a vendor: the admin API's shape
        if ex.vendor is not None:
            try:
                status, body = ex.vendor.render_error(error, ex)
            except Exception as render_exc:  # a broken renderer must still leave a JSON answer
                logger.error("error renderer of %s failed", ex.vendor.name, exc_info=render_exc)
                status, body = 500, {"error": {"code": "internal_error", "message": "Internal server error"}}
        headers = dict(error.headers)
        if status != error.status:  # the vendor's dialect hides the failure's status (Corteza: 200)
            headers[ERROR_STATUS_HEADER] = str(error.status)
        return answer(status, dumps(body), headers)

    async def _not_found(self, scope: Scope, receive: Receive, send: Send) -> None:
        ex = exchange.exchange()
        await self._enter_named(ex, scope)
        await self.render_error(ApiError(404, "Not Found"), ex)(scope, receive, send)

    async def _shut_down(self) -> None:
        await self.webhooks.close()
        await self.turns.close()
        if self.saved is not None:
            self.saved.close()

    async def _admin(self, scope: Scope, receive: Receive, send: Send) -> None:
        """An admin call: its body read (bounded) before its turn is taken; its change committed
        as its answer starts."""
        limit = admin.MAX_IMPORT_BYTES if scope["path"] == "/__admin/state/import" else admin.MAX_BODY_BYTES
        page = dashboard.is_page(scope["path"])
        try:
            # The dashboard's pages hold no data: with a token they need none (a browser's navigation sends none).
            if scope["path"] not in OPEN_ADMIN_PATHS and not (self.admin_token and page):
                self._admit_admin(scope)
        except ApiError as exc:
            return await admin.error(exc.status, exc.message, exc.headers)(scope, receive, send)
        if page:  # nor a turn: with workers, an admin call's turn holds every tenant
            return await self.admin(scope, receive, send)
        try:
            body, too_large = await _read_body(scope, receive, limit, self.body_deadline)
            if too_large:
                raise ApiError(413, f"Admin request bodies are at most {limit} bytes.")
            turn = await self.turns.begin(journal=scope["path"].startswith(JOURNAL_PATHS), whole=True)
        except ApiError as exc:  # too slow, too large, or no turn to be had (the shared state is unreachable)
            return await admin.error(exc.status, exc.message, exc.headers)(scope, receive, send)
        recording = current.set(turn)  # where the admin API's changes (through ServerState) note themselves
        try:
            return await self.admin(scope, _replay(body, receive), self._after_admin(scope, send, turn))
        finally:
            current.reset(recording)
            await self.turns.end(turn)

    def _admit_admin(self, scope: Scope) -> None:
        """With a token: only callers that send it. Without one: only loopback clients (a server
        reachable from elsewhere must not hand out every tenant's credentials to anyone). Never a
        webhook of any mockserver (its marker)."""
        if header(scope, WEBHOOK_HEADER.lower().encode()) is not None:
            raise ApiError(403, "A webhook never reaches the admin API.")
        if self.admin_token is not None:
            scheme, _, sent = (header(scope, b"authorization") or b"").partition(b" ")
            # The scheme in any case, as HTTP's are (RFC 9110 11.1); the token exact.
            if scheme.lower() != b"bearer" or not hmac.compare_digest(sent.strip(), self.admin_token.encode()):
                raise ApiError(401, "The admin API needs Authorization: Bearer <the server's admin token>.",
                               headers={"WWW-Authenticate": "Bearer"})
        elif not _loopback(scope.get("client")):
            raise ApiError(403, "The admin API answers only loopback clients unless the server has an admin "
                                "token: start it with --admin-token TOKEN (or MOCKSERVER_ADMIN_TOKEN) and send "
                                "Authorization: Bearer TOKEN.")
        else:
            _refuse_web_pages(scope)

    async def _docs(self, ex: Exchange, scope: Scope, receive: Receive, send: Send) -> None:
        """Swagger UI and the spec downloads; a file not there is the vendor's 404."""
        try:
            await self.docs(scope, receive, send)
        except HTTPException as exc:
            await self._enter_named(ex, scope)
            await self.render_error(ApiError(exc.status_code, str(exc.detail)), ex)(scope, receive, send)

    async def _enter_named(self, ex: Exchange, scope: Scope) -> None:
        """A request that matches no operation (nothing authenticates it) joins the tenant its
        credential names, if any: its journal entry and its count in API coverage are that tenant's."""
        assert ex.vendor is not None
        request = gateway.Sent(scope)
        tenant = gateway.named_tenant(self.state.store, ex.vendor, request)
        if tenant is None and gateway.presents_credential(ex.vendor, request) and await self.turns.refresh():
            tenant = gateway.named_tenant(self.state.store, ex.vendor, request)  # made on another worker
        if tenant is not None:
            ex.tenant = tenant
            await self.turns.enter(ex.turn, tenant)

    def _slash_redirect(self, ex: Exchange, scope: Scope) -> RedirectResponse | None:
        """A redirect to the same path with its trailing slash added or removed, when only that one
        names an operation, if the vendor's real server redirects (spec root `x-trailing-slash`:
        Django's APPEND_SLASH answers 301; without the extension, Starlette's 307). None: the
        vendor's own 404 answers it."""
        path = scope["path"]
        toggled = path.rstrip("/") if path.endswith("/") else path + "/"
        vendor, _ = ex.routed if ex.operation else (ex.vendor, None)
        assert vendor is not None
        if vendor.slash_redirect is None or self.routers[vendor.name].match(scope["method"], toggled) is None:
            return None
        return RedirectResponse(str(ex.url.replace(path=toggled)), status_code=vendor.slash_redirect)

    async def _dispatch(self, ex: Exchange, scope: Scope) -> ASGIApp:
        """The ASGI app that answers this vendor request: the operation's handler, a fault or
        forced answer, or the docs."""
        if ex.vendor is None:
            raise ApiError(404, "Not Found")
        found = self.routers[ex.vendor.name].match(scope["method"], scope["path"])
        if found is None:
            return self._slash_redirect(ex, scope) or functools.partial(self._docs, ex)
        if found.operation is None:
            await self._enter_named(ex, scope)
            raise ApiError(405, "Method Not Allowed", headers={"Allow": ", ".join(found.allowed)})
        ex.operation = found.operation.operation
        responder = await gateway.admit(ex, scope)
        if responder is not None:
            return responder
        return await self._run(found, ex, scope)

    async def _run(self, found: Match, ex: Exchange, scope: Scope) -> Answer | Response:
        """The handler's answer; for an operation that changes nothing, the cached answer when
        there is one (see answers.AnswerCache)."""
        compiled, (_, operation) = found.operation, ex.routed
        assert compiled is not None

        def run() -> Awaitable[Answer | Response]:
            return compiled.run(scope, found.path_params, ex.body, ex.json)

        if compiled.changes_state:
            return await run()
        key = (ex.tenant.id if ex.tenant else None, operation.id, ex.credential, scope["path"],
               scope["query_string"], header(scope, b"host"))
        cached = self.answers.get(key)
        if cached is not None:
            return cached
        generation = self.answers.generation
        answer = await run()
        # An answer read from the clock is time-dependent; one that changed state (a view counted) is not kept.
        if not ex.read_clock and not ex.turn.changed and isinstance(answer, Answer):
            self.answers.put(key, answer, generation)
        return answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return await _lifespan(receive, send, self._shut_down)
        if scope["type"] == "websocket":  # none here: refused (the server answers the upgrade 403)
            await receive()
            return await send({"type": "websocket.close", "code": 1008})
        if scope["type"] != "http":
            return
        if scope["path"].startswith("/__admin") or scope["path"] == "/":  # "/": a link to the dashboard
            return await self._admin(scope, receive, send)
        for base_path, own_cors in self._own_cors.items():
            if scope["path"].startswith(base_path + "/"):
                return await self._with_cors(own_cors, scope, receive, send)
        await self._with_cors(self._cors, scope, receive, send)

    async def _with_cors(self, cors: CORSMiddleware | None, scope: Scope, receive: Receive, send: Send) -> None:
        """A vendor request under `cors` (Starlette's middleware; None: no CORS). A request without
        an Origin (no browser's) gets only what the middleware gives it, `Vary: Origin`, added here
        at a fraction of the middleware's cost."""
        if cors is None:
            return await self._vendor(scope, receive, send)
        if header(scope, b"origin") is not None:
            return await cors(scope, receive, send)
        await self._vendor(scope, receive, _varying_on_origin(send))

    async def _vendor(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A request under a vendor's base path (or no known path), top to bottom: read its body,
        take a turn, answer it (`_answer`: route, admit, run), and as the answer starts, finish it
        (`_finish`: commit, record, end the turn)."""
        started = time.perf_counter()
        # The body is read whole (or up to the largest an operation takes) before anything is held.
        try:
            body, too_large = await _read_body(scope, receive, self.read_limit, self.body_deadline)
            turn = await self.turns.begin(numbered=True)
        except ApiError as exc:  # a body too slow, or no turn to be had: answered in the vendor's dialect
            ex = Exchange(self, scope, scope["headers"], b"", False, self.state.vendor_for(scope["path"]))
            return await self.render_error(exc, ex)(scope, receive, send)
        ex = Exchange(self, scope, scope["headers"], body, too_large, self.state.vendor_for(scope["path"]), turn=turn)
        token = exchange.current.set(ex)  # for handlers, through exchange.exchange()
        recording = current.set(turn)  # where tracked workspaces record their changes
        if self.answer_check is not None:
            send = self.answer_check.watching(ex, send)
        try:
            app = await self._answer(ex, scope)
            await app(scope, receive, self._finishing(ex, scope, send, started))
        finally:
            current.reset(recording)
            exchange.current.reset(token)
            if turn.open:  # an answer never started (the client went away): its turn still ends
                await self.turns.end(turn)

    async def _answer(self, ex: Exchange, scope: Scope) -> ASGIApp:
        """The ASGI app that answers: the operation's (routed, admitted, run), or the failure's in
        the vendor's dialect."""
        try:
            return await self._dispatch(ex, scope)
        except Exception as exc:
            return await self._error_app(exc, ex)

    def _finishing(self, ex: Exchange, scope: Scope, send: Send, started: float) -> Send:
        """The ASGI send for a vendor answer: `_finish` runs as the answer starts, before the client
        hears anything; if it refuses (the change could not be saved), its 503 goes out instead."""
        refused: Answer | None = None

        async def finishing_send(message: Message) -> None:
            nonlocal refused
            if message["type"] == "http.response.start":
                refused = await self._finish(ex, scope, message["status"], started)
                if refused is not None:
                    await send({"type": "http.response.start", "status": refused.status, "headers": refused.headers})
                    return await send({"type": "http.response.body", "body": refused.body})
            if refused is None:
                await send(message)

        return finishing_send

    async def _finish(self, ex: Exchange, scope: Scope, status: int, started: float) -> Answer | None:
        """In order, as the answer starts: commit the change (cached answers, the state file), record
        the journal entry, count a success against rate limits, end the turn (with shared state,
        the change and the entry written to Redis), log. The answer to send instead when the
        change could not be saved, else None."""
        turn, refused = ex.turn, None
        if not self.commit(turn):
            refused = self.render_error(unsaved(turn), ex)
        ex.status = refused.status if refused is not None else status
        entry = self._record(ex, scope)
        if ex.tenant is not None and 200 <= ex.status < 300:
            gateway.count_success(ex)
        if not await self.turns.end(turn) and refused is None and ex.failed < 500:
            refused = self.render_error(unsaved(turn), ex)
            if entry is not None:
                entry["status"] = ex.status = refused.status
                await self.turns.note(entry)
        log_access(ex.vendor.name if ex.vendor else None, ex.tenant.id if ex.tenant else None,
                   ex.operation.id if ex.operation else None, scope["method"], scope["path"], ex.status, started)
        return refused

    def _record(self, ex: Exchange, scope: Scope) -> dict[str, Any] | None:
        """The request's journal entry (vendor calls and failures; not the Swagger UI or spec
        downloads), noted in the journal and in the turn."""
        if ex.vendor is None or (ex.operation is None and (ex.status or 0) < 400):
            return None
        entry = _journal_entry(scope, ex)
        self.journal.record(entry, min(len(ex.body), MAX_BODY_BYTES))
        ex.turn.entries.append(entry)
        return entry


async def _lifespan(receive: Receive, send: Send, shutdown: Callable[[], Awaitable[None]]) -> None:
    """Nothing to start; at shutdown, `shutdown()` (webhook connections closed, a worker lets the
    shared state go)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _read_body(scope: Scope, receive: Receive, limit: int, deadline: float) -> tuple[bytes, bool]:
    """The whole request body, or its first `limit` bytes and True when it is longer; ApiError
    408 when it has not all come within `deadline` seconds."""
    if header(scope, b"content-length") is None and header(scope, b"transfer-encoding") is None:
        # No body (RFC 9112 6.3): the request's one message is in already, nothing to wait for.
        return await _receive_body(receive, limit)
    try:
        async with asyncio.timeout(deadline):
            return await _receive_body(receive, limit)
    except TimeoutError:
        raise ApiError(408, f"The request body did not arrive within {deadline:g} seconds.") from None


def _varying_on_origin(send: Send) -> Send:
    """The ASGI send Starlette's CORSMiddleware makes for a request without an Origin: the answer's
    `Vary` gets `Origin` after the values it has (one header), or is added last."""
    async def varying_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = _vary_origin(message.setdefault("headers", []))
        await send(message)

    return varying_send


def _vary_origin(headers: list[Any]) -> list[Any]:
    varies = [value for key, value in headers if key == b"vary"]
    if not varies:
        return [*headers, (b"vary", b"Origin")]
    vary = (b"vary", b", ".join([*varies, b"Origin"]))
    first = next(index for index, (key, _) in enumerate(headers) if key == b"vary")
    return [vary if index == first else item for index, item in enumerate(headers)
            if item[0] != b"vary" or index == first]


def _exposed_headers(vendors: list[Vendor]) -> list[str]:
    """Response headers a browser client may read: those the specs document, and our own."""
    names = {ERROR_STATUS_HEADER, "Retry-After", "Allow"}
    for vendor in vendors:
        for operation in vendor.operations.values():
            for response in operation.responses.values():
                names.update(response.get("headers", {}))
    return sorted(names)


SIMPLE_BODIES = (b"text/plain", b"application/x-www-form-urlencoded", b"multipart/form-data")


def _refuse_web_pages(scope: Scope) -> None:
    """Without an admin token, loopback alone lets a web page in (the browser is on this machine):
    refuse a request another site's page sent (its `Origin`, or `Sec-Fetch-Site: cross-site`), a
    body a page may send without asking first (a CORS "simple" type), and a `Host` that is a
    dotted name other than localhost's (DNS rebinding: a page's own name made to point here)."""
    origin = header(scope, b"origin")
    if origin is not None and not _this_machine(_host_of(origin.decode("latin-1").partition("://")[2])):
        raise ApiError(403, "The admin API does not answer other sites' pages (Origin); give the server an admin "
                            "token to use it from a browser elsewhere.")
    if header(scope, b"sec-fetch-site") == b"cross-site":
        raise ApiError(403, "The admin API does not answer other sites' pages (Sec-Fetch-Site: cross-site).")
    host = _host_of((header(scope, b"host") or b"localhost").decode("latin-1"))
    if not (_this_machine(host) or _is_address(host) or (host and "." not in host)):
        raise ApiError(403, "The admin API answers only this machine's names (Host) unless the server has an admin "
                            "token.")
    kind = (header(scope, b"content-type") or b"").split(b";")[0].strip().lower()
    if scope["method"] not in ("GET", "HEAD", "OPTIONS") and kind in SIMPLE_BODIES:
        raise ApiError(415, "Admin request bodies are application/json.")


def _host_of(authority: str) -> str:
    """The host of `host[:port]` (`[v6]:port` too), lower-cased."""
    if authority.startswith("["):
        return authority[1:].partition("]")[0].lower()
    return (authority.partition(":")[0] if authority.count(":") == 1 else authority).lower()


def _this_machine(host: str) -> bool:
    """localhost (or a name under it), or a loopback address."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    return _is_address(host) and ipaddress.ip_address(host).is_loopback


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _loopback(client: tuple[str, int] | None) -> bool:
    """Whether an ASGI client address is this machine (a Unix socket has none)."""
    if client is None:
        return True
    try:
        return ipaddress.ip_address(client[0]).is_loopback
    except ValueError:
        return False


async def _nothing() -> dict[str, Any]:
    """An ASGI receive for an answer that reads no more of the request."""
    return {"type": "http.disconnect"}


def _replay(body: bytes, receive: Receive) -> Receive:
    """An ASGI receive that gives `body` (read already) again, then what `receive` gives (the disconnect)."""
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def replaying() -> Message:
        return messages.pop() if messages else await receive()

    return replaying


async def _receive_body(receive: Receive, limit: int) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return b"".join(chunks), True
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks), False


def _journal_entry(scope: Scope, ex: Exchange) -> dict[str, Any]:
    """The request as journaled: its body parsed when it is JSON, kept up to MAX_BODY_BYTES."""
    truncated = len(ex.body) > MAX_BODY_BYTES
    try:
        body = orjson.loads(ex.body) if ex.body and not truncated else None
    except orjson.JSONDecodeError:
        body = ex.body.decode("utf-8", "replace")
    if truncated:
        body = ex.body[:MAX_BODY_BYTES].decode("utf-8", "replace")
    elif may_nest_deeper(ex.body) and nested_deeper(body):  # kept as sent, as text: it was refused
        body = ex.body.decode("utf-8", "replace")
    assert ex.vendor is not None
    return {
        "vendor": ex.vendor.name,
        "tenant": ex.tenant.id if ex.tenant else None,
        "operation": ex.operation.id if ex.operation else None,
        "method": scope["method"],
        "path": scope["path"],
        "query": scope["query_string"].decode("latin-1"),
        "headers": {key.decode("latin-1"): value.decode("latin-1") for key, value in ex.sent_headers},
        "body": body,
        "truncated": truncated,
        "status": ex.status,
        "timestamp": isoformat(ex.now()),
    }

