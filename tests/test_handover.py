"""`serve --workers 2`: each tenant is answered by its home worker, a connection moving there with
its request (mockserver/handover.py); requests that cannot move are answered where they arrive;
a worker killed mid-burst loses no acknowledged write."""

import asyncio
import os
import signal
import socket
import time
import uuid

import httpx

from mockserver.handover import Handover
from mockserver.testing import running
from tests.served import Served
from tests.test_workers_failures import QUIET, new_tenant, pluses


def two_workers(redis_url: str) -> Served:
    """`serve --workers 2`, once both workers answer."""
    served = Served(*QUIET, "--workers", "2", "--redis", redis_url, "--redis-prefix", f"test-{uuid.uuid4().hex}")
    worker_pids(served.url)
    return served


def worker_pids(url: str) -> set[int]:
    """The worker processes, as connections of their own find them (the kernel picks)."""
    pids: set[int] = set()
    deadline = time.monotonic() + 30
    while len(pids) < 2 and time.monotonic() < deadline:
        with httpx.Client(base_url=url) as client:
            pids.add(int(client.get("/__admin/health").headers["x-mockserver-pid"]))
    assert len(pids) == 2
    return pids


def post(client: httpx.Client, headers: dict, body: str) -> httpx.Response:
    return client.post("/karmabot/api/v1/pluses", content=body, headers=headers | {"content-type": "application/json"})


def test_a_connection_is_answered_by_the_home_worker_of_each_tenant(redis_url):
    server = two_workers(redis_url)
    try:
        tenants = [new_tenant(server.url) for _ in range(2)]  # numbers 2 and 3: one home each
        answered: dict[str, list[int]] = {tenant: [] for tenant, _, _ in tenants}
        with httpx.Client(base_url=server.url, limits=httpx.Limits(max_connections=1)) as client:  # one connection
            for _ in range(4):
                for tenant, headers, body in tenants:
                    assert post(client, headers, body).status_code == 201
                    answered[tenant].append(int(client.get("/__admin/health").headers["x-mockserver-pid"]))
        # The first request may be answered where it arrived (a worker that had not heard of the
        # tenant yet); from then on, every request of a tenant by one worker, another's by the other.
        homes = [set(pids[1:]) for pids in answered.values()]
        assert all(len(home) == 1 for home in homes) and homes[0] != homes[1]
        for tenant, _, _ in tenants:  # every write where the next reader finds it
            assert len(pluses(server.url, tenant)) == 4
    finally:
        server.stop()


