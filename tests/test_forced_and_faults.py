"""Forced responses (`Prefer`, Prism's convention) and faults injected through the admin API."""

import time

import httpx
import pytest

from mockserver.testing import running

# --- Prefer -------------------------------------------------------------------------------------

def test_prefer_code_answers_the_documented_error_in_the_vendor_dialect(tenant):
    kudos_before = tenant.state("dailybot")["kudos"]
    with tenant.client("karmabot") as karma:
        response = karma.get("/users", headers={"Prefer": "code=429"})
        assert response.status_code == 429 and response.headers["Retry-After"] == "12"  # the spec's example
        assert response.json() == {"error": {"code": "rate_limited", "message": "Rate limit exceeded; retry in 12 seconds."}}
    with tenant.client("dailybot") as daily:
        receiver = tenant.credentials["dailybot"]["other_users"][0]["user_uuid"]
        throttled = daily.post("/kudos/", json={"receivers": [receiver]}, headers={"Prefer": "code=429"})
        assert throttled.status_code == 429
        assert throttled.headers["Retry-After"] == "300"
        assert throttled.json() == {"detail": "Request was throttled. Expected available in 300 seconds.",
                                    "code": "throttled"}
        kudo = daily.get("/kudos/").json()["results"][0]["id"]
        boosted = daily.post(f"/kudos/{kudo}/boost/", headers={"Prefer": "code=409"})  # the seed's own wording
        assert boosted.status_code == 409
        assert boosted.json() == {"detail": "You have already boosted this kudo.", "code": "already_boosted"}
        bad = daily.post("/kudos/", json={}, headers={"Prefer": "code=400"})
        assert bad.status_code == 400 and "\n" not in bad.json()["detail"]  # never a spec's markdown
    with tenant.client("community") as hab:
        forbidden = hab.get("/boards", headers={"Prefer": "code=403"})
        assert forbidden.status_code == 403 and forbidden.json()["status"] == "FORBIDDEN"
    assert tenant.state("dailybot")["kudos"] == kudos_before  # nothing stored


def test_prefer_example_answers_that_documented_example(tenant):
    with tenant.client("dailybot") as daily:
        self_kudo = daily.post("/kudos/", json={"receivers": []}, headers={"Prefer": "code=400, example=self"})
        assert self_kudo.status_code == 400
        assert self_kudo.json() == {"detail": "You cannot give kudos to yourself", "code": "cant_give_kudos_to_yourself"}
        by_name_only = daily.post("/kudos/", json={}, headers={"Prefer": "example=empty"})
        assert by_name_only.status_code == 400 and by_name_only.json()["code"] == "params_validation_error"
    with tenant.client("karmabot") as karma:
        documented = karma.get("/users", headers={"Prefer": "code=200"})
        assert documented.status_code == 200 and documented.json()["users"][0]["name"] == "User 1"


def test_prefer_success_without_example_runs_the_handler(tenant):
    with tenant.client("corteza") as cz:
        response = cz.get("/channels/", headers={"Prefer": "code=200"})
        assert response.status_code == 200 and "general" in [c["name"] for c in response.json()["response"]]


def test_forced_responses_store_nothing_and_count_no_limit(tenant):
    before = tenant.state("karmabot")
    users = before["users"]
    with tenant.client("karmabot") as karma:
        for _ in range(10):
            assert karma.post("/pluses", json={"user_ids": [users[1]["id"]], "from_id": users[0]["id"]},
                              headers={"Prefer": "code=400"}).status_code == 400
        assert tenant.state("karmabot") == before
        assert karma.post("/pluses", json={"user_ids": [users[1]["id"]], "from_id": users[0]["id"]}).status_code == 201


@pytest.mark.parametrize("prefer", ["code=418", "example=nope", "code=200, example=nope"])
def test_undocumented_preferences_are_refused(tenant, prefer):
    with tenant.client("karmabot") as karma:
        response = karma.get("/users", headers={"Prefer": prefer})
        assert response.status_code == 400 and "Prefer" in response.json()["error"]["message"]


def test_prefer_still_needs_credentials(tenant):
    with tenant.client("karmabot", authenticated=False) as karma:
        assert karma.get("/users", headers={"Prefer": "code=200"}).status_code == 401


# --- faults -------------------------------------------------------------------------------------

@pytest.fixture
def faulty():
    with running(ticking=False) as server:
        yield server, server.new_tenant()


