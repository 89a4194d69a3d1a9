"""Throughput from one worker to two, with state shared through Redis (sharded by tenant), beside
the plain single process (no Redis); prints requests/s, p50/p99 and the ratios to the plain
process measured in the same run. See bench/README.md.

    python3 bench/workers.py [--duration 5] [--connections 32] [--workers 1 2]

Needs wrk and redis-server (Debian packages); starts a private redis-server on a Unix socket.
"""

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from run import serve, wrk

TENANTS = 8  # of the multi-tenant scenarios, spread over every connection


def scenarios(server: str) -> list[tuple]:
    """(name, path, wrk options): Karma bot's cached list read and a write, in one tenant without
    limits (it cannot scale; it must not collapse), then reads, writes, and both (one of each in
    turn) spread over TENANTS tenants: each connection's requests go to each tenant in turn."""
    tenants = []
    for _ in range(TENANTS):
        tenant = httpx.post(server + "/__admin/tenants", json={"rate_limits": False}).json()
        users = httpx.get(f"{server}/__admin/tenants/{tenant['tenant']}/state").json()["karmabot"]["users"]
        tenants.append((tenant["credentials"]["karmabot"]["headers"]["Authorization"],
                        json.dumps({"user_ids": [users[1]["id"]], "from_id": users[0]["id"]})))
    headers = {"Authorization": tenants[0][0]}
    return [("read", "/karmabot/api/v1/users", {"headers": headers}),
            ("write", "/karmabot/api/v1/pluses", {"method": "POST", "headers": headers, "body": json.loads(tenants[0][1])}),
            (f"{TENANTS} tenants, reads", "/karmabot/api/v1/users", {"lua": _spread(tenants, every=0)}),
            (f"{TENANTS} tenants, writes", "/karmabot/api/v1/users", {"lua": _spread(tenants, every=1)}),
            (f"{TENANTS} tenants, mixed", "/karmabot/api/v1/users", {"lua": _spread(tenants, every=2)})]


def _spread(tenants: list[tuple[str, str]], every: int) -> str:
    """A wrk script whose requests go to each tenant in turn: list reads, with every `every`-th
    a write instead (0: none)."""
    entries = ", ".join(f"{{{json.dumps(auth)}, {json.dumps(body)}}}" for auth, body in tenants)
    return f"""
local tenants = {{{entries}}}
local n = 0
request = function()
  n = n + 1
  local tenant = tenants[(n % #tenants) + 1]
  local headers = {{["Authorization"] = tenant[1], ["Content-Type"] = "application/json"}}
  if {every} > 0 and n % {every} == 0 then
    return wrk.format("POST", "/karmabot/api/v1/pluses", headers, tenant[2])
  end
  return wrk.format("GET", "/karmabot/api/v1/users", headers)
end
"""


def measure(arguments: list[str], options: dict) -> dict[str, dict]:
    mock, server = serve(*arguments)
    try:
        time.sleep(1)  # every worker up, not only the first
        return {name: wrk(server + path, **scenario, **options) for name, path, scenario in scenarios(server)}
    finally:
        mock.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    for tool in ("wrk", "redis-server"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is needed: apt-get install {tool}")
    options = {"duration": args.duration, "connections": args.connections}
    with tempfile.TemporaryDirectory() as directory:
        socket = Path(directory) / "redis.sock"
        redis = subprocess.Popen(["redis-server", "--port", "0", "--unixsocket", str(socket), "--save", "",
                                  "--appendonly", "no"], stdout=subprocess.DEVNULL)
        try:
            while not socket.exists():
                time.sleep(0.05)
            url = f"unix://{socket}"
            runs = {"one process, no Redis": measure([], options)}
            for count in args.workers:
                runs[f"{count} worker(s), Redis"] = measure(["--workers", str(count), "--redis", url], options)
        finally:
            redis.terminate()
            redis.wait(timeout=10)

    plain = runs["one process, no Redis"]
    print(f"{'server':<24} {'scenario':<18} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"
          "  vs one process (req/s, p99)")
    for label, results in runs.items():
        for name, result in results.items():
            ratio, slower = result["rps"] / plain[name]["rps"], result["p99"] / plain[name]["p99"]
            print(f"{label:<24} {name:<18} {result['rps']:>8.0f} {result['p50']:>8.2f} {result['p99']:>8.2f} "
                  f"{result['max']:>8.1f}  {ratio:.2f}x, {slower:.2f}x")
    if len(args.workers) > 1:
        first, last = args.workers[0], args.workers[-1]
        for name in plain:
            scaling = runs[f"{last} worker(s), Redis"][name]["rps"] / runs[f"{first} worker(s), Redis"][name]["rps"]
            print(f"scaling {first} -> {last} workers, {name}: {scaling:.2f}x")


if __name__ == "__main__":
    main()
