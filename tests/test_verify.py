"""Verification for test authors (`POST /__admin/requests/find`, `TenantHandle.verify`,
`assert_called`): paths relative to a vendor's base, query and form bodies as mappings, header
matchers, paths that match no route refused, and the near misses of a verification that found none."""

import pytest

from mockserver.testing import MockserverError


def find(server, tenant, **pattern):
    return server.admin.post("/__admin/requests/find", json={"tenant": tenant.id, **pattern})


def test_a_path_relative_to_the_vendors_base_is_the_whole_path(server, tenant, karma):
    karma.get("/users")
    assert tenant.verify(vendor="karmabot", path="/users") == 1
    assert tenant.verify(vendor="karmabot", path="users", method="GET") == 1
    assert tenant.verify(vendor="karmabot", path="/karmabot/api/v1/users") == 1  # whole, as before
    found = find(server, tenant, vendor="karmabot", path="/users").json()
    assert found["requests"][0]["path"] == "/karmabot/api/v1/users"


@pytest.mark.parametrize("pattern,says", [
    ({"path": "/users"}, "a route of community, karmabot: give vendor too"),
    ({"vendor": "karmabot", "path": "/userz"}, "matches no route of karmabot"),
    ({"path": "/karmabot/api/v1/userz"}, "matches no route of any vendor"),
    ({"vendor": "dailybot", "path": "/users"}, "matches no route of dailybot"),
    ({"vendor": "karmabot", "path": "/users?cursor=1"}, "give it as query"),
])
def test_a_path_no_route_matches_is_a_400_not_0(server, tenant, pattern, says):
    answer = find(server, tenant, **pattern)
    assert answer.status_code == 400 and says in answer.json()["error"]["message"], answer.json()
    with pytest.raises(MockserverError, match="matches no route|give it as query"):
        tenant.verify(**pattern)


def test_paths_the_server_serves_without_an_operation_still_count(server, tenant, karma):
    assert tenant.verify(path="/karmabot/api/v1/openapi.json") == 0  # served, never journaled
    karma.get("/nothing")  # journaled (a 404): verifiable as before, whole or relative
    assert tenant.verify(path="/karmabot/api/v1/nothing", status=404) == 1
    assert tenant.verify(vendor="karmabot", path="/nothing") == 1


def test_query_as_a_mapping(tenant, karma):
    karma.get("/users", params=[("cursor", "3"), ("flag", "a"), ("flag", "b")])
    assert tenant.verify(vendor="karmabot", query="cursor=3&flag=a&flag=b") == 1  # a string: exact, as before
    assert tenant.verify(vendor="karmabot", query={"cursor": "3"}) == 1
    assert tenant.verify(vendor="karmabot", query={"flag": ["b", "a"], "cursor": "3"}) == 1
    assert tenant.verify(vendor="karmabot", query={"flag": "a"}) == 1
    assert tenant.verify(vendor="karmabot", query={"cursor": "4"}) == 0
    assert tenant.verify(vendor="karmabot", query={"limit": "3"}) == 0


def test_a_form_body_matches_a_mapping(tenant):
    with tenant.client("corteza") as cz:
        channel = cz.get("/channels/").json()["response"][0]["channelID"]
        cz.post(f"/channels/{channel}/messages/", data={"message": "as a form"})
        cz.post(f"/channels/{channel}/messages/", content=b"message=as+text&tag=a&tag=b",
                headers={"Content-Type": "text/plain"})  # Corteza reads any non-JSON body as a form
        cz.post(f"/channels/{channel}/messages/", json={"message": "as json"})
    assert tenant.verify(vendor="corteza", operation="messageCreate", body={"message": "as a form"}) == 1
    assert tenant.verify(vendor="corteza", body={"message": "as text", "tag": ["a", "b"]}) == 1
    assert tenant.verify(vendor="corteza", body={"message": "as json"}) == 1
    assert tenant.verify(vendor="corteza", body="message=as+a+form") == 1  # the text itself, as before
    assert tenant.verify(vendor="corteza", body={"message": "other"}) == 0