def add_fault(server, **fault):
    response = server.admin.post("/__admin/faults", json=fault)
    assert response.status_code == 201, response.text
    return response.json()


def test_status_fault_for_the_next_n_requests(faulty):
    server, tenant = faulty
    fault = add_fault(server, vendor="karmabot", operation="listUsers", kind="status", status=503, count=2)
    assert fault["id"] == "fault-1" and fault["count"] == 2
    with tenant.client("karmabot") as karma:
        assert karma.get("/channels").status_code == 200  # another operation
        first = karma.get("/users")
        assert first.status_code == 503 and first.json()["error"]["code"] == "service_unavailable"
        assert [karma.get("/users").status_code for _ in range(2)] == [503, 200]
    assert server.admin.get("/__admin/faults").json() == {"faults": []}


def test_status_fault_in_a_dialect_that_hides_statuses(faulty):
    server, tenant = faulty
    add_fault(server, vendor="corteza", kind="status", status=502, count=1)
    with tenant.client("corteza") as cz:
        response = cz.get("/channels/")
        assert response.status_code == 200 and "error" in response.json()
        assert response.headers["x-mockserver-error-status"] == "502"


def test_fault_limited_to_a_tenant(faulty):
    server, tenant = faulty
    other = server.new_tenant()
    add_fault(server, vendor="kudosnow", tenant=tenant.id, kind="status", status=500)
    with tenant.client("kudosnow") as mine, other.client("kudosnow") as theirs:
        assert mine.get("/redemptions").status_code == 500
        assert theirs.get("/redemptions").status_code == 200


def test_latency_fault(faulty):
    server, tenant = faulty
    add_fault(server, vendor="karmabot", kind="latency", latency_ms=400, count=1)
    with tenant.client("karmabot") as karma:
        started = time.monotonic()
        assert karma.get("/values").status_code == 200
        assert time.monotonic() - started >= 0.4
    assert server.admin.get("/__admin/faults").json()["faults"] == []  # spent: the next one is not delayed


def test_dropped_connection_and_malformed_body(faulty):
    server, tenant = faulty
    add_fault(server, vendor="dailybot", kind="drop", count=1)
    add_fault(server, vendor="karmabot", kind="malformed", count=1)
    with tenant.client("dailybot") as daily:
        with pytest.raises(httpx.RemoteProtocolError):
            daily.get("/kudos/")
        assert daily.get("/kudos/").status_code == 200
    with tenant.client("karmabot") as karma:
        broken = karma.get("/users")
        assert broken.status_code == 200
        with pytest.raises(ValueError):
            broken.json()


def test_probability_faults_repeat_with_the_seed():
    def run():
        with running(ticking=False, seed=3) as server:
            tenant = server.new_tenant()
            add_fault(server, vendor="karmabot", kind="status", status=500, probability=0.5)
            with tenant.client("karmabot") as karma:
                return [karma.get("/channels").status_code for _ in range(20)]

    first = run()
    assert set(first) == {200, 500}
    assert run() == first


def test_listing_and_clearing_faults(faulty):
    server, _ = faulty
    one = add_fault(server, vendor="karmabot", kind="status", status=500)
    add_fault(server, vendor="dailybot", kind="malformed", probability=0.1)
    assert [f["id"] for f in server.admin.get("/__admin/faults").json()["faults"]] == [one["id"], "fault-2"]
    assert server.admin.delete(f"/__admin/faults/{one['id']}").status_code == 204
    assert server.admin.delete(f"/__admin/faults/{one['id']}").status_code == 404
    assert server.admin.delete("/__admin/faults").status_code == 204
    assert server.admin.get("/__admin/faults").json() == {"faults": []}


@pytest.mark.parametrize("fault", [
    {"vendor": "nope", "kind": "status", "status": 500}, {"vendor": "karmabot", "kind": "explode"},
    {"vendor": "karmabot", "kind": "status"}, {"vendor": "karmabot", "kind": "status", "status": 200},
    {"vendor": "karmabot", "kind": "latency", "latency_ms": -1}, {"vendor": "karmabot", "kind": "drop", "count": 0},
    {"vendor": "karmabot", "kind": "drop", "probability": 2}, {"vendor": "karmabot", "kind": "drop", "colour": "red"},
    {"vendor": "karmabot", "kind": "drop", "count": True},
])
def test_bad_faults_are_refused(faulty, fault):
    server, _ = faulty
    response = server.admin.post("/__admin/faults", json=fault)
    assert response.status_code == 400 and response.json()["error"]["message"]
