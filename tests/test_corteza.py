"""Corteza Messaging through HTTP: JWT auth three ways, the always-200 envelope, channels,
messages, threads, reactions, read markers, commands, search, attachments, permissions,
statuses, activity and webhooks (incoming, and outgoing to a local receiver)."""

import io
import time

import httpx
import jwt
import pytest
from PIL import Image

from mockserver.vendor import discover
from tests.receiver import Receiver

CORTEZA = next(vendor for vendor in discover() if vendor.name == "corteza")


@pytest.fixture
def cz(tenant):
    with tenant.client("corteza") as client:
        yield client


def as_user(tenant, index):
    user_id = tenant.credentials["corteza"]["other_user_ids"][index]
    token = tenant.credentials["corteza"]["other_tokens"][user_id]
    client = httpx.Client(base_url=tenant.server.base_url("corteza"), headers={"Authorization": f"Bearer {token}"})
    return client, user_id


def ok(response):
    assert response.status_code == 200, response.text
    body = response.json()
    assert "error" not in body, body
    return body["success"] if set(body) == {"success"} else body["response"]


def error(response, message=None):
    assert response.status_code == 200  # the real server never sets an error status
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"]["message"], str)
    if message:
        assert body["error"]["message"] == message
    return body["error"]["message"]


def channel_named(cz, name):
    return next(c for c in ok(cz.get("/channels/")) if c["name"] == name)


def me(tenant):
    return tenant.credentials["corteza"]["user_id"]


# --- auth ---------------------------------------------------------------------------------------

def test_tokens_are_realistic_hs256_jwts(tenant):
    creds = tenant.credentials["corteza"]
    token = creds["token"]
    assert len(token) >= 100 and jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["userID"] == creds["user_id"] and isinstance(claims["userID"], str)
    assert len(claims["memberOf"].split()) == 2 and claims["exp"] > time.time() - 10 * 365 * 86400
    assert creds["headers"] == {"Authorization": f"Bearer {token}"}
    assert len(creds["other_user_ids"]) >= 3 and set(creds["other_tokens"]) == set(creds["other_user_ids"])


def test_token_by_header_query_or_cookie(tenant):
    token = tenant.credentials["corteza"]["token"]
    with tenant.client("corteza", authenticated=False) as client:
        assert ok(client.get("/channels/", params={"jwt": token}))
        client.cookies.set("jwt", token)
        assert ok(client.get("/channels/"))
        client.cookies.clear()
        error(client.get("/channels/"), "Unauthorized")


@pytest.mark.parametrize("token,message", [
    ("nope", "token contains an invalid number of segments"),
    ("Bearer", "token contains an invalid number of segments"),
    (jwt.encode({"userID": "1", "exp": 9999999999}, "a-wrong-secret-of-thirty-two-bytes!", algorithm="HS256"),
     "signature is invalid"),
])
def test_invalid_tokens_get_the_jwt_libraries_words(tenant, token, message):
    with tenant.client("corteza", authenticated=False) as client:
        error(client.get("/channels/", headers={"Authorization": f"Bearer {token}"}), message)


def test_expired_token_is_refused_on_the_tenant_clock(cz, tenant):
    assert ok(cz.get("/commands/"))
    tenant.advance(366 * 86400)
    error(cz.get("/commands/"), "jwtauth: token is expired")


def test_the_jwt_query_parameter_wins_over_the_header(tenant):
    """go-chi/jwtauth Verifier: query, then header, then cookie; the first found is the only one read."""
    token = tenant.credentials["corteza"]["token"]
    with tenant.client("corteza") as client:
        error(client.get("/channels/", params={"jwt": "a.b.c"}), "signature is invalid")
    with tenant.client("corteza", authenticated=False) as client:
        assert ok(client.get("/channels/", params={"jwt": token}, headers={"Authorization": "Bearer nope"}))


def test_query_values_are_body_values_and_only_exact_json_is_json(cz):
    """Go's Request.Form: on POST the query's values count, over a JSON body's."""
    general = channel_named(cz, "general")["channelID"]
    path = f"/channels/{general}/messages/"
    assert ok(cz.post(path, params={"message": "from the query"}))["message"] == "from the query"
    assert ok(cz.post(path, params={"message": "query wins"}, json={"message": "json"}))["message"] == "query wins"
    assert ok(cz.post(path, params={"message": "body wins"}, data={"message": "form"}))["message"] == "form"
    # `application/json; charset=utf-8` is not exactly application/json: read as a form, which has no message
    charset = cz.post(path, content=b'{"message": "x"}', headers={"Content-Type": "application/json; charset=utf-8"})
    error(charset)


def test_another_workspaces_token_is_unauthorized(cz, server):
    other = server.new_tenant()
    foreign_channel = other.state("corteza")["channels"][0]["channelID"]
    error(cz.get(f"/channels/{foreign_channel}"), "channel does not exist")


def test_every_secured_operation_refuses_a_missing_token(tenant):
    """Stands in for Schemathesis' ignored_auth check, which cannot read Corteza's 200 errors."""
    with tenant.client("corteza", authenticated=False) as client:
        for path, item in CORTEZA.spec["paths"].items():
            for method, operation in item.items():
                if method == "parameters" or operation.get("security") == []:
                    continue
                url = path.replace("{command}", "echo").replace("{reaction}", "x")
                for name in ("channelID", "messageID", "userID", "webhookID", "roleID"):
                    url = url.replace("{" + name + "}", "1")
                response = client.request(method.upper(), url, json={})
                error(response, "Unauthorized")
                assert response.headers["x-mockserver-error-status"] == "401", (method, path)


# --- envelope and bodies ------------------------------------------------------------------------

def test_envelope_and_string_ids(cz):
    body = cz.get("/channels/").json()
    assert set(body) == {"response"} and isinstance(body["response"], list)
    channel = body["response"][0]
    assert isinstance(channel["channelID"], str) and channel["channelID"].isdigit()
    assert all(isinstance(member, str) for member in channel["members"])


def test_form_bodies_work_like_json(cz):
    general = channel_named(cz, "general")
    by_form = ok(cz.post(f"/channels/{general['channelID']}/messages/", data={"message": "as a form"}))
    assert by_form["message"] == "as a form"
    plain = cz.post(f"/channels/{general['channelID']}/messages/", content=b"message=as+text",
                    headers={"Content-Type": "text/plain"})
    assert ok(plain)["message"] == "as text"  # non-JSON bodies are read as forms, as the real server does


@pytest.mark.parametrize("raw,content_type", [(b"{", "application/json"), (b"\xff\xfe", "application/json"),
                                              (b'{"message": 5}', "application/json")])
def test_bad_bodies_are_error_envelopes(cz, tenant, raw, content_type):
    general = channel_named(cz, "general")
    before = len(tenant.state("corteza")["messages"])
    error(cz.post(f"/channels/{general['channelID']}/messages/", content=raw, headers={"Content-Type": content_type}))
    assert len(tenant.state("corteza")["messages"]) == before


