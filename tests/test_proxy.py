"""`mockserver proxy` between a client and an upstream (this mock on loopback, or a drifting proxy
in front of it), and `mockserver replay` of what it recorded."""

import contextlib
import json
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import httpx
import pytest
import uvicorn

from mockserver.proxy import MAX_BODY_BYTES, Proxy
from mockserver.testing import running
from mockserver.vendor import discover
from tests.drifting import DriftingProxy
from tests.hostile import BIG_BYTES, DEEP, HostileUpstream
from tests.served import Served

DEFAULT_KARMABOT_KEY = "krm_1_d020104626bf82b1420f719a67ad9420"  # documented in README.md, any seed


@pytest.fixture(scope="module")
def upstream():
    with running(ticking=False) as server:
        yield server, server.new_tenant(rate_limits=False)


def proxy(vendor: str, upstream_url: str, *args) -> Served:
    return Served("--vendor", vendor, "--upstream", upstream_url, *args, command="proxy")


def secrets_of(tenant, vendor) -> list[str]:
    """Every credential value the tenant's requests to this vendor carry."""
    credentials = tenant.credentials[vendor]
    values = [value for value in credentials["headers"].values()]
    values += [value.partition(" ")[2] for value in values if " " in value]
    values += [credentials[key] for key in ("api_key", "token", "password") if key in credentials]
    return [value for value in values if value]


# Per vendor: a documented call answered as documented, and how the client sends its credentials.
CLEAN_CALLS = {
    "karmabot": ("GET", "/users", {}),
    "dailybot": ("GET", "/kudos/", {}),
    "community": ("GET", "/boards", {}),
    "corteza": ("GET", "/channels/", {}),
    "kudosnow": ("GET", "/redemptions", {}),
}


@pytest.mark.parametrize("vendor", CLEAN_CALLS)
def test_clean_traffic_reports_no_drift_and_no_secret(upstream, vendor, tmp_path):
    server, tenant = upstream
    report, junit, recorded = tmp_path / "report.json", tmp_path / "report.xml", tmp_path / "recorded"
    served = proxy(vendor, server.base_url(vendor), "--report", str(report), "--junit", str(junit),
                   "--record", str(recorded), "--fail-on", "drift")
    base = served.url + tenant.base_urls[vendor].split(server.url, 1)[1]
    method, path, _ = CLEAN_CALLS[vendor]
    try:
        if vendor == "kudosnow":  # the key in the query string, as the vendor also documents
            key = tenant.credentials[vendor]["api_key"]
            answer = httpx.request(method, base + path, params={"apikey": key})
        else:
            answer = httpx.request(method, base + path, headers=tenant.headers(vendor))
        direct = httpx.request(method, tenant.base_urls[vendor] + path, headers=tenant.headers(vendor))
        assert answer.status_code == direct.status_code == 200 and answer.content == direct.content
        assert "x-mockserver-drift" not in answer.headers
        if vendor == "corteza":  # an error in an HTTP 200 answer is counted, not drift
            error = httpx.get(base + "/channels/123", headers=tenant.headers(vendor)).json()
            assert set(error) == {"error"}
        live = httpx.get(served.url + "/__admin/proxy/report").json()
        assert live["drift"] == 0 and live["operations"][0]["calls"] >= 1
    finally:
        output = served.stop()
    assert served.process.returncode == 0, output
    data = json.loads(report.read_text())
    assert data["drift"] == 0 and data["undocumented"] == []
    seen = {entry["operation"]: entry for entry in data["operations"]}
    assert len(seen) == (2 if vendor == "corteza" else 1)
    if vendor == "corteza":
        assert seen["channelRead"]["statuses"] == {"200 (error)": 1}
    assert not ElementTree.parse(junit).getroot().findall(".//failure")
    assert len(data["never_exercised"]) == len(tenant_vendor_operations(vendor)) - len(seen)
    written = report.read_text() + junit.read_text() + output + "".join(
        path.read_text() for path in recorded.iterdir())
    for secret in secrets_of(tenant, vendor):
        assert secret not in written, vendor
    assert "[redacted]" in "".join(path.read_text() for path in recorded.iterdir())


def tenant_vendor_operations(vendor: str) -> list[str]:
    from mockserver.vendor import discover
    return list(discover([vendor])[0].operations)


