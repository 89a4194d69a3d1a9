"""Dailybot kudos API through HTTP: DRF-style errors, paging links, kudos, boosts, throttles."""

import httpx
import pytest

from tests.helpers import as_dailybot_user as as_user


@pytest.fixture
def daily(tenant):
    with tenant.client("dailybot") as client:
        yield client


def owner(tenant):
    return tenant.credentials["dailybot"]["user_uuid"]


def org(tenant):
    return tenant.state("dailybot")


def count_kudos(tenant):
    return len(org(tenant)["kudos"])


# --- auth ---------------------------------------------------------------------------------------

def test_missing_key_is_401_drf_style(tenant):
    with tenant.client("dailybot", authenticated=False) as client:
        response = client.get("/kudos/")
    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication credentials were not provided.", "code": "not_authenticated"}


def test_unknown_key_is_403(tenant):
    with tenant.client("dailybot", authenticated=False) as client:
        response = client.post("/kudos/", headers={"X-API-KEY": "nope"}, json={"receivers": []})
    assert response.status_code == 403
    assert response.json() == {"detail": "Invalid API key.", "code": "authentication_failed"}


def test_credentials_name_the_key_owner(tenant):
    creds = tenant.credentials["dailybot"]
    assert creds["headers"] == {"X-API-KEY": creds["api_key"]}
    assert creds["user_uuid"] in {user["uuid"] for user in org(tenant)["users"]}


# --- listing ------------------------------------------------------------------------------------

def test_seeded_history_has_kudos_received_and_given(daily, tenant):
    me = owner(tenant)
    received = daily.get("/kudos/").json()
    given = daily.get("/kudos/", params={"filter": "kudos_given"}).json()
    assert received["count"] > 0 and given["count"] > 0
    assert all(me in [r["uuid"] for r in kudo["receivers"]] for kudo in received["results"])
    assert all(kudo["user"]["uuid"] == me for kudo in given["results"])
    assert received == daily.get("/kudos/", params={"filter": "kudos_received"}).json()


def test_list_items_have_documented_fields_newest_first(daily):
    results = daily.get("/kudos/").json()["results"]
    documented = {"id", "parent", "user", "receivers", "company_value", "content", "is_anonymous",
                  "by_dailybot", "metadata", "created_at"}
    assert all(documented <= set(kudo) for kudo in results)
    stamps = [kudo["created_at"] for kudo in results]
    assert stamps == sorted(stamps, reverse=True)
    shown = [kudo["user"] for kudo in results if kudo["user"]]
    assert all(set(user) == {"uuid", "full_name", "image", "role"} for user in shown)


def test_limit_offset_and_absolute_links_that_work(daily, tenant):
    full = daily.get("/kudos/").json()
    assert full["next"] is None and full["previous"] is None  # default limit 250 holds everything
    first = daily.get("/kudos/", params={"limit": 4}).json()
    assert first["count"] == full["count"] and first["results"] == full["results"][:4]
    assert first["previous"] is None
    assert first["next"] == f"{tenant.server.url}/dailybot/v1/kudos/?limit=4&offset=4"
    walked, page = list(first["results"]), first
    while page["next"]:
        page = daily.get(page["next"]).json()
        walked += page["results"]
    assert walked == full["results"]
    back = daily.get(page["previous"]).json()
    assert back["results"] == full["results"][len(walked) - len(page["results"]) - 4:][:4]


def test_previous_link_drops_offset_at_the_start_and_keeps_filter(daily, tenant):
    page = daily.get("/kudos/", params={"filter": "kudos_given", "limit": 2, "offset": 1}).json()
    assert page["previous"] == f"{tenant.server.url}/dailybot/v1/kudos/?filter=kudos_given&limit=2"
    assert page["next"] == f"{tenant.server.url}/dailybot/v1/kudos/?filter=kudos_given&limit=2&offset=3"