# --- channels -----------------------------------------------------------------------------------

def test_channel_fields(cz):
    channel = channel_named(cz, "general")
    assert set(channel) >= {"channelID", "name", "topic", "type", "membershipPolicy", "lastMessageID", "members",
                            "membershipFlag", "canJoin", "canPart", "canObserve", "canSendMessages",
                            "canDeleteMessages", "canChangeMembers", "canChangeMembershipPolicy", "canUpdate",
                            "canArchive", "canDelete", "createdAt", "unread"}
    assert channel["type"] == "public" and channel["membershipFlag"] == "" and channel["canSendMessages"]


def test_channel_create_update_read_list_query(cz, tenant):
    _, other = as_user(tenant, 0)
    created = ok(cz.post("/channels/", json={"name": "launch", "topic": "Q3 launch", "type": "private",
                                             "members": [other]}))
    assert created["members"] == [me(tenant), other] and created["type"] == "private"
    updated = ok(cz.put(f"/channels/{created['channelID']}", json={"name": "launch", "topic": "Q4 launch"}))
    assert updated["topic"] == "Q4 launch" and "updatedAt" in updated
    assert ok(cz.get(f"/channels/{created['channelID']}"))["topic"] == "Q4 launch"
    assert [c["name"] for c in ok(cz.get("/channels/", params={"query": "LAUNCH"}))] == ["launch"]
    outsider, _ = as_user(tenant, 5)
    with outsider:
        error(outsider.get(f"/channels/{created['channelID']}"), "channel does not exist")
        assert "launch" not in [c["name"] for c in ok(outsider.get("/channels/"))]
    error(cz.post("/channels/", json={"name": "x", "type": "secret"}), "invalid channel type")


def test_channel_validation_as_the_source_words_it(cz):
    """service/channel.go Create and Update."""
    error(cz.post("/channels/", json={"name": "no type"}), "invalid channel type")
    error(cz.post("/channels/", json={"type": "public"}), "channel name not provided")
    error(cz.post("/channels/", json={"type": "public", "name": "é" * 21}),
          "channel name (42 characters) too long (max: 40)")
    error(cz.post("/channels/", json={"type": "public", "name": "ok", "topic": "t" * 201}),
          "channel topic (201 characters) too long (max: 200)")
    channel = ok(cz.post("/channels/", json={"type": "public", "name": "valid"}))
    error(cz.put(f"/channels/{channel['channelID']}", json={"topic": "no name"}), "channel name not provided")
    error(cz.put(f"/channels/{channel['channelID']}", json={"name": "n" * 41}),
          "channel name (41 characters) too long (max: 40)")
    first = ok(cz.get("/search/messages", params={"channelID": channel["channelID"]}))
    assert channel["lastMessageID"] == first[0]["messageID"] != "0"
    assert first[0]["type"] == "channelEvent" and first[0]["message"].endswith("created public channel **valid**")


def test_a_group_with_the_same_members_is_the_existing_group(cz, tenant):
    others = tenant.credentials["corteza"]["other_user_ids"][5:7]
    group = ok(cz.post("/channels/", json={"type": "group", "members": others}))
    again = ok(cz.post("/channels/", json={"type": "group", "members": list(reversed(others))}))
    assert again["channelID"] == group["channelID"] and group["name"] == ""
    error(cz.put(f"/channels/{group['channelID']}/members/{tenant.credentials['corteza']['other_user_ids'][0]}"),
          "adding members to a group is not currently supported")


def test_membership_policy_needs_grant(cz, tenant):
    featured = ok(cz.post("/channels/", json={"type": "public", "name": "news", "membershipPolicy": "featured"}))
    assert featured["membershipPolicy"] == "featured" and featured["canChangeMembershipPolicy"]
    assert ok(cz.post("/channels/", json={"type": "public", "name": "odd", "membershipPolicy": "bogus"}
                      ))["membershipPolicy"] == ""
    client, _ = as_user(tenant, 0)  # no grant permission
    with client:
        error(client.post("/channels/", json={"type": "public", "name": "mine", "membershipPolicy": "forced"}),
              "messaging.service.NoPermissions")
        assert not ok(client.get(f"/channels/{featured['channelID']}"))["canChangeMembershipPolicy"]
    updated = ok(cz.put(f"/channels/{featured['channelID']}", json={"name": "news", "membershipPolicy": "forced"}))
    assert updated["membershipPolicy"] == "forced"


def test_channel_state_transitions(cz):
    channel = ok(cz.post("/channels/", json={"name": "temp", "type": "public"}))
    path = f"/channels/{channel['channelID']}/state"
    archived = ok(cz.put(path, json={"state": "archive"}))
    assert "archivedAt" in archived and not archived["canSendMessages"]
    error(cz.put(path, json={"state": "archive"}), "channel already archived")
    error(cz.post(f"/channels/{channel['channelID']}/messages/", json={"message": "hi"}))
    assert "archivedAt" not in ok(cz.put(path, json={"state": "unarchive"}))
    error(cz.put(path, json={"state": "unarchive"}), "channel not archived")
    deleted = ok(cz.put(path, json={"state": "delete"}))
    assert "deletedAt" in deleted
    error(cz.put(path, json={"state": "delete"}), "channel already deleted")
    assert "deletedAt" not in ok(cz.put(path, json={"state": "undelete"}))
    error(cz.put(path, json={"state": "undelete"}), "channel not deleted")
    assert cz.put(path, json={"state": "explode"}).json() == {"response": False}  # rest/channel.go: nothing


def test_channel_list_leaves_out_archived_and_deleted_and_sorts_by_name(cz):
    names = ["zeta-list", "alpha-list", "mid-list"]
    made = {name: ok(cz.post("/channels/", json={"name": name, "type": "public", "topic": "listing"})) for name in names}
    ok(cz.put(f"/channels/{made['mid-list']['channelID']}/state", json={"state": "archive"}))
    assert [c["name"] for c in ok(cz.get("/channels/", params={"query": "-list"}))] == ["alpha-list", "zeta-list"]
    assert ok(cz.get("/channels/", params={"query": "listing"})) == []  # the name only, not the topic
    everything = [c["name"] for c in ok(cz.get("/channels/"))]
    assert everything == sorted(everything)


def test_non_owner_cannot_update_or_archive(cz, tenant):
    channel = ok(cz.post("/channels/", json={"name": "mine", "type": "public"}))
    client, _ = as_user(tenant, 0)
    with client:
        ok(client.put(f"/channels/{channel['channelID']}/members/{as_user(tenant, 0)[1]}"))
        error(client.put(f"/channels/{channel['channelID']}", json={"name": "theirs"}), "messaging.service.NoPermissions")
        error(client.put(f"/channels/{channel['channelID']}/state", json={"state": "archive"}))


