"""The checks every vendor request passes before its handler: body guard, authentication and
tenancy, faults, rate limits, JSON syntax. They run right after routing, so they know the
operation, and read everything from the vendor's spec."""

import base64
import functools
import re
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote_plus

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from mockserver.bodies import FORM, header, parse_as_form_unless_json, parse_json, set_content_type
from mockserver.errors import ApiError
from mockserver.exchange import Exchange
from mockserver.faults import Fault
from mockserver.forced import forced_response
from mockserver.tenants import Tenant, TenantStore
from mockserver.vendor import Vendor


class Presented(Protocol):
    """Where a request presents credentials: a Starlette request, or a head read before parsing
    (handover.Head)."""

    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def query_params(self) -> Mapping[str, str]: ...
    @property
    def cookies(self) -> Mapping[str, str]: ...


class Sent:
    """Where a request presents credentials (Presented), read from its ASGI scope: its headers by
    lower-case name (the first of each, as Starlette's `Headers.get` gives it); its query and
    cookies as Starlette reads them, when asked for (most schemes are headers)."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.headers = {key.decode("latin-1"): value.decode("latin-1") for key, value in reversed(scope["headers"])}

    @property
    def query_params(self) -> Mapping[str, str]:
        return QueryParams(self.scope["query_string"]) if self.scope["query_string"] else {}

    @property
    def cookies(self) -> dict[str, str]:
        return Request(self.scope).cookies


def presented_credential(scheme: dict[str, Any], request: Presented) -> str | None:
    """The credential a security scheme names, "" if present but malformed, None if absent."""
    kind = scheme["type"]
    if kind == "apiKey":
        if scheme["in"] == "header":  # by lower-case name: any Presented finds it so
            return request.headers.get(scheme["name"].lower())
        source = {"query": "query_params", "cookie": "cookies"}[scheme["in"]]
        value: str | None = getattr(request, source).get(scheme["name"])
        return value
    if kind == "http":
        authorization = request.headers.get("authorization")
        if authorization is None:
            return None
        prefix, _, value = authorization.partition(" ")
        if prefix.lower() != scheme["scheme"].lower():
            return ""
        value = value.strip()
        if scheme["scheme"].lower() == "basic":  # username = caller's name, password = the key
            try:
                return base64.b64decode(value, validate=True).decode().partition(":")[2]
            except (ValueError, UnicodeDecodeError):  # not base64 (non-ASCII included), or not UTF-8
                return ""
        return value
    raise ValueError(f"unsupported security scheme type {kind!r}")


def named_tenant(store: TenantStore, vendor: Vendor, request: Presented) -> Tenant | None:
    """The tenant a credential the request presents under any of the vendor's schemes belongs to,
    whatever the operation (none may match): where to route a request, whose journal it joins."""
    for scheme in vendor.schemes:
        credential = presented_credential(scheme, request)
        found = store.lookup(vendor.name, credential) if credential else None
        if found is not None:
            return found[0]
    return None


def presents_credential(vendor: Vendor, request: Presented) -> bool:
    """Whether the request presents a credential under any of the vendor's schemes."""
    return any(presented_credential(scheme, request) for scheme in vendor.schemes)


def authenticate(ex: Exchange, request: Presented) -> None:
    """Find the tenant and principal behind the request's credentials, per the spec's schemes."""
    presented, (vendor, operation) = None, ex.routed
    expired = False
    for _name, scheme in operation.security:
        credential = presented_credential(scheme, request)
        if credential is None:
            continue
        presented = presented or scheme
        ex.refused_credential = ex.refused_credential or credential
        pattern = scheme.get("x-credential-pattern")
        if pattern and not re.fullmatch(pattern, credential):
            if vendor.first_credential_decides:
                break
            continue
        found = ex.server.state.store.lookup(vendor.name, credential)
        if found and _still_accepted(found[0], vendor, credential):
            ex.tenant, ex.principal = found
            ex.credential, ex.refused_credential = credential, None
            return
        expired = expired or found is not None
        if vendor.first_credential_decides:  # the first credential found is the only one read
            break
    # A scheme's `x-challenge` is its WWW-Authenticate header on a 401.
    if presented is None:
        challenge = next((scheme["x-challenge"] for _, scheme in operation.security if "x-challenge" in scheme), None)
        raise ApiError(401, "Authentication credentials were not provided.", "not_authenticated",
                       headers={"WWW-Authenticate": challenge} if challenge else None)
    status = presented.get("x-invalid-credential-status", 401)
    challenge = presented.get("x-challenge") if status == 401 else None
    # "credential_expired": known here, but its state refuses it now (a token past its expiry).
    raise ApiError(status, "Invalid authentication credentials.", "credential_expired" if expired else
                   "authentication_failed", headers={"WWW-Authenticate": challenge} if challenge else None)