def exchange(sock: socket.socket, *chunks: bytes, answers: int = 1) -> list[tuple[int, bytes]]:
    """Send the chunks (a pause between them), then read `answers` answers: (status, body)."""
    for index, chunk in enumerate(chunks):
        if index:
            time.sleep(0.2)
        sock.sendall(chunk)
    reader, got = sock.makefile("rb"), []
    for _ in range(answers):
        status = int(reader.readline().split()[1])
        length = 0
        while (line := reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        got.append((status, reader.read(length)))
    return got


def request(method: str, path: str, headers: dict, body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: mock", f"Content-Length: {len(body)}",
             "Content-Type: application/json", *(f"{name}: {value}" for name, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def test_requests_that_cannot_move_are_answered_where_they_arrive(redis_url):
    server = two_workers(redis_url)
    try:
        tenants = [new_tenant(server.url) for _ in range(2)]
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            # Two requests for two tenants in one read (pipelined): both answered, in order.
            (first, _), (second, _) = exchange(sock, *[b"".join(request("POST", "/karmabot/api/v1/pluses", headers,
                                                                          body.encode())
                                                                  for _, headers, body in tenants)], answers=2)
            assert first == second == 201
            # A head split over two reads.
            wanted = request("GET", "/karmabot/api/v1/users", tenants[1][1])
            [(status, _)] = exchange(sock, wanted[:20], wanted[20:])
            assert status == 200
            # A first read larger than a hand-over carries (64 KiB).
            large = tenants[0][2].encode() + b" " * 70_000
            [(status, _)] = exchange(sock, request("POST", "/karmabot/api/v1/pluses", tenants[0][1], large))
            assert status == 201
            # and the connection goes on.
            [(status, _)] = exchange(sock, request("POST", "/karmabot/api/v1/pluses", tenants[0][1],
                                                   tenants[0][2].encode()))
            assert status == 201
        for tenant, _, _ in tenants:
            assert len(pluses(server.url, tenant)) == (3 if tenant == tenants[0][0] else 1)
    finally:
        server.stop()


def test_a_killed_worker_loses_no_acknowledged_write(redis_url):
    """SIGKILL of one worker mid-burst: its connections (and those handed to it) break, every write
    acknowledged is kept, and every tenant goes on being written (uvicorn starts a new worker)."""
    server = two_workers(redis_url)
    tenants = [new_tenant(server.url) for _ in range(4)]
    victim = min(worker_pids(server.url))
    acknowledged: dict[str, set[int]] = {tenant: set() for tenant, _, _ in tenants}

    async def writer(tenant: str, headers: dict, body: str) -> None:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            for _ in range(40):
                try:
                    answer = await client.post("/karmabot/api/v1/pluses", content=body,
                                               headers=headers | {"content-type": "application/json"})
                except httpx.TransportError:  # a connection the killed worker had: never acknowledged
                    continue
                if answer.status_code == 201:
                    acknowledged[tenant].add(answer.json()["id"])

    async def killer() -> None:
        while sum(map(len, acknowledged.values())) < 60:
            await asyncio.sleep(0.005)
        os.kill(victim, signal.SIGKILL)

    async def main():
        await asyncio.gather(killer(), *[writer(*tenant) for tenant in tenants * 2])

    try:
        asyncio.run(main())
        for tenant, headers, body in tenants:
            assert acknowledged[tenant] and acknowledged[tenant] <= pluses(server.url, tenant)
            with httpx.Client(base_url=server.url, timeout=60) as client:
                answer = post(client, headers, body)
            assert answer.status_code == 201 and answer.json()["id"] in pluses(server.url, tenant)
    finally:
        server.stop()


def test_the_home_of_a_request_is_read_from_each_vendors_credentials():
    """Every way the five specs present a credential (bearer, basic, header, query and cookie keys)
    names the tenant's home; a head that names none is answered where it arrived."""
    with running() as server:
        handover = Handover(server.app.state, "test", 2)
        for _ in range(2):  # numbers 2 and 3: homes 0 and 1
            admin = server.admin.post("/__admin/tenants").json()
            number = server.app.state.store.tenants[admin["tenant"]].number
            credentials = admin["credentials"]
            jwt, apikey = credentials["corteza"]["token"], credentials["kudosnow"]["api_key"]
            heads = [("/karmabot/api/v1/users", credentials["karmabot"]["headers"]),
                     ("/dailybot/v1/kudos/", credentials["dailybot"]["headers"]),
                     ("/community/api/v1/boards", credentials["community"]["headers"]),
                     ("/corteza/messaging/channels/", credentials["corteza"]["headers"]),
                     (f"/corteza/messaging/channels/?jwt={jwt}", {}),
                     ("/corteza/messaging/channels/", {"Cookie": f"jwt={jwt}"}),
                     ("/kudosnow/v1/redemptions", credentials["kudosnow"]["headers"]),
                     (f"/kudosnow/v1/redemptions?apikey={apikey}", {})]
            for target, headers in heads:
                assert handover.home(head(target, headers)) == number % 2, target
        for unknown in (head("/karmabot/api/v1/users", {}),
                        head("/karmabot/api/v1/users", {"Authorization": "Bearer krm_9_unknown"}),
                        head("/__admin/tenants", credentials["karmabot"]["headers"]),
                        head("/karmabot/api/v1/users", credentials["karmabot"]["headers"])[:-2]):  # head unfinished
            assert handover.home(unknown) is None


def head(target: str, headers: dict) -> bytes:
    return (f"GET {target} HTTP/1.1\r\nHost: mock\r\n" + "".join(f"{name}: {value}\r\n" for name, value in headers.items())
            + "\r\n").encode()
