"""The request pipeline (Connexion's rules) and the cache of GET answers, as a client sees them."""

import json

import pytest

from tests.helpers import as_dailybot_user as as_user
from tests.helpers import redemption_body, rich_users, valid_plus


def test_head_is_answered_like_get_without_a_body(karma):
    get, head = karma.get("/users"), karma.head("/users")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"] == "application/json"


def test_json_body_without_a_content_type_is_read_as_json(karma, tenant):
    body = valid_plus(tenant.state("karmabot"))
    response = karma.post("/pluses", content=json.dumps(body).encode())  # httpx sends no Content-Type
    assert response.status_code == 201, response.text
    assert [plus["id"] for plus in tenant.state("karmabot")["pluses"]] == [response.json()["id"]]


@pytest.mark.parametrize("vendor, path", [("dailybot", "/kudos/"), ("kudosnow", "/kudos"), ("community", "/boards")])
@pytest.mark.parametrize("raw", [b"\xff\xfe", b'{"a":', b"{}"])
def test_bodies_without_a_content_type_are_refused_not_crashed_on(tenant, vendor, path, raw):
    """Connexion answered these with a 500: it validated them as JSON, then gave the handler bytes."""
    with tenant.client(vendor) as client:
        assert client.post(path, content=raw).status_code == 400


@pytest.mark.parametrize("path", ["/channels/{channel}/attach", "/webhooks/"])  # multipart first; form
@pytest.mark.parametrize("content_type, raw", [
    (None, b""), ("multipart/form-data", b""), ("multipart/form-data", b"x"),
    ("multipart/form-data; boundary=zz", b"garbage"),
])
def test_form_bodies_that_cannot_be_parsed_are_refused_not_crashed_on(tenant, path, content_type, raw):
    """Found by fuzzing `serve --workers 2`: these were 500s (the multipart parser wants a
    Content-Type and a boundary, and its errors went unanswered)."""
    channel = tenant.state("corteza")["channels"][0]["channelID"]
    headers = {"Content-Type": content_type} if content_type else {}
    with tenant.client("corteza") as cz:
        response = cz.post(path.format(channel=channel), content=raw, headers=headers)
    assert response.headers["X-Mockserver-Error-Status"] == "400", response.text  # Corteza errors are 200s
    assert set(response.json()) == {"error"}


def test_query_parameters_are_typed_and_validated_by_the_spec(karma):
    response = karma.get("/users", params={"cursor": "not-a-number"})
    assert response.status_code == 400 and "error" in response.json()


def test_a_path_that_differs_by_a_trailing_slash_is_answered_as_the_vendor_does(tenant):
    with tenant.client("dailybot") as daily, tenant.client("karmabot") as karma:
        added = daily.get("/kudos", params={"limit": 1})
        removed = karma.get("/users/")
        assert daily.get("/nothing").status_code == 404
    assert added.status_code == 301  # Django's APPEND_SLASH (x-trailing-slash)
    assert added.headers["location"] == tenant.server.base_url("dailybot") + "/kudos/?limit=1"
    assert removed.status_code == 404 and "location" not in removed.headers


def test_unknown_query_parameters_are_ignored(karma):
    assert karma.get("/users", params={"unknown": "1"}).json() == karma.get("/users").json()


# --- answers of GET operations are cached until anything may have changed ------------------------

def test_a_cached_list_follows_each_change(tenant):
    with tenant.client("dailybot") as daily:
        before = daily.get("/kudos/").json()
        assert daily.get("/kudos/").json() == before  # answered again, unchanged
        other, _ = as_user(tenant, 0)
        with other:
            assert other.post("/kudos/", json={"receivers": [tenant.credentials["dailybot"]["user_uuid"]],
                                               "content": "thanks"}).status_code == 200
        after = daily.get("/kudos/").json()
    assert after["count"] == before["count"] + 1 and after["results"][0]["content"] == "thanks"


def test_cached_answers_are_per_caller(tenant):
    other, _ = as_user(tenant, 0)
    with tenant.client("dailybot") as daily, other:
        mine, theirs = daily.get("/kudos/").json(), other.get("/kudos/").json()
        assert mine != theirs
        assert daily.get("/kudos/").json() == mine and other.get("/kudos/").json() == theirs


def test_cached_answers_follow_the_host(tenant):
    with tenant.client("dailybot") as daily:
        first = daily.get("/kudos/", params={"limit": 1}, headers={"Host": "a.example"}).json()["next"]
        second = daily.get("/kudos/", params={"limit": 1}, headers={"Host": "b.example"}).json()["next"]
    assert first.startswith("http://a.example/") and second.startswith("http://b.example/")


def test_admin_changes_reach_cached_answers(tenant):
    with tenant.client("kudosnow") as kudos:
        seeded = kudos.get("/redemptions").json()
        user, sender = rich_users(tenant, 2)
        assert kudos.post("/redemptions", json=redemption_body(user, sender)).status_code == 200
        assert kudos.get("/redemptions").json()["data"]["totalCount"] == seeded["data"]["totalCount"] + 1
        assert tenant.server.admin.post("/__admin/reset").status_code == 204
        assert kudos.get("/redemptions").json() == seeded
