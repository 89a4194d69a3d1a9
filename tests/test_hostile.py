"""Hostile input and callers: every item gets a 4xx in the vendor's dialect (or the admin API's),
never a 5xx, a stall or a way into another tenant or the admin API."""

import asyncio
import json
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from mockserver import journal as journal_module
from mockserver import state as state_module
from mockserver.app import MockServer
from mockserver.clock import LATEST, isoformat
from mockserver.testing import running
from tests.receiver import Receiver
from tests.served import Served, free_port

WRITES = {"karmabot": "/pluses", "dailybot": "/kudos/", "community": "/boards", "corteza": "/channels/",
          "kudosnow": "/kudos"}
READS = {"karmabot": "/users", "dailybot": "/kudos/", "community": "/boards", "corteza": "/channels/",
         "kudosnow": "/redemptions"}


def status(response: httpx.Response) -> int:
    """The status a failure stands for, also where the dialect hides it (Corteza answers 200)."""
    return int(response.headers.get("X-Mockserver-Error-Status", response.status_code))


def deep(levels: int) -> bytes:
    return b'{"a":' * levels + b"1" + b"}" * levels


# --- the corpus, against every vendor -----------------------------------------------------------

@pytest.mark.parametrize("vendor", WRITES)
def test_deeply_nested_json_is_a_400_and_the_journal_still_answers(server, tenant, vendor):
    with tenant.client(vendor) as client:
        for levels in (1000, 100_000):
            response = client.post(WRITES[vendor], content=deep(levels), headers={"Content-Type": "application/json"})
            assert status(response) == 400, response.text[:200]
    journal = server.admin.get("/__admin/requests", params={"tenant": tenant.id})
    assert journal.status_code == 200 and len(journal.json()["requests"]) == 2
    found = server.admin.post("/__admin/requests/find", json={"tenant": tenant.id, "vendor": vendor})
    assert found.status_code == 200 and found.json()["count"] == 2


@pytest.mark.parametrize("vendor", READS)
def test_huge_queries_are_refused_quickly(tenant, vendor):
    with tenant.client(vendor) as client:
        many = client.get(READS[vendor] + "?" + "&".join("a=" for _ in range(16_000)))
        assert status(many) == 414  # 16,000 parameters are also over 8 KiB
        assert status(client.get(READS[vendor] + "?" + "&".join("p=1" for _ in range(300)))) == 400
        assert status(client.get(READS[vendor], params={"q": "x" * 9000})) == 414
        assert client.get(READS[vendor] + "?" + "&".join(f"p{n}=1" for n in range(200))).status_code == 200


@pytest.mark.parametrize("vendor", READS)
def test_missing_ui_files_are_the_vendors_404(server, vendor):
    base = server.base_url(vendor)
    assert status(server.admin.get(base + "/ui/no-such-file.js")) == 404
    assert server.admin.get(base + "/ui/").status_code == 200


def test_a_websocket_upgrade_is_refused(server):
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"GET /karmabot/api/v1/users HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 403")


# --- the admin API ------------------------------------------------------------------------------

def test_admin_bodies_are_bounded_and_never_nested_deep(server):
    assert server.admin.post("/__admin/tenants", content=b'{"tenant": "' + b"x" * (2 << 20) + b'"}').status_code == 413
    for path in ("/__admin/tenants", "/__admin/faults", "/__admin/requests/find", "/__admin/clock",
                 "/__admin/state/import"):
        response = server.admin.post(path, content=deep(100_000))
        assert response.status_code == 400 and response.json()["error"]["message"], path


def test_no_clock_passes_its_bound():
    with running(ticking=False) as server:
        tenant = server.new_tenant()
        answers = [server.admin.post("/__admin/clock", json={"advance_seconds": 100 * 365 * 86400}).status_code
                   for _ in range(85)]
        assert answers.count(200) < 85 and answers[-1] == 400
        tenant_answer = server.admin.post(f"/__admin/tenants/{tenant.id}/clock",
                                          json={"advance_seconds": 100 * 365 * 86400})
        assert tenant_answer.status_code == 400
        with tenant.client("karmabot") as karma:
            assert karma.get("/users").status_code == 200
            users = karma.get("/users").json()["users"]
            assert karma.post("/pluses", json={"from_id": users[0]["id"], "user_ids": [users[1]["id"]]}).status_code == 201


