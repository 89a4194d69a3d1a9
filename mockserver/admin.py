"""The admin API under /__admin: tenants, their state and clocks, reset, the request journal,
API coverage.

Its paths and JSON shapes are a contract that tools outside this repository rely on.
"""

import math
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mockserver import coverage, dashboard, persistence
from mockserver.clock import LATEST, isoformat
from mockserver.errors import MAX_JSON_DEPTH, ApiError, nested_deeper
from mockserver.records import StateError
from mockserver.state import ServerState
from mockserver.tenants import Tenant

MAX_ADVANCE_SECONDS = 100 * 365 * 86400
MAX_BODY_BYTES = 1024 * 1024  # an admin request's body; larger is a 413
MAX_IMPORT_BYTES = 256 * 1024 * 1024  # but for a state import
MAX_IMPORT_DEPTH = 96  # of a state import: its records' own depth, plus what clients sent inside them
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
FIND_FIELDS = {"vendor", "tenant", "operation", "method", "path", "query", "headers", "status", "body"}
NEAR_MISSES = 3  # the closest requests a verification that found none shows
DEFAULT_PAGE, MAX_PAGE = 100, 1000  # journal entries a page of `GET /__admin/requests?limit=` (the dashboard's)


MAX_MESSAGE_CHARS = 1000  # an error message quotes what was sent: cut after this many characters


def error_body(status: int, message: str) -> dict[str, Any]:
    """The core's error shape, outside any vendor's dialect: the admin API's, and any unknown path's.
    A message is cut after MAX_MESSAGE_CHARS (it may quote a large input)."""
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[:MAX_MESSAGE_CHARS] + "..."
    return {"error": {"code": status, "message": message}}


def error(status: int, message: str, headers: dict[str, Any] | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message), status_code=status, headers=headers)


async def _json_object(request: Request) -> dict[str, Any]:
    body = await request.body()
    if not body.strip():
        return {}
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:  # also past orjson's depth limit
        raise HTTPException(400, "body is not valid JSON") from None
    if not isinstance(data, dict):
        raise HTTPException(400, "body must be a JSON object")
    if nested_deeper(data):
        raise HTTPException(400, f"body is nested deeper than {MAX_JSON_DEPTH} levels")
    return data


