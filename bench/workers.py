"""Throughput from one worker to two, with state shared through Redis, beside the plain single
process (no Redis); prints requests/s, p50/p99 and the ratios. See bench/README.md.

    python3 bench/workers.py [--duration 5] [--connections 32] [--workers 1 2]

Needs wrk and redis-server (Debian packages); starts a private redis-server on a Unix socket.
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from run import Process, free_port, wait_for, wrk


def scenarios(server: str) -> list[tuple]:
    """(name, path, wrk options): Karma bot's cached list read and a write, in a tenant without limits."""
    tenant = httpx.post(server + "/__admin/tenants", json={"rate_limits": False}).json()
    headers = tenant["credentials"]["karmabot"]["headers"]
    users = httpx.get(f"{server}/__admin/tenants/{tenant['tenant']}/state").json()["karmabot"]["users"]
    return [("read", "/karmabot/api/v1/users", {"headers": headers}),
            ("write", "/karmabot/api/v1/pluses", {"method": "POST", "headers": headers,
                                                  "body": {"user_ids": [users[1]["id"]], "from_id": users[0]["id"]}})]


def measure(arguments: list[str], options: dict) -> dict[str, dict]:
    port = free_port()
    server = f"http://127.0.0.1:{port}"
    mock = Process([sys.executable, "-m", "mockserver", "serve", "--port", str(port), "--clock", "frozen", *arguments])
    try:
        wait_for(server + "/__admin/health")
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
    print(f"{'server':<24} {'scenario':<8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}  vs one process")
    for label, results in runs.items():
        for name, result in results.items():
            ratio = result["rps"] / plain[name]["rps"]
            print(f"{label:<24} {name:<8} {result['rps']:>8.0f} {result['p50']:>8.2f} {result['p99']:>8.2f} "
                  f"{result['max']:>8.1f}  {ratio:.2f}x")
    if len(args.workers) > 1:
        first, last = args.workers[0], args.workers[-1]
        for name in plain:
            scaling = runs[f"{last} worker(s), Redis"][name]["rps"] / runs[f"{first} worker(s), Redis"][name]["rps"]
            print(f"scaling {first} -> {last} workers, {name}: {scaling:.2f}x")


if __name__ == "__main__":
    main()