def test_a_ticking_clock_stops_at_its_bound_and_its_state_file_loads_again(tmp_path):
    """A clock set a second before the bound and left ticking: every vendor still answers (no
    date past the year 9999 is ever printed), and a state file written then opens again."""
    path = tmp_path / "state.db"
    bound = isoformat(LATEST)
    served = Served("--state-file", str(path), "--log-level", "warning")
    try:
        assert httpx.post(served.url + "/__admin/clock", json={"to": isoformat(LATEST - 1)}).status_code == 200
        time.sleep(2.2)
        tenant = httpx.get(served.url + "/__admin/tenants").json()["tenants"][0]
        credentials = tenant["credentials"]
        reads = {"karmabot": "/karmabot/api/v1/users", "dailybot": "/dailybot/v1/kudos/",
                         "community": "/community/api/v1/boards", "corteza": "/corteza/messaging/channels/",
                         "kudosnow": "/kudosnow/v1/redemptions"}
        for vendor, read in reads.items():
            answer = httpx.get(served.url + read, headers=credentials[vendor]["headers"])
            assert answer.status_code == 200, (vendor, answer.text)
        users = httpx.get(f"{served.url}/__admin/tenants/default/state").json()["karmabot"]["users"]
        plus = httpx.post(served.url + "/karmabot/api/v1/pluses", headers=credentials["karmabot"]["headers"],
                          json={"from_id": users[0]["id"], "user_ids": [users[1]["id"]]})
        assert plus.status_code == 201 and plus.json()["created_at"].startswith("9998-12-31T23:59:59")
        assert httpx.get(served.url + "/__admin/tenants/default/clock").json() == {"now": bound}
        assert httpx.post(served.url + "/__admin/clock", json={"advance_seconds": 1}).status_code == 400
    finally:
        served.stop()
    again = Served("--state-file", str(path), "--log-level", "warning")
    try:
        assert httpx.get(again.url + "/__admin/tenants/default/clock").json() == {"now": bound}
        pluses = httpx.get(f"{again.url}/__admin/tenants/default/state").json()["karmabot"]["pluses"]
        assert plus.json()["id"] in [each["id"] for each in pluses]
    finally:
        again.stop()


@pytest.mark.parametrize("headers", [{"X-A": "a\r\nSet-Cookie: x=1"}, {"X-A": "€"}, {"bad name": "x"},
                                     {"Content-Length": "0"}, {"X-A": 5}])
def test_fault_headers_are_checked_when_the_fault_is_made(server, headers):
    response = server.admin.post("/__admin/faults", json={"vendor": "karmabot", "kind": "status", "status": 503,
                                                          "headers": headers})
    assert response.status_code == 400


def raw_request(url: str, head: bytes, body: bytes) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(head + body)
    return sock


