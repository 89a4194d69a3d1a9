"""--state-file (SQLite): every acknowledged change survives a crash, only changed rows are written,
and what is read back is checked data; admin export and import of state as JSON."""

import base64
import copy
import json
import os
import pickle
import random
import sqlite3
import stat
import subprocess
import threading

import httpx
import orjson
import pytest

from mockserver.testing import TenantHandle, running
from tests.receiver import Receiver, wait_until
from tests.served import Served


def plus(url, tenant, users):
    return httpx.post(f"{url}/karmabot/api/v1/pluses", headers=tenant["credentials"]["karmabot"]["headers"],
                      json={"user_ids": [users[1]["id"]], "from_id": users[0]["id"]})


def test_tenants_survive_a_crash(tmp_path):
    state_file = tmp_path / "state.db"
    served = Served("--clock", "frozen", "--state-file", str(state_file))
    try:
        tenant = httpx.post(served.url + "/__admin/tenants", json={"tenant": "suite"}).json()
        users = httpx.get(f"{served.url}/__admin/tenants/suite/state").json()["karmabot"]["users"]
        for _ in range(3):
            assert plus(served.url, tenant, users).status_code == 201
        httpx.post(served.url + "/__admin/tenants/suite/clock", json={"advance_seconds": 3600})
        assert httpx.post(served.url + "/__admin/tenants").json()["tenant"] == "tenant-2"
    finally:
        served.kill()  # no shutdown: whatever was answered must already be on disk
    assert stat.S_IMODE(os.stat(state_file).st_mode) == 0o600  # it holds every tenant's credentials

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


def test_every_acknowledged_write_survives_sigkill_in_a_burst(tmp_path):
    """A Corteza mark-as-read (a GET that changes state), an outgoing webhook's answer and a
    Habitate delivery's outcome (written in the background), then writes from four threads;
    SIGKILL mid-burst; after a restart every answered write is there."""
    state_file = tmp_path / "state.db"
    served = Served("--clock", "frozen", "--state-file", str(state_file))
    receiver = Receiver(reply={"text": "on it"})
    admin = httpx.Client(base_url=served.url)
    acknowledged: list[int] = []
    try:
        chat = admin.post("/__admin/tenants", json={"tenant": "chat"}).json()["credentials"]
        corteza = chat["corteza"]
        cz = httpx.Client(base_url=served.url + "/corteza/messaging", headers=corteza["headers"])
        general = next(c for c in cz.get("/channels/").json()["response"] if c["name"] == "general")["channelID"]
        someone = corteza["other_user_ids"][2]
        with httpx.Client(base_url=served.url + "/corteza/messaging",
                          headers={"Authorization": f"Bearer {corteza['other_tokens'][someone]}"}) as other:
            for text in ("one", "two", "three"):
                other.post(f"/channels/{general}/messages/", json={"message": text}).raise_for_status()
        assert cz.get(f"/channels/{general}/messages/mark-as-read").json()["response"]["count"] == 0
        cz.post("/webhooks/", json={"channelID": general, "kind": "outgoing", "userID": corteza["other_user_ids"][4],
                                    "trigger": "ship", "url": receiver.url}).raise_for_status()
        cz.post(f"/channels/{general}/messages/command/ship/exec", json={"input": "it"}).raise_for_status()
        with httpx.Client(base_url=served.url + "/community/api/v1", headers=chat["community"]["headers"]) as hab:
            hab.post("/hooks", json={"target_url": receiver.url, "event": "member.joined"}).raise_for_status()
            hab.post("/users", json={"first_name": "Sample", "email": "hooked@example.com"}).raise_for_status()
        assert wait_until(lambda: [d for d in admin.get("/__admin/tenants/chat/state").json()["community"]
                                   ["webhook_deliveries"] if d["status"] == "delivered"]), "no delivery"

        # Karma bot allows 6 pluses a minute per team: the burst runs in a tenant without limits.
        karma = admin.post("/__admin/tenants", json={"tenant": "burst", "rate_limits": False}).json()
        users = admin.get("/__admin/tenants/burst/state").json()["karmabot"]["users"]

        def give():
            with httpx.Client(base_url=served.url + "/karmabot/api/v1",
                              headers=karma["credentials"]["karmabot"]["headers"]) as client:
                for _ in range(1000):
                    try:
                        answer = client.post("/pluses", json={"user_ids": [users[1]["id"]], "from_id": users[0]["id"]})
                    except httpx.TransportError:
                        return  # the server is gone
                    if answer.status_code == 201:
                        acknowledged.append(answer.json()["id"])

        threads = [threading.Thread(target=give) for _ in range(4)]
        for thread in threads:
            thread.start()
        assert wait_until(lambda: len(acknowledged) >= 100, timeout=30)
        served.kill()
        for thread in threads:
            thread.join()
    finally:
        receiver.close()
        if served.process.poll() is None:
            served.kill()

    again = Served("--clock", "frozen", "--state-file", str(state_file))
    try:
        kept = {plus["id"] for plus in httpx.get(f"{again.url}/__admin/tenants/burst/state").json()["karmabot"]["pluses"]}
        assert len(acknowledged) >= 100 and set(acknowledged) <= kept
        kept_chat = httpx.get(f"{again.url}/__admin/tenants/chat/state").json()
        assert [d["status"] for d in kept_chat["community"]["webhook_deliveries"]] == ["delivered"]  # the outcome
        state = kept_chat["corteza"]
        assert [d["status"] for d in state["webhook_deliveries"]] == ["delivered"]
        assert state["messages"][-1]["message"] == "on it"  # the bot's reply
        with httpx.Client(base_url=again.url + "/corteza/messaging", headers=corteza["headers"]) as cz:
            channel = next(c for c in cz.get("/channels/").json()["response"] if c["channelID"] == general)
            # mark-as-read was kept: of what came after it only the bot's reply is unread (not one's own)
            assert channel["unread"]["count"] == 1
    finally:
        again.stop()