def test_drift_is_reported_with_its_pointer_and_fails_the_run(upstream, tmp_path):
    """An upstream that renames a field and answers another status: each finding has its place,
    the answers say so in X-Mockserver-Drift, and --fail-on drift exits non-zero."""
    server, tenant = upstream
    root = server.url
    with DriftingProxy(root, status={"POST /pluses": 200}, rename=("slack_id", "slackId")) as drifting:
        served = proxy("karmabot", drifting.url + "/karmabot/api/v1", "--report", str(tmp_path / "r.txt"),
                       "--fail-on", "drift")
        base, headers = served.url + "/karmabot/api/v1", tenant.headers("karmabot")
        try:
            users = httpx.get(base + "/users", headers=headers)
            assert users.status_code == 200 and "slackId" in users.json()["users"][0]
            assert users.headers["x-mockserver-drift"].startswith("20: response body /users/0/slack_id")
            first, second = users.json()["users"][:2]
            plus = httpx.post(base + "/pluses", headers=headers, json={"from_id": first["id"], "user_ids": [second["id"]]})
            assert plus.status_code == 200 and "response status" in plus.headers["x-mockserver-drift"]
            report = httpx.get(served.url + "/__admin/proxy/report").json()
        finally:
            output = served.stop()
    assert served.process.returncode == 1, output
    by_operation = {entry["operation"]: entry for entry in report["operations"]}
    renamed = by_operation["listUsers"]["response_problems"]
    assert {"direction": "response", "part": "body", "pointer": "/users/0/slack_id", "expected": "present (required)",
            "got": "absent", "count": 1} in renamed
    status = by_operation["createPlus"]["response_problems"]
    assert status == [{"direction": "response", "part": "status", "pointer": "", "count": 1,
                       "expected": "201, 400, 401, 404, 413, 415, 429", "got": "200"}]
    assert "DRIFT POST /pluses (createPlus)" in (tmp_path / "r.txt").read_text()


def test_a_dropped_documented_header_is_drift(upstream):
    server, tenant = upstream
    with DriftingProxy(server.url, drop_header="has_more") as drifting:
        served = proxy("community", drifting.url + "/community/api/v1")
        try:
            answer = httpx.get(served.url + "/community/api/v1/boards", headers=tenant.headers("community"))
            report = httpx.get(served.url + "/__admin/proxy/report").json()
        finally:
            served.stop()
    assert answer.status_code == 200 and "has_more" not in answer.headers
    assert report["operations"][0]["response_problems"] == [
        {"direction": "response", "part": "header", "pointer": "has_more", "expected": "present (required)",
         "got": "absent", "count": 1}]
    assert served.process.returncode == 0  # --fail-on never, the default


def test_request_problems_undocumented_calls_and_unexercised_operations(upstream):
    server, tenant = upstream
    served = proxy("karmabot", server.base_url("karmabot"))
    base = served.url + "/karmabot/api/v1"
    try:
        refused = httpx.post(base + "/pluses", headers=tenant.headers("karmabot"), json={"from_id": "x"})
        assert refused.status_code == 400 and "request body" in refused.headers["x-mockserver-drift"]
        assert httpx.get(base + "/users").status_code == 401  # no credentials: the vendor's answer, passed on
        httpx.delete(base + "/pluses/12345", headers=tenant.headers("karmabot"))
        text = httpx.get(served.url + "/__admin/proxy/report", params={"format": "text"}).text
        report = httpx.get(served.url + "/__admin/proxy/report").json()
    finally:
        served.stop()
    entries = {entry["operation"]: entry for entry in report["operations"]}
    request_problems = {(p["pointer"], p["expected"], p["got"]) for p in entries["createPlus"]["request_problems"]}
    assert request_problems == {("/user_ids", "present (required)", "absent"), ("/from_id", "type: integer", "x")}
    assert entries["listUsers"]["request_problems"][0]["part"] == "credentials"
    assert report["undocumented"] == [{"call": "DELETE /pluses/{id}", "count": 1}]
    assert report["never_exercised"] == ["GET /channels (listChannels)", "GET /values (listValues)",
                                         "GET /achievements (listAchievements)"]
    assert "UNDOCUMENTED DELETE /pluses/{id}" in text and tenant.credentials["karmabot"]["api_key"] not in text


