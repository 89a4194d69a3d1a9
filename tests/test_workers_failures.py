"""Servers sharing state through Redis when things go wrong: a worker killed mid-burst, Redis
losing its data, a hostile body, a body that never arrives. Two `serve` processes on two ports
stand for the workers (one of them can be killed alone)."""

import asyncio
import json
import signal
import socket
import uuid

import httpx

from mockserver.app import MockServer
from tests.redis_server import RedisServer
from tests.served import Served

QUIET = ("--clock", "frozen", "--log-level", "warning")


def two_servers(redis_url: str) -> tuple[Served, Served]:
    prefix = f"test-{uuid.uuid4().hex}"
    first = Served(*QUIET, "--redis", redis_url, "--redis-prefix", prefix)
    return first, Served(*QUIET, "--redis", redis_url, "--redis-prefix", prefix, "--redis-join")


def new_tenant(url: str, **body) -> tuple[str, dict, str]:
    """A tenant without rate limits: its id, Karma bot headers and a plus body."""
    admin = httpx.post(url + "/__admin/tenants", json={"rate_limits": False, **body}).json()
    users = httpx.get(f"{url}/__admin/tenants/{admin['tenant']}/state").json()["karmabot"]["users"]
    return (admin["tenant"], admin["credentials"]["karmabot"]["headers"],
            json.dumps({"user_ids": [users[1]["id"]], "from_id": users[0]["id"]}))


def pluses(url: str, tenant: str) -> set[int]:
    return {plus["id"] for plus in httpx.get(f"{url}/__admin/tenants/{tenant}/state").json()["karmabot"]["pluses"]}


def test_a_worker_killed_mid_burst_loses_no_acknowledged_write(redis_url):
    first, second = two_servers(redis_url)
    tenants = [new_tenant(first.url) for _ in range(4)]
    acknowledged: dict[str, set[int]] = {tenant: set() for tenant, _, _ in tenants}
    killed = asyncio.Event()

    async def writer(client_index: int, tenant: str, headers: dict, body: str, clients) -> None:
        for number in range(60):
            client = clients[(number + client_index) % 2] if not killed.is_set() else clients[1]
            try:
                answer = await client.post("/karmabot/api/v1/pluses", headers=headers | {"content-type": "application/json"},
                                           content=body)
            except httpx.TransportError:  # the killed server: never acknowledged
                continue
            if answer.status_code == 201:
                acknowledged[tenant].add(answer.json()["id"])

    async def killer() -> None:
        while sum(map(len, acknowledged.values())) < 80:
            await asyncio.sleep(0.005)
        first.process.kill()  # SIGKILL, its leases and in-flight writes with it
        killed.set()

    async def main():
        async with httpx.AsyncClient(base_url=first.url, timeout=60) as a, \
                httpx.AsyncClient(base_url=second.url, timeout=60) as b:
            await asyncio.gather(killer(), *[writer(index, *tenant, clients=(a, b))
                                             for index, tenant in enumerate(tenants * 2)])

    try:
        asyncio.run(main())
        assert killed.is_set()
        for tenant, _, _ in tenants:
            assert acknowledged[tenant] and acknowledged[tenant] <= pluses(second.url, tenant)
        # and the survivor goes on writing to every tenant
        for tenant, headers, body in tenants:
            answer = httpx.post(second.url + "/karmabot/api/v1/pluses", content=body, timeout=60,
                                headers=headers | {"content-type": "application/json"})
            assert answer.status_code == 201 and answer.json()["id"] in pluses(second.url, tenant)
    finally:
        first.kill()
        second.stop()


def test_redis_losing_its_data_never_leaves_two_versions_of_a_tenant(tmp_path):
    """kill -9 of Redis and an empty restart: both servers start over from what Redis holds (a new
    server's state), and afterwards agree on every tenant."""
    redis = RedisServer(tmp_path)
    first, second = two_servers(redis.url)
    try:
        for server in (first, second):
            tenant, headers, body = new_tenant(server.url)
            for each in (first, second):
                assert httpx.post(each.url + "/karmabot/api/v1/pluses", content=body,
                                  headers=headers | {"content-type": "application/json"}).status_code == 201
        default = httpx.get(first.url + "/__admin/tenants").json()["tenants"][0]["credentials"]["karmabot"]["headers"]
        redis.kill()
        for server in (first, second):  # Redis away: refused, in the dialect
            assert httpx.get(server.url + "/karmabot/api/v1/users", headers=default).status_code == 503
        redis.start()
        for server in (first, second):  # the first request after may still meet the old connection
            for _ in range(2):
                httpx.get(server.url + "/karmabot/api/v1/users", headers=default)
        tenant, headers, body = new_tenant(second.url, tenant="after")
        assert httpx.post(first.url + "/karmabot/api/v1/pluses", content=body,
                          headers=headers | {"content-type": "application/json"}).status_code == 201
        listed = [httpx.get(server.url + "/__admin/tenants").json() for server in (first, second)]
        assert listed[0] == listed[1]
        assert [entry["tenant"] for entry in listed[0]["tenants"]] == ["default", "after"]
        for entry in listed[0]["tenants"]:
            states = [httpx.get(f"{server.url}/__admin/tenants/{entry['tenant']}/state").content
                      for server in (first, second)]
            assert states[0] == states[1]
            reads = [httpx.get(server.url + "/karmabot/api/v1/users",
                               headers=entry["credentials"]["karmabot"]["headers"]).content for server in (first, second)]
            assert reads[0] == reads[1]
        assert len(pluses(second.url, "after")) == len(pluses(first.url, "after")) > 0
    finally:
        first.stop()
        second.stop()
        redis.stop()