def test_membership_flag(cz):
    general = channel_named(cz, "general")
    assert ok(cz.put(f"/channels/{general['channelID']}/flag", json={"flag": "pinned"}))["membershipFlag"] == "pinned"
    assert channel_named(cz, "general")["membershipFlag"] == "pinned"
    assert ok(cz.delete(f"/channels/{general['channelID']}/flag"))["membershipFlag"] == ""
    assert cz.put(f"/channels/{general['channelID']}/flag", json={"flag": "starred"}).json() == {"response": False}


def test_members_join_part_invite(cz, tenant):
    random_channel = channel_named(cz, "random")
    client, user_id = as_user(tenant, 6)  # not in #random
    with client:
        channel = ok(client.get(f"/channels/{random_channel['channelID']}"))
        assert channel["canJoin"] and user_id not in channel["members"]
        joined = ok(client.put(f"/channels/{random_channel['channelID']}/members/{user_id}"))
        assert [(m["userID"], m["type"]) for m in joined] == [(user_id, "member")]  # a member set (wrapMemberSet)
        members = ok(client.get(f"/channels/{random_channel['channelID']}/members"))
        assert user_id in [m["userID"] for m in members]
        assert ok(client.delete(f"/channels/{random_channel['channelID']}/members/{user_id}")) == {"message": "OK"}
        assert user_id not in ok(cz.get(f"/channels/{random_channel['channelID']}"))["members"]
    invited = ok(cz.post(f"/channels/{random_channel['channelID']}/invite", json={"userID": [user_id]}))
    assert [(m["userID"], m["type"]) for m in invited] == [(user_id, "invitee")]
    outsider = tenant.credentials["corteza"]["other_user_ids"][5]
    assert ok(cz.delete(f"/channels/{random_channel['channelID']}/members/{outsider}")) == {"message": "OK"}
    events = ok(cz.get("/search/messages", params={"channelID": random_channel["channelID"], "type": "channelEvent"}))
    assert [e["message"] for e in events][:3] == [f"<@{user_id}> joined", f"<@{user_id}> left", f"<@{user_id}> joined"]


# --- messages -----------------------------------------------------------------------------------

def test_post_with_mentions_and_edit_delete_rules(cz, tenant):
    general = channel_named(cz, "general")["channelID"]
    client, other = as_user(tenant, 1)
    message = ok(cz.post(f"/channels/{general}/messages/", json={"message": f"hi <@{other}> and <@{other} Bob> <@123>"}))
    assert message["mentions"] == [other] and message["userID"] == me(tenant) and message["type"] == ""
    assert message["canEdit"] and message["canDelete"] and message["canReply"]
    with client:
        error(client.put(f"/channels/{general}/messages/{message['messageID']}", json={"message": "hijack"}),
              "messaging.service.NoPermissions")
        error(client.delete(f"/channels/{general}/messages/{message['messageID']}"), "messaging.service.NoPermissions")
        theirs = ok(client.post(f"/channels/{general}/messages/", json={"message": "mine"}))
        edited = ok(client.put(f"/channels/{general}/messages/{theirs['messageID']}", json={"message": "mine, edited"}))
        assert edited["message"] == "mine, edited" and "updatedAt" in edited
    # an admin may delete other people's messages (message.delete.all) ...
    assert ok(cz.delete(f"/channels/{general}/messages/{theirs['messageID']}")) == {"message": "OK"}
    error(cz.put(f"/channels/{general}/messages/{theirs['messageID']}", json={"message": "x"}), "message does not exist")
    assert theirs["messageID"] not in [m["messageID"] for m in ok(cz.get("/search/messages", params={"channelID": general}))]


def test_permission_rules_decide_deleting_others_messages(cz, tenant):
    general = channel_named(cz, "general")["channelID"]
    client, _ = as_user(tenant, 1)
    with client:
        theirs = ok(client.post(f"/channels/{general}/messages/", json={"message": "keep me"}))
    admin_role = next(r for r in tenant.state("corteza")["roles"] if r["name"] == "admins")["roleID"]
    rules = [{"resource": "messaging:channel:*", "operation": "message.delete.all", "access": "deny"}]
    assert ok(cz.patch(f"/permissions/{admin_role}/rules", json={"rules": rules})) == {"message": "OK"}
    error(cz.delete(f"/channels/{general}/messages/{theirs['messageID']}"), "messaging.service.NoPermissions")
    rules[0]["access"] = "allow"
    ok(cz.patch(f"/permissions/{admin_role}/rules", json={"rules": rules}))
    ok(cz.delete(f"/channels/{general}/messages/{theirs['messageID']}"))


def test_replies_update_thread_counters(cz, tenant):
    general = channel_named(cz, "general")["channelID"]
    root = ok(cz.post(f"/channels/{general}/messages/", json={"message": "thread"}))
    client, other = as_user(tenant, 2)
    with client:
        reply = ok(client.post(f"/channels/{general}/messages/{root['messageID']}/replies", json={"message": "r1"}))
        assert reply["replyTo"] == root["messageID"] and not reply["canReply"]
        error(client.post(f"/channels/{general}/messages/{reply['messageID']}/replies", json={"message": "r2"}),
              "unable to reply on replies")
    ok(cz.post(f"/channels/{general}/messages/{root['messageID']}/replies", json={"message": "r3"}))
    replies = ok(cz.get("/search/messages", params={"threadID": root["messageID"]}))
    assert [m["message"] for m in replies] == ["r3", "r1"]  # the thread's replies only (repository/message.go)
    parent = ok(cz.get("/search/messages", params={"channelID": general, "limit": 1}))[0]
    assert parent["messageID"] == root["messageID"]
    assert parent["replies"] == 2 and parent["repliesFrom"] == [other, me(tenant)]
    assert parent["unread"]["count"] == 1  # the other user's reply
    threads = ok(cz.get("/search/threads", params={"channelID": general}))
    assert [m["message"] for m in threads][:3] == ["thread", "r1", "r3"]  # the root, then its replies
    replier, _ = as_user(tenant, 2)
    with replier:  # a thread the other user replied to is theirs too
        assert ok(replier.get("/search/threads", params={"channelID": general}))[0]["messageID"] == root["messageID"]


def test_pin_bookmark_and_reactions(cz, tenant):
    general = channel_named(cz, "general")["channelID"]
    message = ok(cz.post(f"/channels/{general}/messages/", json={"message": "react to me"}))
    base = f"/channels/{general}/messages/{message['messageID']}"
    ok(cz.post(f"{base}/pin"))
    ok(cz.post(f"{base}/bookmark"))
    client, other = as_user(tenant, 0)
    ok(cz.post(f"{base}/reaction/👍"))
    with client:
        ok(client.post(f"{base}/reaction/👍"))
        ok(client.post(f"{base}/reaction/🎉"))
        seen = next(m for m in ok(client.get("/search/messages", params={"pinnedOnly": True, "channelID": general}))
                    if m["messageID"] == message["messageID"])
        assert seen["isPinned"] and not seen["isBookmarked"]  # bookmarks are private
        assert seen["reactions"] == [{"userIDs": [me(tenant), other], "reaction": "👍", "count": 2},
                                     {"userIDs": [other], "reaction": "🎉", "count": 1}]
        ok(client.delete(f"{base}/reaction/🎉"))
    mine = ok(cz.get("/search/messages", params={"bookmarkedOnly": True}))
    assert [m["messageID"] for m in mine] == [message["messageID"]] and mine[0]["isBookmarked"]
    assert mine[0]["reactions"] == [{"userIDs": [me(tenant), other], "reaction": "👍", "count": 2}]
    ok(cz.delete(f"{base}/pin"))
    ok(cz.delete(f"{base}/bookmark"))
    assert ok(cz.get("/search/messages", params={"bookmarkedOnly": True})) == []