def test_links_sort_the_query_as_drf_does(daily, tenant):
    page = daily.get("/kudos/", params={"offset": 1, "zone": "x", "limit": 1, "amount": "y"}).json()
    assert page["next"] == f"{tenant.server.url}/dailybot/v1/kudos/?amount=y&limit=1&offset=2&zone=x"
    assert page["previous"] == f"{tenant.server.url}/dailybot/v1/kudos/?amount=y&limit=1&zone=x"


def test_an_unknown_filter_is_400(daily):
    response = daily.get("/kudos/", params={"filter": "everything"})
    assert response.status_code == 400
    assert response.json()["code"] == "params_validation_error" and response.json()["detail"]


@pytest.mark.parametrize("params, limit, offset", [
    ({"limit": 251}, 250, 0), ({"limit": 10_000}, 250, 0), ({"limit": 0}, 250, 0), ({"limit": -3}, 250, 0),
    ({"limit": "x"}, 250, 0), ({"limit": "2.5"}, 250, 0), ({"offset": -1}, 250, 0), ({"offset": "1e3"}, 250, 0),
    ({"limit": 3, "offset": 2}, 3, 2)])
def test_limit_and_offset_are_read_as_drf_reads_them(daily, params, limit, offset):
    """Capped at 250; anything else that is not a fitting whole number is the default."""
    everything = daily.get("/kudos/").json()["results"]
    page = daily.get("/kudos/", params=params)
    assert page.status_code == 200 and page.json()["results"] == everything[offset:offset + limit]


def test_limit_and_offset_are_integers_in_the_spec_and_read_leniently(daily):
    """The seed types them `integer`; DRF never refuses one it cannot read (`x-lenient`), so an
    unreadable limit is the default page, and the spec still says what to send."""
    from mockserver.vendor import discover

    [vendor] = discover(["dailybot"])
    parameters = {p["name"]: p for p in vendor.spec["paths"]["/kudos/"]["get"]["parameters"] if "name" in p}
    for name in ("limit", "offset"):
        assert parameters[name]["schema"]["type"] == "integer" and parameters[name]["x-lenient"] is True
    everything = daily.get("/kudos/").json()
    assert everything["count"] > 5
    unreadable = daily.get("/kudos/", params={"limit": "abc", "offset": "abc"})
    assert unreadable.status_code == 200 and unreadable.json() == everything
    five = daily.get("/kudos/", params={"limit": "5"}).json()
    assert five["results"] == everything["results"][:5] and five["next"].endswith("?limit=5&offset=5")


def test_offset_past_the_end_is_an_empty_page(daily):
    page = daily.get("/kudos/", params={"offset": 10_000}).json()
    assert page["results"] == [] and page["next"] is None and page["previous"]


# --- sending kudos ------------------------------------------------------------------------------

def test_kudo_created_and_visible_to_sender_and_each_receiver(daily, tenant):
    first, first_uuid = as_user(tenant, 0)
    second, second_uuid = as_user(tenant, 1)
    value = org(tenant)["values"][0]
    response = daily.post("/kudos/", json={"receivers": [first_uuid, second_uuid], "content": "Ship it!",
                                           "company_value": value["id"], "is_anonymous": False})
    assert response.status_code == 200, response.text
    kudo = response.json()
    assert set(kudo) == {"id", "user", "receivers", "company_value", "content", "is_anonymous", "by_dailybot",
                         "created_at", "children_kudos", "boost_count", "has_boosted"}
    assert kudo["user"]["uuid"] == owner(tenant) and set(kudo["user"]) == {"uuid", "full_name"}
    assert [r["uuid"] for r in kudo["receivers"]] == [first_uuid, second_uuid]
    assert kudo["company_value"] == value
    assert kudo["created_at"] == "2026-01-01T00:00:00Z"
    assert (kudo["children_kudos"], kudo["boost_count"], kudo["has_boosted"], kudo["by_dailybot"]) == ([], 0, False, False)
    assert daily.get("/kudos/", params={"filter": "kudos_given"}).json()["results"][0]["id"] == kudo["id"]
    for client in (first, second):
        with client:
            assert client.get("/kudos/").json()["results"][0]["id"] == kudo["id"]