def test_a_state_file_that_is_not_one_stops_the_start(tmp_path):
    state_file = tmp_path / "state.db"
    state_file.write_bytes(pickle.dumps({"format": 2}))
    with pytest.raises(RuntimeError, match="state-file"):
        Served("--state-file", str(state_file))


def test_an_unwritable_state_file_path_is_refused_at_start(tmp_path):
    with pytest.raises(RuntimeError, match="cannot use .* as a state file"):
        Served("--state-file", str(tmp_path / "missing-directory" / "state.db"))


def test_a_state_file_that_cannot_be_written_any_more_is_refused_at_start(tmp_path):
    """A file this server wrote, then made unwritable (as a read-only mount makes it; root ignores
    file modes, so the file is made immutable): the next start is refused, not a server whose
    every write is a 503."""
    state_file = tmp_path / "state.db"
    served = Served("--clock", "frozen", "--state-file", str(state_file))
    assert httpx.post(served.url + "/__admin/tenants", json={"tenant": "kept"}).status_code == 201
    served.stop()
    if subprocess.run(["chattr", "+i", str(state_file)], capture_output=True).returncode != 0:
        pytest.skip("this file system cannot make a file immutable (chattr +i)")
    try:
        with pytest.raises(RuntimeError, match="cannot use .*state.db as a state file"):
            Served("--clock", "frozen", "--state-file", str(state_file))
    finally:
        subprocess.run(["chattr", "-i", str(state_file)], check=True)


def test_a_copy_of_a_state_file_without_its_write_ahead_log_is_refused_not_reseeded(tmp_path):
    """The file of a server killed (or still running), copied without its -wal, holds no tables:
    refused at start, where it was taken for a new file and every tenant silently seeded again."""
    state_file = tmp_path / "state.db"
    served = Served("--clock", "frozen", "--state-file", str(state_file))
    assert httpx.post(served.url + "/__admin/tenants", json={"tenant": "kept"}).status_code == 201
    copy = tmp_path / "copy.db"
    copy.write_bytes(state_file.read_bytes())  # the -wal left behind
    served.kill()
    with pytest.raises(RuntimeError, match="copy.db holds no tables: a copy made without its -wal file"):
        Served("--clock", "frozen", "--state-file", str(copy))
    empty = tmp_path / "empty.db"
    empty.touch()  # an empty file is a new one
    Served("--clock", "frozen", "--state-file", str(empty)).stop()