def test_recorded_exchanges_replay_against_the_mock(tmp_path):
    """Recorded through the proxy from one server, replayed against a fresh one with the same
    seed: the same shapes. Replayed against a drifting one: the differences, and exit 1."""
    recorded = tmp_path / "recorded"
    first = Served("--seed", "3", "--clock", "frozen")
    try:
        served = proxy("karmabot", first.url + "/karmabot/api/v1", "--record", str(recorded))
        base, headers = served.url + "/karmabot/api/v1", {"Authorization": f"Bearer {DEFAULT_KARMABOT_KEY}"}
        try:
            users = httpx.get(base + "/users", headers=headers).json()["users"]
            created = httpx.post(base + "/pluses", headers=headers,
                                 json={"from_id": users[0]["id"], "user_ids": [users[1]["id"]], "description": "Thanks"})
            assert created.status_code == 201
            httpx.get(base + "/channels", headers=headers)
        finally:
            served.stop()
    finally:
        first.stop()
    assert len(list(recorded.iterdir())) == 3
    assert DEFAULT_KARMABOT_KEY not in "".join(path.read_text() for path in recorded.iterdir())

    second = Served("--seed", "3", "--clock", "frozen")
    try:
        same = replay(recorded, second.url + "/karmabot/api/v1", f"Authorization: Bearer {DEFAULT_KARMABOT_KEY}")
        assert same.returncode == 0 and "3 exchange(s): 0 with a different answer" in same.stdout, same.stdout
        with DriftingProxy(second.url, rename=("name", "full_name")) as drifting:
            drifted = replay(recorded, drifting.url + "/karmabot/api/v1",
                             f"Authorization: Bearer {DEFAULT_KARMABOT_KEY}")
    finally:
        second.stop()
    assert drifted.returncode == 1
    assert "/users/0/name: missing" in drifted.stdout and "/users/0/full_name: not in the recording" in drifted.stdout


def test_replay_refuses_a_recording_that_is_not_one(tmp_path):
    (tmp_path / "00001-x.json").write_text(json.dumps({"request": {"method": "GET", "path": "/../__admin/reset"},
                                                       "response": {"status": 200}}))
    result = replay(tmp_path, "http://127.0.0.1:9/karmabot/api/v1")
    assert result.returncode == 1 and "unreadable recording: request.path" in result.stdout


def replay(folder, base_url: str, *headers: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mockserver", "replay", str(folder), "--base-url", base_url,
                           *[arg for header in headers for arg in ("--header", header)]],
                          capture_output=True, text=True, timeout=120)


def test_a_form_body_is_read_as_the_vendor_reads_it(upstream):
    """Corteza reads any body that is not exactly JSON as a form (x-form-fallback); so does the check."""
    server, tenant = upstream
    served = proxy("corteza", server.base_url("corteza"))
    base = served.url + "/corteza/messaging"
    try:
        created = httpx.post(base + "/channels/", headers=tenant.headers("corteza") | {"Content-Type": "text/plain"},
                             content=b"name=formed&type=public")
        assert created.json()["response"]["name"] == "formed" and "x-mockserver-drift" not in created.headers
        report = httpx.get(served.url + "/__admin/proxy/report").json()
    finally:
        served.stop()
    assert report["drift"] == 0