def test_a_body_that_never_comes_holds_nothing():
    """Its deadline (30 s) is past the clients' own timeout (10 s): had it held anything, these fail."""
    with running(ticking=False) as server:
        slow = raw_request(server.url, b"POST /__admin/tenants HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                       b"Content-Length: 100\r\n\r\n", b'{"ten')
        assert server.admin.post("/__admin/tenants").status_code == 201
        tenant = server.new_tenant()
        with tenant.client("karmabot") as karma:
            users = karma.get("/users").json()["users"]
            assert karma.post("/pluses", json={"from_id": users[0]["id"], "user_ids": [users[1]["id"]]}).status_code == 201
        slow.close()


def test_a_body_that_never_comes_gets_a_408():
    with running(ticking=False, body_deadline=1) as server:
        slow = raw_request(server.url, b"POST /__admin/tenants HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                       b"Content-Length: 100\r\n\r\n", b'{"ten')
        answer = slow.recv(200)
        slow.close()
        assert answer.startswith(b"HTTP/1.1 408")
        vendor_slow = raw_request(server.url, b"POST /karmabot/api/v1/pluses HTTP/1.1\r\nHost: x\r\n"
                                              b"Content-Length: 100\r\n\r\n", b"{")
        answer = vendor_slow.recv(500)
        vendor_slow.close()
        assert answer.startswith(b"HTTP/1.1 408") and b'"error":{"code":"request_timeout"' in answer  # Karma bot's


def test_the_admin_token_guards_every_admin_path_but_health():
    with running(ticking=False, admin_token="s3cret") as server:
        bare = httpx.Client(base_url=server.url)
        assert bare.get("/__admin/health").status_code == 200
        refused = bare.get("/__admin/tenants")
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Bearer"
        assert bare.post("/__admin/reset", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert bare.get("/__admin/tenants", headers={"Authorization": "Basic s3cret"}).status_code == 401
        assert bare.get("/__admin/tenants", headers={"Authorization": "Bearer S3CRET"}).status_code == 401
        for scheme in ("bearer", "BEARER", "Bearer"):  # HTTP's schemes in any case; the token exact
            assert bare.get("/__admin/tenants", headers={"Authorization": f"{scheme} s3cret"}).status_code == 200
        assert server.admin.get("/__admin/tenants").status_code == 200  # testing passes the token
        tenant = server.new_tenant()
        with tenant.client("karmabot") as karma:  # vendor routes are the vendors' own business
            assert karma.get("/users").status_code == 200


def test_a_server_on_every_ipv6_address_shows_a_url_that_reaches_it():
    """`--host ::` listens on IPv6 alone: the banner's URL is IPv6's loopback, and it answers."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "mockserver", "serve", "--host", "::", "--port", str(port),
                                "--log-level", "warning"], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = next(word.rstrip(";") for word in process.stdout.readline().split() if word.startswith("http://"))
        assert url == f"http://[::1]:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                assert httpx.get(url + "/__admin/health").status_code == 200
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_no_webhook_ever_reaches_a_mockservers_admin_api(tmp_path):
    """Every webhook carries a marker that every mockserver's admin API refuses, and no hook may
    name an admin path on any host (another mockserver on this machine: another port, a
    --redis-join sibling, an xdist worker's)."""
    with running(ticking=False) as target, running(ticking=False) as sender:
        marked = {"X-Mockserver-Webhook": "1"}
        for method, path in (("POST", "/__admin/reset"), ("GET", "/__admin/tenants"), ("POST", "/__admin/tenants")):
            refused = target.admin.request(method, path, headers=marked)
            assert refused.status_code == 403 and "webhook" in refused.json()["error"]["message"]
        assert [entry["tenant"] for entry in target.admin.get("/__admin/tenants").json()["tenants"]] == ["default"]
        tenant = sender.new_tenant()
        with tenant.client("community") as hab:
            port = target.url.rsplit(":", 1)[1]
            for admin_path in ("/__admin/reset", "/x/../__admin/reset", "/%5F%5Fadmin/reset", "/%2F__admin/tenants"):
                hook = hab.post("/hooks", json={"target_url": f"http://127.0.0.1:{port}{admin_path}",
                                                "event": "member.joined"})
                assert hook.status_code == 400, admin_path
            receiver = Receiver()
            try:
                assert hab.post("/hooks", json={"target_url": receiver.url, "event": "member.joined"}).status_code == 201
                hab.post("/users", json={"first_name": "Marked", "email": "marked@example.com"})
                [delivery] = receiver.wait_for(1)
                assert delivery["headers"]["X-Mockserver-Webhook"] == "1"
            finally:
                receiver.close()


def test_without_a_token_web_pages_cannot_use_the_admin_api():
    """A page elsewhere can make the browser on this machine send simple requests (no preflight)
    or rebind its own name to 127.0.0.1: each is refused, and nothing changes; this machine's own
    names, addresses and pages, and clients that are no browser, go on."""
    with running(ticking=False) as server:
        admin = httpx.Client(base_url=server.url)
        port = server.url.rsplit(":", 1)[1]
        refused = [
            admin.post("/__admin/tenants", content='{"tenant": "csrf"}', headers={"Content-Type": "text/plain",
                                                                                 "Origin": "http://evil.example"}),
            admin.post("/__admin/tenants", content='{"tenant": "csrf"}', headers={"Content-Type": "text/plain"}),
            admin.post("/__admin/reset", headers={"Origin": "http://evil.example"}),
            admin.post("/__admin/reset", headers={"Origin": "null"}),
            admin.post("/__admin/reset", headers={"Sec-Fetch-Site": "cross-site"}),
            admin.post("/__admin/clock", data={"advance_seconds": "60"}),  # a form
            admin.get("/__admin/tenants", headers={"Host": f"rebind.attacker.example:{port}"}),
            admin.get("/__admin/tenants", headers={"Origin": "http://192.0.2.8:3000"}),
        ]
        assert [answer.status_code for answer in refused] == [403, 415, 403, 403, 403, 415, 403, 403]
        assert all(answer.json()["error"]["message"] for answer in refused)
        tenants = admin.get("/__admin/tenants").json()["tenants"]
        assert [tenant["tenant"] for tenant in tenants] == ["default"]
        assert admin.get("/__admin/tenants/default/clock").json() == {"now": "2026-01-01T00:00:00Z"}
        for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "mock", f"app.localhost:{port}",
                     f"192.0.2.8:{port}"):
            assert admin.get("/__admin/tenants", headers={"Host": host}).status_code == 200, host
        same_machine = {"Origin": f"http://localhost:{port}", "Sec-Fetch-Site": "same-origin"}
        assert admin.post("/__admin/tenants", json={"tenant": "mine"}, headers=same_machine).status_code == 201
        assert admin.post("/__admin/tenants", json={"tenant": "tool"}).status_code == 201  # curl, a test suite
    with running(ticking=False, admin_token="s3cret") as server:  # with a token, the token decides
        answer = httpx.get(server.url + "/__admin/tenants", headers={
            "Authorization": "Bearer s3cret", "Origin": "http://dashboard.example", "Host": "mock.example"})
        assert answer.status_code == 200


def test_odd_values_are_400s_not_500s():
    """A Habitate Basic credential of raw non-ASCII bytes, admin verification and fault fields of
    the wrong JSON type, and an import whose tenant count leaves no number for the next tenant."""
    with running(ticking=False) as server:
        with httpx.Client(base_url=server.url) as client:
            raw = client.get("/community/api/v1/boards", headers={"Authorization": b"Basic \xc3\xa9\xc3\xa9"})
            assert raw.status_code == 403 and raw.json()["status"] == "FORBIDDEN"
        for pattern in ({"tenant": ["a"]}, {"operation": {"x": 1}}, {"vendor": [1]}, {"status": {"a": 1}},
                        {"status": "200"}, {"path": [1, 2]}, {"method": 5}):
            answer = server.admin.post("/__admin/requests/find", json=pattern)
            assert answer.status_code == 400 and "must be" in answer.json()["error"]["message"], pattern
        assert server.admin.post("/__admin/requests/find", json={"tenant": None, "body": [1]}).status_code == 200
        for fault in ({"vendor": ["karmabot"], "kind": "status", "status": 503},
                      {"vendor": {"karmabot": 1}, "kind": "status", "status": 503},
                      {"vendor": "karmabot", "kind": ["status"], "status": 503}):
            assert server.admin.post("/__admin/faults", json=fault).status_code == 400, fault
        export = server.admin.get("/__admin/state/export").json()
        refused = server.admin.post("/__admin/state/import", json=export | {"created": 2**63 - 1})
        assert refused.status_code == 400 and "created" in refused.json()["error"]["message"]
        assert server.admin.post("/__admin/state/import", json=export | {"created": 10**9 - 1}).status_code == 204
        full = server.admin.post("/__admin/tenants")
        assert full.status_code == 400 and "no tenant numbers left" in full.json()["error"]["message"]
        assert server.admin.post("/__admin/tenants", json={"tenant": "named"}).status_code == 201


def test_a_server_holds_a_bounded_number_of_tenants(monkeypatch):
    monkeypatch.setattr(state_module, "MAX_TENANTS", 3)
    with running(ticking=False) as server:
        made = [server.admin.post("/__admin/tenants").status_code for _ in range(3)]
        refused = server.admin.post("/__admin/tenants", json={"tenant": "one-more"})
        assert made == [201, 201, 400] and refused.status_code == 400  # the default tenant counts
        assert "at most 3 tenants" in refused.json()["error"]["message"]
        export = server.admin.get("/__admin/state/export").json()
        too_many = export | {"tenants": [*export["tenants"], {**export["tenants"][1], "id": "extra"}]}
        assert server.admin.post("/__admin/state/import", json=too_many).status_code == 400
        assert server.admin.delete("/__admin/tenants/tenant-2").status_code == 204
        assert server.admin.post("/__admin/tenants").status_code == 201


def test_an_import_never_gives_one_credential_to_two_tenants():
    with running(ticking=False) as server:
        first, second = server.new_tenant(), server.new_tenant()
        for tenant in (first, second):
            with tenant.client("karmabot") as karma:
                assert karma.get("/users").status_code == 200  # its workspace opened: in the export
        export = server.admin.get("/__admin/state/export").json()
        records = {entry["id"]: entry["workspaces"]["karmabot"]["data"] for entry in export["tenants"]
                   if "karmabot" in entry["workspaces"]}
        key = next(field for field, value in records[first.id].items() if value == first.credentials["karmabot"]["api_key"])
        records[second.id][key] = records[first.id][key]
        refused = server.admin.post("/__admin/state/import", json=export)
        assert refused.status_code == 400 and "share a karmabot credential" in refused.json()["error"]["message"]
        with second.client("karmabot") as karma:  # nothing changed
            assert karma.get("/users").status_code == 200


def test_a_request_head_trickled_byte_by_byte_is_cut_off():
    """Slowloris: a head that never ends gets a 408 and a closed connection after HEAD_SECONDS
    (10 s); requests on other connections are answered meanwhile."""
    served = Served("--log-level", "warning")
    try:
        with socket.create_connection(("127.0.0.1", served.port), timeout=30) as sock:
            sock.sendall(b"GET /karmabot/api/v1/users HTTP/1.1\r\nHost: mock\r\n")
            started, answer = time.monotonic(), b""
            while time.monotonic() - started < 20:
                assert httpx.get(served.url + "/__admin/health").status_code == 200
                try:
                    sock.sendall(b"X")  # one more byte of a header that never ends
                except OSError:
                    break
                sock.settimeout(1)
                try:
                    chunk = sock.recv(4096)
                except TimeoutError:
                    continue
                if not chunk:
                    break
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 408") and 9 < time.monotonic() - started < 15
    finally:
        served.stop()


def test_admin_errors_never_echo_a_large_input_whole():
    with running(ticking=False) as server:
        huge = "x" * 900_000
        for answer in (server.admin.post("/__admin/requests/find", json={"operation": huge}),
                       server.admin.post("/__admin/requests/find", json={huge: 1}),
                       server.admin.post("/__admin/faults", json={"vendor": "karmabot", "kind": "status", "status": 503,
                                                                  "headers": {huge: "1"}}),
                       server.admin.post("/__admin/tenants", json={"tenant": huge})):
            assert answer.status_code == 400 and len(answer.content) < 2000, answer.content[:100]


def test_without_a_token_only_loopback_clients_reach_the_admin_api():
    async def main():
        app = MockServer(ticking=False)
        outside = httpx.AsyncClient(transport=httpx.ASGITransport(app, client=("198.51.100.7", 40000)),
                                    base_url="http://mock")
        inside = httpx.AsyncClient(transport=httpx.ASGITransport(app, client=("127.0.0.1", 40000)),
                                   base_url="http://mock")
        return (await outside.get("/__admin/tenants"), await outside.get("/__admin/health"),
                await inside.get("/__admin/tenants"),
                await outside.get("/karmabot/api/v1/users",
                                  headers={"Authorization": "Bearer krm_1_d020104626bf82b1420f719a67ad9420"}))

    refused, health, local, vendor = asyncio.run(main())
    assert refused.status_code == 403 and "--admin-token" in refused.json()["error"]["message"]
    assert health.status_code == 200 and local.status_code == 200 and vendor.status_code == 200


def test_the_banner_says_the_admin_api_is_closed_to_other_machines():
    from tests.served import Served

    served = Served("--host", "0.0.0.0")
    try:
        assert httpx.get(served.url + "/__admin/tenants").status_code == 200  # this machine, over loopback
    finally:
        banner = served.stop()
    assert "refused to clients not on this machine" in banner and "--admin-token" in banner


# --- webhooks -----------------------------------------------------------------------------------

def test_no_webhook_may_target_this_server(server, tenant):
    port = server.url.rsplit(":", 1)[1]
    own = [f"http://127.0.0.1:{port}/__admin/reset", f"http://localhost:{port}/__admin/tenants",
           f"http://[::1]:{port}/__admin/reset", f"http://0.0.0.0:{port}/__admin/reset",
           f"http://127.0.0.2:{port}/__admin/reset", "http://127.0.0.1:8\t/x"]
    with tenant.client("community") as hab:
        for url in own:
            assert hab.post("/hooks", json={"target_url": url, "event": "member.joined"}).status_code == 400, url
    with tenant.client("corteza") as cz:
        channel = cz.get("/channels/").json()["response"][0]["channelID"]
        bot = tenant.credentials["corteza"]["other_user_ids"][0]
        for url in own:
            answer = cz.post("/webhooks/", json={"channelID": channel, "kind": "outgoing", "userID": bot,
                                                 "trigger": "!x", "url": url})
            assert "this server" in answer.json()["error"]["message"], url


def test_habitate_keeps_at_most_twenty_hooks(tenant):
    receiver = Receiver()
    try:
        with tenant.client("community") as hab:
            answers = [hab.post("/hooks", json={"target_url": receiver.url, "event": "member.joined"}).status_code
                       for _ in range(21)]
            assert answers == [201] * 20 + [400]
            assert hab.post("/users", json={"first_name": "One", "email": "one@example.com"}).status_code == 200
        assert len(deliveries(tenant, "community")) == 20  # one per hook: the refused one fans out to nothing
    finally:
        receiver.close()


class Trickler:
    """A target that answers with headers, then one byte of body every `pause` seconds."""

    def __init__(self, pause: float = 0.3):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/hook"
        self.pause = pause
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._trickle, args=(connection,), daemon=True).start()

    def _trickle(self, connection):
        with connection:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            for _ in range(1000):
                time.sleep(self.pause)
                try:
                    connection.sendall(b"x")
                except OSError:
                    return

    def close(self):
        self.listener.close()


def fire_outgoing(cz, tenant, targets: dict[str, str]) -> dict[str, dict]:
    """Corteza outgoing webhooks (trigger -> target URL) in the tenant's first channel, each then
    run as a command (service/command.go): their answers, by trigger."""
    channel = cz.get("/channels/").json()["response"][0]["channelID"]
    bot = tenant.credentials["corteza"]["other_user_ids"][4]
    for trigger, url in targets.items():
        cz.post("/webhooks/", json={"channelID": channel, "kind": "outgoing", "userID": bot, "trigger": trigger,
                                    "url": url}).raise_for_status()
    return {trigger: cz.post(f"/channels/{channel}/messages/command/{trigger}/exec", json={"input": "go"}).json()
            for trigger in targets}


def deliveries(tenant, vendor: str) -> list:
    return tenant.state(vendor)["webhook_deliveries"]


def test_every_webhook_call_ends_with_a_reason_within_its_deadline():
    trickler = Trickler()
    big = Receiver(reply={"text": "x" * (1 << 20)})
    try:
        with running(ticking=False, webhook_timeout=1) as server:
            tenant = server.new_tenant()
            with tenant.client("corteza") as cz:
                answers = fire_outgoing(cz, tenant, {"slow": trickler.url, "big": big.url})
            assert "Timeout" in answers["slow"]["error"]["message"]  # the target trickles for 300 s
            assert answers["big"]["error"]["message"] == "reply over 65536 bytes"
            messages = tenant.state("corteza")["messages"]
            assert not any(len(m["message"]) > 65536 for m in messages)  # the 1 MiB reply never became one
    finally:
        trickler.close()
        big.close()


def test_a_deeply_nested_reply_is_refused_not_a_crash():
    receiver = Receiver(reply={"text": "ok"})
    receiver.server.RequestHandlerClass.do_POST = _nested_reply
    try:
        with running(ticking=False) as server:
            tenant = server.new_tenant()
            with tenant.client("corteza") as cz:
                answers = fire_outgoing(cz, tenant, {"deep": receiver.url})
                assert answers["deep"] == {"error": {"message": "invalid webhook response"}}
                assert cz.get("/channels/").status_code == 200
    finally:
        receiver.close()


def _nested_reply(handler):
    handler.rfile.read(int(handler.headers.get("Content-Length", 0)))
    payload = b"[" * 5000 + b"]" * 5000
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(payload)))
    handler.end_headers()
    handler.wfile.write(payload)