def test_another_programs_database_is_refused_and_left_untouched(tmp_path):
    state_file = tmp_path / "app.db"
    db = sqlite3.connect(state_file)
    db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, total REAL)")
    db.execute("INSERT INTO orders (total) VALUES (9.5)")
    db.commit()
    db.close()
    with pytest.raises(RuntimeError, match="database of something else"):
        Served("--state-file", str(state_file))
    db = sqlite3.connect(state_file)
    assert [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == ["orders"]
    db.close()


def test_a_server_stopped_leaves_everything_in_the_file_itself(tmp_path):
    """SIGTERM checkpoints the write-ahead log: a copy of the file alone (as a backup takes it)
    holds every tenant."""
    state_file = tmp_path / "state.db"
    served = Served("--clock", "frozen", "--state-file", str(state_file))
    try:
        assert httpx.post(served.url + "/__admin/tenants", json={"tenant": "backed-up"}).status_code == 201
    finally:
        served.stop()
    wal = tmp_path / "state.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0
    copy = tmp_path / "copy" / "state.db"
    copy.parent.mkdir()
    copy.write_bytes(state_file.read_bytes())
    again = Served("--clock", "frozen", "--state-file", str(copy))
    try:
        tenants = [entry["tenant"] for entry in httpx.get(again.url + "/__admin/tenants").json()["tenants"]]
        assert "backed-up" in tenants
    finally:
        again.stop()


def test_a_second_server_on_the_same_state_file_is_refused_at_start(tmp_path):
    state_file = tmp_path / "state.db"
    first = Served("--clock", "frozen", "--state-file", str(state_file))
    try:
        with pytest.raises(RuntimeError, match="in use by another mockserver"):
            Served("--clock", "frozen", "--state-file", str(state_file))
        assert httpx.post(first.url + "/__admin/tenants", json={"tenant": "kept"}).status_code == 201
    finally:
        first.stop()
    again = Served("--clock", "frozen", "--state-file", str(state_file))  # free once the first has gone
    try:
        assert "kept" in [entry["tenant"] for entry in httpx.get(again.url + "/__admin/tenants").json()["tenants"]]
    finally:
        again.stop()


def test_the_state_file_is_sqlite_with_a_row_per_record(tmp_path):
    state_file = tmp_path / "state.db"
    with running(ticking=False, state_file=str(state_file)) as server:
        tenant = server.new_tenant(tenant="rows")
        with tenant.client("kudosnow") as kudos:
            user = kudos.get("/users/lookup", params={"employeeNumber": tenant.state("kudosnow")["users"][0]
                                                       ["employeeNumber"]}).json()["data"]
        assert user["id"]
        db = sqlite3.connect(state_file)
        # Only what was written: the tenants, and no workspace (reads change nothing).
        assert db.execute("SELECT id FROM tenants ORDER BY rowid").fetchall() == [("default",), ("rows",)]
        assert db.execute("SELECT count(*) FROM workspaces").fetchone() == (0,)
        with tenant.client("karmabot") as karma:
            users = karma.get("/users").json()["users"]
            assert karma.post("/pluses", json={"from_id": users[0]["id"], "user_ids": [users[1]["id"]]}).status_code == 201
        assert db.execute("SELECT tenant, vendor, schema FROM workspaces").fetchall() == [("rows", "karmabot", 1)]
        seeded = db.execute("SELECT count(*) FROM items WHERE tbl != 'pluses'").fetchone()[0]
        (plus,) = db.execute("SELECT key, data FROM items WHERE tbl = 'pluses'").fetchall()
        assert json.loads(plus[1])["id"] == json.loads(plus[0]) and json.loads(plus[1])["from_id"] == users[0]["id"]
        # A second write into the workspace writes its meta and the one record it adds, nothing else.
        before = db.execute("SELECT max(rowid) FROM items").fetchone()[0]
        with tenant.client("karmabot") as karma:
            assert karma.post("/pluses", json={"from_id": users[1]["id"], "user_ids": [users[0]["id"]]}).status_code == 201
        assert db.execute("SELECT tbl FROM items WHERE rowid > ?", (before,)).fetchall() == [("pluses",)]
        assert db.execute("SELECT count(*) FROM items WHERE tbl != 'pluses'").fetchone()[0] == seeded
        meta = json.loads(db.execute("SELECT data FROM items WHERE tbl = '' AND key = ''").fetchone()[0])
        assert meta["next_plus_id"] == max(json.loads(key) for (key,) in db.execute(
            "SELECT key FROM items WHERE tbl = 'pluses'")) + 1


def test_a_change_that_cannot_be_saved_is_refused_and_undone(tmp_path):
    state_file = tmp_path / "state.db"
    with running(ticking=False, state_file=str(state_file)) as server:
        tenant = server.new_tenant()
        with tenant.client("karmabot") as karma:
            users = karma.get("/users").json()["users"]
            body = {"from_id": users[0]["id"], "user_ids": [users[1]["id"]]}
            assert karma.post("/pluses", json=body).status_code == 201
            server.app.saved.db.execute("PRAGMA query_only = ON")  # every write now fails in SQLite
            refused = karma.post("/pluses", json=body)
            assert refused.status_code == 503 and refused.json()["error"]["message"]  # Karma bot's dialect
            assert len(tenant.state("karmabot")["pluses"]) == 1  # not kept in memory either
            created = server.admin.post("/__admin/tenants", json={"tenant": "unsaved"})
            assert created.status_code == 503
            assert server.admin.get("/__admin/tenants/unsaved").status_code == 404
            server.app.saved.db.execute("PRAGMA query_only = OFF")
            assert karma.post("/pluses", json=body).status_code == 201
            assert len(tenant.state("karmabot")["pluses"]) == 2


def test_a_file_from_a_server_with_other_vendors_loads_what_this_one_serves(tmp_path):
    state_file = tmp_path / "state.db"
    with running(ticking=False, state_file=str(state_file)) as everything:
        tenant = everything.new_tenant(tenant="mixed")
        for vendor, path in (("karmabot", "/pluses"), ("kudosnow", "/redemptions")):
            with tenant.client(vendor) as client:
                if vendor == "karmabot":
                    users = client.get("/users").json()["users"]
                    assert client.post(path, json={"from_id": users[0]["id"],
                                                   "user_ids": [users[1]["id"]]}).status_code == 201
                else:
                    user = tenant.state("kudosnow")["users"][0]
                    assert client.post(path, json={"userId": user["id"], "senderId": user["id"], "rewardId": "r",
                                                   "name": "n", "kudosPoints": 1, "amountInCents": 1,
                                                   "transactionId": "t", "orderId": "o"}).status_code in (200, 201)
        redemptions = tenant.state("kudosnow")["redemptions"]

    served = Served("--clock", "frozen", "--vendor", "karmabot", "--state-file", str(state_file))
    try:
        assert len(httpx.get(f"{served.url}/__admin/tenants/mixed/state").json()["karmabot"]["pluses"]) == 1
    finally:
        banner = served.stop()
    assert "kept 1 kudosnow workspace record(s) untouched" in banner

    with running(ticking=False, state_file=str(state_file)) as again:  # every vendor again: nothing was lost
        assert again.admin.get("/__admin/tenants/mixed/state").json()["kudosnow"]["redemptions"] == redemptions


def test_a_tenant_keeps_the_seed_it_was_created_with(tmp_path):
    state_file = tmp_path / "state.db"
    with running(ticking=False, seed=1, state_file=str(state_file)) as first:
        first.new_tenant(tenant="seeded")
        users = first.admin.get("/__admin/tenants/seeded/state").json()["dailybot"]["users"]
    with running(ticking=False, seed=2, state_file=str(state_file)) as second:
        assert second.admin.get("/__admin/tenants/seeded/state").json()["dailybot"]["users"] == users
        fresh = second.new_tenant(tenant="fresh")
        assert second.admin.get(f"/__admin/tenants/{fresh.id}/state").json()["dailybot"]["users"] != users


# --- export and import --------------------------------------------------------------------------

def test_export_and_import(tmp_path):
    with running(ticking=False) as source, running(ticking=False) as target:
        tenant = source.new_tenant(tenant="exported")
        with tenant.client("dailybot") as daily:
            receiver = tenant.credentials["dailybot"]["other_users"][0]["user_uuid"]
            assert daily.post("/kudos/", json={"receivers": [receiver], "content": "moved"}).status_code == 200
        blob = source.admin.get("/__admin/state/export")
        assert blob.status_code == 200 and blob.headers["content-type"] == "application/json"
        document = blob.json()
        assert document["format"] == "mockserver-state" and document["version"] == 1
        exported = next(t for t in document["tenants"] if t["id"] == "exported")
        assert list(exported["workspaces"]) == ["dailybot"] and exported["workspaces"]["dailybot"]["schema"] == 1
        assert target.admin.post("/__admin/state/import", content=blob.content).status_code == 204
        # the same records: an export of the import is the export
        assert orjson.loads(target.admin.get("/__admin/state/export").content)["tenants"] == document["tenants"]
        moved = target.admin.get("/__admin/tenants/exported/state").json()["dailybot"]["kudos"]
        assert moved[-1]["content"] == "moved"
        with httpx.Client(base_url=target.base_url("dailybot"), headers=tenant.headers("dailybot")) as daily:
            assert daily.get("/kudos/", params={"filter": "kudos_given"}).json()["results"][0]["content"] == "moved"


def test_records_of_an_older_schema_are_migrated_on_import():
    """Corteza schema 1 kept no image meta or preview bytes: they are made from the upload on import."""
    png = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg==")
    with running(ticking=False) as source, running(ticking=False) as target:
        tenant = source.new_tenant(tenant="older")
        with tenant.client("corteza") as cz:
            channel = cz.get("/channels/").json()["response"][0]["channelID"]
            assert "error" not in cz.post(f"/channels/{channel}/attach", files={"upload": ("dot.png", png)}).json()
        document = source.admin.get("/__admin/state/export").json()
        record = next(t for t in document["tenants"] if t["id"] == "older")["workspaces"]["corteza"]
        assert record["schema"] == 3 and record["data"]["deliveries"] == []  # the same list in schema 1
        record["schema"] = 1
        for attachment in record["data"]["attachments"]:
            attachment.pop("image")
            attachment["preview"] = "png" if attachment["preview"] else None
        assert target.admin.post("/__admin/state/import", content=orjson.dumps(document)).status_code == 204
        migrated = next(t for t in target.admin.get("/__admin/state/export").json()["tenants"] if t["id"] == "older")
        assert migrated["workspaces"]["corteza"]["schema"] == 3
        with httpx.Client(base_url=target.base_url("corteza"), headers=tenant.headers("corteza")) as cz:
            found = cz.get("/search/messages", params={"channelID": channel, "type": "inlineImage"}).json()["response"]
            assert found[0]["att"]["meta"]["preview"]["ext"] == "jpg"
            assert cz.get(found[0]["att"]["previewUrl"]).headers["content-type"] == "image/jpeg"


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


class DottedEvil:
    """The dotted-name trick: protocol 4 resolves `uuid.os.system` inside an allowed module."""

    def __reduce__(self):
        import os as _os
        return (_os.system, ("echo pwned > /dev/null",))


def _valid_export(server) -> dict:
    return server.admin.get("/__admin/state/export").json()


def _malformed(server) -> list:
    good = _valid_export(server)
    tenant = next(t for t in good["tenants"] if t["id"] != "default")
    broken_record = orjson.loads(orjson.dumps(good))
    next(t for t in broken_record["tenants"] if t["id"] == tenant["id"])["workspaces"]["karmabot"]["data"]["users"] = "x"
    extra_field = orjson.loads(orjson.dumps(good))
    next(t for t in extra_field["tenants"] if t["id"] == tenant["id"])["workspaces"]["karmabot"]["data"]["evil"] = 1
    future = orjson.loads(orjson.dumps(good))
    next(t for t in future["tenants"] if t["id"] == tenant["id"])["workspaces"]["karmabot"]["schema"] = 99
    deep = b'{"format": "mockserver-state", "version": 1, "tenants": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    return [
        b"garbage", pickle.dumps(Evil()), pickle.dumps(DottedEvil()), pickle.dumps({"format": 2}), deep,
        orjson.dumps({"tenants": [{"id": "x"}]}),
        orjson.dumps(good | {"tenants": []}),
        orjson.dumps(good | {"tenants": [{"id": "x"}]}),
        orjson.dumps(good | {"tenants": good["tenants"] + good["tenants"][:1]}),
        orjson.dumps(good | {"version": 2}),
        orjson.dumps(broken_record), orjson.dumps(extra_field), orjson.dumps(future),
    ]