def test_headers_match_by_name_in_any_case(server, tenant, karma):
    karma.get("/users", headers={"X-Request-Id": "abc"})
    authorization = tenant.headers("karmabot")["Authorization"]
    assert tenant.verify(vendor="karmabot", headers={"authorization": authorization, "X-Request-ID": "abc"}) == 1
    assert tenant.verify(vendor="karmabot", headers={"X-Request-Id": "abd"}) == 0
    assert tenant.verify(vendor="karmabot", headers={"X-Missing": "abc"}) == 0
    for pattern in ({"headers": "X-Request-Id: abc"}, {"headers": {"X-Request-Id": 5}}, {"query": {"cursor": 3}},
                    {"query": {"cursor": []}}, {"query": 3}):
        answer = find(server, tenant, **pattern)
        assert answer.status_code == 400 and "must be" in answer.json()["error"]["message"], pattern


def test_no_match_answers_the_near_misses_and_what_differed(server, tenant, karma):
    users = tenant.state("karmabot")["users"]
    karma.post("/pluses", json={"user_ids": [users[1]["id"]], "from_id": users[0]["id"], "description": "x"})
    karma.post("/pluses", json={"user_ids": [users[2]["id"]], "from_id": users[0]["id"]})
    karma.get("/users")
    found = find(server, tenant, vendor="karmabot", operation="createPlus",
                 body={"from_id": users[0]["id"], "description": "y"}).json()
    assert found["count"] == 0 and found["requests"] == []
    newest, closest = found["near_misses"]  # of createPlus only; as far off, the newest first
    assert closest["request"] | {"timestamp": ""} == {
        "vendor": "karmabot", "tenant": tenant.id, "operation": "createPlus", "method": "POST",
        "path": "/karmabot/api/v1/pluses", "query": "", "status": 201, "timestamp": ""}
    assert closest["differences"] == [{"field": "body.description", "expected": "y", "got": "x"}]
    assert newest["differences"] == [{"field": "body.description", "expected": "y", "got": None, "absent": True}]
    found = find(server, tenant, vendor="karmabot", method="DELETE", path="/users", status=204).json()
    miss = found["near_misses"][0]  # no operation named: every karmabot request compared, the closest first
    assert len(found["near_misses"]) == 3 and miss["request"]["operation"] == "listUsers"
    assert miss["differences"] == [{"field": "method", "expected": "DELETE", "got": "GET"},
                                   {"field": "status", "expected": 204, "got": 200}]
    assert "near_misses" not in find(server, tenant, operation="listUsers").json()  # found: none shown


def test_near_misses_are_few_and_never_echo_a_large_body(server, tenant, karma):
    for number in range(5):
        karma.post("/pluses", json={"description": "z" * 20_000, "n": number})
    found = find(server, tenant, operation="createPlus", body={"description": "y"}).json()
    assert len(found["near_misses"]) == 3
    got = found["near_misses"][0]["differences"][0]["got"]
    assert got.startswith('"zzz') and got.endswith("...") and len(got) < 1100


def test_assert_called_names_the_near_misses(tenant, karma):
    users = tenant.state("karmabot")["users"]
    karma.post("/pluses", json={"user_ids": [users[1]["id"]], "from_id": users[0]["id"], "description": "x"})
    [request] = tenant.assert_called(vendor="karmabot", operation="createPlus", body={"description": "x"})
    assert request["body"]["description"] == "x"
    tenant.assert_called(times=0, vendor="karmabot", operation="createPlus", body={"description": "y"})
    with pytest.raises(AssertionError) as failed:
        tenant.assert_called(vendor="karmabot", operation="createPlus", body={"description": "y"})
    message = str(failed.value)
    assert "expected 1 request of tenant" in message and "found 0" in message
    assert "POST /karmabot/api/v1/pluses -> 201 (createPlus" in message
    assert "body.description: expected 'y', got 'x'" in message
    with pytest.raises(AssertionError, match="expected 2 requests .* found 1"):
        tenant.assert_called(times=2, vendor="karmabot", operation="createPlus")
    with pytest.raises(MockserverError, match="unknown operation"):  # a typo is a refusal, not a count
        tenant.assert_called(times=0, vendor="karmabot", operation="createPluses")
