"""What browser clients, test authors and operators meet: CORS, the command line."""

import json
import os
import re
import subprocess
import sys
import time
from importlib.metadata import version

import httpx
import pytest

from mockserver.testing import running
from tests.served import Served

ORIGIN = "http://localhost:3000"


def test_browsers_may_call_the_vendors_with_credentials(server, tenant):
    base = server.base_url("karmabot")
    preflight = server.admin.options(base + "/pluses", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert preflight.headers["access-control-allow-credentials"] == "true"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert preflight.headers["access-control-allow-headers"] == "authorization, content-type"
    with tenant.client("community") as hab:
        answer = hab.get("/boards", headers={"Origin": ORIGIN})
        assert answer.headers["access-control-allow-origin"] == ORIGIN
        assert "has_more" in answer.headers["access-control-expose-headers"]  # as the spec documents it
        refused = hab.get("/nothing", headers={"Origin": ORIGIN})
        assert refused.status_code == 404 and refused.headers["access-control-allow-origin"] == ORIGIN


def test_the_admin_api_is_not_open_to_other_origins(server):
    preflight = server.admin.options("/__admin/tenants", headers={"Origin": "http://evil.example",
                                                                  "Access-Control-Request-Method": "GET"})
    assert "access-control-allow-origin" not in preflight.headers
    answer = server.admin.get("/__admin/tenants", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in answer.headers


def test_no_cors_when_turned_off():
    with running(ticking=False, cors=False) as server:
        preflight = server.admin.options(server.base_url("karmabot") + "/users", headers={
            "Origin": ORIGIN, "Access-Control-Request-Method": "GET"})
        assert preflight.status_code == 405 and "access-control-allow-origin" not in preflight.headers
        assert preflight.json()["error"]["code"]  # the vendor's own answer to OPTIONS
        assert httpx.get(server.base_url("karmabot") + "/users").status_code == 401


def test_corteza_answers_cors_as_its_server_does_even_when_turned_off():
    """pkg/api/server/cors.go: any origin, with credentials, always (corteza-js uses withCredentials)."""
    with running(ticking=False, cors=False) as server:
        tenant = server.new_tenant()
        base = server.base_url("corteza")
        preflight = httpx.options(base + "/channels/", headers={
            "Origin": ORIGIN, "Access-Control-Request-Method": "PATCH", "Access-Control-Request-Headers": "authorization"})
        assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == ORIGIN
        assert preflight.headers["access-control-allow-credentials"] == "true"
        assert "PATCH" in preflight.headers["access-control-allow-methods"]
        assert preflight.headers["access-control-max-age"] == "300"
        answer = httpx.get(base + "/channels/", headers={"Origin": ORIGIN} | tenant.headers("corteza"))
        assert answer.headers["access-control-allow-origin"] == ORIGIN and answer.json()["response"]


# --- the command line ---------------------------------------------------------------------------

def test_version():
    done = subprocess.run([sys.executable, "-m", "mockserver", "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.split()[-1] == version("mockserver")


def test_the_banner_comes_after_the_port_is_bound_and_names_the_real_one():
    process = subprocess.Popen([sys.executable, "-m", "mockserver", "serve", "--port", "0", "--clock", "frozen"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=os.environ | {"PYTHONUNBUFFERED": "1"})
    try:
        banner = process.stdout.readline()
        port = int(re.search(r"127\.0\.0\.1:(\d+)", banner).group(1))
        assert port != 0 and "clock frozen" in banner
        assert "Swagger UI" in process.stdout.readline()
        assert httpx.get(f"http://127.0.0.1:{port}/__admin/health").status_code == 200
        taken = subprocess.run([sys.executable, "-m", "mockserver", "serve", "--port", str(port)],
                               capture_output=True, text=True, timeout=60)
        assert taken.returncode == 2 and "cannot listen" in taken.stderr and "mockserver" not in taken.stdout
    finally:
        process.terminate()
        process.communicate(timeout=10)


def test_an_access_line_per_request_and_no_validation_dumps():
    served = Served("--clock", "frozen")
    try:
        headers = {"Authorization": "Bearer krm_1_d020104626bf82b1420f719a67ad9420"}
        httpx.get(served.url + "/karmabot/api/v1/users", headers=headers)
        httpx.post(served.url + "/karmabot/api/v1/pluses", headers=headers, json={"from_id": "not a number"})
    finally:
        output = served.stop()
    assert "mockserver.access: karmabot default listUsers GET /karmabot/api/v1/users 200" in output
    assert "karmabot default createPlus POST /karmabot/api/v1/pluses 400" in output
    assert "Validation error" not in output


def test_json_logs():
    served = Served("--clock", "frozen", "--log-format", "json")
    try:
        httpx.get(served.url + "/kudosnow/v1/redemptions", headers={"apikey": "8f687809153b1d7f493d81583a04af34"})
    finally:
        output = served.stop()
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    [access] = [line for line in lines if line["logger"] == "mockserver.access"]
    assert access | {"duration_ms": 0, "time": ""} == {
        "time": "", "level": "info", "logger": "mockserver.access", "message": access["message"],
        "vendor": "kudosnow", "tenant": "default", "operation": "redemptionHistory", "method": "GET",
        "path": "/kudosnow/v1/redemptions", "status": 200, "duration_ms": 0}


# --- the admin API, for test authors ------------------------------------------------------------

def test_typos_in_faults_and_verifications_fail_loudly(server, tenant):
    for pattern, says in (({"vendor": "karmabots"}, "unknown vendor"), ({"operation": "createPluses"}, "createPlus"),
                          ({"vendor": "dailybot", "operation": "createPlus"}, "unknown operation"),
                          ({"tenant": "nobody"}, "unknown tenant"), ({"method": "post"}, "upper case"),
                          ({"status": "201"}, "status must be")):
        answer = server.admin.post("/__admin/requests/find", json=pattern)
        assert answer.status_code == 400 and says in answer.json()["error"]["message"], pattern
    for fault, says in (({"vendor": "karmabot", "kind": "status", "status": 500, "operation": "listUser"}, "listUsers"),
                        ({"vendor": "karmabot", "kind": "status", "status": 500, "tenant": "nobody"}, "unknown tenant")):
        answer = server.admin.post("/__admin/faults", json=fault)
        assert answer.status_code == 400 and says in answer.json()["error"]["message"], fault
    assert server.admin.get("/__admin/faults").json()["faults"] == []
    assert tenant.verify(vendor="karmabot", operation="createPlus", method="POST", status=201) == 0


def test_clocks_are_read_and_set_to_a_time(server, tenant):
    clock = f"/__admin/tenants/{tenant.id}/clock"
    assert server.admin.get(clock).json() == {"now": "2026-01-01T00:00:00Z"}
    assert server.admin.post(clock, json={"to": "2026-03-01T09:30:00Z"}).json() == {"now": "2026-03-01T09:30:00Z"}
    assert server.admin.post(clock, json={"to": "2026-03-01T10:30:00+01:00"}).json()["now"] == "2026-03-01T09:30:00Z"
    for body in ({"to": "2026-02-01T00:00:00Z"}, {"to": "yesterday"}, {"to": "2026-04-01", "advance_seconds": 1}, {}):
        assert server.admin.post(clock, json=body).status_code == 400, body
    assert server.admin.get(clock).json() == {"now": "2026-03-01T09:30:00Z"}


def test_running_takes_the_clock_as_serve_does():
    with running(clock="frozen") as frozen, running() as ticking:  # ticking by default, as `serve`
        time.sleep(1.1)
        assert frozen.new_tenant().advance(0) == "2026-01-01T00:00:00Z"
        assert ticking.new_tenant().advance(0) > "2026-01-01T00:00:00Z"
    with pytest.raises(ValueError, match="ticking"):
        running(clock="stopped").__enter__()
