"""Several server processes sharing their state through Redis behave exactly like one process.

The in-process tests drive two servers (two state replicas, as two workers hold) against a real
redis-server, choosing which one answers each request, and compare every answer with what a
single plain server gives for the same requests. The last test runs `mockserver serve --workers 2`.
"""

import asyncio
import pickle
import subprocess
import sys
import uuid

import httpx
import orjson
import pytest
import redis

from mockserver.app import MockServer
from tests.receiver import Receiver
from tests.redis_server import RedisServer
from tests.served import Served


def workers(redis_url: str, count: int = 2, **options) -> list[MockServer]:
    """`count` servers sharing one fresh namespace, as `serve --workers` starts them."""
    prefix = f"test-{uuid.uuid4().hex}"
    return [MockServer(ticking=False, redis_url=redis_url, redis_prefix=prefix, **options) for _ in range(count)]


def clients(apps) -> list[httpx.AsyncClient]:
    return [httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://mock") for app in apps]


async def play(apps: list, steps) -> list[tuple]:
    """Each step (method, path, request options, or a function of the answers so far giving them)
    on the servers in turn; what each answer was."""
    seen, answers, senders = [], [], clients(apps)
    for number, step in enumerate(steps):
        method, path, options = step(answers) if callable(step) else step
        response = await senders[number % len(apps)].request(method, path, **options)
        answers.append(response)
        seen.append((number, method, path, response.status_code, sorted(response.headers.items()), response.content))
    return seen


def script() -> list:
    """Admin calls and every vendor's reads and writes, rate limits, clocks, faults, journal,
    reset and deletion; later steps use the credentials and ids earlier answers gave."""
    def creds(answers, vendor):
        return answers[0].json()["credentials"][vendor]

    def headers(vendor):
        return lambda answers: creds(answers, vendor)["headers"]

    def call(method, path, vendor=None, **options):
        def step(answers):
            if vendor is not None:
                options["headers"] = headers(vendor)(answers)
            resolved = {key: value(answers) if callable(value) else value for key, value in options.items()}
            return method, path(answers) if callable(path) else path, resolved
        return step

    def users(answers, vendor):
        return answers[1].json()[vendor]["users"]

    plus = call("POST", "/karmabot/api/v1/pluses", "karmabot",
                json=lambda a: {"user_ids": [users(a, "karmabot")[1]["id"]], "from_id": users(a, "karmabot")[0]["id"]})
    kudo = call("POST", "/dailybot/v1/kudos/", "dailybot",
                json=lambda a: {"receivers": [creds(a, "dailybot")["other_users"][0]["user_uuid"]], "content": "hi"})
    channel = lambda a: a[1].json()["corteza"]["channels"][0]["channelID"]  # noqa: E731
    kudosnow = lambda a: {  # noqa: E731
        "sender": {"kind": "email", "value": users(a, "kudosnow")[0]["email"]}, "message": {"body": "thanks"},
        "recipients": [{"kind": "email", "value": users(a, "kudosnow")[1]["email"]}], "level": "good_job",
        "qualities": []}
    return [
        ("POST", "/__admin/tenants", {"json": {"tenant": "t1"}}),
        ("GET", "/__admin/tenants/t1/state", {}),
        call("GET", "/karmabot/api/v1/users", "karmabot"),
        plus,
        call("GET", "/karmabot/api/v1/users", "karmabot"),  # the other server sees the plus
        call("GET", "/karmabot/api/v1/nowhere", "karmabot"),  # matches no operation: journaled as t1's
        plus, plus, plus, plus, plus,  # six a minute: the next is refused, whichever server counts
        plus,
        ("POST", "/__admin/tenants/t1/clock", {"json": {"advance_seconds": 61}}),
        plus,
        kudo, call("GET", "/dailybot/v1/kudos/?limit=5", "dailybot"), kudo,  # one per 5 minutes
        call("POST", "/kudosnow/v1/kudos", "kudosnow", json=kudosnow),
        call("GET", "/kudosnow/v1/redemptions", "kudosnow"),
        call("POST", "/community/api/v1/boards", "community",
             json={"board_name": "b", "is_private": False, "hidden_type": 0, "permission_for": 10,
                   "needs_approval": False}),
        call("GET", "/community/api/v1/boards", "community"),
        call("POST", lambda a: f"/corteza/messaging/channels/{channel(a)}/messages/", "corteza",
             json={"message": "hello"}),
        call("GET", "/corteza/messaging/search/messages", "corteza", params=lambda a: {"channelID": channel(a)}),
        call("POST", "/corteza/messaging/webhooks/", "corteza", json=lambda a: {
            "channelID": channel(a), "kind": "incoming", "userID": creds(a, "corteza")["other_user_ids"][4]}),
        ("GET", "/__admin/tenants/t1/state", {}),
        lambda a: ("POST", "/corteza/messaging/webhooks/{id}/{authToken}".format(
            **a[-1].json()["corteza"]["webhooks"][0]), {"json": {"content": "from outside"}}),  # public
        ("POST", "/__admin/faults", {"json": {"vendor": "karmabot", "kind": "latency", "latency_ms": 5,
                                              "count": 1}}),
        call("GET", "/karmabot/api/v1/users", "karmabot"),  # waits out of turn
        ("POST", "/__admin/faults", {"json": {"vendor": "karmabot", "kind": "status", "status": 503, "count": 2}}),
        call("GET", "/karmabot/api/v1/users", "karmabot"),
        call("GET", "/karmabot/api/v1/users", "karmabot"),
        call("GET", "/karmabot/api/v1/users", "karmabot"),
        ("POST", "/__admin/faults", {"json": {"vendor": "kudosnow", "kind": "status", "status": 500,
                                              "probability": 0.5}}),
        *[call("GET", "/kudosnow/v1/redemptions", "kudosnow")] * 6,  # the seeded draws, shared
        ("DELETE", "/__admin/faults", {}),
        ("POST", "/__admin/clock", {"json": {"advance_seconds": 3600}}),
        ("GET", "/__admin/requests?tenant=t1", {}),
        ("POST", "/__admin/requests/find", {"json": {"tenant": "t1", "operation": "createPlus"}}),
        ("DELETE", "/__admin/requests?tenant=nobody", {}),  # another tenant's entries only
        ("GET", "/__admin/requests?tenant=t1", {}),
        ("DELETE", "/__admin/requests", {}),
        ("GET", "/__admin/requests", {}),
        ("GET", "/__admin/coverage?tenant=t1", {}),  # counted still, whichever worker counted
        plus,
        ("POST", "/__admin/tenants/t1/reset", {}),  # t1 alone: its plus gone, its counters fresh
        ("GET", "/__admin/tenants/t1/state", {}),
        ("GET", "/__admin/coverage?tenant=t1", {}),  # gone with the reset
        plus,
        ("POST", "/__admin/tenants", {}),
        ("GET", "/__admin/tenants", {}),
        ("POST", "/__admin/reset", {}),
        call("GET", "/karmabot/api/v1/users", "karmabot"),  # seeded again
        ("DELETE", "/__admin/tenants/t1", {}),
        call("GET", "/karmabot/api/v1/users", "karmabot"),  # 401: gone for both
        ("GET", "/__admin/tenants", {}),
        ("GET", "/__admin/coverage", {}),
    ]


def test_two_workers_answer_exactly_as_one_server(redis_url):
    async def main():
        one = await play([MockServer(ticking=False)], script())
        two = await play(workers(redis_url), script())
        return one, two

    one, two = asyncio.run(main())
    statuses = [status for _, _, _, status, _, _ in one]
    assert 429 in statuses and 503 in statuses and 500 in statuses and 401 in statuses  # the script bites
    for expected, got in zip(one, two, strict=True):
        assert got == expected


async def play_http(urls: list[str], steps) -> list[tuple]:
    """`play` over HTTP: each step on the next URL in turn, each on a new connection (so the
    kernel may hand it to any worker), with one Host header whatever the port."""
    senders = [httpx.AsyncClient(base_url=url, headers={"host": "mock"}, timeout=30,
                                 limits=httpx.Limits(max_keepalive_connections=0)) for url in urls]
    seen, answers = [], []
    for number, step in enumerate(steps):
        method, path, options = step(answers) if callable(step) else step
        response = await senders[number % len(urls)].request(method, path, **options)
        answers.append(response)
        headers = sorted((key, value) for key, value in response.headers.items() if key not in ("date", "server"))
        seen.append((number, method, path, response.status_code, headers, response.content))
    return seen


def test_one_process_two_workers_and_two_servers_answer_byte_for_byte_alike(redis_url):
    """The scripted session on `serve`, on `serve --workers 2 --redis`, and on two servers of two
    workers each on two ports, as two machines (the second with --redis-join), its steps
    alternating between them."""
    prefix = f"test-{uuid.uuid4().hex}"
    common = ("--clock", "frozen", "--log-level", "warning")
    servers = {"one": [Served(*common)],
               "workers": [Served(*common, "--workers", "2", "--redis", redis_url, "--redis-prefix", prefix + "w")]}
    machine = (*common, "--workers", "2", "--redis", redis_url, "--redis-prefix", prefix + "m")
    servers["machines"] = [Served(*machine), Served(*machine, "--redis-join")]
    try:
        sessions = {name: asyncio.run(play_http([each.url for each in served], script()))
                    for name, served in servers.items()}
    finally:
        for served in servers.values():
            for each in served:
                each.stop()
    assert 429 in [status for *_, status, _, _ in sessions["one"]]
    for name in ("workers", "machines"):
        for expected, got in zip(sessions["one"], sessions[name], strict=True):
            assert got == expected, name


def test_a_request_matching_no_operation_is_its_tenants_on_a_worker_that_never_saw_the_tenant(redis_url):
    """A tenant made on one worker; at once, on the other, a path no operation serves with its
    credential: journaled (and counted) as the tenant's, as one process does."""
    async def main():
        first, second = workers(redis_url)
        a, b = clients([first, second])
        made = (await a.post("/__admin/tenants")).json()
        headers = made["credentials"]["karmabot"]["headers"]
        assert (await b.get("/karmabot/api/v1/nowhere", headers=headers)).status_code == 404
        journal = (await a.get("/__admin/requests", params={"tenant": made["tenant"]})).json()["requests"]
        return [(entry["path"], entry["status"]) for entry in journal]

    assert asyncio.run(main()) == [("/karmabot/api/v1/nowhere", 404)]


def test_webhook_outcome_reaches_the_other_worker(redis_url):
    """An outgoing webhook run on one worker: its call and the bot's reply are state the other serves."""
    receiver = Receiver(reply={"text": "deploying main"})

    async def main():
        first, second = workers(redis_url)
        a, b = clients([first, second])
        admin = (await a.post("/__admin/tenants")).json()
        tenant, cz = admin["tenant"], admin["credentials"]["corteza"]
        auth = {"headers": cz["headers"]}
        channel = (await a.get(f"/__admin/tenants/{tenant}/state")).json()["corteza"]["channels"][0]["channelID"]
        await b.post("/corteza/messaging/webhooks/", json={
            "channelID": channel, "kind": "outgoing", "userID": cz["other_user_ids"][4], "trigger": "deploy",
            "url": receiver.url}, **auth)
        answer = (await a.post(f"/corteza/messaging/channels/{channel}/messages/command/deploy/exec",
                               json={"input": "main"}, **auth)).json()["response"]
        state = (await b.get(f"/__admin/tenants/{tenant}/state")).json()["corteza"]
        found = (await b.get("/corteza/messaging/search/messages",
                             params={"channelID": channel, "limit": 1}, **auth)).json()["response"]
        return state["webhook_deliveries"][0]["status"], answer["message"], found[0]["message"]

    try:
        assert asyncio.run(main()) == ("delivered", "deploying main", "deploying main")
    finally:
        receiver.close()


def test_serve_with_two_workers_shares_state_across_connections(redis_url):
    served = Served("--workers", "2", "--redis", redis_url, "--redis-prefix", f"test-{uuid.uuid4().hex}",
                    "--clock", "frozen")
    try:
        admin = httpx.post(served.url + "/__admin/tenants").json()
        key = admin["credentials"]["karmabot"]["headers"]
        base = served.url + "/karmabot/api/v1"
        users = httpx.get(served.url + f"/__admin/tenants/{admin['tenant']}/state").json()["karmabot"]["users"]
        giver, taker = users[0]["id"], users[1]["id"]

        def pluses() -> list[int]:  # every call on a new connection, so either worker may answer
            state = httpx.get(served.url + f"/__admin/tenants/{admin['tenant']}/state").json()
            return [plus["id"] for plus in state["karmabot"]["pluses"]]

        given, statuses = [], []
        for _ in range(7):
            answer = httpx.post(f"{base}/pluses", headers=key, json={"user_ids": [taker], "from_id": giver})
            statuses.append(answer.status_code)
            if answer.status_code == 201:
                given.append(answer.json()["id"])
            assert pluses() == given
        assert statuses == [201] * 6 + [429]  # one budget of six a minute, across both workers
        assert given == list(range(given[0], given[0] + 6))  # one sequence of ids
    finally:
        served.stop()


@pytest.mark.parametrize("arguments, says", [
    (["--workers", "2"], "give --redis URL"),
    (["--workers", "2", "--redis", "unix:///nonexistent/redis.sock"], "cannot use Redis at unix:///nonexistent"),
    (["--redis-join"], "give --redis URL"),
    (["--redis", "unix:///r.sock", "--state-file", "s.db"], "with --redis, Redis keeps it"),
])
def test_serve_says_what_several_workers_need(arguments, says):
    done = subprocess.run([sys.executable, "-m", "mockserver", "serve", "--port", "0", *arguments],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and says in done.stderr


def test_serve_refuses_a_redis_that_may_evict_and_says_when_it_keeps_nothing_on_disk(tmp_path):
    private = RedisServer(tmp_path)
    try:
        settings = redis.Redis.from_url(private.url)
        settings.config_set("maxmemory", "100mb")
        settings.config_set("maxmemory-policy", "allkeys-lru")
        refused = subprocess.run([sys.executable, "-m", "mockserver", "serve", "--port", "0", "--redis", private.url],
                                 capture_output=True, text=True, timeout=60)
        assert refused.returncode == 2 and "maxmemory-policy allkeys-lru" in refused.stderr
        settings.config_set("maxmemory-policy", "noeviction")
        served = Served("--redis", private.url)
        assert "in memory only (appendonly no)" in served.stop()
    finally:
        private.stop()


def test_one_process_needs_no_redis_client_and_workers_say_which_extra_they_need(tmp_path):
    """redis-py is the `workers` extra: without it one process serves, and --redis says what to install."""
    hide = "import sys; sys.modules['redis'] = None; "
    alone = subprocess.run([sys.executable, "-c", hide + "from mockserver.testing import running\n"
                            "with running() as s: print(s.admin.get('/__admin/health').status_code)"],
                           capture_output=True, text=True, timeout=60)
    assert alone.stdout.strip() == "200", alone.stderr
    refused = subprocess.run([sys.executable, "-c", hide + "from mockserver.cli import main; main()", "serve",
                              "--redis", "unix:///r.sock"], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "pip install 'mockserver[workers]'" in refused.stderr


def test_a_new_server_starts_from_its_seed_not_from_what_an_earlier_one_left(redis_url):
    prefix = f"test-{uuid.uuid4().hex}"
    for expected in (201, 201):  # the same id is free again: the earlier server's tenants are gone
        served = Served("--workers", "2", "--redis", redis_url, "--redis-prefix", prefix)
        try:
            assert httpx.post(served.url + "/__admin/tenants", json={"tenant": "again"}).status_code == expected
        finally:
            served.stop()


def test_without_redis_a_worker_answers_503_in_each_dialect(tmp_path):
    """No turn can be had: the answer says so, in the vendor's format (and the admin API's)."""
    async def main():
        [app] = [MockServer(ticking=False, redis_url=f"unix://{tmp_path}/none.sock")]
        [client] = clients([app])
        vendor = await client.get("/karmabot/api/v1/users",
                                  headers={"Authorization": "Bearer krm_1_d020104626bf82b1420f719a67ad9420"})
        health = await client.get("/__admin/health")
        page = await client.get("/__admin/ui/requests")
        return vendor, health, page

    vendor, health, page = asyncio.run(main())
    assert vendor.status_code == 503 and set(vendor.json()["error"]) == {"code", "message"}
    assert "Redis" in vendor.json()["error"]["message"]
    assert health.status_code == 503 and health.json()["error"]["code"] == 503
    # The dashboard's frames hold no data and take no turn (one would hold every tenant): served.
    assert page.status_code == 200 and page.text.startswith("<!doctype html>")


def test_a_record_in_redis_that_is_not_ours_never_runs(redis_url, tmp_path):
    """A pickle (or any bytes) planted in Redis is read as JSON and refused: 503, nothing executed."""
    marker = tmp_path / "ran"

    class Touch:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    async def main():
        first, second = workers(redis_url)
        a, b = clients([first, second])
        created = await a.post("/__admin/tenants", json={"tenant": "target"})
        key = created.json()["credentials"]["karmabot"]["headers"]
        await a.get("/karmabot/api/v1/users", headers=key)
        plant = redis.Redis.from_url(redis_url)
        plant.hset(first.turns.key("target"), mapping={"ws:karmabot": pickle.dumps(Touch()), "version": "planted"})
        refused = await b.get("/karmabot/api/v1/users", headers=key)
        plant.hset(first.turns.key("~world"), mapping={"data": pickle.dumps(Touch()), "version": "planted"})
        admin = await b.get("/__admin/tenants/target")
        return created.status_code, refused, admin

    created, refused, admin = asyncio.run(main())
    assert created == 201 and refused.status_code == 503 and "cannot read" in refused.json()["error"]["message"]
    assert admin.status_code == 503 and "cannot read" in admin.json()["error"]["message"]
    assert not marker.exists()


def test_a_write_sends_redis_only_the_records_it_changed(redis_url):
    """A tenant's hash holds a field per record (`it:<vendor>:<table>:<key>`, ordered by a
    sequence number): a plus adds one field and rewrites the workspace's meta, nothing else; the
    other worker reads the records back in their order."""
    async def main():
        first, second = workers(redis_url)
        a, b = clients([first, second])
        key = (await a.post("/__admin/tenants", json={"tenant": "rows", "rate_limits": False})).json()[
            "credentials"]["karmabot"]["headers"]
        users = (await a.get("/karmabot/api/v1/users", headers=key)).json()["users"]
        body = {"from_id": users[0]["id"], "user_ids": [users[1]["id"]]}
        store = redis.Redis.from_url(redis_url)
        hash_key = first.turns.key("rows")
        assert (await a.post("/karmabot/api/v1/pluses", json=body)).status_code == 401  # no credentials: no write
        assert (await a.post("/karmabot/api/v1/pluses", json=body, headers=key)).status_code == 201
        before = store.hgetall(hash_key)
        assert (await a.post("/karmabot/api/v1/pluses", json=body, headers=key)).status_code == 201
        after = store.hgetall(hash_key)
        changed = {name for name, value in after.items() if before.get(name) != value}
        added = [name.decode() for name in set(after) - set(before)]
        plus = (await b.get("/__admin/tenants/rows/state")).json()["karmabot"]["pluses"]
        return changed, added, before, after, plus

    changed, added, before, after, pluses = asyncio.run(main())
    assert len(added) == 1 and added[0].startswith("it:karmabot:pluses:")
    assert changed - {b"version", b"fence", b"requests"} == {added[0].encode(), b"ws:karmabot", b"seq"}
    first_plus = next(name for name in before if name.startswith(b"it:karmabot:pluses:"))
    assert int(after[added[0].encode()].split(b" ")[0]) > int(before[first_plus].split(b" ")[0])
    assert [plus["id"] for plus in pluses] == sorted(plus["id"] for plus in pluses) and len(pluses) == 2


def test_a_worker_catches_up_with_what_changed_since_it_last_held_a_tenant(redis_url):
    """A worker taking a tenant back reads only the records changed since it last held it (the
    tenant's log), applies them to the workspaces it has open, and answers as if it had read
    everything; a worker that never held the tenant, or is further behind than the log reaches,
    reads it whole."""
    async def main():
        first, second = workers(redis_url)
        a, b = clients([first, second])
        created = (await a.post("/__admin/tenants", json={"tenant": "log", "rate_limits": False})).json()
        karma, corteza = (created["credentials"][name]["headers"] for name in ("karmabot", "corteza"))
        users = (await a.get("/karmabot/api/v1/users", headers=karma)).json()["users"]
        body = {"from_id": users[0]["id"], "user_ids": [users[1]["id"]]}
        channel = (await a.get("/corteza/messaging/channels/", headers=corteza)).json()["response"][0]["channelID"]
        whole, applied = [], []
        for worker in (first, second):
            load, apply = worker.turns._load_tenant, worker.turns._apply_changes
            worker.turns._load_tenant = lambda *args, load=load: (args[0].id == "log" and whole.append(args[0].id)) \
                or load(*args)
            worker.turns._apply_changes = lambda *args, apply=apply: applied.append(apply(*args)) or applied[-1]
        assert (await a.post("/karmabot/api/v1/pluses", json=body, headers=karma)).status_code == 201
        await b.get("/corteza/messaging/channels/", headers=corteza)  # b has not held it: read whole
        assert whole == ["log"] and applied == []
        for text in ("one", "two"):  # each worker in turn catches up with the other's message and plus
            for client in (a, b):
                sent = await client.post(f"/corteza/messaging/channels/{channel}/messages/", headers=corteza,
                                         json={"message": f"{text} from {'a' if client is a else 'b'}"})
                assert sent.json()["response"]["message"].startswith(text)
                for _ in range(2):  # two writes the other worker catches up with in one go, in their order
                    assert (await client.post("/karmabot/api/v1/pluses", json=body, headers=karma)).status_code == 201
        caught_up = list(applied)
        for _ in range(2):  # b falls two writes behind, and the log keeps only the last: b reads it whole
            assert (await a.post("/karmabot/api/v1/pluses", json=body, headers=karma)).status_code == 201
        redis.Redis.from_url(redis_url).ltrim(first.turns.key("log", "log"), -1, -1)
        assert len((await b.get("/karmabot/api/v1/users", headers=karma)).json()["users"]) == len(users)
        seen = [(await client.get("/__admin/tenants/log/state")).json() for client in (a, b)]
        return whole, caught_up, seen

    whole, applied, (from_a, from_b) = asyncio.run(main())
    assert whole == ["log", "log"] and applied and all(applied)
    ids = [plus["id"] for plus in from_b["karmabot"]["pluses"]]
    assert from_a == from_b and len(ids) == 11 and ids == sorted(ids)
    assert [m["message"] for m in from_a["corteza"]["messages"]][-4:] == ["one from a", "one from b", "two from a",
                                                                          "two from b"]


def test_a_changed_record_that_is_not_ours_is_refused_when_caught_up_with(redis_url):
    """The records a worker catches up with are checked as it reads them: bytes that are not JSON,
    or JSON that is not a record of that table, answer 503 and change nothing."""
    async def main():
        answers, store = [], redis.Redis.from_url(redis_url)
        for number, planted in enumerate((pickle.dumps(Exception("not ours")), b'{"id": "not a number"}')):
            first, second = workers(redis_url)
            a, b = clients([first, second])
            hash_key = first.turns.key(f"planted-{number}")
            key = (await a.post("/__admin/tenants", json={"tenant": f"planted-{number}", "rate_limits": False})).json()[
                "credentials"]["karmabot"]["headers"]
            users = (await a.get("/karmabot/api/v1/users", headers=key)).json()["users"]
            held = await b.get("/karmabot/api/v1/users", headers=key)  # b holds it once
            assert held.status_code == 200, held.text
            assert (await a.post("/karmabot/api/v1/pluses", headers=key,
                                 json={"from_id": users[0]["id"], "user_ids": [users[1]["id"]]})).status_code == 201
            field = next(name for name in store.hkeys(hash_key) if name.startswith(b"it:karmabot:pluses"))
            store.hset(hash_key, field, store.hget(hash_key, field).split(b" ")[0] + b" " + planted)
            answers.append(await b.get("/karmabot/api/v1/users", headers=key))
        return answers

    for refused in asyncio.run(main()):
        assert refused.status_code == 503 and "cannot read" in refused.text


def test_a_world_record_in_redis_is_checked_as_an_import_is(redis_url):
    """The world record workers share is the one an export carries (ServerState.world), checked
    alike when read back: a tenant clock beyond the year 9999 is refused, not served."""
    async def main():
        first, second = workers(redis_url)
        a, b = clients([first, second])
        assert (await a.post("/__admin/tenants", json={"tenant": "far"})).status_code == 201
        store = redis.Redis.from_url(redis_url)
        world = orjson.loads(store.hget(first.turns.key("~world"), "data"))
        exported = (await a.get("/__admin/state/export")).json()
        far = next(entry for entry in world["tenants"] if entry["id"] == "far")
        far["clock_offset"] = 10.0**12
        store.hset(first.turns.key("~world"), mapping={"data": orjson.dumps(world), "version": "planted"})
        return world, exported, await b.get("/__admin/tenants/far")

    world, exported, refused = asyncio.run(main())
    assert {key: value for key, value in world.items() if key not in ("clock", "faults")}.keys() == (
        exported.keys() - {"format", "version"})
    assert refused.status_code == 503 and "clock_offset must be a number of seconds" in refused.text


def test_a_write_redis_did_not_confirm_is_a_503_that_says_it_may_have_been_saved(redis_url, monkeypatch):
    """A write whose answer from Redis never came (the connection dropped as it was sent) may
    have been applied: its 503 says so, where a lost lease's says it was not saved."""
    import redis.exceptions

    from mockserver.shared import SharedTurns

    monkeypatch.setattr(SharedTurns, "LEASE_MS", 500)

    async def main():
        first, second = workers(redis_url)
        a, b = clients([first, second])
        made = (await a.post("/__admin/tenants")).json()
        headers = made["credentials"]["karmabot"]["headers"]
        users = (await a.get("/karmabot/api/v1/users", headers=headers)).json()["users"]
        plus = {"user_ids": [users[1]["id"]], "from_id": users[0]["id"]}
        commit = first.turns._commit

        async def dropped(keys, args):
            await commit(keys, args)  # applied, then the answer lost
            raise redis.exceptions.ConnectionError("Connection closed by server.")

        first.turns._commit = dropped
        refused = await a.post("/karmabot/api/v1/pluses", json=plus, headers=headers)
        first.turns._commit = commit
        await asyncio.sleep(0.6)  # the lease the lost answer left behind runs out
        state = (await b.get(f"/__admin/tenants/{made['tenant']}/state")).json()
        return refused.status_code, refused.json(), len(state["karmabot"]["pluses"])

    status, body, kept = asyncio.run(main())
    assert status == 503 and body["error"]["message"] == (
        "The change may not have been saved: the shared state did not confirm it. Read it back before trying again.")
    assert kept == 1  # it was
