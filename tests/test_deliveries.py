"""Webhook delivery records (mockserver.webhooks): a row each in the workspace's `deliveries` table,
numbered, the last MAX_DELIVERIES kept; the admin API shows them as it always did (oldest first,
without their numbers), and records of the schemas that kept them as a list in the meta are
migrated on import and from a state file. Habitate (community) delivers in the background,
Corteza calls and waits; both keep their records the same way."""

import json
import sqlite3

import orjson
import pytest

from mockserver import webhooks
from mockserver.testing import TenantHandle, running
from tests.receiver import Receiver, wait_until

CLOSED = "http://127.0.0.1:9/closed"  # nothing listens there: a delivery fails at once
SHOWN = {"hook_id", "event", "job_id", "attempted_at", "target_url", "status"}  # a Habitate record's fields


def settled(tenant, vendor="community", count=None):
    """The admin view's delivery records once none is pending (and there are `count`), else None."""
    def done():
        records = tenant.state(vendor)["webhook_deliveries"]
        if all(record["status"] != "pending" for record in records) and count in (None, len(records)):
            return records
        return None
    return wait_until(done)


def exported(server, tenant_id):
    document = server.admin.get("/__admin/state/export").json()
    return document, next(t for t in document["tenants"] if t["id"] == tenant_id)["workspaces"]


def hooked_users(hab, *targets, users=1, start=0):
    """Subscribe `targets` to member.joined, then create `users` users: a delivery per hook and user."""
    hooks = [hab.post("/hooks", json={"target_url": url, "event": "member.joined"}).json()["hook_id"] for url in targets]
    for number in range(start, start + users):
        assert hab.post("/users", json={"first_name": "Hooked", "email": f"hooked{number}@example.com"}).status_code == 200
    return hooks


def as_schema_1(records):
    """Delivery records as the meta kept them before they had rows: no numbers."""
    return [{field: value for field, value in record.items() if field != "delivery"} for record in records]


# --- what a client sees -------------------------------------------------------------------------

def test_community_deliveries_are_listed_with_their_outcome_oldest_first(server, tenant):
    receiver = Receiver()
    try:
        with tenant.client("community") as hab:
            hook, closed = hooked_users(hab, receiver.url, CLOSED, users=2)
        received = receiver.wait_for(2)
        records = settled(tenant, count=4)
        assert [(r["hook_id"], r["status"]) for r in records] == [(hook, "delivered"), (closed, "failed")] * 2
        # (deliveries run concurrently: they may arrive in either order)
        assert sorted(r["job_id"] for r in records[::2]) == sorted(delivery["json"]["job_id"] for delivery in received)
        assert set(records[0]) == SHOWN | {"response_status"} and records[0]["response_status"] == 200
        assert set(records[1]) == SHOWN | {"error"} and records[1]["target_url"] == CLOSED
        _, workspaces = exported(server, tenant.id)  # the record: numbered rows, the meta holds none
        assert workspaces["community"]["schema"] == 2
        assert [r["delivery"] for r in workspaces["community"]["data"]["deliveries"]] == [1, 2, 3, 4]
        assert as_schema_1(workspaces["community"]["data"]["deliveries"]) == records
    finally:
        receiver.close()


def test_corteza_calls_are_listed_with_their_outcome(tenant):
    receiver = Receiver(reply={"text": "done"})
    try:
        with tenant.client("corteza") as cz:
            general = next(c for c in cz.get("/channels/").json()["response"] if c["name"] == "general")["channelID"]
            bot = tenant.credentials["corteza"]["other_user_ids"][4]
            for trigger, url in (("deploy", receiver.url + "?q=%s"), ("broken", CLOSED)):
                assert "error" not in cz.post("/webhooks/", json={"channelID": general, "kind": "outgoing", "userID": bot,
                                                                 "trigger": trigger, "url": url}).json()
            assert cz.post(f"/channels/{general}/messages/command/deploy/exec", json={"input": "a"}).json()[
                "response"]["message"] == "done"
            assert "error" in cz.post(f"/channels/{general}/messages/command/broken/exec", json={"input": "b"}).json()
        first, second = tenant.state("corteza")["webhook_deliveries"]
        assert first == {"webhookID": first["webhookID"], "target_url": receiver.url + "?q=a",
                         "attempted_at": first["attempted_at"], "status": "delivered", "response_status": 200}
        assert set(second) == {"webhookID", "target_url", "attempted_at", "status", "error"}
        assert second["status"] == "failed" and second["target_url"] == CLOSED
    finally:
        receiver.close()


# --- the bound ----------------------------------------------------------------------------------