# --- Corteza ------------------------------------------------------------------------------------

def multipart(name: bytes, mime: bytes) -> tuple[bytes, str]:
    """A one-file multipart body, its bytes as given (httpx would escape a NUL in a file name)."""
    body = (b"--b\r\nContent-Disposition: form-data; name=\"upload\"; filename=\"" + name + b"\"\r\n"
            b"Content-Type: " + mime + b"\r\n\r\nhi\r\n--b--\r\n")
    return body, "multipart/form-data; boundary=b"


def test_uploads_with_control_characters_are_refused_and_active_types_download(tenant):
    with tenant.client("corteza") as cz:
        channel = cz.get("/channels/").json()["response"][0]["channelID"]
        for name, mime in ((b"a\x00.txt", b"text/plain"), (b"a.txt", b"text/pl\x00ain"), (b"a.txt", b"not a type")):
            body, kind = multipart(name, mime)
            answer = cz.post(f"/channels/{channel}/attach", content=body, headers={"Content-Type": kind})
            assert answer.json().get("error"), (name, mime)
        page = cz.post(f"/channels/{channel}/attach", files={"upload": ("page.html", b"<script>x</script>", "text/html")})
        served = cz.get(page.json()["response"]["url"])
        assert served.headers["content-disposition"].startswith("attachment")
        assert served.headers["x-content-type-options"] == "nosniff"