def test_mark_as_read_moves_unread_counters(cz, tenant):
    general = channel_named(cz, "general")["channelID"]
    client, _ = as_user(tenant, 3)
    with client:
        for text in ("one", "two", "three"):
            ok(client.post(f"/channels/{general}/messages/", json={"message": text}))
    unread = channel_named(cz, "general")["unread"]
    assert unread["count"] >= 3
    result = ok(cz.get(f"/channels/{general}/messages/mark-as-read"))
    assert result["count"] == 0 and "threadCount" in result and "threadTotal" not in result
    assert "unread" not in channel_named(cz, "general")  # payload.ChannelUnread: none while nothing is unread
    latest = ok(cz.get("/search/messages", params={"channelID": general, "limit": 3}))
    partial = ok(cz.get(f"/channels/{general}/messages/mark-as-read", params={"lastReadMessageID": latest[2]["messageID"]}))
    assert partial["count"] == 2 and partial["lastMessageID"] == latest[2]["messageID"]


def test_channel_events_are_not_unread_and_mark_as_read_checks_what_it_is_given(cz, tenant):
    """service/message.go MarkAsRead and repository/message.go CountFromMessageID."""
    channel = ok(cz.post("/channels/", json={"name": "unread-check", "type": "public"}))
    channel_id = channel["channelID"]
    ok(cz.get(f"/channels/{channel_id}/messages/mark-as-read"))
    client, other = as_user(tenant, 1)
    with client:
        ok(client.put(f"/channels/{channel_id}/members/{other}"))  # a channelEvent: not unread
        assert "unread" not in ok(cz.get(f"/channels/{channel_id}"))
        root = ok(client.post(f"/channels/{channel_id}/messages/", json={"message": "hi"}))
        ok(client.post(f"/channels/{channel_id}/messages/{root['messageID']}/replies", json={"message": "reply"}))
    seen = ok(cz.get(f"/channels/{channel_id}"))["unread"]
    assert (seen["count"], seen["threadCount"], seen["threadTotal"]) == (1, 1, 1)
    general = channel_named(cz, "general")["channelID"]
    mark = f"/channels/{channel_id}/messages/mark-as-read"
    error(cz.get(mark, params={"lastReadMessageID": "1"}),
          "unable to mark as read: unable to verify last message: sql: no rows in result set")
    elsewhere = ok(cz.get("/search/messages", params={"channelID": general, "limit": 1}))[0]["messageID"]
    error(cz.get(mark, params={"lastReadMessageID": elsewhere}),
          "unable to mark as read: last read message not in the same channel")
    error(cz.get(mark, params={"threadID": root["messageID"], "lastReadMessageID": root["messageID"]}),
          "unable to mark as read: last read message not in the same thread")
    error(cz.get(mark, params={"threadID": "1"}),
          "unable to mark as read: unable to verify thread: sql: no rows in result set")
    whole = ok(cz.get(mark))
    assert (whole["count"], whole["threadCount"]) == (0, 1)  # the threads unread before, now read too
    assert "unread" not in ok(cz.get(f"/channels/{channel_id}"))


def test_commands(cz):
    """rest/commands.go and service/command.go."""
    commands = ok(cz.get("/commands/"))
    assert [c["name"] for c in commands] == ["me", "shrug", "tableflip", "unflip"]
    general = channel_named(cz, "general")["channelID"]
    run = f"/channels/{general}/messages/command/{{}}/exec"
    assert ok(cz.post(run.format("shrug"), json={"input": "oh well"}))["message"] == "oh well ¯\\\\_(ツ)_/¯"
    assert ok(cz.post(run.format("tableflip"), json={}))["message"] == "(╯°□°）╯︵ ┻━┻"
    assert ok(cz.post(run.format("unflip"), json={"input": "ok"}))["message"] == "ok ┬─┬ ノ( ゜-゜ノ)"
    assert ok(cz.post(run.format("me"), json={"input": "waves"}))["type"] == "illeism"
    assert cz.post(run.format("me"), json={}).json() == {"response": None}  # nothing to say
    assert cz.post(run.format("dance"), json={"input": "x"}).json() == {"response": None}


# --- search -------------------------------------------------------------------------------------

def test_search_filters(cz, tenant):
    general, random_channel = channel_named(cz, "general")["channelID"], channel_named(cz, "random")["channelID"]
    client, other = as_user(tenant, 0)
    with client:
        posted = [ok(client.post(f"/channels/{general}/messages/", json={"message": f"needle {n}"})) for n in range(3)]
    ids = [m["messageID"] for m in posted]
    found = ok(cz.get("/search/messages", params={"query": "NEEDLE"}))
    assert [m["messageID"] for m in found] == ids[::-1]  # newest first
    assert [m["messageID"] for m in ok(cz.get("/search/messages", params={"query": "needle", "limit": 2}))] == ids[:0:-1]
    after = ok(cz.get("/search/messages", params={"afterMessageID": ids[0], "query": "needle"}))
    assert [m["messageID"] for m in after] == ids[1:]  # paging forward: oldest first
    between = ok(cz.get("/search/messages", params={"fromMessageID": ids[1], "toMessageID": ids[1]}))
    assert [m["messageID"] for m in between] == [ids[1]]
    before = ok(cz.get("/search/messages", params={"beforeMessageID": ids[2], "query": "needle"}))
    assert [m["messageID"] for m in before] == ids[1::-1]
    by_user = ok(cz.get("/search/messages", params={"userID": other, "channelID": general}))
    assert {m["userID"] for m in by_user} == {other}
    assert ok(cz.get("/search/messages", params={"channelID": random_channel, "query": "needle"})) == []
    assert len(ok(cz.get("/search/messages", params={"channelID": [general, random_channel], "limit": 100}))) > 3
    texts = ok(cz.get("/search/messages", params={"type": "text", "limit": 100}))
    assert texts and {m["type"] for m in texts} == {""}
    # as the request parsers read them: an unreadable ID is none, booleans as ParseBool, limit at most 100
    everything = ok(cz.get("/search/messages", params={"limit": 0}))  # 0: the default, 100
    assert ok(cz.get("/search/messages", params={"afterMessageID": "abc", "limit": 500})) == everything
    pinned = ok(cz.get("/search/messages", params={"pinnedOnly": "Yes"}))
    assert pinned and all(m["isPinned"] for m in pinned) and len(pinned) < len(everything)
    assert ok(cz.get("/search/messages", params={"pinnedOnly": "nah"})) == everything
    dev = channel_named(cz, "dev")
    index = next(i for i, user in enumerate(tenant.credentials["corteza"]["other_user_ids"]) if user not in dev["members"])
    outsider, _ = as_user(tenant, index)
    with outsider:  # not in #dev, a private channel
        error(outsider.get("/search/messages", params={"channelID": dev["channelID"]}), "messaging.service.NoPermissions")


