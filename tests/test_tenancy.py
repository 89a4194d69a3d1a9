"""Cheap tenants: workspaces seeded on first use (the same bytes as at once), one tenant reset
alone, a reset of all that does not wait for every tenant, custom ids beside auto-numbered ones,
and per-tenant journals and faults."""

import httpx

from mockserver.testing import running

PLUS = "/pluses"


def give_karma(tenant, client) -> httpx.Response:
    users = client.get("/users").json()["users"]
    return client.post(PLUS, json={"user_ids": [users[1]["id"]], "from_id": users[0]["id"]})


def test_a_workspace_seeded_on_first_use_has_the_bytes_of_one_seeded_at_once():
    """Two servers with one seed, each vendor first used in a different order: the same data and
    credentials, and the credentials known before any workspace is built are those it then has."""
    with running(ticking=False, seed=7) as first, running(ticking=False, seed=7) as second:
        one, other = first.new_tenant(), second.new_tenant()
        assert one.credentials == other.credentials
        reads = {"kudosnow": "/redemptions", "corteza": "/channels/", "dailybot": "/kudos/",
                 "community": "/users/me", "karmabot": "/users"}
        for vendor, path in reads.items():  # one vendor at a time, in an order of its own
            with one.client(vendor) as client:
                assert client.get(path).status_code == 200
        assert one.state() == other.state()  # the second server seeds all five at once here
        assert first.admin.get(f"/__admin/tenants/{one.id}").json()["credentials"] == one.credentials


def test_reset_one_tenant_keeps_the_others_and_its_clock_and_credentials():
    with running(ticking=False) as server:
        reset, kept = server.new_tenant(), server.new_tenant()
        seeded = reset.state("karmabot")
        for tenant in (reset, kept):
            with tenant.client("karmabot") as karma:
                assert give_karma(tenant, karma).status_code == 201
        server.admin.post("/__admin/faults", json={"vendor": "karmabot", "kind": "status", "status": 500,
                                                   "tenant": reset.id})
        server.admin.post("/__admin/faults", json={"vendor": "karmabot", "kind": "status", "status": 502,
                                                   "tenant": kept.id})
        reset.advance(30)
        assert server.admin.post(f"/__admin/tenants/{reset.id}/reset").status_code == 204
        assert server.admin.post("/__admin/tenants/nobody/reset").status_code == 404
        assert reset.state("karmabot") == seeded
        assert reset.requests() == []  # its journal entries went too
        assert len(kept.state("karmabot")["pluses"]) == 1 and len(kept.requests()) == 2
        assert [fault["tenant"] for fault in server.admin.get("/__admin/faults").json()["faults"]] == [kept.id]
        assert reset.advance(0) == "2026-01-01T00:00:30Z"  # the clock stays
        with reset.client("karmabot") as karma:  # the credentials still work, with fresh counters
            assert all(give_karma(reset, karma).status_code == 201 for _ in range(6))


def test_reset_of_every_tenant_is_lazy_and_complete():
    with running(ticking=False) as server:
        tenants = [server.new_tenant() for _ in range(3)]
        seeded = [tenant.state("corteza") for tenant in tenants]
        hooks = []
        for tenant in tenants:
            with tenant.client("corteza") as cz:
                channel = cz.get("/channels/").json()["response"][0]["channelID"]
                assert cz.post(f"/channels/{channel}/messages/", json={"message": "before"}).status_code == 200
                cz.post("/webhooks/", json={"channelID": channel, "kind": "incoming",
                                            "userID": tenant.credentials["corteza"]["user_id"]}).raise_for_status()
            hooks.append(tenant.state("corteza")["webhooks"][0])
        public = server.base_url("corteza") + "/webhooks/{id}/{authToken}"
        assert server.admin.post(public.format(**hooks[2]), json={"content": "works"}).json()["response"]
        assert server.admin.post("/__admin/reset").status_code == 204
        assert [tenant.state("corteza") for tenant in tenants[:2]] == seeded[:2]
        # a public handle made before the reset went with it, in a tenant not used since too
        gone = server.admin.post(public.format(**hooks[2]), json={"content": "after"}).json()
        assert "response" not in gone and gone["error"]["message"]
        assert tenants[2].state("corteza") == seeded[2]


def test_custom_ids_take_no_auto_number():
    with running(ticking=False) as server:
        assert server.new_tenant(tenant="tenant-3").id == "tenant-3"
        assert server.new_tenant(tenant="mine").id == "mine"
        numbered = [server.new_tenant().id for _ in range(3)]
        assert numbered == ["tenant-2", "tenant-4", "tenant-5"]  # the taken id is skipped, none is lost
        ids = [entry["tenant"] for entry in server.admin.get("/__admin/tenants").json()["tenants"]]
        assert ids == ["default", "tenant-3", "mine", "tenant-2", "tenant-4", "tenant-5"]


def test_each_tenant_keeps_its_own_journal_and_clears_only_its_own():
    with running(ticking=False, journal_limit=3) as server:
        busy, quiet = server.new_tenant(), server.new_tenant()
        with quiet.client("karmabot") as karma:
            karma.get("/users")
        with busy.client("karmabot") as karma:
            for cursor in range(10):
                karma.get("/values", params={"cursor": cursor})
        assert [entry["path"] for entry in quiet.requests()] == ["/karmabot/api/v1/users"]  # not evicted
        assert [entry["query"] for entry in busy.requests()] == ["cursor=7", "cursor=8", "cursor=9"]
        every = server.admin.get("/__admin/requests").json()["requests"]
        assert [entry["tenant"] for entry in every] == [quiet.id] + [busy.id] * 3  # oldest first
        assert server.admin.delete("/__admin/requests", params={"tenant": busy.id}).status_code == 204
        assert busy.requests() == [] and len(quiet.requests()) == 1


def test_faults_clear_per_tenant():
    with running(ticking=False) as server:
        first, second = server.new_tenant(), server.new_tenant()
        for tenant in (first, second):
            server.admin.post("/__admin/faults", json={"vendor": "karmabot", "kind": "status", "status": 503,
                                                       "tenant": tenant.id})
        assert server.admin.delete("/__admin/faults", params={"tenant": first.id}).status_code == 204
        assert [fault["tenant"] for fault in server.admin.get("/__admin/faults").json()["faults"]] == [second.id]
        with first.client("karmabot") as karma:
            assert karma.get("/users").status_code == 200
        with second.client("karmabot") as karma:
            assert karma.get("/users").status_code == 503


def test_journal_bodies_are_kept_up_to_a_bound():
    with running(ticking=False) as server:
        tenant = server.new_tenant()
        with tenant.client("corteza") as cz:
            channel = cz.get("/channels/").json()["response"][0]["channelID"]
            big = "x" * (200 * 1024)
            cz.post(f"/channels/{channel}/messages/", json={"message": big})
            cz.post(f"/channels/{channel}/messages/", json={"message": "small"})
        large, small = tenant.requests("corteza")[1:]
        assert large["truncated"] is True and len(large["body"]) == 64 * 1024
        assert small["truncated"] is False and small["body"] == {"message": "small"}
