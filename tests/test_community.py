"""Habitate community API through HTTP: basic auth, error shape, paging, boards, users, posts,
comments, replies, tags and REST-hook webhooks delivered to a local receiver."""

import base64
import json
import re
import sqlite3
import time

import pytest

from mockserver.testing import TenantHandle, running
from tests.receiver import Receiver, wait_until

ERROR_ID = re.compile(r"[A-Za-z0-9_-]{20}")


@pytest.fixture
def hab(tenant):
    with tenant.client("community") as client:
        yield client


def community(tenant):
    return tenant.state("community")


def me(hab):
    return hab.get("/users/me").json()


def assert_error(response, status, name):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"id", "status", "time", "message"}
    assert body["status"] == name and ERROR_ID.fullmatch(body["id"])
    assert body["message"].startswith("ERR_V1█")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", body["time"])
    return body


def new_board(hab, **overrides):
    body = {"board_name": "Help", "is_private": False, "hidden_type": 0, "permission_for": 10,
            "needs_approval": False} | overrides
    response = hab.post("/boards", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def new_post(hab, board_id, author, **overrides):
    body = {"board_id": board_id, "headline": "Hello", "content": "<p>Hi <b>there</b></p>",
            "authors": [author]} | overrides
    return hab.post("/posts", json=body)


# --- auth and errors ----------------------------------------------------------------------------

def test_no_credentials_401_wrong_key_403(tenant):
    with tenant.client("community", authenticated=False) as client:
        unauthenticated = client.get("/boards")
        assert_error(unauthenticated, 401, "UNAUTHORIZED")
        assert unauthenticated.headers["WWW-Authenticate"] == 'Basic realm="Habitate community API"'
        forbidden = client.get("/boards", auth=("backend_app1", "wrong"))
        assert_error(forbidden, 403, "FORBIDDEN")
        assert "WWW-Authenticate" not in forbidden.headers
        assert_error(client.get("/boards", headers={"Authorization": "Basic !!!"}), 403, "FORBIDDEN")
        password = tenant.credentials["community"]["password"]
        assert client.get("/boards", auth=("any system name", password)).status_code == 200


def test_caller_name_is_kept_in_the_journal(tenant):
    password = tenant.credentials["community"]["password"]
    with tenant.client("community", authenticated=False) as client:
        client.get("/roles", auth=("backend_app1", password))
    header = tenant.requests("community")[-1]["headers"]["authorization"]
    assert base64.b64decode(header.split()[1]).decode() == f"backend_app1:{password}"


def test_error_ids_are_unique(hab):
    first = assert_error(hab.get("/posts/1"), 404, "NOT_FOUND")
    second = assert_error(hab.get("/posts/1"), 404, "NOT_FOUND")
    assert first["id"] != second["id"]


@pytest.mark.parametrize("raw,content_type,status,name", [
    (b"{", "application/json", 400, "BAD_REQUEST"), (b"\xff", "application/json", 400, "BAD_REQUEST"),
    (b"x", "text/plain", 415, "UNSUPPORTED_MEDIA_TYPE"),
])
def test_garbage_bodies(hab, tenant, raw, content_type, status, name):
    before = community(tenant)
    assert_error(hab.post("/boards", content=raw, headers={"Content-Type": content_type}), status, name)
    assert community(tenant) == before


# --- paging -------------------------------------------------------------------------------------

def test_paging_and_has_more(hab):
    first = hab.get("/users")
    assert len(first.json()) == 10 and first.headers["has_more"] == "1"
    everyone, page = [], 1
    while True:
        response = hab.get("/users", params={"page": page, "page_size": 7})
        everyone += response.json()
        if response.headers["has_more"] == "0":
            break
        page += 1
    assert everyone[:10] == first.json()
    assert len({user["user_id"] for user in everyone}) == len(everyone)
    assert hab.get("/users", params={"page": 99}).json() == []
    assert_error(hab.get("/users", params={"page_size": 51}), 400, "BAD_REQUEST")
    assert_error(hab.get("/tags", params={"page": 0}), 400, "BAD_REQUEST")
    assert hab.get("/users", params={"page_size": 50}).headers["has_more"] == "0"


def test_user_list_sorting_and_status(hab, tenant):
    users = community(tenant)["users"]
    active = [u for u in users if u["user_status"] == 10]
    by_id = hab.get("/users", params={"page_size": 50}).json()
    assert [u["user_id"] for u in by_id] == sorted((u["user_id"] for u in active), reverse=True)
    by_name = hab.get("/users", params={"page_size": 50, "sort_by": "name", "order": "asc"}).json()
    assert [u["first_name"].lower() for u in by_name] == sorted(u["first_name"].lower() for u in active)
    waitlist = hab.get("/users", params={"status": 4, "page_size": 50}).json()
    assert waitlist and {u["user_status"] for u in waitlist} == {4}
    assert set(by_id[0]) == {"user_id", "sid", "msid", "username", "user_avatar", "first_name", "role_id",
                             "user_status", "created_at"}


# --- boards -------------------------------------------------------------------------------------

def test_board_create_edit_get_list(hab):
    board = new_board(hab, about="Ask here")
    assert board["post_count"] == 0 and board["pinned_posts"] == [] and "last_posted_at" not in board
    assert "icon" not in board  # null fields are left out
    listed = hab.get("/boards", params={"page_size": 50}).json()
    assert listed[-1] == board and board["display_order"] == len(listed)
    edited = hab.put(f"/boards/{board['board_id']}", json={
        "board_name": "Help desk", "is_private": True, "hidden_type": 2, "permission_for": 5, "needs_approval": True})
    assert edited.status_code == 200
    assert hab.get(f"/boards/{board['board_id']}").json() == edited.json()
    assert edited.json()["board_name"] == "Help desk" and "about" not in edited.json()
    assert_error(hab.get("/boards/99999"), 404, "NOT_FOUND")


@pytest.mark.parametrize("change", [
    {"hidden_type": 3}, {"permission_for": 2}, {"is_private": "no"}, {"board_name": ""}, {"needs_approval": None},
])
def test_board_enums_and_required_fields(hab, tenant, change):
    body = {"board_name": "X", "is_private": False, "hidden_type": 0, "permission_for": 10,
            "needs_approval": False} | change
    before = community(tenant)["boards"]
    assert_error(hab.post("/boards", json=body), 400, "BAD_REQUEST")
    body.pop("board_name")
    assert_error(hab.post("/boards", json=body), 400, "BAD_REQUEST")
    assert community(tenant)["boards"] == before


def test_reorder_boards(hab):
    boards = hab.get("/boards").json()
    ids = [str(board["board_id"]) for board in boards]
    response = hab.patch("/boards/reorder", json={"display_order": {ids[0]: 3, ids[1]: 1, ids[2]: 2}})
    assert response.status_code == 200 and response.json() == {"message": "OK"}
    assert [str(b["board_id"]) for b in hab.get("/boards").json()][:3] == [ids[1], ids[2], ids[0]]
    assert_error(hab.patch("/boards/reorder", json={"display_order": {ids[0]: 1, "9999": 2}}), 400, "BAD_REQUEST")
    assert_error(hab.patch("/boards/reorder", json={"display_order": {"abc": 1}}), 400, "BAD_REQUEST")
    assert [str(b["board_id"]) for b in hab.get("/boards").json()][:3] == [ids[1], ids[2], ids[0]]


def test_private_board_members(hab, tenant):
    board = new_board(hab, is_private=True, hidden_type=2)
    users = hab.get("/users", params={"page_size": 3}).json()
    changes = {users[0]["msid"]: True, users[1]["msid"]: True}
    assert hab.put(f"/boards/{board['board_id']}/members", json={"member_changes": changes}).json() == {"message": "OK"}
    hab.put(f"/boards/{board['board_id']}/members", json={"member_changes": {users[1]["msid"]: False}})
    stored = next(b for b in community(tenant)["boards"] if b["board_id"] == board["board_id"])
    assert stored["members"] == [users[0]["msid"]]
    bad = {"member_changes": {users[2]["msid"]: True, "1.nope": True}}
    assert_error(hab.put(f"/boards/{board['board_id']}/members", json=bad), 400, "BAD_REQUEST")
    assert_error(hab.put("/boards/99999/members", json={"member_changes": {users[0]["msid"]: True}}), 404, "NOT_FOUND")
    stored = next(b for b in community(tenant)["boards"] if b["board_id"] == board["board_id"])
    assert stored["members"] == [users[0]["msid"]]


# --- users and roles ----------------------------------------------------------------------------

def test_me_is_the_api_user(hab, tenant):
    user = me(hab)
    assert user["is_bot"] is True and user["msid"] == f"{user['user_id']}.{user['sid']}"
    assert tenant.credentials["community"]["headers"]["Authorization"].startswith("Basic ")


def test_create_user_and_get_by_msid_or_id(hab):
    response = hab.post("/users", json={"first_name": "Sample", "last_name": "free", "email": "Sample@Example.com",
                                        "username": "sample_1"})
    assert response.status_code == 200, response.text
    user = response.json()
    assert user["user_status"] == 10 and user["role_id"] == 4 and user["is_bot"] is False
    assert user["msid"] == f"{user['user_id']}.{user['sid']}" and "middle_name" not in user
    assert hab.get(f"/users/{user['msid']}").json() == user
    assert hab.get(f"/users/{user['user_id']}").json() == user
    assert_error(hab.get(f"/users/{user['user_id']}.wrongsid"), 404, "NOT_FOUND")
    assert_error(hab.post("/users", json={"first_name": "B", "email": "sample@example.com"}), 409, "CONFLICT")
    assert_error(hab.post("/users", json={"first_name": "B", "email": "b@example.com", "username": "SAMPLE_1"}),
                 409, "CONFLICT")


def test_social_media_links_take_the_seeds_own_keys(hab):
    """The update table of the seed names them `Twitter` and `Linkedin`."""
    user = hab.get("/users").json()[0]
    links = {"Twitter": "https://twitter.com/sample", "Linkedin": "https://linkedin.com/in/sample"}
    response = hab.put(f"/users/{user['msid']}", json={"first_name": user["first_name"], "social_media_links": links})
    assert response.status_code == 200, response.text
    assert hab.get(f"/users/{user['msid']}").json()["social_media_links"] == links
    assert_error(hab.put(f"/users/{user['msid']}", json={"first_name": "L", "social_media_links": {"Myspace": "x"}}),
                 400, "BAD_REQUEST")


@pytest.mark.parametrize("body", [
    {"first_name": "A", "email": "a@example.com", "username": "has space"},
    {"first_name": "A", "email": "a@example.com", "username": "bad!"},
    {"first_name": "A", "email": "not-an-email"},
    {"email": "a@example.com"},
    {"first_name": "A"},
    {"first_name": "A", "email": 5},
])
def test_create_user_validation(hab, tenant, body):
    before = len(community(tenant)["users"])
    assert_error(hab.post("/users", json=body), 400, "BAD_REQUEST")
    assert len(community(tenant)["users"]) == before


def test_edit_user(hab, tenant):
    user = hab.get("/users").json()[0]
    response = hab.put(f"/users/{user['msid']}", json={
        "first_name": "Ayana", "username": "Maryam5", "user_description": "<b>hi</b>",
        "social_media_links": {"twitter": "https://twitter.com/x"}})
    assert response.status_code == 200
    edited = response.json()
    assert edited["first_name"] == "Ayana" and edited["username"] == "Maryam5"
    assert edited["social_media_links"] == {"twitter": "https://twitter.com/x"}
    other = hab.get("/users").json()[1]
    assert_error(hab.put(f"/users/{other['msid']}", json={"first_name": "X", "username": "maryam5"}), 409, "CONFLICT")


def test_patch_action_101_changes_role(hab):
    user = hab.get("/users").json()[0]
    response = hab.patch(f"/users/{user['msid']}", json={"action": 101, "data": {"role_id": 3}})
    assert response.status_code == 200 and response.json()["role_id"] == 3
    assert hab.get(f"/users/{user['msid']}").json()["role_id"] == 3
    assert_error(hab.patch(f"/users/{user['msid']}", json={"action": 102, "data": {"role_id": 3}}), 400, "BAD_REQUEST")
    assert_error(hab.patch(f"/users/{user['msid']}", json={"action": 101, "data": {"role_id": 77}}), 400, "BAD_REQUEST")


def test_role_id_is_needed_only_by_the_action_that_uses_it(hab):
    """The seed marks `data.role_id` optional: the spec requires it of no body, and action 101, which
    needs it, refuses a body without it with its own 400."""
    from mockserver.vendor import discover

    [vendor] = discover(["community"])
    body = vendor.spec["paths"]["/users/{msid}"]["patch"]["requestBody"]["content"]["application/json"]["schema"]
    assert "required" not in body["properties"]["data"] and "role_id" in body["properties"]["data"]["properties"]
    user = hab.get("/users").json()[0]
    refused = assert_error(hab.patch(f"/users/{user['msid']}", json={"action": 101, "data": {}}), 400, "BAD_REQUEST")
    assert "role_id" in refused["message"] and "101" in refused["message"]
    assert hab.get(f"/users/{user['msid']}").json()["role_id"] == user["role_id"]


@pytest.mark.parametrize("seed", [0, 1, 2, 5, 13])
def test_seeded_history_is_never_dated_after_the_tenant_clock(seed):
    """Every seeded user, board, post, comment and reply is dated before the tenant's now, and each
    comment after its post, each reply after its comment."""
    with running(seed=seed, ticking=False) as server:
        default = TenantHandle(server, server.admin.get("/__admin/tenants/default").json())
        for tenant in (default, server.new_tenant()):
            now = tenant.advance(0).replace("Z", ".000Z")
            state = tenant.state("community")
            for kind in ("users", "posts", "comments", "replies"):
                assert state[kind] and all(entity["created_at"] <= now for entity in state[kind]), (seed, kind)
            posts = {post["post_id"]: post for post in state["posts"]}
            comments = {comment["comment_id"]: comment for comment in state["comments"]}
            assert all(posts[c["post_id"]]["created_at"] <= c["created_at"] for c in state["comments"])
            assert all(comments[r["comment_id"]]["created_at"] <= r["created_at"] for r in state["replies"])


def test_roles(hab):
    roles = hab.get("/roles").json()
    assert {role["role_name"] for role in roles} >= {"Moderator", "Member"}
    assert all(set(role) == {"role_id", "role_name", "role_details", "is_default"} for role in roles)


# --- posts, comments, replies -------------------------------------------------------------------

def test_reading_a_post_counts_a_view(hab):
    board = new_board(hab)
    post = new_post(hab, board["board_id"], me(hab)["msid"]).json()
    assert post["view_count"] == 0
    assert [hab.get(f"/posts/{post['post_id']}").json()["view_count"] for _ in range(3)] == [1, 2, 3]
    assert hab.get("/posts/999999").status_code == 404


def test_seeded_posts_have_views_and_seeded_comments_and_replies_have_reactions(hab, tenant):
    state = community(tenant)
    assert all(post["view_count"] > 0 for post in state["posts"])
    for kind, plural in (("comment", "comments"), ("reply", "replies")):
        reacted = [item for item in state[plural] if item["reactions"]]
        assert reacted, kind
        answer = hab.get(f"/{plural}/{reacted[0][kind + '_id']}").json()
        assert answer["reactions"] == reacted[0]["reactions"]
        assert answer["react_count"] == sum(reacted[0]["reactions"].values())

def test_post_lifecycle_moves_counters(hab, tenant):
    board = new_board(hab)
    author = hab.get("/users").json()[0]
    response = new_post(hab, str(board["board_id"]), author["msid"],
                        content="<p>Big <i>news</i> &amp; more</p>" + "<p>" + "word " * 40 + "</p>")
    assert response.status_code == 200, response.text
    post = response.json()
    assert post["clean_text"].startswith("Big news & more word word")
    assert len(post["post_short_text"]) <= 110 and post["clean_text"].startswith(post["post_short_text"])
    assert not post["post_short_text"].endswith(" ") and post["post_short_text"].endswith("word")
    assert post["user"]["msid"] == author["msid"] and "last_edited_at" not in post and "reactions" not in post
    board_now = hab.get(f"/boards/{board['board_id']}").json()
    assert board_now["post_count"] == 1 and board_now["last_posted_at"] == post["created_at"]

    tenant.advance(60)
    edited = hab.put(f"/posts/{post['post_id']}", json={"board_id": board["board_id"], "headline": "Edited",
                                                        "content": "short", "authors": [author["msid"]]}).json()
    assert edited["headline"] == "Edited" and edited["last_edited_at"] == "2026-01-01T00:01:00.000Z"
    assert edited["post_short_text"] == edited["clean_text"] == "short"
    assert hab.get(f"/posts/{post['post_id']}").json() == edited | {"view_count": 1}

    commenter = hab.get("/users").json()[1]
    comment = hab.post("/comments", json={"post_id": post["post_id"], "content": "<p>Nice</p>",
                                          "author": commenter["msid"]}).json()
    assert comment["clean_text"] == "Nice" and comment["reply_count"] == 0
    assert hab.get(f"/posts/{post['post_id']}").json()["comment_count"] == 1
    reply = hab.post("/replies", json={"comment_id": str(comment["comment_id"]), "content": "Thanks!",
                                       "author": author["msid"]}).json()
    assert reply["post_id"] == post["post_id"] and reply["comment_id"] == comment["comment_id"]
    assert hab.get(f"/comments/{comment['comment_id']}").json()["reply_count"] == 1
    assert hab.get(f"/posts/{post['post_id']}").json()["reply_count"] == 1
    tenant.advance(5)
    edited_reply = hab.put(f"/replies/{reply['reply_id']}", json={"content": "Thanks a lot!"}).json()
    assert edited_reply["last_edited_at"] == "2026-01-01T00:01:05.000Z"
    assert hab.get(f"/replies/{reply['reply_id']}").json() == edited_reply
    edited_comment = hab.put(f"/comments/{comment['comment_id']}", json={"content": "Very nice"}).json()
    assert edited_comment["content"] == "Very nice" and "last_edited_at" in edited_comment


def test_author_counters_move(hab):
    board = new_board(hab)
    author = hab.get("/users").json()[2]
    before = hab.get(f"/users/{author['msid']}").json()
    post = new_post(hab, board["board_id"], author["msid"]).json()
    hab.post("/comments", json={"post_id": post["post_id"], "content": "c", "author": author["msid"]})
    after = hab.get(f"/users/{author['msid']}").json()
    assert (after["post_count"], after["comment_count"]) == (before["post_count"] + 1, before["comment_count"] + 1)


def test_unknown_references_store_nothing(hab, tenant):
    """404 for the resource the URL names; 400 for an unknown one named inside the body."""
    board = new_board(hab)
    author = hab.get("/users").json()[0]["msid"]
    before = community(tenant)
    assert_error(new_post(hab, board["board_id"], "1.nobody"), 400, "BAD_REQUEST")
    assert_error(new_post(hab, 99999, author), 400, "BAD_REQUEST")
    assert_error(hab.post("/comments", json={"post_id": 99999, "content": "x", "author": author}), 400, "BAD_REQUEST")
    assert_error(hab.post("/replies", json={"comment_id": 99999, "content": "x", "author": author}), 400, "BAD_REQUEST")
    assert_error(hab.put("/comments/99999", json={"content": "x"}), 404, "NOT_FOUND")
    assert_error(hab.put("/posts/99999", json={"board_id": board["board_id"], "headline": "h", "content": "c",
                                               "authors": [author]}), 404, "NOT_FOUND")
    assert community(tenant) == before


def test_posting_follows_the_api_users_role(hab):
    announcements = next(b for b in hab.get("/boards").json() if b["permission_for"] == 1)
    author = hab.get("/users").json()[0]["msid"]
    assert new_post(hab, announcements["board_id"], author).status_code == 200  # the API user is an admin
    myself = me(hab)
    hab.patch(f"/users/{myself['msid']}", json={"action": 101, "data": {"role_id": 4}})
    refused = new_post(hab, announcements["board_id"], author)
    assert_error(refused, 403, "FORBIDDEN")
    general = next(b for b in hab.get("/boards").json() if b["permission_for"] == 10)
    assert new_post(hab, general["board_id"], author).status_code == 200


# --- tags ---------------------------------------------------------------------------------------

def test_tag_create_edit_get(hab):
    response = hab.post("/tags", json={"name": "Product Owner!", "description": "PO"})
    assert response.status_code == 200
    tag = response.json()
    assert tag["name"] == "productowner" and tag["display_name"] == "Product Owner!"
    assert (tag["back_color"], tag["text_color"]) == ("#ffffff", "#330000")
    assert (tag["image"], tag["og_image"]) == ("", "")  # as the seed's samples show them when none is given
    assert hab.get(f"/tags/{tag['tag_id']}").json() == tag
    assert_error(hab.post("/tags", json={"name": "PRODUCT owner"}), 409, "CONFLICT")
    edited = hab.put(f"/tags/{tag['tag_id']}", json={"name": "Owner", "back_color": "#000000"}).json()
    assert edited["name"] == "owner" and edited["back_color"] == "#000000" and edited["text_color"] == "#330000"
    assert_error(hab.post("/tags", json={"name": "x", "back_color": "red"}), 400, "BAD_REQUEST")
    assert_error(hab.post("/tags", json={"name": "!!!"}), 400, "BAD_REQUEST")
    following = hab.post("/tags", json={"name": "Next"}).json()
    assert following["tag_id"] == tag["tag_id"] + 1  # the refused tags and the conflict took no id


def test_tag_lists(hab, tenant):
    tags = community(tenant)["tags"]
    listed = hab.get("/tags", params={"page_size": 50}).json()
    assert [t["tag_id"] for t in listed] == [t["tag_id"] for t in tags]
    assert set(listed[0]) == {"tag_id", "name", "display_name", "back_color", "text_color"}
    by_name = hab.get("/tags", params={"page_size": 50, "sort_by": "name", "order": "desc"}).json()
    assert [t["name"] for t in by_name] == sorted((t["name"] for t in tags), reverse=True)
    some = hab.get("/tags", params={"ids": f"{tags[2]['tag_id']},{tags[0]['tag_id']}"}).json()
    assert {t["tag_id"] for t in some} == {tags[0]["tag_id"], tags[2]["tag_id"]}
    assert_error(hab.get("/tags", params={"ids": "1,,2"}), 400, "BAD_REQUEST")
    found = hab.get("/tags/search", params={"q": "ENGIN"}).json()
    assert [t["name"] for t in found] == ["engineer"]
    assert_error(hab.get("/tags/search"), 400, "BAD_REQUEST")


def test_tag_mapping(hab, tenant):
    mapping = next(m for m in community(tenant)["tag_mappings"] if m["ref_type"] == "post")
    tags = hab.get("/tags/mapping", params={"ref_type": "post", "ref_id": mapping["ref_id"]}).json()
    assert [t["tag_id"] for t in tags] == mapping["tag_ids"]
    assert hab.get("/tags/mapping", params={"ref_type": "board", "ref_id": 1}).json() == []
    assert_error(hab.get("/tags/mapping", params={"ref_type": "planet", "ref_id": 1}), 400, "BAD_REQUEST")


# --- webhooks -----------------------------------------------------------------------------------

def test_member_joined_is_delivered_to_a_local_receiver(hab, tenant):
    receiver = Receiver()
    try:
        hook = hab.post("/hooks", json={"target_url": receiver.url, "event": "member.joined"})
        assert hook.status_code == 201, hook.text
        assert hab.get("/hooks").json() == [hook.json()]
        user = hab.post("/users", json={"first_name": "Sample", "email": "hooked@example.com"}).json()
        [delivery] = receiver.wait_for(1)
        envelope = delivery["json"]
        assert "last_name" not in envelope["entities"]["user"][0]  # null: left out, as in answers
        assert envelope["event"] == "member.joined" and isinstance(envelope["job_id"], int)
        [joined] = envelope["entities"]["user"]
        assert joined["msid"] == user["msid"] and joined["email"] == "hooked@example.com"
        assert joined["user_status"] == 10 and joined["created_at"] == user["created_at"]
        record = wait_until(lambda: next((r for r in community(tenant)["webhook_deliveries"]
                                          if r["status"] != "pending"), None))
        assert record["status"] == "delivered" and record["job_id"] == envelope["job_id"]
        assert hab.delete(f"/hooks/{hook.json()['hook_id']}").status_code == 204
        hab.post("/users", json={"first_name": "Late", "email": "late@example.com"})
        time.sleep(0.3)
        assert len(receiver.received) == 1
        assert_error(hab.delete(f"/hooks/{hook.json()['hook_id']}"), 404, "NOT_FOUND")
    finally:
        receiver.close()


@pytest.mark.parametrize("target", ["http://10.0.0.1/hook", "http://example.com/hook", "ftp://127.0.0.1/x",
                                    "not a url", "http://169.254.169.254/latest"])
def test_targets_off_the_allow_list_are_refused(hab, target):
    assert_error(hab.post("/hooks", json={"target_url": target, "event": "member.joined"}), 400, "BAD_REQUEST")
    assert hab.get("/hooks").json() == []


def test_a_slow_target_never_blocks_the_request():
    receiver = Receiver(delay=3)
    try:
        with running(ticking=False, webhook_timeout=1) as server:
            tenant = server.new_tenant()
            with tenant.client("community") as hab:
                hab.post("/hooks", json={"target_url": receiver.url, "event": "member.joined"})
                assert hab.post("/users", json={"first_name": "S", "email": "s@example.com"}).status_code == 200
                # answered while its delivery still waits on the target: the request never held on to it
                assert [r["status"] for r in tenant.state("community")["webhook_deliveries"]] == ["pending"]
                record = wait_until(lambda: next((r for r in tenant.state("community")["webhook_deliveries"]
                                                  if r["status"] != "pending"), None))
                assert record["status"] == "failed" and "Timeout" in record["error"]
    finally:
        receiver.close()


def test_admin_state_collections(tenant):
    assert set(community(tenant)) >= {"users", "roles", "boards", "posts", "comments", "replies", "tags",
                                      "tag_mappings", "hooks", "webhook_deliveries"}


def test_entity_timestamps_carry_milliseconds_as_the_seeds_samples_do(hab):
    users = hab.get("/users", params={"page_size": 50}).json()
    stamps = [user["created_at"] for user in users]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stamp) for stamp in stamps)
    assert any(not stamp.endswith(".000Z") for stamp in stamps)  # seeded history: fractions of a second