def test_import_refuses_what_is_not_a_state_and_replaces_nothing(capfd):
    with running(ticking=False) as server:
        tenant = server.new_tenant()
        with tenant.client("karmabot") as karma:
            users = karma.get("/users").json()["users"]
            assert karma.post("/pluses", json={"from_id": users[0]["id"], "user_ids": [users[1]["id"]]}).status_code == 201
        before = server.admin.get("/__admin/tenants").json()
        state_before = tenant.state()
        for blob in _malformed(server):
            response = server.admin.post("/__admin/state/import", content=blob)
            assert response.status_code == 400 and response.json()["error"]["message"], blob[:80]
            assert server.admin.get("/__admin/tenants").json() == before  # every tenant intact
        assert tenant.state() == state_before
        assert "pwned" not in capfd.readouterr().out


def test_malicious_bytes_in_the_state_file_never_run(tmp_path, capfd):
    marker = tmp_path / "ran"
    state_file = tmp_path / "state.db"
    with running(ticking=False, state_file=str(state_file)) as server:
        server.new_tenant(tenant="victim")
    db = sqlite3.connect(state_file)

    class Touch:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    db.execute("INSERT INTO workspaces VALUES ('victim', 'karmabot', 1, 0)")
    db.execute("INSERT INTO items VALUES ('victim', 'karmabot', 'pluses', '1', ?)", (pickle.dumps(Touch()),))
    db.commit()
    db.close()
    with pytest.raises(RuntimeError, match="state-file"):
        Served("--state-file", str(state_file))
    assert not marker.exists()


