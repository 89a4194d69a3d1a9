"""The app factory: every vendor's spec-driven API under its base path, plus the admin API."""

import logging
import os
from datetime import datetime

import orjson
from connexion import AsyncApp
from connexion.exceptions import ProblemException
from connexion.jsonifier import Jsonifier
from connexion.lifecycle import ConnexionResponse
from connexion.middleware.context import ContextMiddleware
from connexion.middleware.exceptions import ExceptionMiddleware
from connexion.middleware.lifespan import LifespanMiddleware
from connexion.middleware.request_validation import RequestValidationMiddleware
from connexion.middleware.routing import RoutingMiddleware
from connexion.middleware.server_error import ServerErrorMiddleware
from connexion.middleware.swagger_ui import SwaggerUIMiddleware
from connexion.resolver import Resolver
from starlette.exceptions import HTTPException

from mockserver import admin, persistence, validation
from mockserver.clock import DEFAULT_START, ServerClock, isoformat
from mockserver.errors import ApiError, as_api_error
from mockserver.faults import FaultBook
from mockserver.gateway import Exchange, Gateway
from mockserver.journal import Journal
from mockserver.tenants import TenantStore
from mockserver.vendor import Vendor, discover, snake_case
from mockserver.webhooks import WebhookDispatcher

logger = logging.getLogger("mockserver")
# Connexion warns on every request to an operation that accepts several content types.
logging.getLogger("connexion.operations.openapi3").setLevel(logging.ERROR)

ERROR_STATUS_HEADER = "X-Mockserver-Error-Status"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")

# Connexion's defaults, with its SecurityMiddleware replaced by the tenant-aware Gateway and
# response validation left to the contract tests (it would re-validate every answer).
MIDDLEWARES = [
    ServerErrorMiddleware,
    ExceptionMiddleware,
    SwaggerUIMiddleware,
    RoutingMiddleware,
    Gateway,
    RequestValidationMiddleware,
    LifespanMiddleware,
    ContextMiddleware,
]


class FastJsonifier(Jsonifier):
    """Handler answers through orjson; with `omit_nulls` (spec root `x-omit-nulls`), null
    fields are left out at every depth."""

    def __init__(self, omit_nulls: bool = False):
        super().__init__()
        self.omit_nulls = omit_nulls

    def dumps(self, data, **kwargs) -> str:
        data = _without_nulls(data) if self.omit_nulls else data
        try:
            return orjson.dumps(data).decode()
        except orjson.JSONEncodeError:  # e.g. integers beyond 64 bits, which json handles
            return super().dumps(data)


def _without_nulls(data):
    if isinstance(data, dict):
        return {key: _without_nulls(value) for key, value in data.items() if value is not None}
    if isinstance(data, list):
        return [_without_nulls(item) for item in data]
    return data


