"""The admin API contract (paths and JSON shapes are relied on outside this repository)."""

import os

import pytest

from mockserver.testing import running


def test_health(server):
    response = server.admin.get("/__admin/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "vendors": [vendor.name for vendor in server.app.vendors]}
    assert response.headers["x-mockserver-pid"] == str(os.getpid())  # which process answered


def test_create_tenant_gives_working_credentials_for_every_vendor(server):
    response = server.admin.post("/__admin/tenants")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"tenant", "credentials"}
    assert set(body["credentials"]) == {vendor.name for vendor in server.app.vendors}
    karmabot = body["credentials"]["karmabot"]
    assert karmabot["headers"] == {"Authorization": f"Bearer {karmabot['api_key']}"}
    users = server.admin.get(server.base_url("karmabot") + "/users", headers=karmabot["headers"])
    assert users.status_code == 200


def test_create_tenant_with_chosen_id(server):
    response = server.admin.post("/__admin/tenants", json={"tenant": "suite-a.worker_1"})
    assert response.status_code == 201 and response.json()["tenant"] == "suite-a.worker_1"
    assert server.admin.post("/__admin/tenants", json={"tenant": "suite-a.worker_1"}).status_code == 409
    assert server.admin.get("/__admin/tenants/suite-a.worker_1").json() == response.json()


@pytest.mark.parametrize("body", [{"tenant": "../etc"}, {"tenant": ""}, {"tenant": 5}, {"rate_limits": "no"}, [1], "x"])
def test_create_tenant_rejects_bad_input(server, body):
    response = server.admin.post("/__admin/tenants", json=body)
    assert response.status_code == 400
    assert "message" in response.json()["error"]


def test_tenants_are_isolated(server):
    first, second = server.new_tenant(), server.new_tenant()
    assert first.credentials["karmabot"]["api_key"] != second.credentials["karmabot"]["api_key"]
    first_users = first.state("karmabot")["users"]
    assert first_users != second.state("karmabot")["users"]
    with first.client("karmabot") as client:
        users = first_users
        client.post("/pluses", json={"user_ids": [users[1]["id"]], "from_id": users[0]["id"]})
    assert len(first.state("karmabot")["pluses"]) == 1
    assert second.state("karmabot")["pluses"] == []
    first.advance(100)
    assert second.advance(0) == "2026-01-01T00:00:00Z"


def test_state_has_every_collection_as_the_api_shows_it(tenant):
    state = tenant.state()
    assert set(state["karmabot"]) == {"channels", "users", "values", "achievements", "pluses"}
    with tenant.client("karmabot") as client:
        assert client.get("/channels").json()["channels"] == state["karmabot"]["channels"]


def test_unknown_tenant_is_404(server):
    assert server.admin.get("/__admin/tenants/nobody/state").status_code == 404
    assert server.admin.post("/__admin/tenants/nobody/clock", json={"advance_seconds": 1}).status_code == 404


def test_tenant_clock_moves_forward_only(tenant, server):
    assert tenant.advance(90) == "2026-01-01T00:01:30Z"
    assert tenant.advance(0.5) == "2026-01-01T00:01:30Z"
    for bad in [-1, "10", None, True, float("inf")]:
        response = server.admin.post(f"/__admin/tenants/{tenant.id}/clock",
                                     content=f'{{"advance_seconds": {bad if not isinstance(bad, str) else repr(bad)}}}'
                                     .replace("None", "null").replace("True", "true").replace("inf", "1e999")
                                     .replace("'", '"'))
        assert response.status_code == 400, bad
    assert tenant.advance(0) == "2026-01-01T00:01:30Z"


def test_server_clock_moves_every_tenant():
    with running(ticking=False) as server:
        first, second = server.new_tenant(), server.new_tenant()
        first.advance(10)
        response = server.admin.post("/__admin/clock", json={"advance_seconds": 60})
        assert response.status_code == 200
        body = response.json()
        assert body["now"] == "2026-01-01T00:01:00Z"
        assert body["tenants"][first.id] == "2026-01-01T00:01:10Z"
        assert body["tenants"][second.id] == "2026-01-01T00:01:00Z"
        assert server.admin.post("/__admin/clock", json={"advance_seconds": -5}).status_code == 400


def test_reset_restores_seeded_state_and_counters():
    with running(ticking=False) as server:
        tenant = server.new_tenant()
        seeded = tenant.state()
        users = seeded["karmabot"]["users"]
        with tenant.client("karmabot") as client:
            for _ in range(6):
                client.post("/pluses", json={"user_ids": [users[1]["id"]], "from_id": users[0]["id"]})
            assert client.post("/pluses", json={"user_ids": [users[1]["id"]], "from_id": users[0]["id"]}).status_code == 429
            tenant.advance(5)
            response = server.admin.post("/__admin/reset")
            assert response.status_code == 204
            assert tenant.state() == seeded
            assert client.post("/pluses", json={"user_ids": [users[1]["id"]], "from_id": users[0]["id"]}).status_code == 201
        assert tenant.advance(0) == "2026-01-01T00:00:05Z"  # reset never turns the clock back


def test_request_journal_records_and_filters(server):
    first, second = server.new_tenant(), server.new_tenant()
    with first.client("karmabot") as client:
        client.get("/users", params={"cursor": 5})
        client.post("/pluses", json={"user_ids": [1], "from_id": 2})
    with second.client("karmabot") as client:
        client.get("/channels")
    entries = first.requests("karmabot")
    assert [(e["method"], e["path"], e["status"]) for e in entries] == [
        ("GET", "/karmabot/api/v1/users", 200), ("POST", "/karmabot/api/v1/pluses", 404)]
    get, post = entries
    assert set(get) >= {"vendor", "tenant", "method", "path", "query", "headers", "body", "status", "timestamp"}
    assert get["query"] == "cursor=5" and get["tenant"] == first.id and get["vendor"] == "karmabot"
    assert get["headers"]["authorization"] == first.credentials["karmabot"]["headers"]["Authorization"]
    assert post["body"] == {"user_ids": [1], "from_id": 2}
    assert get["timestamp"] == "2026-01-01T00:00:00Z"
    assert [e["path"] for e in second.requests()] == ["/karmabot/api/v1/channels"]