# --- attachments --------------------------------------------------------------------------------

def image(kind: str, size: tuple[int, int], **options) -> bytes:
    """A real image file of a solid colour."""
    encoded = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(encoded, kind, **options)
    return encoded.getvalue()


PNG = image("PNG", (640, 480))


def test_attachment_upload_and_signed_download(cz, tenant):
    general = channel_named(cz, "general")["channelID"]
    att = ok(cz.post(f"/channels/{general}/attach", files={"upload": ("chart.png", PNG, "image/png")}))
    assert set(att) >= {"attachmentID", "userID", "url", "previewUrl", "meta", "name", "createdAt"}  # the Attachment
    assert att["meta"]["original"] == {"size": len(PNG), "ext": "png", "mimetype": "image/png",
                                       "image": {"width": 640, "height": 480, "animated": False}}
    message = ok(cz.get("/search/messages", params={"channelID": general, "limit": 1}))[0]
    assert message["type"] == "inlineImage" and message["message"] == "chart.png"
    assert message["att"]["attachmentID"] == att["attachmentID"]
    with tenant.client("corteza", authenticated=False) as anonymous:  # the signature is the credential
        original = anonymous.get(att["url"])
        assert original.status_code == 200 and original.content == PNG
        assert original.headers["content-type"] == "image/png"
        assert original.headers["content-disposition"].startswith("inline")
        download = anonymous.get(att["url"] + "&download=true")
        assert download.headers["content-disposition"].startswith("attachment") and download.content == PNG
        bad = att["url"].replace("sign=", "sign=0")
        error(anonymous.get(bad), "missing or invalid signature")
        error(anonymous.get(att["url"].replace("sign=", "sign=%C3%A9")), "missing or invalid signature")  # was a 500
        other_user = tenant.credentials["corteza"]["other_user_ids"][0]
        error(anonymous.get(att["url"].replace(f"userID={me(tenant)}", f"userID={other_user}")),
              "missing or invalid signature")
        # rest/attachment.go: the name and extension segments are not read; the checks come in its order
        assert anonymous.get(att["url"].replace("chart.png", "other.png")).content == PNG
        preview = anonymous.get(att["previewUrl"]).content
        assert anonymous.get(att["previewUrl"].replace("preview.jpg", "preview.png")).content == preview
        assert anonymous.get(att["url"] + "&download=1").headers["content-disposition"].startswith("attachment")
        bare = att["url"].split("?")[0]
        error(anonymous.get(bare), "unauthorized")
        error(anonymous.get(bare, params={"sign": "x"}), "missing or invalid user ID")
        error(anonymous.get(bare, params={"sign": "x", "userID": "abc"}), "missing or invalid user ID")
        error(anonymous.get(bare.replace(att["attachmentID"], "0"), params={"sign": "x", "userID": "5"}),
              "missing or invalid attachment ID")
    client, _ = as_user(tenant, 0)
    with client:  # each viewer gets URLs signed for them
        seen = next(m for m in ok(client.get("/search/messages", params={"channelID": general, "type": "inlineImage"})))
        assert seen["att"]["url"] != att["url"] and client.get(seen["att"]["url"]).content == PNG


def test_image_previews_fit_320_by_180_as_jpeg_or_gif(cz, tenant):
    """service/attachment.go processImage: the original's size in meta, a preview that fits."""
    general = channel_named(cz, "general")["channelID"]

    def upload(name, data, declared="application/octet-stream"):
        att = ok(cz.post(f"/channels/{general}/attach", files={"upload": (name, data, declared)}))
        with tenant.client("corteza", authenticated=False) as anonymous:
            served = anonymous.get(att["previewUrl"])
        assert served.headers["content-type"] == att["meta"]["preview"]["mimetype"]
        assert len(served.content) == att["meta"]["preview"]["size"]
        shown = Image.open(io.BytesIO(served.content))
        assert shown.size == (att["meta"]["preview"]["image"]["width"], att["meta"]["preview"]["image"]["height"])
        return att, shown

    att, shown = upload("chart.png", PNG)  # landscape: 320 wide
    assert att["previewUrl"].startswith(f"/attachment/{att['attachmentID']}/preview.jpg?sign=")
    assert att["meta"]["preview"] | {"size": 0} == {"size": 0, "ext": "jpg", "mimetype": "image/jpeg",
                                                    "image": {"width": 320, "height": 240, "animated": False}}
    assert shown.format == "JPEG"
    att, shown = upload("tall.bmp", image("BMP", (100, 300)))  # too tall: 180 high
    assert att["meta"]["original"]["mimetype"] == "image/bmp" and shown.size == (60, 180)
    att, shown = upload("small.jpeg", image("JPEG", (40, 30)), "image/png")  # fits: kept; bytes say JPEG
    assert att["meta"]["original"]["mimetype"] == "image/jpeg" and shown.size == (40, 30)
    frames = [Image.new("RGB", (400, 400), (shade, 0, 0)) for shade in (0, 120, 240)]
    animation = io.BytesIO()
    frames[0].save(animation, "GIF", save_all=True, append_images=frames[1:], loop=0, duration=100)
    att, shown = upload("spin.gif", animation.getvalue())  # a GIF's preview is a GIF of its first frame
    assert att["meta"]["original"]["image"] == {"width": 400, "height": 400, "animated": True}
    assert att["meta"]["preview"]["ext"] == "gif" and shown.format == "GIF" and shown.size == (180, 180)
    assert getattr(shown, "n_frames", 1) == 1
    orientation = Image.Exif()
    orientation[0x0112] = 6  # EXIF: turn 90 degrees to show
    turned = image("JPEG", (300, 100), exif=orientation)
    att, _ = upload("photo.jpg", turned)
    assert att["meta"]["original"]["image"] == {"width": 100, "height": 300, "animated": False}