def test_a_reply_of_unclosed_mentions_is_quick(tenant):
    """48 KB of `<@1 ` as a bot's reply (the one message text no schema bounds) is stored."""
    receiver = Receiver(reply={"text": "<@1 " * 12_000})
    try:
        with tenant.client("corteza") as cz:
            answers = fire_outgoing(cz, tenant, {"m": receiver.url})
        assert answers["m"]["response"]["message"].startswith("<@1 ")  # once took 5.6 s: a quadratic pattern
    finally:
        receiver.close()


def test_a_deleted_tenants_credentials_never_work_again():
    """Uploads racing the tenant's deletion must not index its handles (or tokens) again."""
    async def trial(app):
        admin = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://mock")
        tenant = (await admin.post("/__admin/tenants")).json()
        headers = tenant["credentials"]["corteza"]["headers"]
        cz = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://mock/corteza/messaging",
                               headers=headers)
        channel = (await cz.get("/channels/")).json()["response"][0]["channelID"]
        uploads = [cz.post(f"/channels/{channel}/attach", files={"upload": ("a.png", b"x" * 50_000, "image/png")})
                   for _ in range(3)]
        await asyncio.gather(*uploads, admin.delete(f"/__admin/tenants/{tenant['tenant']}"))
        after = await cz.get("/channels/")
        return status(after), len(app.store.tenants)

    async def main():
        app = MockServer(ticking=False)
        return [await trial(app) for _ in range(20)]

    for after, tenants in asyncio.run(main()):
        assert after == 401 and tenants == 1