def _advance_seconds(data: dict[str, Any], now: float) -> float:
    """How far to move a clock that reads `now`: `advance_seconds`, or up to `to` (ISO 8601; UTC
    when it names no offset). Never backwards."""
    if ("to" in data) == ("advance_seconds" in data):
        raise HTTPException(400, "give either advance_seconds or to (an ISO 8601 time)")
    if "to" in data:
        try:
            moment = datetime.fromisoformat(data["to"])
        except (TypeError, ValueError):
            raise HTTPException(400, "to must be an ISO 8601 time, e.g. 2026-03-01T09:00:00Z") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        if moment.timestamp() < now:
            raise HTTPException(400, f"to is before the clock's now ({isoformat(now)}): time never goes backwards")
        return moment.timestamp() - now
    seconds = data.get("advance_seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        raise HTTPException(400, "advance_seconds must be a number")
    if not 0 <= seconds <= MAX_ADVANCE_SECONDS:
        raise HTTPException(400, f"advance_seconds must be between 0 and {MAX_ADVANCE_SECONDS} (time never goes backwards)")
    return seconds


def _within_calendar(moment: float) -> None:
    if moment > LATEST:
        raise HTTPException(400, f"a clock goes no later than {isoformat(LATEST)}")


def _status_filter(wanted: str | None) -> Callable[[int], bool]:
    """`?status=`: a status (`404`) or a class of them (`4xx`); none: every status."""
    if not wanted:
        return lambda status: True
    if len(wanted) == 3 and wanted[0] in "12345" and wanted[1:].lower() == "xx":
        return lambda status: status // 100 == int(wanted[0])
    if wanted.isdigit() and 100 <= int(wanted) <= 599:
        return lambda status: status == int(wanted)
    raise HTTPException(400, "status must be a status from 100 to 599, or a class of them: 1xx to 5xx")


def _whole(query: Mapping[str, str], name: str, low: int = 0, high: int | None = None) -> int | None:
    """A whole-number query parameter, from `low` to `high`; None when absent."""
    if name not in query:
        return None
    value = query[name]
    if not (value.isdigit() and len(value) <= 18 and int(value) >= low and (high is None or int(value) <= high)):
        raise HTTPException(400, f"{name} must be a whole number from {low}{f' to {high}' if high else ' up'}")
    return int(value)


def check_find_field(key: str, value: object) -> None:
    """A verification's field of the type journal entries hold it (400 otherwise); `query` may also
    be a mapping of names to a value or a list of values, `headers` is a mapping of names to values."""
    if key == "body":
        return
    if key == "headers" or (key == "query" and isinstance(value, dict)):
        if not (isinstance(value, dict) and all(
                isinstance(each, str) or (key == "query" and isinstance(each, list) and each
                                          and all(isinstance(item, str) for item in each))
                for each in value.values())):
            raise HTTPException(400, f"{key} must be a mapping of names to "
                                     f"{'a string or a list of strings' if key == 'query' else 'strings'}")
        return
    kind = int if key == "status" else str
    if not (type(value) is kind or (key == "tenant" and value is None)):
        raise HTTPException(400, f"{key} must be {'a whole number' if kind is int else 'a string'}"
                                 f"{' or a mapping' if key == 'query' else ''}")


def _bounded(value: object) -> object:
    """A value as an answer quotes it: cut to MAX_MESSAGE_CHARS of its JSON when longer (a body may be large)."""
    text = orjson.dumps(value).decode()
    return value if len(text) <= MAX_MESSAGE_CHARS else text[:MAX_MESSAGE_CHARS] + "..."


def _bounded_difference(difference: dict[str, Any]) -> dict[str, Any]:
    return {key: _bounded(value) if key in ("expected", "got") else value for key, value in difference.items()}


def _summary(entry: dict[str, Any]) -> dict[str, Any]:
    """A journal entry without its headers and body (a near miss's differences quote what differed)."""
    return {key: _bounded(entry[key]) for key in ("vendor", "tenant", "operation", "method", "path", "query",
                                                  "status", "timestamp")}


def build(state: ServerState) -> Starlette:
    """The admin API over the server's state; every change goes through `state`, where it notes
    itself on the admin call's turn."""
    store = state.store

    def tenant_or_404(request: Request) -> Tenant:
        tenant = store.tenants.get(request.path_params["tenant"])
        if tenant is None:
            raise HTTPException(404, f"no tenant {request.path_params['tenant']!r}")
        return tenant

    def describe(tenant: Tenant) -> dict[str, Any]:
        return {"tenant": tenant.id, "credentials": tenant.credentials()}

    async def health(request: Request) -> Response:
        # Which process answered (with several workers, the one holding the connection).
        return JSONResponse({"status": "ok", "vendors": [vendor.name for vendor in state.vendors]},
                            headers={"X-Mockserver-Pid": str(os.getpid())})

    async def vendors(request: Request) -> Response:
        return JSONResponse({"vendors": [
            {"name": vendor.name, "base_path": vendor.base_path, "spec": f"{vendor.base_path}/openapi.json",
             "ui": f"{vendor.base_path}/ui/"} for vendor in state.vendors]})

    async def create_tenant(request: Request) -> Response:
        data = await _json_object(request)
        tenant_id, rate_limits = data.get("tenant"), data.get("rate_limits", True)
        if tenant_id is not None and not isinstance(tenant_id, str):
            raise HTTPException(400, "tenant must be a string")
        if not isinstance(rate_limits, bool):
            raise HTTPException(400, "rate_limits must be a boolean")
        try:
            tenant = state.create_tenant(tenant_id, rate_limits=rate_limits)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        except KeyError:
            raise HTTPException(409, f"tenant {tenant_id!r} exists") from None
        return JSONResponse(describe(tenant), status_code=201)

    async def list_tenants(request: Request) -> Response:
        return JSONResponse({"tenants": [describe(tenant) for tenant in store.tenants.values()]})

    async def get_tenant(request: Request) -> Response:
        if request.method == "DELETE":
            tenant = tenant_or_404(request)
            try:
                state.delete_tenant(tenant)
            except ValueError as exc:
                raise HTTPException(400, str(exc)) from None
            return Response(status_code=204)
        return JSONResponse(describe(tenant_or_404(request)))

    async def tenant_state(request: Request) -> Response:
        tenant = tenant_or_404(request)
        return JSONResponse({vendor.name: tenant.open(vendor.name).snapshot() for vendor in state.vendors})

    async def tenant_reset(request: Request) -> Response:
        state.reset_tenant(tenant_or_404(request))
        return Response(status_code=204)

    async def tenant_clock(request: Request) -> Response:
        tenant = tenant_or_404(request)
        if request.method == "GET":
            return JSONResponse({"now": isoformat(tenant.clock.now())})
        seconds = _advance_seconds(await _json_object(request), tenant.clock.now())
        _within_calendar(tenant.clock.now() + seconds)
        state.advance_tenant_clock(tenant, seconds)
        return JSONResponse({"now": isoformat(tenant.clock.now())})

    async def server_clock(request: Request) -> Response:
        seconds = _advance_seconds(await _json_object(request), state.clock.now())
        _within_calendar(max(tenant.clock.now() for tenant in store.tenants.values()) + seconds)
        state.advance_clock(seconds)
        return JSONResponse({
            "now": isoformat(state.clock.now()),
            "tenants": {tenant.id: isoformat(tenant.clock.now()) for tenant in store.tenants.values()},
        })

    async def reset(request: Request) -> Response:
        state.reset_all()
        return Response(status_code=204)

    async def export_state(request: Request) -> Response:
        return Response(orjson.dumps(persistence.export(state)), media_type="application/json",
                        headers={"Content-Disposition": 'attachment; filename="mockserver-state.json"'})

    async def import_state(request: Request) -> Response:
        """Every tenant replaced by an export's, once all of it has been checked (400 otherwise)."""
        try:
            document = orjson.loads(await request.body())
            if nested_deeper(document, MAX_IMPORT_DEPTH):
                raise StateError(f"nested deeper than {MAX_IMPORT_DEPTH} levels")
            plan, skipped = persistence.parse(state, document)
        except orjson.JSONDecodeError as exc:
            raise HTTPException(400, f"not a JSON state export: {exc}") from None
        except StateError as exc:
            raise HTTPException(400, str(exc)) from None
        state.replace(lambda: persistence.apply(state, plan))
        return Response(status_code=204, headers={"X-Mockserver-Skipped": "; ".join(skipped)} if skipped else None)

    async def requests(request: Request) -> Response:
        if request.method == "DELETE":
            state.clear_journal(request.query_params.get("tenant"))
            return Response(status_code=204)
        query = request.query_params
        pattern = {key: query[key] for key in ("tenant", "vendor", "operation") if query.get(key)}
        wanted = _status_filter(query.get("status"))
        if not any(key in query for key in ("limit", "before", "after")):  # the whole journal, as it always was
            entries = state.journal.find(pattern)
            return JSONResponse({"requests": [entry for entry in entries if wanted(entry["status"])]})
        limit = _whole(query, "limit", 1, MAX_PAGE) or DEFAULT_PAGE
        before, after = _whole(query, "before"), _whole(query, "after")
        if before is not None and after is not None:
            raise HTTPException(400, "give before or after, not both")
        tenant = pattern.pop("tenant", ...)
        found, total, more = state.journal.page(
            (lambda entry: all(entry[key] == value for key, value in pattern.items()) and wanted(entry["status"]))
            if pattern or query.get("status") else None, tenant, limit, before, after)
        return JSONResponse({"requests": [{"seq": number} | entry for number, entry in found], "total": total,
                             "more": more})

    def check_names(entry: dict[str, Any]) -> None:
        """A vendor, operation, tenant, method or status that names nothing is a 400 that lists what
        does: a typo must not make an "assert not called" test pass."""
        vendor, operation, tenant = entry.get("vendor"), entry.get("operation"), entry.get("tenant")
        if vendor is not None and vendor not in store.by_name:
            raise HTTPException(400, f"unknown vendor {vendor!r}; known: {', '.join(store.by_name)}")
        if operation is not None:
            known = store.by_name[vendor].operations if vendor else {
                name for each in state.vendors for name in each.operations}
            if operation not in known:
                raise HTTPException(400, f"unknown operation {operation!r}{f' of {vendor}' if vendor else ''}; "
                                         f"known: {', '.join(sorted(known))}")
        if tenant is not None and tenant not in store.tenants:
            raise HTTPException(400, f"unknown tenant {tenant!r}")
        if "method" in entry and entry["method"] not in HTTP_METHODS:
            raise HTTPException(400, f"method must be one of {', '.join(HTTP_METHODS)} (upper case)")
        status = entry.get("status")
        if "status" in entry and (type(status) is not int or not 100 <= status <= 599):
            raise HTTPException(400, "status must be a number from 100 to 599")

    def resolved_path(pattern: dict[str, Any]) -> str:
        """The pattern's path in full, as journaled: as given, or relative to the base path of its
        `vendor`. A path the server routes nowhere (and no journaled request has) is a 400: a
        verification of it could only ever count 0."""
        path: str = pattern["path"]
        vendor = pattern.get("vendor")
        vendors = [store.by_name[vendor]] if vendor else state.vendors
        full = [path] + [each.base_path + "/" + path.lstrip("/") for each in vendors if vendor]
        for candidate in full:
            if any(state.routes(each, candidate) for each in vendors):
                return candidate
        tenant = pattern.get("tenant", ...)
        for candidate in full:
            if any(entry["path"] == candidate for entry in state.journal.entries(tenant)):
                return candidate
        raise HTTPException(400, unrouted(path, vendor))

    def unrouted(path: str, vendor: str | None) -> str:
        """Why a path matches no route, and what would."""
        if "?" in path:
            return f"path {path!r} holds a query: give it as query (a string, or a mapping of names to values)"
        if vendor:
            base = store.by_name[vendor].base_path
            return (f"path {path!r} matches no route of {vendor}, whole or relative to its base path {base} "
                    f"(see {base}/openapi.json)")
        relative = [each.name for each in state.vendors if state.routes(each, each.base_path + "/" + path.lstrip("/"))]
        return (f"path {path!r} matches no route of any vendor; " + (
            f"relative to a base path it is a route of {', '.join(relative)}: give vendor too" if relative
            else f"give it whole ({', '.join(each.base_path for each in state.vendors)}), or relative "
                 "to a vendor's base path with vendor"))

    async def find_requests(request: Request) -> Response:
        pattern = await _json_object(request)
        unknown = set(pattern) - FIND_FIELDS
        if unknown:
            raise HTTPException(400, f"unknown fields: {', '.join(sorted(unknown))}; "
                                     f"known: {', '.join(sorted(FIND_FIELDS))}")
        for key, value in pattern.items():  # as journal entries hold them
            check_find_field(key, value)
        check_names(pattern)
        if "path" in pattern:
            pattern["path"] = resolved_path(pattern)
        found = state.journal.find(pattern)
        if found:
            return JSONResponse({"count": len(found), "requests": found})
        near = [{"request": _summary(entry), "differences": [_bounded_difference(each) for each in differences]}
                for entry, differences in state.journal.near_misses(pattern, NEAR_MISSES)]
        return JSONResponse({"count": 0, "requests": [], "near_misses": near})

    async def api_coverage(request: Request) -> Response:
        """Documented operations and statuses exercised, of every tenant (and of requests that
        named none) or of `?tenant=`, for every vendor or `?vendor=`."""
        query = {key: request.query_params[key] for key in ("tenant", "vendor") if key in request.query_params}
        check_names(query)
        tenant = query.get("tenant", ...)
        vendors = [store.by_name[query["vendor"]]] if "vendor" in query else state.vendors
        return JSONResponse(coverage.report(vendors, state.journal.counted(tenant), query.get("tenant")))

    async def faults(request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse({"faults": [fault.view() for fault in state.faults.faults.values()]})
        if request.method == "DELETE":
            state.clear_faults(request.query_params.get("tenant"))
            return Response(status_code=204)
        definition = await _json_object(request)
        check_names({key: definition[key] for key in ("vendor", "operation", "tenant") if key in definition
                     and isinstance(definition[key], str)})
        try:
            fault = state.add_fault(definition)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        return JSONResponse(fault.view(), status_code=201)

    async def fault(request: Request) -> Response:
        if not state.remove_fault(request.path_params["fault"]):
            raise HTTPException(404, f"no fault {request.path_params['fault']!r}")
        return Response(status_code=204)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return error(exc.status_code, exc.detail)

    routes = [
        Route("/__admin/health", health, methods=["GET"]),
        Route("/__admin/tenants", create_tenant, methods=["POST"]),
        Route("/__admin/tenants", list_tenants, methods=["GET"]),
        Route("/__admin/vendors", vendors, methods=["GET"]),
        Route("/__admin/tenants/{tenant}", get_tenant, methods=["GET", "DELETE"]),
        Route("/__admin/tenants/{tenant}/state", tenant_state, methods=["GET"]),
        Route("/__admin/tenants/{tenant}/reset", tenant_reset, methods=["POST"]),
        Route("/__admin/tenants/{tenant}/clock", tenant_clock, methods=["GET", "POST"]),
        Route("/__admin/clock", server_clock, methods=["POST"]),
        Route("/__admin/reset", reset, methods=["POST"]),
        Route("/__admin/state/export", export_state, methods=["GET"]),
        Route("/__admin/state/import", import_state, methods=["POST"]),
        Route("/__admin/requests", requests, methods=["GET", "DELETE"]),
        Route("/__admin/requests/find", find_requests, methods=["POST"]),
        Route("/__admin/coverage", api_coverage, methods=["GET"]),
        Route("/__admin/faults", faults, methods=["GET", "POST", "DELETE"]),
        Route("/__admin/faults/{fault}", fault, methods=["DELETE"]),
        *dashboard.routes(),  # the dashboard's pages (/__admin/ui): they read and change state through the routes above
    ]
    async def api_error(request: Request, exc: Exception) -> Response:  # e.g. a workspace this server cannot read
        assert isinstance(exc, ApiError)
        return error(exc.status, exc.message, exc.headers)

    return Starlette(routes=routes, exception_handlers={HTTPException: http_error, ApiError: api_error})