def test_uploads_that_are_not_images_or_cannot_be_previewed(cz, tenant):
    general = channel_named(cz, "general")["channelID"]
    before = ok(cz.get("/search/messages", params={"channelID": general, "limit": 1}))[0]["messageID"]
    # an image's name must end in an extension Go's imaging knows, and its bytes must decode
    for name, data in [("chart", PNG), ("chart.webp", PNG), ("chart.gif", PNG), ("pic.png", image("WEBP", (5, 5))),
                       ("cut.png", PNG[:100])]:
        error(cz.post(f"/channels/{general}/attach", files={"upload": (name, data, "image/png")}),
              "could not process image")
    huge = io.BytesIO()
    Image.new("1", (8000, 8000)).save(huge, "PNG")  # 64 megapixels in a few KB: refused before decoding
    error(cz.post(f"/channels/{general}/attach", files={"upload": ("huge.png", huge.getvalue(), "image/png")}),
          "could not process image")
    assert ok(cz.get("/search/messages", params={"channelID": general, "limit": 1}))[0]["messageID"] == before
    # an image type the bytes do not bear out: a plain attachment, with no preview
    att = ok(cz.post(f"/channels/{general}/attach", files={"upload": ("fake.png", b"not an image", "image/png")}))
    assert att["meta"] == {"original": {"size": 12, "ext": "png", "mimetype": "application/octet-stream"}}
    assert att["previewUrl"].startswith("?sign=")  # pkg/payload Attachment: the signed query alone
    assert ok(cz.get("/search/messages", params={"channelID": general, "limit": 1}))[0]["type"] == "attachment"
    with tenant.client("corteza", authenticated=False) as anonymous:
        path = att["url"].split("?")[0].replace("/original/fake.png", "/preview.jpg")
        error(anonymous.get(path + att["previewUrl"]), "attachment preview does not exist")


def test_attachment_names_are_not_paths_and_size_is_limited(cz, tenant):
    general = channel_named(cz, "general")["channelID"]
    att = ok(cz.post(f"/channels/{general}/attach", files={"upload": ("../../etc/passwd", b"secret", "text/plain")}))
    assert "/" not in att["name"] and att["previewUrl"].startswith("?sign=")
    assert ok(cz.get("/search/messages", params={"channelID": general, "limit": 1}))[0]["type"] == "attachment"
    with tenant.client("corteza", authenticated=False) as anonymous:
        assert anonymous.get(att["url"]).content == b"secret"
    too_big = cz.post(f"/channels/{general}/attach", files={"upload": ("big.bin", b"x" * (4 * 1024 * 1024 + 1))})
    error(too_big)
    assert too_big.headers["x-mockserver-error-status"] == "413"
    error(cz.post(f"/channels/{general}/attach", data={"replyTo": "1"}))


# --- permissions, statuses, activity ------------------------------------------------------------

def test_permissions(cz, tenant):
    """access_control.go (2020.3): the whitelist, Effective, and rules that need `grant`."""
    defined = ok(cz.get("/permissions/"))
    assert len(defined) == 30 and {"resource": "messaging:channel:", "operation": "message.delete.all"} in defined
    assert sum(1 for p in defined if p["resource"] == "messaging") == 10
    effective = ok(cz.get("/permissions/effective", params={"resource": "messaging:channel:*"}))
    assert [(e["resource"], e["operation"]) for e in effective][:2] == [("messaging", "access"), ("messaging", "grant")]
    assert all(e["allow"] is True for e in effective)  # the admin
    roles = {r["name"]: r["roleID"] for r in tenant.state("corteza")["roles"]}
    assert {roles["everyone"], roles["admins"]} == {"1", "2"}  # Corteza's EveryoneRoleID and AdminsRoleID
    admin_rules = ok(cz.get(f"/permissions/{roles['admins']}/rules"))
    assert all(rule["roleID"] == roles["admins"] for rule in admin_rules) and admin_rules
    assert ok(cz.get("/permissions/3/rules")) == []  # a role without rules
    error(cz.patch("/permissions/3/rules", json={"rules": [
        {"resource": "messaging", "operation": "grant", "access": "allow"},
        {"resource": "messaging:channel:*", "operation": "fly", "access": "allow"}]}),
        "invalid rule: 'fly' on 'messaging:channel:*'")
    assert ok(cz.get("/permissions/3/rules")) == []  # refused as a whole
    ok(cz.patch("/permissions/3/rules", json={"rules": [
        {"resource": "messaging:channel:123", "operation": "message.send", "access": "deny"}]}))
    assert ok(cz.get("/permissions/3/rules")) == [
        {"roleID": "3", "resource": "messaging:channel:123", "operation": "message.send", "access": "deny"}]
    assert ok(cz.delete(f"/permissions/{roles['admins']}/rules")) == {"message": "OK"}
    error(cz.get(f"/permissions/{roles['admins']}/rules"), "messaging.service.NoPermissions")  # grant went too


def test_a_plain_member_can_neither_read_nor_change_rules(cz, tenant):
    client, _ = as_user(tenant, 0)
    with client:
        effective = {e["operation"]: e["allow"] for e in ok(client.get("/permissions/effective"))}
        assert effective["access"] and not effective["grant"] and effective["channel.public.create"]
        error(client.get("/permissions/2/rules"), "messaging.service.NoPermissions")
        error(client.delete("/permissions/2/rules"), "messaging.service.NoPermissions")
        error(client.patch("/permissions/2/rules", json={"rules": []}), "messaging.service.NoGrantPermissions")
    assert ok(cz.get("/permissions/2/rules"))  # the admins' rules are still there


def test_status_set_expire_clear(cz, tenant):
    status = ok(cz.post("/status/", json={"icon": "🍔", "message": "Lunch", "expires": "30m"}))
    assert status["expires"] == "2026-01-01T00:30:00Z" and status["userID"] == me(tenant)
    assert [(s["message"], s["present"]) for s in ok(cz.get("/status/"))] == [("Lunch", "online")]
    tenant.advance(31 * 60)
    assert ok(cz.get("/status/")) == []
    ok(cz.post("/status/", json={"message": "Away", "expires": "when-active"}))
    assert ok(cz.get("/status/"))[0]["expiresWhenActive"] is True
    assert ok(cz.delete("/status/")) == {"message": "OK"}
    assert ok(cz.get("/status/")) == []
    error(cz.post("/status/", json={"expires": "next blue moon"}))


@pytest.mark.parametrize("expires,expected", [("2h", "2026-01-01T02:00:00Z"), ("tomorrow", "2026-01-02T00:00:00Z"),
                                              ("1 PM", "2026-01-01T13:00:00Z"), ("afternoon", "2026-01-01T13:00:00Z"),
                                              ("2026-05-20", "2026-05-20T00:00:00Z"), ("1h30m", "2026-01-01T01:30:00Z"),
                                              ("tomorrow 1h", "2026-01-02T01:00:00Z"), ("30m", "2026-01-01T00:30:00Z")])
def test_status_expires_grammar(cz, expires, expected):
    assert ok(cz.post("/status/", json={"expires": expires}))["expires"] == expected


def test_activity_requires_kind(cz, tenant):
    """rest/activity.go Send."""
    general = channel_named(cz, "general")["channelID"]
    assert ok(cz.post("/activity/", json={"kind": "typing", "channelID": general})) is True
    assert tenant.state("corteza")["activity"][-1]["kind"] == "typing"
    error(cz.post("/activity/", json={"channelID": general}), "missing value for activity kind")
    error(cz.post("/activity/", json={"kind": "connected"}), "can not use reserved values for activity kind")
    error(cz.post("/activity/", json={"kind": "typing", "messageID": "1"}),
          "can not send activity on message without channel ID")