def test_an_allowed_name_of_this_machine_is_still_not_this_server():
    """`--webhook-allow` with this machine's own name: its port on that name is refused all the same
    (checked at subscription; nothing is sent)."""
    name = socket.gethostname()
    with running(ticking=False, webhook_allow=(name,)) as server:
        port = int(server.url.rsplit(":", 1)[1])
        tenant = server.new_tenant()
        with tenant.client("community") as hab:
            refused = hab.post("/hooks", json={"target_url": f"http://{name}:{port}/__admin/reset",
                                               "event": "member.joined"})
            other_port = hab.post("/hooks", json={"target_url": f"http://{name}:{port + 1}/hook",
                                                  "event": "member.joined"})
        assert refused.status_code == 400 and other_port.status_code == 201


@pytest.mark.parametrize("vendor", WRITES)
def test_a_lone_surrogate_is_refused_and_nothing_stored(tenant, vendor):
    before = tenant.state(vendor)
    with tenant.client(vendor) as client:
        answer = client.post(WRITES[vendor], content=b'{"name": "\\ud800", "message": "\\ud800"}',
                             headers={"Content-Type": "application/json"})
        assert status(answer) == 400, answer.text[:200]
    assert tenant.state(vendor) == before


def test_validation_messages_never_echo_a_long_value_or_python_literals(tenant):
    """Every vendor: what the client sent is cut in the message, and Python's True/None read as JSON."""
    with tenant.client("dailybot") as daily:
        refused = daily.post("/kudos/", json={"receivers": ["x"], "content": "y" * 6000}).json()
        assert refused["code"] == "params_validation_error"
        assert "y" * 100 not in refused["detail"] and len(refused["detail"]) < 600
        typed = daily.post("/kudos/", json={"receivers": ["x"], "is_anonymous": None}).json()["detail"]
        assert "None" not in typed and typed.startswith("null is not of type")


