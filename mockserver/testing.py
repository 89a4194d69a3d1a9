"""Run a mockserver in-process on a free loopback port, and drive tenants over real HTTP."""

import contextlib
import threading
import time

import httpx
import uvicorn

from mockserver.app import MockServer


class TenantHandle:
    """One tenant seen from a test: credentials, per-vendor clients and admin helpers."""

    def __init__(self, server: "RunningServer", description: dict):
        self.server = server
        self.id = description["tenant"]
        self.credentials = description["credentials"]

    def client(self, vendor: str, authenticated: bool = True) -> httpx.Client:
        """An HTTP client rooted at the vendor's base path, sending this tenant's auth headers."""
        headers = self.credentials[vendor]["headers"] if authenticated else {}
        return httpx.Client(base_url=self.server.base_url(vendor), headers=headers, timeout=10)

    def advance(self, seconds: float) -> str:
        response = self.server.admin.post(f"/__admin/tenants/{self.id}/clock", json={"advance_seconds": seconds})
        response.raise_for_status()
        return response.json()["now"]

    def state(self, vendor: str | None = None) -> dict:
        response = self.server.admin.get(f"/__admin/tenants/{self.id}/state")
        response.raise_for_status()
        return response.json()[vendor] if vendor else response.json()

    def requests(self, vendor: str | None = None) -> list[dict]:
        params = {"tenant": self.id} | ({"vendor": vendor} if vendor else {})
        return self.server.admin.get("/__admin/requests", params=params).json()["requests"]


class RunningServer:
    def __init__(self, app: MockServer, url: str):
        self.app = app
        self.url = url
        self.admin = httpx.Client(base_url=url, timeout=10)

    def base_url(self, vendor: str) -> str:
        return self.url + next(v.base_path for v in self.app.vendors if v.name == vendor)

    def new_tenant(self, **options) -> TenantHandle:
        response = self.admin.post("/__admin/tenants", json=options)
        response.raise_for_status()
        return TenantHandle(self, response.json())


@contextlib.contextmanager
def running(**options):
    """`with running(seed=1) as server:` a MockServer on 127.0.0.1 on a free port, stopped after."""
    app = MockServer(**options)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("mockserver did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    running_server = RunningServer(app, f"http://127.0.0.1:{port}")
    try:
        yield running_server
    finally:
        running_server.admin.close()
        server.should_exit = True
        thread.join(timeout=10)