def test_users_and_teams_receivers_expand_to_active_members(daily, tenant):
    state = org(tenant)
    me = owner(tenant)
    team = max(state["teams"], key=lambda team: sum(m["is_active"] for m in team["members"]))
    active = [m["uuid"] for m in team["members"] if m["is_active"] and m["uuid"] != me]
    inactive = [m["uuid"] for m in team["members"] if not m["is_active"]]
    outsider = next(u["uuid"] for u in state["users"]  # someone outside the team (the seed decides who)
                    if u["uuid"] not in active and u["uuid"] not in inactive and u["uuid"] != me)
    response = daily.post("/kudos/", json={"users_receivers": [outsider], "teams_receivers": [team["uuid"]]})
    assert response.status_code == 200, response.text
    receivers = [r["uuid"] for r in response.json()["receivers"]]
    assert receivers == [outsider] + [uuid for uuid in active if uuid != outsider]
    assert not set(inactive) & set(receivers) and me not in receivers


def test_anonymous_kudo_hides_sender_from_receivers_only(daily, tenant):
    other, other_uuid = as_user(tenant, 2)
    with other:
        response = other.post("/kudos/", json={"receivers": [owner(tenant)], "is_anonymous": True, "content": "psst"})
        assert response.status_code == 200
        assert response.json()["user"]["uuid"] == other_uuid
        assert other.get("/kudos/", params={"filter": "kudos_given"}).json()["results"][0]["user"]["uuid"] == other_uuid
    seen = daily.get("/kudos/").json()["results"][0]
    assert seen["content"] == "psst" and seen["is_anonymous"] is True and seen["user"] is None


@pytest.mark.parametrize("body,status,code,detail", [
    ({"receivers": []}, 400, "params_validation_error", "The receivers list should not be empty"),
    ({}, 400, "params_validation_error", "The receivers list should not be empty"),
    ({"users_receivers": [], "teams_receivers": []}, 400, "params_validation_error",
     "The receivers list should not be empty"),
    ({"receivers": ["00000000-0000-4000-8000-000000000000"]}, 404, "no_users_found",
     "One or more receivers were not found in Dailybot, or were duplicated in the input"),
    ({"teams_receivers": ["00000000-0000-4000-8000-000000000000"]}, 404, "no_users_found", None),
])
def test_documented_receiver_errors(daily, tenant, body, status, code, detail):
    before = count_kudos(tenant)
    response = daily.post("/kudos/", json=body)
    assert response.status_code == status
    assert response.json()["code"] == code
    if detail:
        assert response.json()["detail"] == detail
    assert count_kudos(tenant) == before


def test_self_kudo_is_400(daily, tenant):
    _, other = as_user(tenant, 0)
    response = daily.post("/kudos/", json={"receivers": [other, owner(tenant)]})
    assert response.status_code == 400
    assert response.json() == {"detail": "You cannot give kudos to yourself", "code": "cant_give_kudos_to_yourself"}


def test_duplicated_receivers_are_404(daily, tenant):
    _, other = as_user(tenant, 0)
    response = daily.post("/kudos/", json={"users_receivers": [other, other]})
    assert response.status_code == 404 and response.json()["code"] == "no_users_found"


def test_unknown_company_value_is_400_same_shape(daily, tenant):
    _, other = as_user(tenant, 0)
    before = count_kudos(tenant)
    response = daily.post("/kudos/", json={"receivers": [other], "company_value": "not-a-value"})
    assert response.status_code == 400
    assert response.json() == {"detail": "The company value was not found in this organization",
                               "code": "invalid_company_value"}
    assert count_kudos(tenant) == before