def test_journal_records_unauthenticated_requests_and_clears():
    with running(ticking=False) as server:
        server.admin.get(server.base_url("karmabot") + "/users")
        entries = server.admin.get("/__admin/requests", params={"vendor": "karmabot"}).json()["requests"]
        assert [(e["tenant"], e["status"]) for e in entries] == [(None, 401)]
        assert server.admin.delete("/__admin/requests").status_code == 204
        assert server.admin.get("/__admin/requests").json() == {"requests": []}


def test_journal_is_bounded():
    with running(ticking=False, journal_limit=5) as server:
        tenant = server.new_tenant()
        with tenant.client("karmabot") as client:
            for cursor in range(8):
                client.get("/values", params={"cursor": cursor})
        queries = [entry["query"] for entry in tenant.requests()]
        assert queries == [f"cursor={n}" for n in range(3, 8)]


def test_admin_errors_are_json(server):
    assert server.admin.get("/__admin/nothing").json()["error"]["code"] == 404
    assert server.admin.delete("/__admin/health").status_code == 405


def test_a_path_outside_every_vendor_answers_in_the_admin_apis_error_shape(server):
    """One error shape for the core: the admin API's (a vendor's paths answer in its dialect)."""
    outside, admin = server.admin.get("/nothing"), server.admin.get("/__admin/nothing")
    assert outside.status_code == admin.status_code == 404
    assert outside.json() == {"error": {"code": 404, "message": "Not Found"}}
    assert set(outside.json()["error"]) == set(admin.json()["error"])


def test_vendors_lists_base_paths_specs_and_ui(server):
    listed = server.admin.get("/__admin/vendors").json()["vendors"]
    assert [v["name"] for v in listed] == [vendor.name for vendor in server.app.vendors]
    for entry in listed:
        spec = server.admin.get(entry["spec"])
        assert spec.status_code == 200 and spec.json()["info"]["title"]
        yaml_spec = server.admin.get(entry["base_path"] + "/openapi.yaml")
        assert yaml_spec.status_code == 200 and "openapi: 3.0.3" in yaml_spec.text
        ui = server.admin.get(entry["ui"])
        assert ui.status_code == 200 and "swagger" in ui.text.lower()


def test_spec_and_ui_downloads_stay_out_of_the_journal(server):
    tenant = server.new_tenant()
    server.admin.get(server.base_url("karmabot") + "/openapi.json")
    assert server.admin.post("/__admin/requests/find", json={"path": "/karmabot/api/v1/openapi.json"}).json()["count"] == 0
    with tenant.client("karmabot") as karma:
        karma.get("/nothing")
    # It matches no operation, so nothing authenticates it: journaled as the tenant its credential names.
    assert tenant.verify(path="/karmabot/api/v1/nothing", status=404) == 1
    with tenant.client("karmabot", authenticated=False) as stranger:
        stranger.get("/nothing")
    assert server.admin.post("/__admin/requests/find", json={"tenant": None, "path": "/karmabot/api/v1/nothing"}
                             ).json()["count"] >= 1


def test_find_requests_by_fields_and_partial_body(server):
    tenant = server.new_tenant()
    users = tenant.state("karmabot")["users"]
    with tenant.client("karmabot") as karma:
        karma.post("/pluses", json={"user_ids": [users[1]["id"]], "from_id": users[0]["id"], "description": "x"})
        karma.post("/pluses", json={"user_ids": [users[2]["id"]], "from_id": users[0]["id"]})
        karma.get("/users")
    assert tenant.verify(vendor="karmabot", operation="createPlus") == 2
    assert tenant.verify(operation="createPlus", body={"description": "x"}) == 1
    assert tenant.verify(operation="createPlus", body={"from_id": users[0]["id"]}, status=201) == 2
    assert tenant.verify(method="GET", path="/karmabot/api/v1/users") == 1
    found = server.admin.post("/__admin/requests/find", json={"tenant": tenant.id, "operation": "listUsers"}).json()
    assert found["count"] == 1 and found["requests"][0]["operation"] == "listUsers"
    assert server.admin.post("/__admin/requests/find", json={"colour": "red"}).status_code == 400


def test_delete_tenant(server):
    tenant = server.new_tenant()
    headers = tenant.credentials["karmabot"]["headers"]
    tenant.delete()
    assert server.admin.get(f"/__admin/tenants/{tenant.id}").status_code == 404
    assert server.admin.get(server.base_url("karmabot") + "/users", headers=headers).status_code == 401
    assert server.admin.delete("/__admin/tenants/default").status_code == 400
    assert server.admin.delete("/__admin/tenants/nobody").status_code == 404
    successor = server.new_tenant()  # numbers, ids and credentials are never reused
    assert successor.id != tenant.id and successor.credentials != tenant.credentials
    assert successor.requests() == []


def test_journal_keeps_the_headers_the_client_sent(server):
    tenant = server.new_tenant()
    with tenant.client("corteza") as cz:
        channel = cz.get("/channels/").json()["response"][0]["channelID"]
        cz.post(f"/channels/{channel}/messages/", content=b"message=hi", headers={"Content-Type": "text/plain"})
        cz.delete("/status/")
    sent = [entry["headers"].get("content-type") for entry in tenant.requests("corteza")]
    assert sent == [None, "text/plain", None]
