"""Drive a mockserver from tests: start one in-process on a free loopback port (`running`), or
use one that already runs (`connect`), and work in tenants of your own (`TenantHandle`).

    with running() as server:
        tenant = server.new_tenant()
        with tenant.client("karmabot") as karma:
            karma.get("/users")
        assert tenant.verify(vendor="karmabot", operation="listUsers") == 1
"""

import contextlib
import os
import threading
import time
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx

from mockserver import ADMIN_TOKEN_VARIABLE
from mockserver.coverage import merge

if TYPE_CHECKING:  # imported by `running` alone: `connect` needs none of the server
    from mockserver.app import MockServer


class MockserverError(httpx.HTTPStatusError):
    """An admin call the server refused, with its status and the server's own message (say, "unknown
    operation 'createPosts' of community; known: ...")."""

    def __init__(self, response: httpx.Response) -> None:
        self.status = response.status_code
        try:
            self.message = str(response.json()["error"]["message"])
        except (ValueError, KeyError, TypeError):
            self.message = response.text[:1000]
        request = response.request
        super().__init__(f"{request.method} {request.url.path} answered {self.status}: {self.message}",
                         request=request, response=response)


def checked(response: httpx.Response) -> httpx.Response:
    """The response, or MockserverError if the server refused the call."""
    if response.is_error:
        raise MockserverError(response)
    return response


def _miss_message(tenant: str, times: int, pattern: dict[str, Any], found: dict[str, Any]) -> str:
    """Why `assert_called` failed: what was asked, what was found, and the near misses."""
    wanted = ", ".join(f"{key}={value!r}" for key, value in pattern.items())
    lines = [f"expected {times} request{'s' * (times != 1)} of tenant {tenant!r} matching {wanted}; "
             f"found {found['count']}"]
    for entry in found["requests"][:5]:
        lines.append(f"  matched: {_request_line(entry)}")
    misses = found.get("near_misses", [])
    if found["count"] == 0:
        lines.append("closest requests:" if misses else "no request of that tenant (vendor, operation) to compare")
    for miss in misses:
        lines.append(f"  {_request_line(miss['request'])}")
        for difference in miss["differences"]:
            got = "nothing" if difference.get("absent") else repr(difference["got"])
            lines.append(f"    {difference['field']}: expected {difference['expected']!r}, got {got}")
    return "\n".join(lines)


def _request_line(entry: dict[str, Any]) -> str:
    query = f"?{entry['query']}" if entry["query"] else ""
    return f"{entry['method']} {entry['path']}{query} -> {entry['status']} ({entry['operation']}, {entry['timestamp']})"


class TenantHandle:
    """One tenant seen from a test: credentials, per-vendor base URLs and clients, admin helpers."""

    def __init__(self, server: "RunningServer", description: dict[str, Any]) -> None:
        self.server = server
        self.id = description["tenant"]
        self.credentials = description["credentials"]

    def __repr__(self) -> str:
        return f"TenantHandle({self.id!r})"

    @property
    def base_urls(self) -> dict[str, str]:
        return {vendor: self.server.base_url(vendor) for vendor in self.credentials}

    def headers(self, vendor: str) -> dict[str, str]:
        return dict(self.credentials[vendor]["headers"])

    def client(self, vendor: str, authenticated: bool = True) -> httpx.Client:
        """An HTTP client rooted at the vendor's base path, sending this tenant's auth headers."""
        headers = self.headers(vendor) if authenticated else {}
        return httpx.Client(base_url=self.server.base_url(vendor), headers=headers, timeout=10)

    def advance(self, seconds: float) -> str:
        """Move this tenant's clock forward; returns its new "now"."""
        response = self.server.admin.post(f"/__admin/tenants/{self.id}/clock", json={"advance_seconds": seconds})
        checked(response)
        now: str = response.json()["now"]
        return now

    def state(self, vendor: str | None = None) -> dict[str, Any]:
        response = self.server.admin.get(f"/__admin/tenants/{self.id}/state")
        checked(response)
        state: dict[str, Any] = response.json()
        return state[vendor] if vendor else state

    def requests(self, vendor: str | None = None) -> list[dict[str, Any]]:
        params = {"tenant": self.id} | ({"vendor": vendor} if vendor else {})
        found: list[dict[str, Any]] = checked(self.server.admin.get("/__admin/requests", params=params)).json()["requests"]
        return found

    def find(self, **pattern: Any) -> dict[str, Any]:
        """`POST /__admin/requests/find` for this tenant: `count`, the matching `requests` and, when
        none match, the `near_misses`. Fields: vendor, operation, method, path (whole, or relative
        to the vendor's base path), query (a string, or {name: value or [values]}), headers,
        status, and `body` as a partial match (a form body as a mapping too)."""
        response = self.server.admin.post("/__admin/requests/find", json={"tenant": self.id, **pattern})
        found: dict[str, Any] = checked(response).json()
        return found

    def verify(self, **pattern: Any) -> int:
        """How many journaled requests of this tenant match (fields as for `find`)."""
        return int(self.find(**pattern)["count"])

    def assert_called(self, times: int = 1, **pattern: Any) -> list[dict[str, Any]]:
        """The journaled requests of this tenant that match (fields as for `find`), or an
        AssertionError unless there are exactly `times` of them; it names the closest requests
        and what differed when none matched."""
        found = self.find(**pattern)
        if found["count"] != times:
            raise AssertionError(_miss_message(self.id, times, pattern, found))
        requests: list[dict[str, Any]] = found["requests"]
        return requests

    def coverage(self, vendor: str | None = None) -> dict[str, Any]:
        """Which documented operations and statuses this tenant's requests exercised (`GET /__admin/coverage`)."""
        return self.server.coverage(self.id, vendor)

    def delete(self) -> None:
        self.server.keep_coverage(self.id)
        checked(self.server.admin.delete(f"/__admin/tenants/{self.id}"))
        self.server.made.discard(self.id)

    def reset(self) -> None:
        """Back to the seeded data, with fresh counters, no journal entries or faults (clock and
        credentials stay)."""
        self.server.keep_coverage(self.id)
        checked(self.server.admin.post(f"/__admin/tenants/{self.id}/reset"))

    def fault(self, vendor: str, kind: str = "status", **fault: Any) -> dict[str, Any]:
        """A fault for this tenant only (`kind`, `status`, `operation`, `count`, ... as the admin API
        takes them); the fault with its `id`."""
        response = self.server.admin.post("/__admin/faults", json={"vendor": vendor, "kind": kind, "tenant": self.id,
                                                                     **fault})
        checked(response)
        made: dict[str, Any] = response.json()
        return made