# --- webhooks -----------------------------------------------------------------------------------

def test_webhook_crud_and_incoming(cz, tenant):
    general = channel_named(cz, "general")["channelID"]
    bot = tenant.credentials["corteza"]["other_user_ids"][4]
    webhook = ok(cz.post("/webhooks/", json={"channelID": general, "kind": "incoming", "userID": bot, "username": "CI"}))
    assert set(webhook) >= {"id", "kind", "userId", "channelId", "trigger", "url", "createdAt"}
    assert "token" not in webhook and "authToken" not in webhook  # never over REST
    token = next(w for w in tenant.state("corteza")["webhooks"] if w["id"] == webhook["id"])["authToken"]
    assert ok(cz.get(f"/webhooks/{webhook['id']}")) == webhook
    assert [w["id"] for w in ok(cz.get("/webhooks/", params={"channelID": general}))] == [webhook["id"]]
    updated = ok(cz.post(f"/webhooks/{webhook['id']}", json={"channelID": general, "kind": "incoming", "userID": bot,
                                                            "username": "CD"}))
    assert updated["username"] == "CD"
    with tenant.client("corteza", authenticated=False) as anonymous:
        posted = ok(anonymous.post(f"/webhooks/{webhook['id']}/{token}", params={"content": "build passed"}))
        assert posted["userID"] == bot and posted["message"] == "build passed" and posted["channelID"] == general
        by_body = ok(anonymous.post(f"/webhooks/{webhook['id']}/{token}", json={"content": "deploy done"}))
        assert by_body["message"] == "deploy done"
        error(anonymous.post(f"/webhooks/{webhook['id']}/wrong", params={"content": "x"}), "sql: no rows in result set")
        error(anonymous.post(f"/webhooks/{webhook['id']}/{token}"), "content is required")
    assert ok(cz.delete(f"/webhooks/{webhook['id']}")) == {"message": "OK"}
    error(cz.get(f"/webhooks/{webhook['id']}"), "webhook does not exist")
    with tenant.client("corteza", authenticated=False) as anonymous:  # was a 500: its token outlived it
        error(anonymous.post(f"/webhooks/{webhook['id']}/{token}", params={"content": "x"}), "sql: no rows in result set")


def test_public_webhook_delete_by_token(cz, tenant):
    general = channel_named(cz, "general")["channelID"]
    bot = tenant.credentials["corteza"]["other_user_ids"][4]
    webhook = ok(cz.post("/webhooks/", json={"channelID": general, "kind": "incoming", "userID": bot}))
    token = tenant.state("corteza")["webhooks"][0]["authToken"]
    with tenant.client("corteza", authenticated=False) as anonymous:
        assert ok(anonymous.delete(f"/webhooks/{webhook['id']}/{token}")) == {"message": "OK"}
    assert tenant.state("corteza")["webhooks"] == []


def test_outgoing_webhook_runs_as_a_command_and_its_reply_is_the_answer(cz, tenant):
    """service/command.go and service/webhook.go Do (2020.3): a command naming the trigger POSTs
    {"text": input} (%s in the URL replaced by the escaped input) and answers the reply, posted
    as the webhook's user; a message merely starting with the trigger fires nothing."""
    receiver = Receiver(reply={"text": "deploying main", "username": "CD"})
    plain = Receiver(reply={"ignored": True})
    plain.server.RequestHandlerClass.do_POST = _plain_reply
    try:
        general = channel_named(cz, "general")["channelID"]
        bot = tenant.credentials["corteza"]["other_user_ids"][4]
        ok(cz.post("/webhooks/", json={"channelID": general, "kind": "outgoing", "userID": bot,
                                       "trigger": "deploy", "url": receiver.url + "?q=%s"}))
        ok(cz.post(f"/channels/{general}/messages/", json={"message": "deploy main"}))
        assert receiver.received == []
        answer = ok(cz.post(f"/channels/{general}/messages/command/deploy/exec", json={"input": "main & more"}))
        assert answer["userID"] == bot and answer["message"] == "deploying main"
        [call] = receiver.received
        assert call["json"] == {"text": "main & more"} and call["path"] == "/hook?q=main+%26+more"
        assert tenant.state("corteza")["webhook_deliveries"][-1]["status"] == "delivered"
        ok(cz.post("/webhooks/", json={"channelID": general, "kind": "outgoing", "userID": bot,
                                       "trigger": "fortune", "url": plain.url}))
        assert ok(cz.post(f"/channels/{general}/messages/command/fortune/exec", json={}))["message"] == "plain words"
        error(cz.post("/webhooks/", json={"channelID": general, "kind": "outgoing", "userID": bot,
                                          "trigger": "!x", "url": "http://10.1.2.3/hook"}))
    finally:
        receiver.close()
        plain.close()


def test_an_outgoing_webhook_without_text_is_an_error(cz, tenant):
    receiver = Receiver(reply={"message": "the old field"})
    try:
        general = channel_named(cz, "general")["channelID"]
        bot = tenant.credentials["corteza"]["other_user_ids"][4]
        ok(cz.post("/webhooks/", json={"channelID": general, "kind": "outgoing", "userID": bot,
                                       "trigger": "old", "url": receiver.url}))
        error(cz.post(f"/channels/{general}/messages/command/old/exec", json={"input": "x"}), "Empty webhook response")
    finally:
        receiver.close()


def _plain_reply(handler):
    handler.rfile.read(int(handler.headers.get("Content-Length", 0)))
    handler.send_response(200)
    handler.send_header("Content-Type", "text/plain; charset=utf-8")
    handler.send_header("Content-Length", "11")
    handler.end_headers()
    handler.wfile.write(b"plain words")


def test_admin_state_collections(tenant):
    state = tenant.state("corteza")
    assert set(state) >= {"users", "channels", "messages", "webhooks", "statuses"}
    assert all(isinstance(m["messageID"], str) for m in state["messages"])


def test_fallbacks_and_flags_as_the_source_has_them(cz, tenant):
    """access_control.go fallbacks and pkg/payload's flags: a public channel takes messages and
    reactions from anyone; only one's own plain messages may be edited or deleted (canDelete is
    canEdit); canJoin is the public channel's, whoever asks."""
    random_channel = channel_named(cz, "random")
    index = next(i for i, user in enumerate(tenant.credentials["corteza"]["other_user_ids"])
                 if user not in random_channel["members"])
    client, outsider = as_user(tenant, index)
    with client:
        seen = ok(client.get(f"/channels/{random_channel['channelID']}"))
        assert seen["canSendMessages"] and seen["canJoin"] and seen["canObserve"] and not seen["canDeleteMessages"]
        posted = ok(client.post(f"/channels/{random_channel['channelID']}/messages/", json={"message": "drive-by"}))
        assert outsider not in ok(cz.get(f"/channels/{random_channel['channelID']}"))["members"]
        ok(client.post(f"/channels/{random_channel['channelID']}/messages/{posted['messageID']}/reaction/wave"))
    as_admin = ok(cz.get("/search/messages", params={"channelID": random_channel["channelID"], "limit": 1}))[0]
    assert as_admin["messageID"] == posted["messageID"]
    assert not as_admin["canEdit"] and not as_admin["canDelete"] and as_admin["canReply"]
    assert ok(cz.get(f"/channels/{random_channel['channelID']}"))["canJoin"]  # a member too: it is public