def test_redis_stopped_for_ten_seconds_loses_nothing_and_both_servers_agree(tmp_path):
    """SIGSTOP of Redis for 10 s under a write burst on two servers of two workers each: requests
    wait for it (or are refused, 503, when a lease ran out meanwhile: Redis judges by its own
    clock); every write acknowledged is kept, ids never repeat (never two holders of a tenant),
    and afterwards both servers agree on every tenant."""
    redis = RedisServer(tmp_path)
    prefix = f"test-{uuid.uuid4().hex}"
    first = Served(*QUIET, "--workers", "2", "--redis", redis.url, "--redis-prefix", prefix)
    second = Served(*QUIET, "--workers", "2", "--redis", redis.url, "--redis-prefix", prefix, "--redis-join")
    tenants = [new_tenant(first.url) for _ in range(4)]
    acknowledged: dict[str, list[int]] = {tenant: [] for tenant, _, _ in tenants}
    statuses: list[int] = []

    async def writer(index: int, tenant: str, headers: dict, body: str) -> None:
        async with httpx.AsyncClient(timeout=60) as client:
            for number in range(30):
                url = (first.url, second.url)[(index + number) % 2]
                answer = await client.post(url + "/karmabot/api/v1/pluses", content=body,
                                           headers=headers | {"content-type": "application/json"})
                statuses.append(answer.status_code)
                if answer.status_code == 201:
                    acknowledged[tenant].append(answer.json()["id"])

    async def stopper() -> None:
        while sum(map(len, acknowledged.values())) < 40:
            await asyncio.sleep(0.005)
        redis.process.send_signal(signal.SIGSTOP)
        await asyncio.sleep(10)
        redis.process.send_signal(signal.SIGCONT)

    async def main():
        await asyncio.gather(stopper(), *[writer(index, *tenant) for index, tenant in enumerate(tenants * 2)])

    try:
        asyncio.run(main())
        assert set(statuses) <= {201, 503} and statuses.count(201) > 40
        for tenant, _, _ in tenants:
            kept = [pluses(server.url, tenant) for server in (first, second)]
            assert kept[0] == kept[1]
            assert len(acknowledged[tenant]) == len(set(acknowledged[tenant])) and set(acknowledged[tenant]) <= kept[0]
    finally:
        first.stop()
        second.stop()
        redis.stop()


def test_a_deeply_nested_body_breaks_nothing_for_other_requests(redis_url):
    """300 levels of JSON, with and without credentials: refused, journaled as text, and every
    later write on either worker goes through."""
    deep = b"[" * 300 + b"]" * 300

    async def main():
        first, second = (MockServer(ticking=False, redis_url=redis_url, redis_prefix=prefix) for prefix in
                         [f"test-{uuid.uuid4().hex}"] * 2)
        a, b = (httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://mock") for app in (first, second))
        created = (await a.post("/__admin/tenants", json={"rate_limits": False})).json()
        tenant, headers = created["tenant"], created["credentials"]["karmabot"]["headers"]
        users = (await b.get(f"/__admin/tenants/{tenant}/state")).json()["karmabot"]["users"]
        plus = {"user_ids": [users[1]["id"]], "from_id": users[0]["id"]}
        refused = [await a.post("/karmabot/api/v1/pluses", content=deep,
                                headers=headers | {"content-type": "application/json"}),
                   await b.post("/karmabot/api/v1/pluses", content=deep, headers={"content-type": "application/json"})]
        later = [await (a, b)[n % 2].post("/karmabot/api/v1/pluses", json=plus, headers=headers) for n in range(30)]
        seen = (await b.get(f"/__admin/tenants/{tenant}")).status_code
        journal = (await a.get("/__admin/requests")).json()["requests"]
        return refused, later, seen, journal

    refused, later, seen, journal = asyncio.run(main())
    assert [answer.status_code for answer in refused] == [400, 401]
    assert [answer.status_code for answer in later] == [201] * 30 and seen == 200
    kept = [entry for entry in journal if entry["status"] in (400, 401)]
    assert [entry["body"] for entry in kept] == [deep.decode()] * 2


def test_an_admin_body_that_never_arrives_holds_up_nobody(redis_url):
    first, second = two_servers(redis_url)
    slow = socket.create_connection(("127.0.0.1", first.port))
    try:
        slow.sendall(b"POST /__admin/tenants HTTP/1.1\r\nHost: mock\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{")
        tenant, headers, body = new_tenant(second.url)
        for server in (first, second):
            assert httpx.get(server.url + "/__admin/tenants").status_code == 200
            assert httpx.post(server.url + "/karmabot/api/v1/pluses", content=body,
                              headers=headers | {"content-type": "application/json"}).status_code == 201
        assert httpx.post(first.url + "/__admin/tenants").status_code == 201
        slow.setblocking(False)
        try:
            unanswered = slow.recv(1) == b""  # closed without an answer would also be wrong
        except BlockingIOError:
            unanswered = True
        assert unanswered  # still waiting for its body, while everyone else was answered
    finally:
        slow.close()
        first.stop()
        second.stop()
