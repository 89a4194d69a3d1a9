"""Karma bot API through HTTP: auth, cursor pages, pluses, bad input, rate limits."""

import pytest

from tests.helpers import valid_plus

LISTS = ["channels", "users", "values", "achievements"]
FIELDS = {
    "channels": {"id", "slack_id", "name", "is_private"},
    "users": {"id", "slack_id", "name", "image_url"},
    "values": {"id", "color", "description", "emoji", "image_url", "name"},
    "achievements": {"id", "title", "emoji", "color", "description", "value_id"},
}


def walk(client, name):
    """Follow cursors until an empty page; return the pages."""
    pages, cursor = [], None
    while True:
        response = client.get(f"/{name}", params={} if cursor is None else {"cursor": cursor})
        assert response.status_code == 200, response.text
        page = response.json()[name]
        pages.append(page)
        if not page:
            return pages
        cursor = page[-1]["id"]


# --- auth -----------------------------------------------------------------------------------

def test_missing_key_is_401_json(tenant):
    with tenant.client("karmabot", authenticated=False) as client:
        response = client.get("/channels")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("header", [
    "Bearer nope",
    "Bearer krm_1_",
    "Bearer krm_x_abc",
    "Basic a3JtXzFfYWJj",
    "krm_1_abc",
    "Bearer krm_1_00000000000000000000000000000000",
])
def test_malformed_or_unknown_key_is_401(tenant, header):
    with tenant.client("karmabot", authenticated=False) as client:
        response = client.get("/users", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json() == {"error": {"code": "invalid_api_key", "message": "Invalid API key."}}


def test_key_format_is_krm_id_token(tenant):
    key = tenant.credentials["karmabot"]["api_key"]
    prefix, key_id, token = key.split("_")
    assert prefix == "krm" and key_id.isdigit() and token.isalnum()
    assert tenant.credentials["karmabot"]["headers"] == {"Authorization": f"Bearer {key}"}


# --- lists and cursor pagination ---------------------------------------------------------------

@pytest.mark.parametrize("name", LISTS)
def test_lists_have_documented_fields_in_id_order(karma, tenant, name):
    items = [item for page in walk(karma, name) for item in page]
    assert items, f"seeded workspace has {name}"
    assert all(set(item) == FIELDS[name] for item in items)
    ids = [item["id"] for item in items]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert items == tenant.state("karmabot")[name]


def test_cursor_walk_pages_users(karma):
    pages = walk(karma, "users")
    assert [len(page) for page in pages] == [20, 10, 0]
    first, second = pages[0], pages[1]
    assert first[-1]["id"] < second[0]["id"]


def test_cursor_is_id_of_last_received_item(karma):
    users = karma.get("/users").json()["users"]
    after = karma.get("/users", params={"cursor": users[4]["id"]}).json()["users"]
    assert after[0] == users[5]
    # A cursor between two ids still returns only the items after it.
    gap = next(index for index in range(len(users) - 1) if users[index + 1]["id"] - users[index]["id"] > 1)
    between = karma.get("/users", params={"cursor": users[gap]["id"] + 1}).json()["users"]
    assert between[0] == users[gap + 1]
    assert karma.get("/users", params={"cursor": 0}).json()["users"][0] == users[0]


def test_cursor_past_the_end_gives_empty_page(karma):
    assert karma.get("/channels", params={"cursor": 9_000_000_000}).json() == {"channels": []}


@pytest.mark.parametrize("cursor", ["abc", "-1", "1.5", "99999999999999999999999", ""])
def test_bad_cursor_is_400(karma, cursor):
    response = karma.get("/values", params={"cursor": cursor})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


# --- POST /pluses ------------------------------------------------------------------------------

def test_plus_is_created_and_stored(karma, tenant):
    state = tenant.state("karmabot")
    body = valid_plus(state)
    response = karma.post("/pluses", json=body)
    assert response.status_code == 201, response.text
    plus = response.json()
    assert {key: plus[key] for key in body} == body
    assert plus["created_at"] == "2026-01-01T00:00:00Z"
    assert tenant.state("karmabot")["pluses"] == [plus]


def test_plus_with_only_required_fields_gets_defaults(karma, tenant):
    users = tenant.state("karmabot")["users"]
    response = karma.post("/pluses", json={"user_ids": [users[3]["id"]], "from_id": users[4]["id"]})
    assert response.status_code == 201
    assert response.json()["score"] == 1 and response.json()["private"] is False
    assert response.json()["channel_id"] is None


def test_plus_timestamp_follows_the_clock(karma, tenant):
    tenant.advance(3600)
    response = karma.post("/pluses", json=valid_plus(tenant.state("karmabot")))
    assert response.json()["created_at"] == "2026-01-01T01:00:00Z"


@pytest.mark.parametrize("field,kind", [
    ("from_id", "User"), ("channel_id", "Channel"), ("value_id", "Value"), ("achievement_id", "Achievement"),
])
def test_unknown_reference_is_404_and_nothing_stored(karma, tenant, field, kind):
    response = karma.post("/pluses", json=valid_plus(tenant.state("karmabot"), **{field: 123}))
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": f"{kind} 123 not found."}}
    assert tenant.state("karmabot")["pluses"] == []


def test_unknown_recipient_is_404(karma, tenant):
    state = tenant.state("karmabot")
    response = karma.post("/pluses", json=valid_plus(state, user_ids=[state["users"][1]["id"], 77]))
    assert response.status_code == 404
    assert tenant.state("karmabot")["pluses"] == []


def test_self_plus_is_400(karma, tenant):
    state = tenant.state("karmabot")
    me = state["users"][0]["id"]
    response = karma.post("/pluses", json=valid_plus(state, from_id=me, user_ids=[me]))
    assert response.status_code == 400
    assert tenant.state("karmabot")["pluses"] == []


def test_reference_from_another_tenant_is_404(karma, server):
    other = server.new_tenant().state("karmabot")
    response = karma.post("/pluses", json=valid_plus(other))
    assert response.status_code == 404


BAD_BODIES = [
    {"user_ids": "1", "from_id": 1},
    {"user_ids": [], "from_id": 1},
    {"user_ids": [1, 1], "from_id": 2},
    {"user_ids": [1]},
    {"from_id": 1},
    {"user_ids": [1], "from_id": "1"},
    {"user_ids": [1], "from_id": 1.5},
    {"user_ids": [1], "from_id": True},
    {"user_ids": [1], "from_id": 10**30},
    {"user_ids": [-5], "from_id": 1},
    {"user_ids": [1], "from_id": 2, "score": 0},
    {"user_ids": [1], "from_id": 2, "score": 10**12},
    {"user_ids": [1], "from_id": 2, "private": "yes"},
    {"user_ids": [1], "from_id": 2, "gif_url": "not a url"},
    {"user_ids": [1], "from_id": 2, "description": 5},
    {"user_ids": [1], "from_id": 2, "description": "x" * 5000},
    [1, 2, 3],
    "text",
    None,
]


@pytest.mark.parametrize("body", BAD_BODIES)
def test_invalid_body_is_400_in_vendor_shape(karma, tenant, body):
    response = karma.post("/pluses", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and isinstance(error["message"], str)
    assert "Failed validating" not in error["message"]
    assert tenant.state("karmabot")["pluses"] == []


@pytest.mark.parametrize("raw", [
    b"{", b"not json", b'{"user_ids": [1], "from_id": NaN}', b"\xff\xfe\x00", b"[" * 100_000,
    b'{"user_ids": [1e400], "from_id": 1}', b"",
])
def test_garbage_json_is_400(karma, tenant, raw):
    response = karma.post("/pluses", content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert "error" in response.json()
    assert tenant.state("karmabot")["pluses"] == []


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_wrong_content_type_is_415(karma, tenant, content_type):
    response = karma.post("/pluses", content=b"user_ids=1&from_id=2", headers={"Content-Type": content_type})
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"
    assert tenant.state("karmabot")["pluses"] == []


def test_oversized_body_is_413(karma, tenant):
    huge = b'{"description": "' + b"x" * 2_000_000 + b'"}'
    response = karma.post("/pluses", content=huge, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert tenant.state("karmabot")["pluses"] == []


@pytest.mark.parametrize("text", ["Ünïcödé ✓", "🎉🚀 merci", "\u202etxet lanretni", "a\u0000b", "\udcff" * 0 + "日本語"])
def test_odd_unicode_round_trips(karma, tenant, text):
    response = karma.post("/pluses", json=valid_plus(tenant.state("karmabot"), description=text))
    assert response.status_code == 201
    assert tenant.state("karmabot")["pluses"][0]["description"] == text


def test_unknown_route_and_method_speak_the_vendor_dialect(karma):
    missing = karma.get("/nothing-here")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    wrong = karma.delete("/channels")
    assert wrong.status_code == 405 and "GET" in wrong.headers["allow"]
    assert wrong.json()["error"]["code"] == "method_not_allowed"


# --- rate limits --------------------------------------------------------------------------------

def test_get_limit_is_120_per_minute_per_endpoint(karma, tenant):
    for _ in range(120):
        assert karma.get("/values").status_code == 200
    refused = karma.get("/values")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert refused.headers["Retry-After"] == "60"
    assert karma.get("/channels").status_code == 200  # each GET endpoint has its own budget
    tenant.advance(59)
    assert karma.get("/values").status_code == 429
    assert karma.get("/values").headers["Retry-After"] == "1"
    tenant.advance(1)
    assert karma.get("/values").status_code == 200


def test_plus_limit_is_6_per_minute_per_team(karma, tenant, server):
    state = tenant.state("karmabot")
    for _ in range(6):
        assert karma.post("/pluses", json=valid_plus(state)).status_code == 201
        tenant.advance(5)
    refused = karma.post("/pluses", json=valid_plus(state))
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "30"  # the first plus leaves the window at t=60
    assert len(tenant.state("karmabot")["pluses"]) == 6

    other = server.new_tenant()  # another team has its own counters
    with other.client("karmabot") as other_client:
        assert other_client.post("/pluses", json=valid_plus(other.state("karmabot"))).status_code == 201

    tenant.advance(30)
    assert karma.post("/pluses", json=valid_plus(state)).status_code == 201


def test_refused_requests_are_not_counted_as_rate_limited_calls(karma, tenant):
    """Requests without a valid key never reach the limiter, so they cannot exhaust it."""
    with tenant.client("karmabot", authenticated=False) as anonymous:
        for _ in range(10):
            anonymous.post("/pluses", json={})
    assert karma.post("/pluses", json=valid_plus(tenant.state("karmabot"))).status_code == 201


def test_tenant_with_rate_limits_lifted(server):
    unlimited = server.new_tenant(rate_limits=False)
    with unlimited.client("karmabot") as client:
        statuses = {client.get("/achievements").status_code for _ in range(130)}
    assert statuses == {200}