@pytest.mark.parametrize("vendor", WRITES)
def test_nan_infinity_and_overflowing_numbers_are_not_json(tenant, vendor):
    """RFC 8259 has no NaN or Infinity, and the vendors' parsers refuse them; each is the
    dialect's 400 and nothing is stored."""
    before = tenant.state(vendor)
    with tenant.client(vendor) as client:
        for number in (b"NaN", b"Infinity", b"-Infinity", b"-1e400"):
            answer = client.post(WRITES[vendor], content=b'{"name": ' + number + b', "amount": ' + number + b"}",
                                 headers={"Content-Type": "application/json"})
            assert status(answer) == 400, (number, answer.text[:200])
            assert "not valid JSON" in answer.text, answer.text[:200]
    assert tenant.state(vendor) == before


def test_values_in_messages_are_json_and_big_integers_stay_exact(tenant):
    with tenant.client("karmabot") as karma:
        big = karma.post("/pluses", content=b'{"user_ids": 100000000000000000000001, "from_id": "x"}',
                         headers={"Content-Type": "application/json"}).json()["error"]["message"]
        assert big.startswith("100000000000000000000001 is not of type"), big
        nested = karma.post("/pluses", json={"user_ids": {"a": True, "b": None, "c": [1.5, "x" * 200]},
                                             "from_id": "x"}).json()["error"]["message"]
        assert nested.startswith('{"a": true, "b": null, "c": [1.5, "xxx') and "..." in nested, nested
        assert "x" * 100 not in nested