READS = {"karmabot": ["/users", "/channels", "/values", "/achievements"],
         "dailybot": ["/kudos/", "/kudos/?filter=kudos_given"],
         "community": ["/users/me", "/users", "/boards", "/posts", "/tags"],
         "corteza": ["/channels/", "/search/messages", "/status/", "/webhooks/", "/permissions/effective"],
         "kudosnow": ["/redemptions"]}


def _leaves(node, path=()):
    """Paths to the values of a JSON document (the first three items of each list)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node[:3]):
            yield from _leaves(value, (*path, index))
    if path:
        yield path


def test_an_import_with_a_wrong_value_anywhere_is_refused_or_served_without_a_5xx(answer_drifts):
    """Each field of a real export set to a value of another type, one at a time (seeded): the
    import is a 400, or its data is served (reads and writes of every vendor) without a 5xx (as
    it is: drift from the spec, which `answer_drifts` takes)."""
    rng = random.Random(0)
    with running(ticking=False) as server:
        tenant = server.new_tenant(tenant="victim")
        server.admin.get("/__admin/tenants/victim/state")  # every vendor's workspace, in the export
        good = server.admin.get("/__admin/state/export").json()
        index = next(i for i, entry in enumerate(good["tenants"]) if entry["id"] == "victim")
        paths = list(_leaves(good["tenants"][index]["workspaces"]))
        served, failures = 0, []
        for _ in range(150):
            document = copy.deepcopy(good)
            path = rng.choice(paths)
            node = document["tenants"][index]["workspaces"]
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = rng.choice([None, "x", -1, 2**40, 1.5, [], {}, True, [1, "a"], {"a": 1}])
            answer = server.admin.post("/__admin/state/import", content=orjson.dumps(document))
            assert answer.status_code in (204, 400), (path, answer.text)
            if answer.status_code == 400:
                continue
            served += 1
            state = server.admin.get("/__admin/tenants/victim/state")
            assert state.status_code == 200, path
            for vendor, reads in READS.items():
                with tenant.client(vendor) as client:
                    for read in reads:
                        response = client.get(read)
                        hidden = response.headers.get("X-Mockserver-Error-Status", "")
                        if response.status_code >= 500 or hidden.startswith("5"):
                            failures.append((path, vendor, read, response.text[:200]))
            users = state.json()
            with tenant.client("karmabot") as karma:
                karma_users = users["karmabot"]["users"]
                response = karma.post("/pluses", json={"from_id": karma_users[0]["id"],
                                                       "user_ids": [karma_users[1]["id"]]})
                if response.status_code >= 500:
                    failures.append((path, "karmabot", "POST /pluses", response.text[:200]))
        assert failures == []
        assert served >= 10  # values of the right type, or where any will do, are taken


def test_records_of_a_newer_schema_lock_that_vendor_of_that_tenant_only(tmp_path):
    """A newer release wrote dailybot records of schema 99: the server starts, says so, keeps them
    untouched, and answers that tenant's dailybot requests with a 503 until the tenant is reset."""
    state_file = tmp_path / "state.db"
    with running(ticking=False, state_file=str(state_file)) as first:
        tenant = first.new_tenant(tenant="newer")
        with tenant.client("dailybot") as daily:
            receiver = tenant.credentials["dailybot"]["other_users"][0]["user_uuid"]
            assert daily.post("/kudos/", json={"receivers": [receiver], "content": "kept"}).status_code == 200
        other = first.new_tenant(tenant="other")
        with other.client("dailybot") as daily:
            receiver = other.credentials["dailybot"]["other_users"][0]["user_uuid"]
            assert daily.post("/kudos/", json={"receivers": [receiver], "content": "mine"}).status_code == 200
    db = sqlite3.connect(state_file)
    db.execute("UPDATE workspaces SET schema = 99 WHERE tenant = 'newer' AND vendor = 'dailybot'")
    db.commit()

    served = Served("--clock", "frozen", "--state-file", str(state_file))
    try:
        with httpx.Client(base_url=served.url + "/dailybot/v1", headers=tenant.headers("dailybot")) as daily:
            locked = daily.get("/kudos/")
            assert locked.status_code == 503 and "schema 99" in locked.json()["detail"]  # DRF's dialect
        with httpx.Client(base_url=served.url + "/dailybot/v1", headers=other.headers("dailybot")) as daily:
            assert daily.get("/kudos/", params={"filter": "kudos_given"}).json()["results"][0]["content"] == "mine"
        with httpx.Client(base_url=served.url + "/karmabot/api/v1", headers=tenant.headers("karmabot")) as karma:
            assert karma.get("/users").status_code == 200  # its other vendors work
        assert httpx.get(f"{served.url}/__admin/tenants/newer/state").status_code == 503
        assert db.execute("SELECT schema FROM workspaces WHERE tenant = 'newer' AND vendor = 'dailybot'").fetchone() == (99,)
        assert httpx.post(f"{served.url}/__admin/tenants/newer/reset").status_code == 204
        with httpx.Client(base_url=served.url + "/dailybot/v1", headers=tenant.headers("dailybot")) as daily:
            assert daily.get("/kudos/").status_code == 200  # seeded afresh
    finally:
        banner = served.stop()
    assert "kept 1 dailybot workspace record(s) of a newer schema untouched (tenants newer)" in banner