def test_receivers_merge_with_the_typed_lists_as_the_official_cli_sends_them(daily, tenant):
    """dailybot-cli sends `receivers` (users and teams) beside `users_receivers`/`teams_receivers`:
    each UUID counts once, and a team in `receivers` expands like one in `teams_receivers`."""
    state = org(tenant)
    team = next(team for team in state["teams"] if owner(tenant) not in [m["uuid"] for m in team["members"]])
    active = [m["uuid"] for m in team["members"] if m["is_active"]]
    other = next(user["uuid"] for user in state["users"] if user["uuid"] not in active and user["uuid"] != owner(tenant))
    sent = daily.post("/kudos/", json={"receivers": [other, team["uuid"]], "users_receivers": [other],
                                       "teams_receivers": [team["uuid"]], "content": "both"})
    assert sent.status_code == 200
    assert [receiver["uuid"] for receiver in sent.json()["receivers"]] == [other, *active]
    assert org(tenant)["kudos"][-1]["receivers"] == sent.json()["receivers"]


def test_a_uuid_twice_in_one_list_is_still_no_users_found(daily, tenant):
    _, other = as_user(tenant, 0)
    response = daily.post("/kudos/", json={"receivers": [other, other]})
    assert response.status_code == 404 and response.json()["code"] == "no_users_found"


def test_the_directory_the_official_cli_reads(daily, tenant):
    state = org(tenant)
    users = daily.get("/users/", params={"page_size": 5}).json()
    assert users["count"] == len(state["users"]) and len(users["results"]) == 5 and users["previous"] is None
    assert users["next"].endswith("/dailybot/v1/users/?page=2&page_size=5")
    assert [user["uuid"] for user in users["results"]] == [user["uuid"] for user in state["users"][:5]]
    assert all(user["is_active"] is True and "email" not in user for user in users["results"])
    last = daily.get(users["next"].replace("page=2", "page=3")).json()
    assert last["results"][0]["uuid"] == state["users"][10]["uuid"] and last["previous"].endswith("page=2&page_size=5")
    assert daily.get("/users/", params={"page": 99}).json() == {"detail": "Invalid page.", "code": "not_found"}
    assert daily.get("/users/", params={"page_size": 1000}).json()["count"] == len(state["users"])  # clamped, served
    me = daily.get("/me/", params={"include_email": "true"}).json()
    assert me["uuid"] == owner(tenant) and me["role"] == "admin" and me["email"].endswith("@example.com")
    assert me["organization_name"] == "Example Co" and me["organization_uuid"] == daily.get("/organization/").json()["uuid"]
    teams = daily.get("/teams/").json()["results"]  # the owner is an admin: every team
    assert [team["name"] for team in teams] == [team["name"] for team in state["teams"]]
    team = daily.get(f"/teams/{teams[0]['uuid']}/").json()
    assert team["members_count"] == len(team["members"]) > 0
    assert daily.get(f"/users/{state['users'][3]['uuid']}/").json()["full_name"] == state["users"][3]["full_name"]
    assert daily.get("/users/nobody/").status_code == 404


def test_members_see_only_their_teams_and_no_emails(tenant):
    state = org(tenant)
    member = next(user for user in state["users"] if user["role"] == "member")
    key = tenant.credentials["dailybot"]["other_users"]
    key = next(entry["api_key"] for entry in key if entry["user_uuid"] == member["uuid"])
    with tenant.client("dailybot", authenticated=False) as client:
        client.headers["X-API-KEY"] = key
        teams = [team["uuid"] for team in client.get("/teams/").json()["results"]]
        mine = [team["uuid"] for team in state["teams"] if member["uuid"] in [m["uuid"] for m in team["members"]]]
        assert teams == mine
        assert all("email" not in user for user in client.get("/users/", params={"include_email": "true"}).json()["results"])


