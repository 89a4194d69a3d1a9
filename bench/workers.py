"""Throughput of `serve --workers N --redis` (state shared through Redis, sharded by tenant) beside
the plain single process (no Redis), all started at once and measured in interleaved rounds;
prints requests/s, p50/p99 and the ratios to the plain process. See bench/README.md.

    python3 bench/workers.py [--duration 4] [--rounds 3] [--connections 32] [--workers 2]

Needs wrk and redis-server (Debian packages); starts a private redis-server on a Unix socket.
"""

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from run import serve, wrk

TENANTS = 8  # of the multi-tenant scenarios
PLAIN = "one process, no Redis"


def scenarios(server: str) -> list[tuple]:
    """(name, path, wrk options), Karma bot's cached list read and a write (`POST /pluses`) in
    tenants without limits, as suites use a shared server:
    - one tenant on every connection (it cannot scale; it must not collapse);
    - TENANTS suites, each pinned to its own tenant on its own 4 connections (a wrk thread each);
    - TENANTS tenants visited by every connection in turn (the worst case for affinity)."""
    tenants = []
    for _ in range(TENANTS):
        tenant = httpx.post(server + "/__admin/tenants", json={"rate_limits": False}).json()
        users = httpx.get(f"{server}/__admin/tenants/{tenant['tenant']}/state").json()["karmabot"]["users"]
        tenants.append((tenant["credentials"]["karmabot"]["headers"]["Authorization"],
                        json.dumps({"user_ids": [users[1]["id"]], "from_id": users[0]["id"]})))
    headers = {"Authorization": tenants[0][0]}
    return [("one tenant, reads", READ, {"headers": headers}),
            ("one tenant, writes", WRITE, {"method": "POST", "headers": headers, "body": json.loads(tenants[0][1])}),
            (f"{TENANTS} pinned, reads", READ, {"lua": _pinned(tenants, write=False), "threads": TENANTS}),
            (f"{TENANTS} pinned, writes", WRITE, {"lua": _pinned(tenants, write=True), "threads": TENANTS}),
            (f"{TENANTS} visited, reads", READ, {"lua": _visiting(tenants, write=False)}),
            (f"{TENANTS} visited, writes", WRITE, {"lua": _visiting(tenants, write=True)})]


READ, WRITE = "/karmabot/api/v1/users", "/karmabot/api/v1/pluses"


def _entries(tenants: list[tuple[str, str]]) -> str:
    return ", ".join(f"{{{json.dumps(auth)}, {json.dumps(body)}}}" for auth, body in tenants)


def _pinned(tenants: list[tuple[str, str]], write: bool) -> str:
    """A wrk script whose every thread (and so its connections) sends one tenant's requests."""
    return f"""
local tenants = {{{_entries(tenants)}}}
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("index", threads)
end
function init(args)
  local tenant = tenants[index]
  wrk.headers["Authorization"] = tenant[1]
  if {str(write).lower()} then
    wrk.method, wrk.body = "POST", tenant[2]
    wrk.headers["Content-Type"] = "application/json"
  end
end
"""


def _visiting(tenants: list[tuple[str, str]], write: bool) -> str:
    """A wrk script whose requests go to each tenant in turn."""
    return f"""
local tenants = {{{_entries(tenants)}}}
local n = 0
request = function()
  n = n + 1
  local tenant = tenants[(n % #tenants) + 1]
  local headers = {{["Authorization"] = tenant[1], ["Content-Type"] = "application/json"}}
  if {str(write).lower()} then
    return wrk.format("POST", "{WRITE}", headers, tenant[2])
  end
  return wrk.format("GET", "{READ}", headers)
end
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=4, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are printed")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, nargs="+", default=[2])
    args = parser.parse_args()
    for tool in ("wrk", "redis-server"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is needed: apt-get install {tool}")
    options = {"duration": args.duration, "connections": args.connections}

    results: dict[tuple[str, str], list[dict]] = {}
    with tempfile.TemporaryDirectory() as directory:
        socket = Path(directory) / "redis.sock"
        redis = subprocess.Popen(["redis-server", "--port", "0", "--unixsocket", str(socket), "--save", "",
                                  "--appendonly", "no"], stdout=subprocess.DEVNULL)
        servers = {}
        try:
            while not socket.exists():
                time.sleep(0.05)
            servers[PLAIN] = serve()
            for count in args.workers:
                servers[f"{count} worker(s), Redis"] = serve("--workers", str(count), "--redis", f"unix://{socket}",
                                                             "--redis-prefix", f"bench{count}")
            time.sleep(1)  # every worker up, not only the first
            plans = {label: scenarios(server) for label, (_, server) in servers.items()}
            for label, (_, server) in servers.items():  # warm-up: workspaces opened, connections at home
                for _, path, scenario in plans[label]:
                    wrk(server + path, **scenario, **(options | {"duration": 1}))
            for _ in range(args.rounds):  # each scenario on each server in turn: drift hits all alike
                for index in range(len(plans[PLAIN])):
                    for label, (_, server) in servers.items():
                        name, path, scenario = plans[label][index]
                        results.setdefault((label, name), []).append(wrk(server + path, **scenario, **options))
        finally:
            for process, _ in servers.values():
                process.stop()
            redis.terminate()
            redis.wait(timeout=10)

    def median(values: list[float]) -> float:
        return statistics.median(values)

    print(f"{'server':<24} {'scenario':<20} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}"
          f"  vs one process (req/s, p99; median of {args.rounds} interleaved rounds, range)")
    for (label, name), runs in results.items():
        plain = results[PLAIN, name]
        ratios = [run["rps"] / base["rps"] for run, base in zip(runs, plain, strict=True)]
        slower = [run["p99"] / base["p99"] for run, base in zip(runs, plain, strict=True)]
        print(f"{label:<24} {name:<20} {median([r['rps'] for r in runs]):>8.0f} {median([r['p50'] for r in runs]):>8.2f} "
              f"{median([r['p99'] for r in runs]):>8.2f}  {median(ratios):.2f}x, {median(slower):.2f}x "
              f"({min(ratios):.2f}-{max(ratios):.2f}x, {min(slower):.2f}-{max(slower):.2f}x)")


if __name__ == "__main__":
    main()