def test_a_reset_of_every_tenant_is_kept_and_only_moves_a_generation(tmp_path):
    state_file = tmp_path / "state.db"
    with running(ticking=False, state_file=str(state_file)) as server:
        reset = server.new_tenant(tenant="reset")
        with reset.client("karmabot") as karma:
            users = karma.get("/users").json()["users"]
            assert karma.post("/pluses", json={"from_id": users[0]["id"], "user_ids": [users[1]["id"]]}).status_code == 201
        db = sqlite3.connect(state_file)
        assert db.execute("SELECT count(*) FROM workspaces").fetchone() == (1,)
        assert server.admin.post("/__admin/reset").status_code == 204
        assert db.execute("SELECT count(*) FROM workspaces").fetchone() == (1,)  # no row rewritten or deleted
        later = server.new_tenant(tenant="later")
        with later.client("karmabot") as karma:
            assert karma.post("/pluses", json={"from_id": later.state("karmabot")["users"][0]["id"],
                                               "user_ids": [later.state("karmabot")["users"][1]["id"]]}).status_code == 201
    with running(ticking=False, state_file=str(state_file)) as again:
        assert again.admin.get("/__admin/tenants/reset/state").json()["karmabot"]["pluses"] == []
        assert len(again.admin.get("/__admin/tenants/later/state").json()["karmabot"]["pluses"]) == 1
    assert sqlite3.connect(state_file).execute("SELECT tenant FROM workspaces").fetchall() == [("later",)]