def test_kudos_page_number_paging_and_filters(daily, tenant):
    everything = daily.get("/kudos/").json()["results"]
    first = daily.get("/kudos/", params={"page": 1, "page_size": 2}).json()
    assert first["count"] == len(everything) and first["results"] == everything[:2]
    assert daily.get("/kudos/", params={"page": 2, "page_size": 2}).json()["results"] == everything[2:4]
    word = everything[0]["content"].split()[0].upper()
    found = daily.get("/kudos/", params={"search": word}).json()["results"]
    assert found and all(word.lower() in kudo["content"].lower() for kudo in found)
    day = everything[0]["created_at"][:10]
    since = daily.get("/kudos/", params={"start_date": day}).json()["results"]
    assert since and all(kudo["created_at"][:10] >= day for kudo in since)
    until = daily.get("/kudos/", params={"end_date": day}).json()["results"]
    assert everything[0] in until and all(kudo["created_at"][:10] <= day for kudo in until)
    assert daily.get("/kudos/", params={"start_date": "yesterday"}).json()["code"] == "params_validation_error"


@pytest.mark.parametrize("body", [
    {"receivers": "abc"}, {"receivers": [1, 2]}, {"receivers": [None]}, {"is_anonymous": "yes", "receivers": ["x"]},
    {"content": 5, "receivers": ["x"]}, {"company_value": 7, "receivers": ["x"]}, {"receivers": ["x" * 100]},
    [], "string", 42,
])
def test_wrong_types_are_params_validation_error(daily, tenant, body):
    before = count_kudos(tenant)
    response = daily.post("/kudos/", json=body)
    assert response.status_code == 400
    assert set(response.json()) == {"detail", "code"} and response.json()["code"] == "params_validation_error"
    assert count_kudos(tenant) == before


@pytest.mark.parametrize("raw,content_type,status", [
    (b"{bad", "application/json", 400), (b"\xc3\x28", "application/json", 400), (b"", "application/json", 400),
    (b"receivers=x", "text/plain", 415), (b"x" * 1_100_000, "application/json", 413),
])
def test_garbage_bodies_are_4xx_in_drf_shape(daily, tenant, raw, content_type, status):
    before = count_kudos(tenant)
    response = daily.post("/kudos/", content=raw, headers={"Content-Type": content_type})
    assert response.status_code == status
    assert set(response.json()) == {"detail", "code"}
    assert count_kudos(tenant) == before


# --- boosts -------------------------------------------------------------------------------------

def received_from_others(daily, tenant):
    """An original kudo the owner received from someone else (seeded history has some)."""
    results = daily.get("/kudos/").json()["results"]
    return next(k for k in results if k["user"] and k["user"]["uuid"] != owner(tenant) and not k["has_boosted"])


def test_boost_creates_child_and_updates_parent(daily, tenant):
    kudo = received_from_others(daily, tenant)
    response = daily.post(f"/kudos/{kudo['id']}/boost/")
    assert response.status_code == 201, response.text
    boost = response.json()
    assert set(boost) == {"id", "parent", "user", "created_at", "boost_count"}
    assert boost["parent"] == kudo["id"] and boost["user"]["uuid"] == owner(tenant)
    assert boost["boost_count"] == kudo["boost_count"] + 1
    after = next(k for k in daily.get("/kudos/").json()["results"] if k["id"] == kudo["id"])
    assert after["boost_count"] == kudo["boost_count"] + 1 and after["has_boosted"] is True
    assert boost["id"] in [child["id"] for child in after["children_kudos"]]
    given = daily.get("/kudos/", params={"filter": "kudos_given"}).json()["results"]
    assert given[0]["id"] == boost["id"] and given[0]["parent"] == kudo["id"]