def test_a_workspace_keeps_its_last_deliveries_and_the_trimming_is_saved(tmp_path, monkeypatch):
    monkeypatch.setattr(webhooks, "MAX_DELIVERIES", 3)
    state_file = str(tmp_path / "state.db")
    with running(ticking=False, state_file=state_file) as server:
        tenant = server.new_tenant(tenant="bounded")
        with tenant.client("community") as hab:
            hooked_users(hab, CLOSED, CLOSED, users=3)  # six deliveries
            records = settled(tenant, count=3)
            _, workspaces = exported(server, "bounded")
            assert [r["delivery"] for r in workspaces["community"]["data"]["deliveries"]] == [4, 5, 6]
            job_ids = [r["job_id"] for r in records]
            assert job_ids == sorted(job_ids) and len(set(job_ids)) == 3  # the newest, oldest first
            db = sqlite3.connect(state_file)  # each deletion wrote itself: three rows, no more
            rows = db.execute("SELECT key FROM items WHERE vendor = 'community' AND tbl = 'deliveries' ORDER BY rowid")
            assert [int(key) for (key,) in rows] == [4, 5, 6]
            db.close()
            hooked_users(hab, users=1, start=3)  # one more user: two more deliveries, two more deleted
            records = settled(tenant, count=3)
            assert [r["job_id"] for r in records][:1] == job_ids[2:]
    with running(ticking=False, state_file=state_file) as again:
        kept = TenantHandle(again, again.admin.get("/__admin/tenants/bounded").json())
        assert kept.state("community")["webhook_deliveries"] == records


def test_corteza_keeps_its_last_calls(tenant, monkeypatch):
    monkeypatch.setattr(webhooks, "MAX_DELIVERIES", 2)
    receiver = Receiver(reply={"text": "ok"})
    try:
        with tenant.client("corteza") as cz:
            general = next(c for c in cz.get("/channels/").json()["response"] if c["name"] == "general")["channelID"]
            bot = tenant.credentials["corteza"]["other_user_ids"][4]
            cz.post("/webhooks/", json={"channelID": general, "kind": "outgoing", "userID": bot, "trigger": "n",
                                        "url": receiver.url + "?n=%s"})
            for number in range(5):
                cz.post(f"/channels/{general}/messages/command/n/exec", json={"input": str(number)})
        assert len(receiver.received) == 5
        assert [r["target_url"] for r in tenant.state("corteza")["webhook_deliveries"]] == [
            receiver.url + "?n=3", receiver.url + "?n=4"]
    finally:
        receiver.close()


# --- records of the schemas that kept deliveries in the meta ---------------------------------------

def test_deliveries_kept_in_the_meta_are_migrated_on_import(monkeypatch):
    with running(ticking=False) as source, running(ticking=False) as target:
        tenant = source.new_tenant(tenant="older")
        with tenant.client("community") as hab:
            hooked_users(hab, CLOSED, users=3)
        shown = settled(tenant, count=3)
        document, workspaces = exported(source, "older")
        record = workspaces["community"]
        record["schema"], record["data"]["deliveries"] = 1, as_schema_1(record["data"]["deliveries"])
        assert target.admin.post("/__admin/state/import", content=orjson.dumps(document)).status_code == 204
        moved = TenantHandle(target, target.admin.get("/__admin/tenants/older").json())
        assert moved.state("community")["webhook_deliveries"] == shown
        _, migrated = exported(target, "older")
        assert migrated["community"]["schema"] == 2
        assert [r["delivery"] for r in migrated["community"]["data"]["deliveries"]] == [1, 2, 3]
        with moved.client("community") as hab:  # numbered on from the migrated ones
            hooked_users(hab, users=1, start=3)
        assert settled(moved, count=4)[:3] == shown
        _, grown = exported(target, "older")
        assert [r["delivery"] for r in grown["community"]["data"]["deliveries"]] == [1, 2, 3, 4]

        monkeypatch.setattr(webhooks, "MAX_DELIVERIES", 2)  # a longer list than the bound: its last ones kept
        assert target.admin.post("/__admin/state/import", content=orjson.dumps(document)).status_code == 204
        assert moved.state("community")["webhook_deliveries"] == shown[1:]
        _, trimmed = exported(target, "older")
        assert [r["delivery"] for r in trimmed["community"]["data"]["deliveries"]] == [2, 3]

        record["data"]["deliveries"][0]["delivery"] = 7  # schema 1 had no numbers: refused, nothing replaced
        refused = target.admin.post("/__admin/state/import", content=orjson.dumps(document))
        assert refused.status_code == 400 and "delivery" in refused.text
        assert moved.state("community")["webhook_deliveries"] == shown[1:]