class RunningServer:
    """A mockserver reachable at `url` (in-process or not)."""

    def __init__(self, url: str, app: "MockServer | None" = None, admin_token: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.app = app  # set when the server runs in this process
        headers = {"Authorization": f"Bearer {admin_token}"} if admin_token else {}
        self.admin = httpx.Client(base_url=self.url, timeout=10, headers=headers)
        self._base_paths: dict[str, str] | None = None
        self.made: set[str] = set()  # tenants made here and not deleted yet
        self.kept: dict[str, Any] | None = None  # after `collect_coverage()`: what tenants reset or deleted had

    def base_url(self, vendor: str) -> str:
        if self._base_paths is None:
            listed = self.admin.get("/__admin/vendors").json()["vendors"]
            self._base_paths = {entry["name"]: entry["base_path"] for entry in listed}
        return self.url + self._base_paths[vendor]

    def new_tenant(self, **options: Any) -> TenantHandle:
        """A fresh tenant; options as for `POST /__admin/tenants` (`tenant`, `rate_limits`)."""
        response = self.admin.post("/__admin/tenants", json=options)
        checked(response)
        tenant = TenantHandle(self, response.json())
        self.made.add(tenant.id)
        return tenant

    def coverage(self, tenant: str | None = None, vendor: str | None = None) -> dict[str, Any]:
        """`GET /__admin/coverage`: of one tenant, or (None) of every tenant and of requests that named none."""
        params = {key: value for key, value in (("tenant", tenant), ("vendor", vendor)) if value is not None}
        response = self.admin.get("/__admin/coverage", params=params)
        checked(response)
        report: dict[str, Any] = response.json()
        return report

    def collect_coverage(self) -> None:
        """From now on keep the coverage of tenants deleted or reset through this object, for `run_coverage`."""
        self.kept = {"tenant": None, "vendors": {}}

    def keep_coverage(self, tenant: str) -> None:
        if self.kept is not None:
            self.kept = merge(self.kept, self.coverage(tenant))

    def run_coverage(self) -> dict[str, Any]:
        """Since `collect_coverage()`: what tenants made here exercised (those reset or deleted
        through this object included); of a server in this process, everything it was sent."""
        report = self.kept or {"tenant": None, "vendors": {}}
        for tenant in [None] if self.app is not None else sorted(self.made):
            report = merge(report, self.coverage(tenant))
        return report

    def close(self) -> None:
        self.admin.close()


def connect(url: str, admin_token: str | None = None) -> RunningServer:
    """A mockserver that already runs (a container, `mockserver serve`); its admin token, if it
    has one, from `admin_token` or MOCKSERVER_ADMIN_TOKEN."""
    server = RunningServer(url, admin_token=admin_token or os.environ.get(ADMIN_TOKEN_VARIABLE))
    checked(server.admin.get("/__admin/health"))
    return server


@contextlib.contextmanager
def running(**options: Any) -> Iterator[RunningServer]:
    """`with running(seed=1) as server:` a MockServer on 127.0.0.1 on a free port, stopped after.
    Options are MockServer's (seed, vendors, clock="ticking"|"frozen" (ticking by default, as
    `mockserver serve`), journal_limit, webhook_allow, state_file, admin_token, check_answers (every
    answer checked against the spec, as `serve --check-answers`; unset, MOCKSERVER_CHECK_ANSWERS
    decides), ...)."""
    import uvicorn

    with warnings.catch_warnings():  # Connexion's imports warn of what its dependencies deprecate: not the caller's
        warnings.simplefilter("ignore")
        from mockserver.app import MockServer
    app = MockServer(**options)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("mockserver did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    running_server = RunningServer(f"http://127.0.0.1:{port}", app, app.admin_token)
    try:
        yield running_server
    finally:
        running_server.close()
        server.should_exit = True
        thread.join(timeout=10)
