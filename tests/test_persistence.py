"""--state-file: tenants survive restarts and crashes; admin export and import of state."""

import pickle

import httpx
import pytest

from mockserver.testing import running
from tests.served import Served


def plus(url, tenant, users):
    return httpx.post(f"{url}/karmabot/api/v1/pluses", headers=tenant["credentials"]["karmabot"]["headers"],
                      json={"user_ids": [users[1]["id"]], "from_id": users[0]["id"]})


def test_tenants_survive_a_crash(tmp_path):
    state_file = tmp_path / "state.bin"
    served = Served("--clock", "frozen", "--state-file", str(state_file))
    try:
        tenant = httpx.post(served.url + "/__admin/tenants", json={"tenant": "suite"}).json()
        users = httpx.get(f"{served.url}/__admin/tenants/suite/state").json()["karmabot"]["users"]
        for _ in range(3):
            assert plus(served.url, tenant, users).status_code == 201
        httpx.post(served.url + "/__admin/tenants/suite/clock", json={"advance_seconds": 3600})
    finally:
        served.kill()  # no shutdown: whatever was answered must already be on disk
    assert [path.name for path in tmp_path.iterdir()] == ["state.bin"]  # no temporary file left

    again = Served("--clock", "frozen", "--state-file", str(state_file))
    try:
        state = httpx.get(f"{again.url}/__admin/tenants/suite/state").json()["karmabot"]
        assert len(state["pluses"]) == 3 and state["users"] == users
        assert plus(again.url, tenant, users).status_code == 201  # the same credentials still work
        assert httpx.post(again.url + "/__admin/tenants/suite/clock",
                          json={"advance_seconds": 0}).json()["now"] == "2026-01-01T01:00:00Z"
        assert httpx.post(again.url + "/__admin/tenants").json()["tenant"] == "tenant-3"  # numbers go on
    finally:
        again.stop()


def test_a_corrupt_state_file_stops_the_start(tmp_path):
    state_file = tmp_path / "state.bin"
    state_file.write_bytes(b"not a state")
    with pytest.raises(RuntimeError, match="state-file"):
        Served("--state-file", str(state_file))


def test_export_and_import(tmp_path):
    with running(ticking=False) as source, running(ticking=False) as target:
        tenant = source.new_tenant(tenant="exported")
        with tenant.client("dailybot") as daily:
            receiver = tenant.credentials["dailybot"]["other_users"][0]["user_uuid"]
            assert daily.post("/kudos/", json={"receivers": [receiver], "content": "moved"}).status_code == 200
        blob = source.admin.get("/__admin/state/export")
        assert blob.status_code == 200 and blob.headers["content-type"] == "application/octet-stream"
        assert target.admin.post("/__admin/state/import", content=blob.content).status_code == 204
        moved = target.admin.get("/__admin/tenants/exported/state").json()["dailybot"]["kudos"]
        assert moved[-1]["content"] == "moved"
        with httpx.Client(base_url=target.base_url("dailybot"), headers=tenant.headers("dailybot")) as daily:
            assert daily.get("/kudos/", params={"filter": "kudos_given"}).json()["results"][0]["content"] == "moved"


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


@pytest.mark.parametrize("blob", [b"garbage", pickle.dumps({"format": 99}), pickle.dumps(Evil()),
                                  pickle.dumps({"format": 1, "vendors": ["karmabot"]})])
def test_import_refuses_what_is_not_a_state(blob, capsys):
    with running(ticking=False) as server:
        tenant = server.new_tenant()
        response = server.admin.post("/__admin/state/import", content=blob)
        assert response.status_code == 400 and response.json()["error"]["message"]
        assert "pwned" not in capsys.readouterr().out
        assert server.admin.get(f"/__admin/tenants/{tenant.id}").status_code == 200  # nothing replaced