def test_corteza_calls_kept_in_the_meta_are_migrated_on_import():
    receiver = Receiver(reply={"text": "ok"})
    try:
        with running(ticking=False) as source, running(ticking=False) as target:
            tenant = source.new_tenant(tenant="older")
            with tenant.client("corteza") as cz:
                general = next(c for c in cz.get("/channels/").json()["response"]
                               if c["name"] == "general")["channelID"]
                bot = tenant.credentials["corteza"]["other_user_ids"][4]
                cz.post("/webhooks/", json={"channelID": general, "kind": "outgoing", "userID": bot, "trigger": "n",
                                            "url": receiver.url + "?n=%s"})
                for number in range(2):
                    cz.post(f"/channels/{general}/messages/command/n/exec", json={"input": str(number)})
            shown = tenant.state("corteza")["webhook_deliveries"]
            assert [r["status"] for r in shown] == ["delivered", "delivered"]
            document, workspaces = exported(source, "older")
            record = workspaces["corteza"]
            assert record["schema"] == 3
            record["schema"], record["data"]["deliveries"] = 2, as_schema_1(record["data"]["deliveries"])
            assert target.admin.post("/__admin/state/import", content=orjson.dumps(document)).status_code == 204
            moved = TenantHandle(target, target.admin.get("/__admin/tenants/older").json())
            assert moved.state("corteza")["webhook_deliveries"] == shown
            _, migrated = exported(target, "older")
            assert migrated["corteza"]["schema"] == 3
            assert [r["delivery"] for r in migrated["corteza"]["data"]["deliveries"]] == [1, 2]
    finally:
        receiver.close()


def test_a_state_file_of_the_older_schema_is_migrated_and_stays_whole(tmp_path):
    """A file an older release wrote (deliveries a list in the meta row, schema 1) is read, its
    workspace rewritten as rows at start, and later single-record writes keep every delivery."""
    state_file = str(tmp_path / "state.db")
    with running(ticking=False, state_file=state_file) as server:
        tenant = server.new_tenant(tenant="older")
        with tenant.client("community") as hab:
            hooked_users(hab, CLOSED, users=2)
        shown = settled(tenant, count=2)
    db = sqlite3.connect(state_file)
    where = "tenant = 'older' AND vendor = 'community'"
    rows = [json.loads(data) for (data,) in db.execute(f"SELECT data FROM items WHERE {where} AND tbl = 'deliveries' "
                                                        "ORDER BY rowid")]
    meta = json.loads(db.execute(f"SELECT data FROM items WHERE {where} AND tbl = ''").fetchone()[0])
    older_meta = meta | {"deliveries": as_schema_1(rows)}
    db.execute(f"UPDATE items SET data = ? WHERE {where} AND tbl = ''", (json.dumps(older_meta),))
    db.execute(f"DELETE FROM items WHERE {where} AND tbl = 'deliveries'")
    db.execute(f"UPDATE workspaces SET schema = 1 WHERE {where}")
    db.commit()
    with running(ticking=False, state_file=state_file) as again:
        tenant = TenantHandle(again, again.admin.get("/__admin/tenants/older").json())
        assert tenant.state("community")["webhook_deliveries"] == shown
        assert db.execute(f"SELECT schema FROM workspaces WHERE {where}").fetchone() == (2,)  # rewritten at start
        with tenant.client("community") as hab:
            hooked_users(hab, users=1, start=2)
        grown = settled(tenant, count=3)
        assert grown[:2] == shown
    with running(ticking=False, state_file=state_file) as third:
        tenant = TenantHandle(third, third.admin.get("/__admin/tenants/older").json())
        assert tenant.state("community")["webhook_deliveries"] == grown
    db.close()


@pytest.mark.parametrize("numbers", [[2, 1], [1, 1]])
def test_delivery_numbers_out_of_order_are_refused_on_import(numbers):
    with running(ticking=False) as server:
        tenant = server.new_tenant(tenant="numbered")
        with tenant.client("community") as hab:
            hooked_users(hab, CLOSED, users=2)
        shown = settled(tenant, count=2)
        document, workspaces = exported(server, "numbered")
        for record, number in zip(workspaces["community"]["data"]["deliveries"], numbers, strict=True):
            record["delivery"] = number
        refused = server.admin.post("/__admin/state/import", content=orjson.dumps(document))
        assert refused.status_code == 400 and "deliveries" in refused.text
        assert tenant.state("community")["webhook_deliveries"] == shown