async def _authenticate(ex: Exchange, request: Presented) -> None:
    """`authenticate`, then hold the tenant found for the rest of the turn. With shared state, a
    credential unknown here is looked for again once the other workers' changes are read, and
    one whose tenant was read afresh is checked again."""
    turns = ex.server.turns
    try:
        authenticate(ex, request)
    except ApiError as exc:
        if exc.status not in (401, 403) or not await turns.refresh():
            raise
        authenticate(ex, request)
    _, tenant = ex.held
    if await turns.enter(ex.turn, tenant):
        ex.tenant = ex.principal = ex.credential = None
        authenticate(ex, request)
        if ex.tenant is not tenant:  # the credential moved to a tenant made anew meanwhile
            raise ApiError(503, "The tenant changed while this request waited; try again.")


async def _fault(ex: Exchange) -> Fault | None:
    """The injected fault that applies to this request, if any (taken under the world's lease,
    as a fault's count and seeded draws are shared)."""
    (vendor, operation), faults = ex.routed, ex.server.state.faults
    tenant = ex.tenant.id if ex.tenant else None
    if not faults.matching(vendor.name, operation.id, tenant):
        return None
    await ex.server.turns.enter_world(ex.turn)
    return faults.take(vendor.name, operation.id, tenant)


def _still_accepted(tenant: Tenant, vendor: Vendor, credential: str) -> bool:
    """A state may refuse a known credential, e.g. a token expired on the tenant's clock."""
    state = tenant.open(vendor.name)
    check = getattr(state, "accepts_credential", None)
    return check is None or check(credential, tenant.clock.now())


def _query_as_form(ex: Exchange, scope: Scope) -> None:
    """Spec root `x-query-as-form`: on POST, PUT and PATCH the query string's values are form
    values too (Go's Request.Form): after a form body's own, over a JSON body's."""
    if scope["method"] not in ("POST", "PUT", "PATCH") or not scope["query_string"]:
        return
    kind = (header(scope, b"content-type") or b"").split(b";")[0].strip().lower()
    if kind == b"multipart/form-data":
        return
    if kind == b"application/json" and ex.body:
        values: dict[str, Any] = {}
        for key, value in parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True):
            values.setdefault(key, []).append(value)
        if isinstance(ex.json, dict):
            ex.json |= {key: found[0] if len(found) == 1 else found for key, found in values.items()}
        return
    # Go reads a form value as its first: the body's where it has the name, else the query's.
    sent = {key for key, _ in parse_qsl(ex.body.decode("latin-1"), keep_blank_values=True)}
    added = b"&".join(pair for pair in scope["query_string"].split(b"&")
                      if unquote_plus(pair.split(b"=")[0].decode("latin-1")) not in sent)
    ex.body = b"&".join(part for part in (ex.body, added) if part)
    set_content_type(scope, FORM)


def check_accept(scope: Scope) -> None:
    """406 unless the Accept header admits JSON (every answer here is JSON)."""
    accept = (header(scope, b"accept") or b"").decode("latin-1").strip()
    if not accept:
        return
    for media_range in accept.split(","):
        media_type, *params = [piece.strip() for piece in media_range.split(";")]
        weights = [param.partition("=")[2] for param in params if param.lower().startswith("q=")]
        try:
            weight = float(weights[0]) if weights else 1.0
        except ValueError:
            weight = 0.0
        if weight > 0 and media_type.lower() in ("*/*", "application/*", "application/json"):
            return
    raise ApiError(406, "This API answers only application/json.", "not_acceptable")