def test_validation_errors_start_as_the_seed_documents_and_hold_no_python(hab):
    refused = hab.post("/users", json={"first_name": True, "email": "a@example.com"}).json()["message"]
    assert refused.startswith("ERR_V1█Request payload validation errors: ")
    assert "True" not in refused and "true is not of type 'string'" in refused
    long = hab.post("/users", json={"first_name": "x" * 4001, "email": "b@example.com"}).json()["message"]
    assert long.startswith("ERR_V1█Request payload validation errors: ") and len(long) < 600



# --- state file ---------------------------------------------------------------------------------

def _answers(hab, ids):
    """Every list and detail answer that reads (no post: reading one counts a view)."""
    return {
        "boards": hab.get("/boards", params={"page_size": 50}).json(),
        "board": [hab.get(f"/boards/{id_}").json() for id_ in ids["boards"]],
        "users": [hab.get("/users", params={"page_size": 50, "sort_by": "name", "page": page}).json()
                  for page in (1, 2)],
        "user": [hab.get(f"/users/{msid}").json() for msid in ids["users"]],
        "me": me(hab),
        "comment": [hab.get(f"/comments/{id_}").json() for id_ in ids["comments"]],
        "reply": [hab.get(f"/replies/{id_}").json() for id_ in ids["replies"]],
        "tags": hab.get("/tags", params={"page_size": 50, "sort_by": "name"}).json(),
        "tag": [hab.get(f"/tags/{id_}").json() for id_ in ids["tags"]],
        "mapping": [hab.get("/tags/mapping", params={"ref_type": "post", "ref_id": id_}).json() for id_ in ids["posts"]],
        "hooks": hab.get("/hooks").json(),
    }


