"""Server time per request, without HTTP: the ASGI app called directly, best of three runs.
Run it at two commits to compare them (bench/README.md).

The garbage collector is set as `mockserver serve` sets it (cli.steady_collector: what is alive
once the server is built is frozen, survivors of full collections too), so the numbers are the
served ones; without it a write paid 15-20 us more here than in `serve`, scanning the objects of
the servers built for the runs. `--default-gc` measures with Python's defaults instead.

    python3 bench/inprocess.py [--requests 3000] [--runs 3] [--default-gc]
"""

import argparse
import asyncio
import gc
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's mockserver

from mockserver.app import MockServer  # noqa: E402
from mockserver.cli import steady_collector  # noqa: E402


def scenarios(server: MockServer) -> dict[str, tuple]:
    """name -> (method, path, query, headers, body), on the default tenant with limits lifted."""
    tenant = server.store.tenants["default"]
    tenant.rate_limits = False
    credentials = tenant.credentials()
    state = {vendor.name: tenant.open(vendor.name).snapshot() for vendor in server.vendors}
    karma = credentials["karmabot"]["headers"]
    users = state["karmabot"]["users"]
    corteza = credentials["corteza"]["headers"]
    channel = state["corteza"]["channels"][0]["channelID"]
    board = {"board_name": "b", "is_private": False, "hidden_type": 0, "permission_for": 10, "needs_approval": False}
    return {
        "karmabot read": ("GET", "/karmabot/api/v1/users", "", karma, None),
        "karmabot write": ("POST", "/karmabot/api/v1/pluses", "", karma,
                           {"user_ids": [users[1]["id"]], "from_id": users[0]["id"]}),
        "karmabot auth failure": ("GET", "/karmabot/api/v1/users", "", {}, None),
        "dailybot read": ("GET", "/dailybot/v1/kudos/", "limit=10", credentials["dailybot"]["headers"], None),
        "corteza read": ("GET", "/corteza/messaging/channels/", "", corteza, None),
        "corteza write": ("POST", f"/corteza/messaging/channels/{channel}/messages/", "", corteza, {"message": "bench"}),
        "community write": ("POST", "/community/api/v1/boards", "", credentials["community"]["headers"], board),
    }


async def call(app, method: str, path: str, query: str, headers: dict, body) -> int:
    raw = json.dumps(body).encode() if body is not None else b""
    sent = {"host": "127.0.0.1"} | {name.lower(): value for name, value in headers.items()}
    if body is not None:
        sent |= {"content-type": "application/json", "content-length": str(len(raw))}
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
             "headers": [(name.encode(), value.encode()) for name, value in sent.items()],
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8080)}
    status = []

    async def receive():
        return {"type": "http.request", "body": raw, "more_body": False}

    async def send(message):
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(scope, receive, send)
    return status[0]


async def measure(requests: int, runs: int, steady: bool) -> None:
    if steady:
        steady_collector()
    for name in scenarios(MockServer(ticking=False)):
        best = None
        for _ in range(runs):  # a fresh server each run, so writes start from the same state
            server = MockServer(ticking=False)
            request = scenarios(server)[name]
            if steady:  # as `serve` freezes what is alive once its server is built
                gc.collect()
                gc.freeze()
            status = await call(server, *request)
            started = time.perf_counter()
            for _ in range(requests):
                await call(server, *request)
            elapsed = (time.perf_counter() - started) / requests * 1e6
            best = elapsed if best is None else min(best, elapsed)
        print(f"{name:<24} {best:7.1f} us   (status {status})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=3, help="runs per scenario, each on a fresh server; the best is shown")
    parser.add_argument("--default-gc", action="store_true", help="Python's collector settings, not serve's")
    arguments = parser.parse_args()
    asyncio.run(measure(arguments.requests, arguments.runs, not arguments.default_gc))