# --- persistence --------------------------------------------------------------------------------

def test_every_kind_of_change_survives_a_restart(tmp_path):
    """Each write changes its records through the workspace's tables (nested members, flags,
    reactions, bookmarks, read markers, rules included): after each, the state file reads back
    as the workspace in memory, and a restart on it gives back the same answers. Each request
    here adds at most one record to a table (the order of several added at once is the core's)."""
    from mockserver import MockServer
    from mockserver.persistence import export
    from mockserver.testing import TenantHandle, running

    state_file = str(tmp_path / "state.db")

    def saved_as_in_memory(server, response):
        """The answer's body, once the state file, read back, holds what memory does."""
        body = ok(response)
        reloaded = MockServer(ticking=False, state_file=state_file)
        try:
            read_back = next(t for t in export(reloaded.state)["tenants"] if t["id"] == "kept")["workspaces"]["corteza"]
        finally:
            assert reloaded.saved is not None
            reloaded.saved.close()
        in_memory = server.app.store.tenants["kept"].states["corteza"].dump()
        assert read_back["data"] == in_memory, response.request.url
        return body

    def views(server, description):
        tenant = TenantHandle(server, description)
        creds = tenant.credentials["corteza"]
        seen = {}
        for user_id in [creds["user_id"], *creds["other_user_ids"]]:
            token = creds["token"] if user_id == creds["user_id"] else creds["other_tokens"][user_id]
            with httpx.Client(base_url=server.base_url("corteza"), headers={"Authorization": f"Bearer {token}"}) as client:
                channels = ok(client.get("/channels/"))
                seen[user_id] = [channels, ok(client.get("/search/messages")), ok(client.get("/search/threads")),
                                 ok(client.get("/status/")), ok(client.get("/webhooks/")),
                                 ok(client.get("/permissions/effective")),
                                 [ok(client.get(f"/channels/{c['channelID']}/members")) for c in channels]]
        with tenant.client("corteza") as cz:
            seen["rules"] = [ok(cz.get(f"/permissions/{role}/rules")) for role in ("1", "2", "3")]
        document = server.admin.get("/__admin/state/export").json()
        return seen, next(t for t in document["tenants"] if t["id"] == "kept")

    with running(ticking=False, state_file=state_file) as server:
        tenant = server.new_tenant(tenant="kept")
        creds = tenant.credentials["corteza"]
        u1, u2, u3 = creds["other_user_ids"][:3]
        other = httpx.Client(base_url=server.base_url("corteza"),
                             headers={"Authorization": f"Bearer {creds['other_tokens'][u2]}"})
        done = lambda response: saved_as_in_memory(server, response)  # noqa: E731
        with tenant.client("corteza") as cz, other:
            general = channel_named(cz, "general")["channelID"]
            ops = done(cz.post("/channels/", json={"name": "ops", "type": "public", "members": [u1]}))["channelID"]
            done(cz.put(f"/channels/{ops}", json={"name": "operations"}))
            done(cz.put(f"/channels/{ops}", json={"name": "operations", "topic": "pager"}))
            done(cz.put(f"/channels/{ops}/members/{u2}"))
            done(cz.post(f"/channels/{ops}/invite", json={"userID": [u3]}))
            done(cz.delete(f"/channels/{ops}/members/{u1}"))
            done(other.put(f"/channels/{ops}/flag", json={"flag": "pinned"}))
            done(cz.put(f"/channels/{general}/state", json={"state": "archive"}))
            done(cz.put(f"/channels/{general}/state", json={"state": "unarchive"}))
            root = done(cz.post(f"/channels/{ops}/messages/", json={"message": f"hi <@{u2}>"}))["messageID"]
            reply = done(other.post(f"/channels/{ops}/messages/{root}/replies", json={"message": "yo"}))["messageID"]
            done(cz.post(f"/channels/{ops}/messages/{root}/replies", json={"message": "second"}))
            done(cz.delete(f"/channels/{ops}/messages/{reply}"))
            done(cz.put(f"/channels/{ops}/messages/{root}", json={"message": "edited"}))
            done(cz.post(f"/channels/{ops}/messages/{root}/pin"))
            done(cz.post(f"/channels/{ops}/messages/{root}/bookmark"))
            done(other.post(f"/channels/{ops}/messages/{root}/bookmark"))
            done(cz.delete(f"/channels/{ops}/messages/{root}/bookmark"))
            done(cz.post(f"/channels/{ops}/messages/{root}/reaction/ok"))
            done(other.post(f"/channels/{ops}/messages/{root}/reaction/ok"))
            done(other.post(f"/channels/{ops}/messages/{root}/reaction/eyes"))
            done(cz.delete(f"/channels/{ops}/messages/{root}/reaction/ok"))
            done(other.get(f"/channels/{ops}/messages/mark-as-read", params={"threadID": root}))
            done(other.get(f"/channels/{ops}/messages/mark-as-read", params={"lastReadMessageID": root}))
            done(cz.post(f"/channels/{ops}/attach", files={"upload": ("notes.txt", b"notes", "text/plain")}))
            done(cz.patch("/permissions/3/rules", json={"rules": [
                {"resource": f"messaging:channel:{ops}", "operation": "update", "access": "allow"}]}))
            done(cz.patch("/permissions/1/rules", json={"rules": [
                {"resource": "messaging:channel:*", "operation": "message.react", "access": "inherit"}]}))
            done(cz.post("/status/", json={"message": "Lunch", "expires": "30m"}))
            done(other.post("/status/", json={"message": "Away"}))
            done(other.delete("/status/"))
            done(cz.post("/activity/", json={"channelID": ops, "kind": "typing"}))
            hook = done(cz.post("/webhooks/", json={"channelID": ops, "kind": "incoming", "userID": u3}))
            done(cz.post(f"/webhooks/{hook['id']}", json={"channelID": ops, "kind": "incoming", "userID": u3,
                                                          "username": "CI"}))
            done(cz.delete(f"/webhooks/{hook['id']}"))
            done(cz.delete("/permissions/3/rules"))
        description = server.admin.get("/__admin/tenants/kept").json()
        before = views(server, description)
    with running(ticking=False, state_file=state_file) as server:
        after = views(server, description)
    assert after[0] == before[0]
    assert after[1] == before[1]