def test_every_write_survives_a_restart_and_a_view_writes_one_post_row(tmp_path):
    state_file = str(tmp_path / "state.db")
    with running(ticking=False, state_file=state_file) as server:
        tenant = server.new_tenant(tenant="kept")
        with tenant.client("community") as hab:
            users = hab.get("/users", params={"page_size": 3}).json()
            board = new_board(hab, is_private=True)
            other = new_board(hab, board_name="Other")
            hab.put(f"/boards/{board['board_id']}", json={"board_name": "Kept", "is_private": True, "hidden_type": 2,
                                                          "permission_for": 10, "needs_approval": True})
            hab.put(f"/boards/{board['board_id']}/members",
                    json={"member_changes": {users[0]["msid"]: True, users[1]["msid"]: True}})
            hab.put(f"/boards/{board['board_id']}/members", json={"member_changes": {users[1]["msid"]: False}})
            post = new_post(hab, board["board_id"], users[0]["msid"]).json()
            hab.put(f"/posts/{post['post_id']}", json={"board_id": other["board_id"], "headline": "Moved",
                                                       "content": "<p>moved</p>", "authors": [users[1]["msid"]]})
            comment = hab.post("/comments", json={"post_id": post["post_id"], "content": "<p>c</p>",
                                                  "author": users[2]["msid"]}).json()
            hab.put(f"/comments/{comment['comment_id']}", json={"content": "<p>c, edited</p>"})
            reply = hab.post("/replies", json={"comment_id": comment["comment_id"], "content": "r",
                                               "author": users[0]["msid"]}).json()
            hab.put(f"/replies/{reply['reply_id']}", json={"content": "r, edited"})
            user = hab.post("/users", json={"first_name": "Kept", "email": "kept@example.com"}).json()
            hab.put(f"/users/{user['msid']}", json={"first_name": "Still", "user_description": "here"})
            hab.patch(f"/users/{user['msid']}", json={"action": 101, "data": {"role_id": 3}})
            tag = hab.post("/tags", json={"name": "Kept"}).json()
            hab.put(f"/tags/{tag['tag_id']}", json={"name": "Kept Too", "description": "d"})
            seeded = hab.get("/boards").json()[0]["board_id"]  # changed by nothing else here
            hab.patch("/boards/reorder", json={"display_order": {str(seeded): 3, str(board["board_id"]): 1,
                                                                 str(other["board_id"]): 2}})
            hooks = [hab.post("/hooks", json={"target_url": f"http://127.0.0.1:9/{n}", "event": "member.joined"}).json()
                     for n in range(2)]
            assert hab.delete(f"/hooks/{hooks[0]['hook_id']}").status_code == 204
            db = sqlite3.connect(state_file)
            meta = json.loads(db.execute("SELECT data FROM items WHERE tbl = '' AND key = ''").fetchone()[0])
            assert set(meta) == {"api_key", "rng", "next", "api_user_id", "last_display_order"}  # deliveries: rows
            rows = set(db.execute("SELECT tbl, key, data FROM items"))
            assert hab.get(f"/posts/{post['post_id']}").json()["view_count"] == 1
            assert {(tbl, key) for tbl, key, _ in set(db.execute("SELECT tbl, key, data FROM items")) - rows} == {
                ("posts", str(post["post_id"]))}
            ids = {"boards": [seeded, board["board_id"], other["board_id"]], "posts": [post["post_id"]],
                   "users": [user["msid"], *(u["msid"] for u in users)], "comments": [comment["comment_id"]],
                   "replies": [reply["reply_id"]], "tags": [tag["tag_id"]]}
            before, state = _answers(hab, ids), community(tenant)
    with running(ticking=False, state_file=state_file) as again:
        tenant = TenantHandle(again, again.admin.get("/__admin/tenants/kept").json())
        assert community(tenant) == state
        with tenant.client("community") as hab:
            assert _answers(hab, ids) == before
            assert hab.get(f"/posts/{post['post_id']}").json()["view_count"] == 2