def test_a_port_in_use_is_a_clear_error(upstream):
    server, _ = upstream
    port = int(server.url.rsplit(":", 1)[1])  # the upstream holds it
    result = subprocess.run([sys.executable, "-m", "mockserver", "proxy", "--vendor", "karmabot", "--upstream",
                             server.base_url("karmabot"), "--port", str(port)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in result.stderr


KARMABOT = "/karmabot/api/v1"
KARMABOT_CREDENTIALS = {"Authorization": f"Bearer {DEFAULT_KARMABOT_KEY}"}


@pytest.fixture(scope="module")
def hostile():
    with HostileUpstream() as upstream:
        yield upstream


@pytest.fixture(scope="module")
def hostile_proxy(hostile, tmp_path_factory):
    """One `mockserver proxy` in front of the hostile upstream, recording what passes."""
    served = proxy("karmabot", hostile.url + KARMABOT, "--record", str(tmp_path_factory.mktemp("recorded")))
    yield served
    served.stop()


def hostile_get(served, behaviour: str, path: str = "/users") -> httpx.Response:
    return httpx.get(served.url + KARMABOT + path, headers=KARMABOT_CREDENTIALS | {"X-Hostile": behaviour}, timeout=60)


def response_problems(served) -> list[dict]:
    report = httpx.get(served.url + "/__admin/proxy/report").json()
    return [problem for entry in report["operations"] for problem in entry["response_problems"]]


def memory(served, field: str) -> int:
    """VmRSS (now) or VmHWM (the peak so far) of the proxy's process, in bytes (Linux)."""
    status = Path(f"/proc/{served.process.pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith(field + ":"))) << 10


@pytest.mark.parametrize("behaviour", ["big", "bomb"])
def test_an_answer_past_the_bound_is_a_502_and_a_finding_and_memory_stays_bounded(hostile, behaviour):
    """64 MiB on the wire, or a gzip bomb (250 KiB that inflate to 256 MiB): read as it comes,
    counting decoded bytes, and refused once past 16 MiB; the proxy never holds more than that."""
    served = proxy("karmabot", hostile.url + KARMABOT)
    try:
        small = hostile_get(served, "gzip")  # a gzip answer within the bound comes back decoded
        assert small.json() == {"users": []} and "content-encoding" not in small.headers
        before = memory(served, "VmRSS")
        answer = hostile_get(served, behaviour)
        peak = memory(served, "VmHWM")
        problems = response_problems(served)
    finally:
        served.stop()
    assert answer.status_code == 502, answer.headers
    assert "over 16 MiB" in answer.json()["error"]["message"] and "response upstream" in answer.headers[
        "x-mockserver-drift"]
    assert {"direction": "response", "part": "upstream", "pointer": "", "count": 1,
            "expected": "a body of at most 16 MiB (the proxy's bound)", "got": "more: answered 502"} in problems
    # The body held, the inflater's last output as it is put together, and slack (reading it all took 144 MiB+).
    assert peak - before < 3 * MAX_BODY_BYTES, f"peak {peak >> 20} MiB, {before >> 20} MiB before"
    if behaviour == "big":
        assert hostile.sent_bytes["big"] < BIG_BYTES  # the proxy hung up instead of reading on


@contextlib.contextmanager
def proxy_in_process(upstream_url: str, **options):
    """`mockserver proxy` for Karma bot in this process, with Proxy's own options: its root URL."""
    app = Proxy(discover(["karmabot"])[0], upstream_url, **options)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", server_header=False,
                                           date_header=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the proxy did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_an_upstream_exchange_has_a_deadline(hostile):
    """An upstream trickling a byte every 0.1 s never trips a read timeout; the whole exchange's
    deadline (60 s; 1 s here) does: a 504 and a finding."""
    with proxy_in_process(hostile.url + KARMABOT, deadline=1.0) as url:
        answer = httpx.get(url + KARMABOT + "/users", headers=KARMABOT_CREDENTIALS | {"X-Hostile": "trickle"},
                           timeout=60)
        report = httpx.get(url + "/__admin/proxy/report").json()
    assert answer.status_code == 504 and "within 1 s" in answer.json()["error"]["message"]
    assert report["operations"][0]["response_problems"] == [
        {"direction": "response", "part": "upstream", "pointer": "", "count": 1,
         "expected": "a whole answer within 1 s (the proxy's deadline)", "got": "none: answered 504"}]
    assert report["upstream_failures"] == 1


def test_deep_json_passes_through_unchecked_as_a_finding(hostile_proxy):
    """JSON nested 100,000 deep, from the upstream or the client, is passed on as it came; checking
    (and recording) it would recurse, so the finding says it was not checked."""
    deep = b"[" * DEEP + b"]" * DEEP
    answer = hostile_get(hostile_proxy, "deep")
    assert answer.status_code == 200 and answer.content == deep
    assert "response body" in answer.headers["x-mockserver-drift"]
    sent = httpx.post(hostile_proxy.url + KARMABOT + "/pluses", content=deep, timeout=60,
                      headers=KARMABOT_CREDENTIALS | {"Content-Type": "application/json"})
    assert sent.status_code == 200 and "request body" in sent.headers["x-mockserver-drift"]
    report = httpx.get(hostile_proxy.url + "/__admin/proxy/report").json()
    unchecked = {"part": "body", "pointer": "", "count": 1, "expected": "JSON nested at most 64 levels (the proxy's bound)",
                 "got": "deeper: not checked"}
    entries = {entry["operation"]: entry for entry in report["operations"]}
    assert unchecked | {"direction": "response"} in entries["listUsers"]["response_problems"]
    assert unchecked | {"direction": "request"} in entries["createPlus"]["request_problems"]


def test_upstream_x_mockserver_headers_are_not_passed_on(hostile_proxy):
    """Only the proxy's own X-Mockserver-* headers reach the client: an upstream's could pass for them."""
    answer = hostile_get(hostile_proxy, "forged")
    assert answer.status_code == 200 and answer.json() == {"users": []}
    assert "forged" not in str(answer.headers.multi_items()) and "x-mockserver-error-status" not in answer.headers


def test_the_path_and_query_are_forwarded_exactly_as_sent(hostile, hostile_proxy):
    """`%2F` and `%3F` stay encoded (decoded, they would be another path, and a query)."""
    answer = httpx.get(hostile_proxy.url + KARMABOT + "/users/a%2Fb%3Fc?q=%2F+x&r=a%20b", headers=KARMABOT_CREDENTIALS)
    assert answer.json() == {"target": KARMABOT + "/users/a%2Fb%3Fc?q=%2F+x&r=a%20b"}