class MockServer:
    """The ASGI application: admin API at /__admin, vendors at their spec's server path."""

    def __init__(self, seed: int = 0, vendors: list[str] | None = None, ticking: bool = True,
                 start: datetime = DEFAULT_START, journal_limit: int = 1000,
                 max_body_bytes: int = 1_048_576, webhook_allow: tuple[str, ...] = (),
                 webhook_timeout: float = 5.0, state_file: str | None = None):
        self.seed = seed
        self.vendors = discover(vendors)
        self.clock = ServerClock(start, ticking)
        self.store = TenantStore(self.vendors, seed, self.clock)
        self.journal = Journal(journal_limit)
        self.max_body_bytes = max_body_bytes
        # Bodies are read before routing; operations may allow more (`x-max-body-bytes`).
        self.read_limit = max([max_body_bytes] + [vendor.max_body_bytes for vendor in self.vendors])
        self.webhooks = WebhookDispatcher(webhook_allow, webhook_timeout)
        self.faults = FaultBook(seed)
        self.requests_served = 0  # numbers each vendor request, for deterministic ids
        self.state_file = state_file
        if state_file and os.path.exists(state_file):
            with open(state_file, "rb") as handle:
                persistence.load(self, handle.read())
        self.api = self._build_api()
        self.admin = admin.build(self)

    def persist(self) -> None:
        """Save every tenant to the state file, if there is one (called after each change)."""
        if self.state_file:
            persistence.save(self, self.state_file)

    def _saving(self, scope, send):
        """An admin change (a non-GET that succeeded) is saved before its answer starts."""
        async def saving_send(message):
            if (message["type"] == "http.response.start" and scope["method"] not in SAFE_METHODS
                    and 200 <= message["status"] < 300):
                self.persist()
            await send(message)

        return saving_send

    def _build_api(self) -> AsyncApp:
        app = AsyncApp(__name__, middlewares=MIDDLEWARES)
        for vendor in self.vendors:
            handlers = vendor.handlers
            app.add_api(
                vendor.spec,
                base_path=vendor.base_path,
                name=vendor.name,
                resolver=Resolver(lambda op_id, handlers=handlers: getattr(handlers, snake_case(op_id))),
                pythonic_params=True,
                jsonifier=FastJsonifier(omit_nulls=vendor.omit_nulls),
                validator_map=validation.VALIDATOR_MAP,
            )
        for kind in (Exception, ProblemException, HTTPException):
            app.add_error_handler(kind, self._render_error)
        return app

    def vendor_for(self, path: str) -> Vendor | None:
        for vendor in self.vendors:
            if path == vendor.base_path or path.startswith(vendor.base_path + "/"):
                return vendor
        return None

    def _render_error(self, request, exc: Exception) -> ConnexionResponse:
        error = as_api_error(exc)
        if error.status >= 500 and not isinstance(exc, ApiError):  # a crash, not an injected fault
            logger.error("unhandled error on %s %s", request.method, request.url, exc_info=exc)
        ex: Exchange | None = request.scope.get("mockserver")
        vendor = ex.vendor if ex else self.vendor_for(request.url.path)
        if error.status == 405 and vendor is not None:  # Starlette names one route's methods only
            error.headers["Allow"] = ", ".join(vendor.allowed_methods(request.url.path))
        status, body = error.status, {"error": {"code": error.code, "message": error.message}}
        if vendor is not None:
            try:
                status, body = vendor.render_error(error, ex)
            except Exception as render_exc:  # a broken renderer must still leave a JSON answer
                logger.error("error renderer of %s failed", vendor.name, exc_info=render_exc)
                status, body = 500, {"error": {"code": "internal_error", "message": "Internal server error"}}
        headers = dict(error.headers)
        if status != error.status:  # the vendor's dialect hides the failure's status (Corteza: 200)
            headers[ERROR_STATUS_HEADER] = str(error.status)
        return ConnexionResponse(status_code=status, body=orjson.dumps(body),
                                 mimetype="application/json", headers=headers)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.api(scope, receive, send)
        if scope["path"].startswith("/__admin"):
            return await self.admin(scope, receive, self._saving(scope, send))
        body, too_large = await _read_body(receive, self.read_limit)
        self.requests_served += 1
        ex = Exchange(self, self.requests_served, scope["headers"], body, too_large, self.vendor_for(scope["path"]))
        scope["mockserver"] = ex

        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()  # only a disconnect can come now
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def capture(message):
            # Journal first, so the entry exists before the client can see the answer.
            if message["type"] == "http.response.start":
                ex.status = message["status"]
                # Vendor API calls and failures; not the Swagger UI or spec downloads.
                if ex.vendor is not None and (ex.operation is not None or ex.status >= 400):
                    self.journal.record(_journal_entry(scope, ex))
                # Saved before the client hears of it: an answered change survives a crash.
                if ex.tenant is not None and scope["method"] not in SAFE_METHODS and 200 <= ex.status < 300:
                    self.persist()
            await send(message)

        await self.api(scope, replay, capture)


async def _read_body(receive, limit: int) -> tuple[bytes, bool]:
    """The whole request body, or its first `limit` bytes and True when it is longer."""
    chunks, size = [], 0
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


def _journal_entry(scope, ex: Exchange) -> dict:
    try:
        body = orjson.loads(ex.body) if ex.body else None
    except orjson.JSONDecodeError:
        body = ex.body.decode("utf-8", "replace")
    return {
        "vendor": ex.vendor.name,
        "tenant": ex.tenant.id if ex.tenant else None,
        "operation": ex.operation.id if ex.operation else None,
        "method": scope["method"],
        "path": scope["path"],
        "query": scope["query_string"].decode("latin-1"),
        "headers": {key.decode("latin-1"): value.decode("latin-1") for key, value in ex.sent_headers},
        "body": body,
        "status": ex.status,
        "timestamp": isoformat(ex.now()),
    }