def test_boost_errors(daily, tenant):
    kudo = received_from_others(daily, tenant)
    boost = daily.post(f"/kudos/{kudo['id']}/boost/").json()
    again = daily.post(f"/kudos/{kudo['id']}/boost/")
    assert again.status_code == 409
    assert again.json() == {"detail": "You have already boosted this kudo.", "code": "already_boosted"}
    child = daily.post(f"/kudos/{boost['id']}/boost/")
    assert child.status_code == 400
    assert child.json() == {"detail": "You can only boost original kudos.", "code": "cannot_boost_child_kudo"}
    mine = daily.get("/kudos/", params={"filter": "kudos_given"}).json()["results"]
    own = next(k for k in mine if k["parent"] is None)
    response = daily.post(f"/kudos/{own['id']}/boost/")
    assert response.status_code == 400
    assert response.json() == {"detail": "You cannot boost your own kudo.", "code": "cannot_boost_own_kudo"}
    missing = daily.post("/kudos/00000000-0000-4000-8000-000000000000/boost/")
    assert missing.status_code == 404 and missing.json() == {"detail": "Not found.", "code": "not_found"}


def test_boost_of_another_tenants_kudo_is_404(daily, server):
    other = server.new_tenant()
    foreign = other.state("dailybot")["kudos"][0]["id"]
    assert daily.post(f"/kudos/{foreign}/boost/").status_code == 404


# --- throttles ----------------------------------------------------------------------------------

def test_five_minutes_between_kudos_per_key(daily, tenant):
    first, first_uuid = as_user(tenant, 0)
    _, second_uuid = as_user(tenant, 1)
    assert daily.post("/kudos/", json={"receivers": [first_uuid]}).status_code == 200
    tenant.advance(100)
    refused = daily.post("/kudos/", json={"receivers": [second_uuid]})
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "200"
    assert refused.json() == {"detail": "Request was throttled. Expected available in 200 seconds.", "code": "throttled"}
    with first:  # another key has its own budget
        assert first.post("/kudos/", json={"receivers": [second_uuid]}).status_code == 200
    tenant.advance(200)
    assert daily.post("/kudos/", json={"receivers": [second_uuid]}).status_code == 200


def test_ten_kudos_per_day(daily, tenant):
    _, other = as_user(tenant, 0)
    for _ in range(10):
        assert daily.post("/kudos/", json={"receivers": [other]}).status_code == 200
        tenant.advance(301)
    refused = daily.post("/kudos/", json={"receivers": [other]})
    assert refused.status_code == 429 and refused.json()["code"] == "throttled"
    assert refused.headers["Retry-After"] == str(86400 - 10 * 301)
    tenant.advance(86400 - 10 * 301)
    assert daily.post("/kudos/", json={"receivers": [other]}).status_code == 200


def test_refused_kudos_do_not_count_against_the_limits(daily, tenant):
    _, other = as_user(tenant, 0)
    for _ in range(3):
        assert daily.post("/kudos/", json={"receivers": []}).status_code == 400
    assert daily.post("/kudos/", json={"receivers": [other]}).status_code == 200


def test_boosts_and_reads_are_not_throttled(daily, tenant):
    _, other = as_user(tenant, 0)
    assert daily.post("/kudos/", json={"receivers": [other]}).status_code == 200
    assert daily.post(f"/kudos/{received_from_others(daily, tenant)['id']}/boost/").status_code == 201
    assert all(daily.get("/kudos/").status_code == 200 for _ in range(20))


def test_admin_state_collections(tenant):
    assert set(org(tenant)) == {"users", "teams", "values", "kudos"}
    assert all(set(user) == {"uuid", "full_name", "image", "role"} for user in org(tenant)["users"])


def test_accept_header_that_excludes_json_is_406(daily):
    response = daily.get("/kudos/", headers={"Accept": "text/html"})
    assert response.status_code == 406
    assert set(response.json()) == {"detail", "code"} and response.json()["code"] == "not_acceptable"
    assert daily.get("/kudos/", headers={"Accept": "application/json; version=1"}).status_code == 200


def test_405_lists_every_method_the_spec_declares(daily):
    response = daily.request("OPTIONS", "/kudos/")
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == {"GET", "POST", "HEAD"}
    assert daily.get("/kudos/abc/boost/").headers["allow"] == "POST"


