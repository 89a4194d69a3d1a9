"""What state costs: writes with `--state-file` at 1 tenant and at 100 (beside no state file),
writes into a tenant holding 20,000 records beside a fresh one's, with two workers sharing Redis
the cost of a commit and of a hand-over at 100 and at 20,000 records, creating a tenant beside a
health round trip, the memory of idle tenants, and resets. Prints the ratios next to their
targets. See bench/README.md.

    python3 bench/state.py [--duration 5] [--connections 32] [--tenants 100] [--records 20000] [--idle 1000]

Needs wrk and redis-server (Debian packages).
"""

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from run import serve, wrk

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's mockserver

from mockserver.app import MockServer  # noqa: E402


def used_tenants(admin: httpx.Client, count: int) -> None:
    """`count` tenants that each used every vendor and wrote once (so the file holds their rows)."""
    for _ in range(count):
        tenant = admin.post("/__admin/tenants").json()
        state = admin.get(f"/__admin/tenants/{tenant['tenant']}/state").json()
        users = state["karmabot"]["users"]
        admin.post("/karmabot/api/v1/pluses", headers=tenant["credentials"]["karmabot"]["headers"],
                   json={"user_ids": [users[1]["id"]], "from_id": users[0]["id"]}).raise_for_status()
        corteza = tenant["credentials"]["corteza"]["headers"]
        channel = state["corteza"]["channels"][0]["channelID"]
        admin.post(f"/corteza/messaging/channels/{channel}/messages/", headers=corteza,
                   json={"message": "hello"}).raise_for_status()