def test_a_tenants_journal_keeps_at_most_its_bytes_and_the_servers_journals_theirs():
    """Bodies of 60 KiB: a tenant's journal drops its oldest entries past 8 MiB, whatever
    --journal-limit allows, and leaves other tenants' entries alone; past the server's bound for
    every journal together, the server's oldest entries drop, whoever's."""
    with running(ticking=False, journal_limit=1000) as server:
        busy, quiet = server.new_tenant(rate_limits=False), server.new_tenant(rate_limits=False)
        with quiet.client("karmabot") as karma:
            assert karma.get("/users").status_code == 200
        with busy.client("karmabot") as karma:
            for number in range(200):
                karma.post("/pluses", json={"number": number, "padding": "x" * 60_000})
        kept = busy.requests()
        assert 100 < len(kept) < 140  # 8 MiB of 60 KiB bodies
        assert [entry["body"]["number"] for entry in kept] == list(range(200 - len(kept), 200))  # the newest
        assert sum(len(json.dumps(entry["body"])) for entry in kept) <= journal_module.MAX_TENANT_BYTES
        assert len(quiet.requests()) == 1
        coverage = busy.coverage("karmabot")["vendors"]["karmabot"]["summary"]
        assert coverage["calls"] == 200  # counted still

        journal = server.app.state.journal
        journal.total_bytes = 3_000_000  # the server's bound, lowered: 256 MiB takes 4,400 such requests
        late = server.new_tenant(rate_limits=False)
        with late.client("karmabot") as karma:
            for number in range(10):
                karma.post("/pluses", json={"number": number, "padding": "x" * 60_000})
        assert journal.bytes <= 3_000_000
        assert len(late.requests()) == 10  # the newest stay
        assert quiet.requests() == []  # the server's oldest entry was the quiet tenant's
        assert len(busy.requests()) < 50