def test_drf_wordings_for_refused_methods_media_types_accept_and_json(daily):
    assert daily.put("/kudos/").json() == {"detail": 'Method "PUT" not allowed.', "code": "method_not_allowed"}
    refused = daily.post("/kudos/", content=b"hi", headers={"Content-Type": "text/plain"})
    assert refused.status_code == 415
    assert refused.json() == {"detail": 'Unsupported media type "text/plain" in request.', "code": "unsupported_media_type"}
    unacceptable = daily.get("/kudos/", headers={"Accept": "text/html"})
    assert unacceptable.status_code == 406
    assert unacceptable.json() == {"detail": "Could not satisfy the request Accept header.", "code": "not_acceptable"}
    broken = daily.post("/kudos/", content=b"{", headers={"Content-Type": "application/json"})
    assert broken.status_code == 400 and broken.json()["code"] == "parse_error"
    assert broken.json()["detail"].startswith("JSON parse error - ")


def test_an_over_long_kudo_id_is_not_found(daily):
    boosted = daily.post(f"/kudos/{'k' * 500}/boost/")
    assert boosted.status_code == 404 and boosted.json() == {"detail": "Not found.", "code": "not_found"}


def test_an_exchange_token_sends_the_kudo_as_its_user(daily, tenant):
    """The seed: with an exchange token, kudos appear as sent by the token's user, not the key's owner."""
    someone = tenant.credentials["dailybot"]["other_users"][2]
    receiver = owner(tenant)
    refused = daily.post("/kudos/", json={"receivers": [receiver]}, headers={"X-Exchange-Token": "nope"})
    assert refused.status_code == 403 and refused.json() == {"detail": "Invalid exchange token.",
                                                             "code": "authentication_failed"}
    sent = daily.post("/kudos/", json={"receivers": [receiver], "content": "via exchange"},
                      headers={"X-Exchange-Token": someone["exchange_token"]})
    assert sent.status_code == 200, sent.text
    assert sent.json()["user"]["uuid"] == someone["user_uuid"]
    assert org(tenant)["kudos"][-1]["user"]["uuid"] == someone["user_uuid"]


def test_kudos_and_boosts_survive_a_restart_on_the_state_file(tmp_path):
    """A boost replaces its parent kudo's record (its `boosts` grow): after a restart on the same
    state file, every answer and the export are as they were."""
    from mockserver.testing import running

    path = str(tmp_path / "state.db")
    with running(ticking=False, state_file=path) as first:
        tenant = first.new_tenant(tenant="kept", rate_limits=False)
        credentials = tenant.credentials["dailybot"]
        with tenant.client("dailybot") as daily:
            parent = daily.post("/kudos/", json={"receivers": [credentials["other_users"][0]["user_uuid"]],
                                                 "content": "kept"}).json()["id"]
            seeded = received_from_others(daily, tenant)["id"]
            assert daily.post(f"/kudos/{seeded}/boost/").status_code == 201
        for index in (1, 2):
            client, _ = as_user(tenant, index)
            with client:
                assert client.post(f"/kudos/{parent}/boost/").status_code == 201
                assert client.post(f"/kudos/{seeded}/boost/").status_code in (201, 409)

        def answers(server):
            with httpx.Client(base_url=server.base_url("dailybot"), headers=credentials["headers"]) as daily:
                return ([daily.get("/kudos/", params=params).json()["results"]
                         for params in ({}, {"filter": "kudos_given"})],
                        server.admin.get("/__admin/tenants/kept/state").json()["dailybot"],
                        server.admin.get("/__admin/state/export").json()["tenants"])

        before = answers(first)
    given = before[0][1]
    assert [kudo["boost_count"] for kudo in given if kudo["id"] == parent] == [2]
    with running(ticking=False, state_file=path) as second:
        assert answers(second) == before