def write_rate(arguments: list[str], tenants: int, options: dict) -> dict:
    """wrk on Karma bot's POST /pluses in a tenant without limits, after `tenants` used tenants
    (its workspace grows by thousands of pluses); then the median of sequential writes spread
    over every tenant, as test suites write (a few records per tenant)."""
    mock, server = serve(*arguments)
    try:
        with httpx.Client(base_url=server, timeout=30) as admin:
            used_tenants(admin, tenants - 1)
            tenant = admin.post("/__admin/tenants", json={"rate_limits": False}).json()
            users = admin.get(f"/__admin/tenants/{tenant['tenant']}/state").json()["karmabot"]["users"]
            result = wrk(server + "/karmabot/api/v1/pluses", method="POST",
                         headers=tenant["credentials"]["karmabot"]["headers"],
                         body={"user_ids": [users[1]["id"]], "from_id": users[0]["id"]}, **options)
            spread = []
            for entry in admin.get("/__admin/tenants").json()["tenants"]:
                admin.post(f"/__admin/tenants/{entry['tenant']}/reset").raise_for_status()
                ids = [user["id"] for user in admin.get(f"/__admin/tenants/{entry['tenant']}/state").json()
                       ["karmabot"]["users"][:2]]
                spread.append((entry["credentials"]["karmabot"]["headers"], {"user_ids": ids[1:], "from_id": ids[0]}))
            writes = iter(spread * (1 + 300 // len(spread)))
            result["spread_ms"] = median_ms(
                lambda: admin.post("/karmabot/api/v1/pluses", headers=(write := next(writes))[0], json=write[1]), 300)
        return result
    finally:
        mock.stop()


def filled_write_rate(state_file: str, records: int, options: dict, rounds: int = 2) -> tuple[dict, dict]:
    """wrk on Karma bot's POST /pluses with `--state-file`, in a fresh tenant and in one that holds
    `records` pluses (imported), in the same server, taking turns `rounds` times (the file grows
    as it goes): the better of each."""
    mock, server = serve("--state-file", state_file)
    try:
        with httpx.Client(base_url=server, timeout=120) as admin:
            for name in ("fresh", "filled"):
                admin.post("/__admin/tenants", json={"tenant": name, "rate_limits": False}).raise_for_status()
                admin.get(f"/__admin/tenants/{name}/state").raise_for_status()  # its workspaces open, so exported
            document = admin.get("/__admin/state/export").json()
            karma = next(entry for entry in document["tenants"] if entry["id"] == "filled")["workspaces"]["karmabot"]
            data = karma["data"]
            users = [user["id"] for user in data["users"]]
            data["pluses"] = pluses(users, data["next_plus_id"], records)
            data["next_plus_id"] += records
            admin.post("/__admin/state/import", json=document).raise_for_status()
            results: dict[str, list[dict]] = {"fresh": [], "filled": []}
            for _ in range(rounds):
                for name in ("filled", "fresh"):
                    tenant = admin.get(f"/__admin/tenants/{name}").json()
                    ids = [user["id"] for user in admin.get(f"/__admin/tenants/{name}/state").json()["karmabot"]["users"]]
                    result = wrk(server + "/karmabot/api/v1/pluses", method="POST",
                                 headers=tenant["credentials"]["karmabot"]["headers"],
                                 body={"user_ids": [ids[1]], "from_id": ids[0]}, **options)
                    assert result["non_2xx"] == 0, f"{name}: {result['non_2xx']:.0%} of the writes were refused"
                    results[name].append(result)
        fresh, filled = (max(results[name], key=lambda result: result["rps"]) for name in ("fresh", "filled"))
        return fresh, filled
    finally:
        mock.stop()


def pluses(users: list[int], first: int, count: int) -> list[dict]:
    return [{"id": first + n, "from_id": users[0], "user_ids": [users[1 + n % (len(users) - 1)]], "channel_id": None,
             "description": f"plus {n}", "score": 1, "private": False, "value_id": None, "achievement_id": None,
             "gif_url": None, "created_at": "2026-01-01T00:00:00Z"} for n in range(count)]


def worker_costs(redis_url: str, records: int, rounds: int) -> dict:
    """Two workers (MockServers on one Redis, in this process): the median time of a Karma bot
    write in a tenant holding `records` pluses, by the worker that holds its lease (a commit), and
    alternating between the workers (each write a hand-over: the lease moves, the changes since
    are read)."""
    async def main() -> dict:
        prefix = f"bench-{uuid.uuid4().hex}"
        first, second = (MockServer(ticking=False, redis_url=redis_url, redis_prefix=prefix) for _ in range(2))
        a, b = (httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://mock") for app in (first, second))
        await a.post("/__admin/tenants", json={"tenant": "filled", "rate_limits": False})
        await a.get("/__admin/tenants/filled/state")
        document = (await a.get("/__admin/state/export")).json()
        data = next(entry for entry in document["tenants"] if entry["id"] == "filled")["workspaces"]["karmabot"]["data"]
        users = [user["id"] for user in data["users"]]
        data["pluses"] = pluses(users, data["next_plus_id"], records)
        data["next_plus_id"] += records
        (await a.post("/__admin/state/import", json=document)).raise_for_status()
        headers = (await a.get("/__admin/tenants/filled")).json()["credentials"]["karmabot"]["headers"]
        body = {"from_id": users[0], "user_ids": [users[1]]}

        async def timed(client: httpx.AsyncClient) -> float:
            started = time.perf_counter()
            (await client.post("/karmabot/api/v1/pluses", json=body, headers=headers)).raise_for_status()
            return (time.perf_counter() - started) * 1000

        for client in (a, b):
            await timed(client)  # each worker has held the tenant (read it whole) once
        commit = statistics.median([await timed(a) for _ in range(rounds)])
        handover = statistics.median([await timed(client) for _ in range(rounds // 2) for client in (b, a)])
        await first.turns.close()
        await second.turns.close()
        return {"commit": commit, "handover": handover}

    return asyncio.run(main())


def redis_server(directory: str) -> tuple[subprocess.Popen, str]:
    socket = Path(directory) / "redis.sock"
    process = subprocess.Popen(["redis-server", "--port", "0", "--unixsocket", str(socket), "--save", "",
                                "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not socket.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return process, f"unix://{socket}"


def median_ms(call, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def tenants_and_resets(arguments: list[str], idle: int) -> dict:
    mock, server = serve(*arguments)
    try:
        with httpx.Client(base_url=server, timeout=120) as admin:
            health = median_ms(lambda: admin.get("/__admin/health").raise_for_status(), 500)
            rss_before = mock.rss_mib()
            create = median_ms(lambda: admin.post("/__admin/tenants").raise_for_status(), idle)
            rss_after = mock.rss_mib()
            tenant = admin.post("/__admin/tenants").json()["tenant"]
            admin.get(f"/__admin/tenants/{tenant}/state").raise_for_status()  # its workspaces open
            one_reset = median_ms(lambda: admin.post(f"/__admin/tenants/{tenant}/reset").raise_for_status(), 50)
            all_reset = median_ms(lambda: admin.post("/__admin/reset").raise_for_status(), 50)
            return {"health": health, "create": create, "kib_per_tenant": (rss_after - rss_before) * 1024 / idle,
                    "one_reset": one_reset, "all_reset": all_reset, "tenants": idle + 2}
    finally:
        mock.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk measurement")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--tenants", type=int, default=100, help="tenants in the larger state file")
    parser.add_argument("--records", type=int, default=20_000, help="pluses in the filled tenant")
    parser.add_argument("--idle", type=int, default=1000, help="idle tenants created for the memory measure")
    args = parser.parse_args()
    if not shutil.which("wrk") or not shutil.which("redis-server"):
        raise SystemExit("wrk or redis-server is missing: apt-get install wrk redis-server")
    options = {"duration": args.duration, "connections": args.connections}
    with tempfile.TemporaryDirectory() as scratch:
        plain = write_rate([], 1, options)
        one = write_rate(["--state-file", str(Path(scratch) / "one.db")], 1, options)
        many = write_rate(["--state-file", str(Path(scratch) / "many.db")], args.tenants, options)
        fresh, filled = filled_write_rate(str(Path(scratch) / "filled.db"), args.records, options)
        redis, redis_url = redis_server(scratch)
        try:
            small, large = (worker_costs(redis_url, count, 400) for count in (100, args.records))
        finally:
            redis.terminate()
        created = tenants_and_resets([], args.idle)
        saved = tenants_and_resets(["--state-file", str(Path(scratch) / "created.db")], args.idle)

    print("Karma bot POST /pluses (wrk), one tenant without limits:")
    print(f"{'':<36}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}  one write spread over the tenants")
    for label, result in ((("no state file"), plain), ("--state-file, 1 tenant", one),
                          (f"--state-file, {args.tenants} tenants", many)):
        print(f"{label:<36}{result['rps']:>9,.0f}{result['p50']:>9.2f}{result['p99']:>9.2f}{result['max']:>9.1f}"
              f"  {result['spread_ms']:.2f} ms median round trip")
    print(f"ratio {args.tenants} tenants / 1 tenant: {many['rps'] / one['rps']:.2f} (target >= 0.8); "
          f"state file / none: {one['rps'] / plain['rps']:.2f}\n")
    print(f"--state-file, one server: fresh tenant {fresh['rps']:,.0f} req/s (p99 {fresh['p99']:.2f} ms), tenant "
          f"holding {args.records:,} pluses {filled['rps']:,.0f} req/s (p99 {filled['p99']:.2f} ms): "
          f"{filled['rps'] / fresh['rps']:.2f} (target >= 0.8)\n")
    print(f"two workers on Redis, Karma bot write (median ms): commit {small['commit']:.2f} at 100 records, "
          f"{large['commit']:.2f} at {args.records:,} ({large['commit'] / small['commit']:.2f}x, target <= 1.5x); "
          f"hand-over {small['handover']:.2f} at 100, {large['handover']:.2f} at {args.records:,} "
          f"({large['handover'] / small['handover']:.2f}x, target <= 1.5x)\n")
    for label, result in (("no state file", created), ("--state-file", saved)):
        print(f"{label}: POST /__admin/tenants median {result['create']:.2f} ms, GET /__admin/health "
              f"{result['health']:.2f} ms: {result['create'] / result['health']:.1f}x (target <= 5x); "
              f"RSS {result['kib_per_tenant']:.1f} KiB per idle tenant, {result['kib_per_tenant'] * 1000 / 1024:.1f} "
              f"MiB per 1,000 (target <= 32 KiB); reset of one tenant {result['one_reset']:.2f} ms, "
              f"of all {result['tenants']:,} {result['all_reset']:.2f} ms")


if __name__ == "__main__":
    main()