MAX_QUERY_BYTES = 8192  # a longer query string is a 414
MAX_QUERY_PARAMETERS = 256  # more is a 400


async def _inject(fault: Fault, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer as the fault says: a body cut short by a dropped connection, or a body that is not
    JSON."""
    body = b'{"truncated": '
    headers = [(b"content-type", b"application/json")]
    if fault.kind == "malformed":
        headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    # drop: the body never ends, and the server closes the connection when this returns
    await send({"type": "http.response.body", "body": body, "more_body": fault.kind == "drop"})


async def admit(ex: Exchange, scope: Scope) -> ASGIApp | None:
    """Everything the core checks before an operation's handler: body size, media type, Accept,
    credentials, faults, `Prefer`, rate limits and JSON syntax. Raises ApiError to refuse; returns
    an ASGI app when a fault or `Prefer` answers instead of the handler."""
    query = scope["query_string"]
    if len(query) > MAX_QUERY_BYTES:
        raise ApiError(414, f"The query string is longer than {MAX_QUERY_BYTES} bytes.")
    if query.count(b"&") >= MAX_QUERY_PARAMETERS:
        raise ApiError(400, f"More than {MAX_QUERY_PARAMETERS} query parameters.")
    vendor, operation = ex.routed
    limit: int = operation.extensions.get("x-max-body-bytes", ex.server.max_body_bytes)
    if ex.too_large or len(ex.body) > limit:
        raise ApiError(413, f"Request body exceeds {limit} bytes.")
    if vendor.form_fallback and ex.body:
        parse_as_form_unless_json(scope)
    if vendor.negotiates_accept:  # before authentication, as Django REST framework does
        check_accept(scope)
    if operation.security:
        await _authenticate(ex, Sent(scope))
    else:
        await ex.server.turns.sync()  # faults and clocks as the other workers left them
    fault = await _fault(ex) if ex.server.state.faults.faults else None  # most servers have none set
    if fault is not None:
        if fault.kind == "status" and fault.status is not None:  # a status fault always has one
            raise ApiError(fault.status, "Injected fault.", headers=fault.headers)
        if fault.kind != "latency":
            return functools.partial(_inject, fault)
        await ex.server.turns.pause(ex.turn, (fault.latency_ms or 0) / 1000)
    prefer = header(scope, b"prefer")
    if prefer is not None:
        forced = forced_response(operation, prefer.decode("latin-1"))
        if forced is not None:
            return forced
    ex.counted_on_success = _limit(ex)
    if ex.body and b"json" in (header(scope, b"content-type") or b"").split(b";")[0]:
        ex.json = parse_json(ex.body)
    if vendor.query_as_form:
        _query_as_form(ex, scope)
    return None


def count_success(ex: Exchange) -> None:
    """Count a success against the limits that count only successes (as its answer starts,
    before the client can send the next request)."""
    if ex.counted_on_success:
        vendor, tenant = ex.held
        tenant.limiter.hit(ex.counted_on_success, vendor.name, ex.credential or "")
        ex.turn.limits.add(tenant.id)


def _limit(ex: Exchange) -> list[Any]:
    """Refuse with 429 if over a limit; count this request; return the rules counted on success."""
    (api, operation), tenant = ex.routed, ex.tenant
    rules = operation.rate_limits
    if not rules or tenant is None or not tenant.rate_limits:
        return []
    limiter, vendor, credential = tenant.limiter, api.name, ex.credential or ""
    retry_after = limiter.retry_after(rules, vendor, credential)
    if retry_after is not None:
        raise ApiError(429, f"Rate limit exceeded; retry in {retry_after} seconds.",
                       headers={"Retry-After": str(retry_after)})
    limiter.hit([rule for rule in rules if rule.counts == "requests"], vendor, credential)
    ex.turn.limits.add(tenant.id)
    return [rule for rule in rules if rule.counts == "successes"]