V1_TABLES = """
CREATE TABLE server (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE tenants (id TEXT PRIMARY KEY, number INTEGER NOT NULL, seed INTEGER NOT NULL,
                      rate_limits INTEGER NOT NULL, clock_offset REAL NOT NULL);
CREATE TABLE workspaces (tenant TEXT NOT NULL, vendor TEXT NOT NULL, schema INTEGER NOT NULL, data TEXT NOT NULL,
                         generation INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (tenant, vendor));
"""


def test_a_state_file_of_version_1_is_migrated_on_open(tmp_path):
    """A file of the first layout (a row per workspace, its whole record) loads as it was, and
    its next write splits that workspace into a row per record."""
    with running(ticking=False) as server:
        tenant = server.new_tenant(tenant="older")
        with tenant.client("karmabot") as karma:
            users = karma.get("/users").json()["users"]
            assert karma.post("/pluses", json={"from_id": users[0]["id"], "user_ids": [users[1]["id"]]}).status_code == 201
        tenant.state()  # every vendor's workspace opened, so the export holds them all
        exported = server.admin.get("/__admin/state/export").json()
    state_file = tmp_path / "state.db"
    db = sqlite3.connect(state_file)
    db.executescript(V1_TABLES)
    rows = {"format": {"name": "mockserver-state", "version": 1}, "now": exported["now"],
            "created": exported["created"], "seed": exported["seed"], "generations": {}}
    db.executemany("INSERT INTO server VALUES (?, ?)", [(key, json.dumps(value)) for key, value in rows.items()])
    for entry in exported["tenants"]:
        db.execute("INSERT INTO tenants VALUES (?, ?, ?, ?, ?)", (entry["id"], entry["number"], entry["seed"],
                                                                  int(entry["rate_limits"]), entry["clock_offset"]))
        for vendor, record in entry["workspaces"].items():
            db.execute("INSERT INTO workspaces VALUES (?, ?, ?, ?, 0)",
                       (entry["id"], vendor, record["schema"], json.dumps(record["data"])))
    db.commit()
    db.close()
    with running(ticking=False, state_file=str(state_file)) as server:
        assert server.admin.get("/__admin/state/export").json()["tenants"] == exported["tenants"]
        older = TenantHandle(server, server.admin.get("/__admin/tenants/older").json())
        with older.client("karmabot") as karma:
            assert karma.post("/pluses", json={"from_id": users[1]["id"], "user_ids": [users[0]["id"]]}).status_code == 201
        after = server.admin.get("/__admin/state/export").json()
    db = sqlite3.connect(state_file)
    assert json.loads(db.execute("SELECT value FROM server WHERE key = 'format'").fetchone()[0])["version"] == 2
    assert db.execute("SELECT count(*) FROM items WHERE tenant = 'older' AND vendor = 'karmabot' "
                      "AND tbl = 'pluses'").fetchone() == (2,)
    db.close()
    with running(ticking=False, state_file=str(state_file)) as server:
        assert server.admin.get("/__admin/state/export").json()["tenants"] == after["tenants"]
