"""Kudos Client API (kudosnow) through HTTP: auth both ways, kudos, lookups, redemptions, limits."""

import orjson
import pytest

from mockserver.testing import running
from tests.helpers import redemption_body, rich_users


@pytest.fixture
def kudos(tenant):
    with tenant.client("kudosnow") as client:
        yield client


def company(tenant):
    return tenant.state("kudosnow")


def user_by_id(tenant, user_id):
    return next(user for user in company(tenant)["users"] if user["id"] == user_id)


def kudos_body(sender, recipients, **extra):
    return {"sender": {"kind": "email", "value": sender["email"]},
            "recipients": [{"kind": "email", "value": r["email"]} for r in recipients],
            "message": {"body": "Thanks!"}, "level": "good_job",
            "qualities": [{"kind": "name", "value": "Teamwork"}]} | extra


def assert_error(response, status):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["status"] == status and error["code"] and error["message"]


# --- auth ---------------------------------------------------------------------------------------

def test_api_key_in_header_or_query(tenant):
    key = tenant.credentials["kudosnow"]["api_key"]
    assert tenant.credentials["kudosnow"]["headers"] == {"apikey": key}
    email = company(tenant)["users"][0]["email"]
    with tenant.client("kudosnow", authenticated=False) as client:
        assert client.get("/users/lookup", params={"email": email}, headers={"apikey": key}).status_code == 200
        assert client.get("/users/lookup", params={"email": email, "apikey": key}).status_code == 200
        assert_error(client.get("/users/lookup", params={"email": email}), 401)
        assert_error(client.get("/users/lookup", params={"email": email, "apikey": "wrong"}), 401)
        assert_error(client.get("/users/lookup", params={"email": email}, headers={"apikey": "wrong"}), 401)


# --- users --------------------------------------------------------------------------------------

def test_lookup_by_email_or_employee_number(kudos, tenant):
    user = company(tenant)["users"][3]
    assert set(user) == {"id", "email", "pointsBalance", "employeeNumber"}
    assert kudos.get("/users/lookup", params={"email": user["email"]}).json() == {"data": user}
    assert kudos.get("/users/lookup", params={"email": user["email"].upper()}).json() == {"data": user}
    assert kudos.get("/users/lookup", params={"employeeNumber": user["employeeNumber"]}).json() == {"data": user}
    both = {"email": user["email"], "employeeNumber": user["employeeNumber"]}
    assert kudos.get("/users/lookup", params=both).json() == {"data": user}


def test_lookup_errors(kudos, tenant):
    users = company(tenant)["users"]
    assert_error(kudos.get("/users/lookup"), 400)
    assert_error(kudos.get("/users/lookup", params={"email": "nobody@example.com"}), 404)
    assert_error(kudos.get("/users/lookup", params={"employeeNumber": "E0"}), 404)
    mismatch = {"email": users[0]["email"], "employeeNumber": users[1]["employeeNumber"]}
    assert_error(kudos.get("/users/lookup", params=mismatch), 404)


# --- kudos --------------------------------------------------------------------------------------

def test_give_kudos_moves_points_and_is_stored(kudos, tenant):
    sender, first, second = rich_users(tenant, 3)
    body = kudos_body(sender, [first, second], points=7, badge_name="Rockstar")
    response = kudos.post("/kudos", json=body)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert [item["recipients"] for item in data] == [[body["recipients"][0]], [body["recipients"][1]]]
    assert all({k: v for k, v in item.items() if k != "recipients"} == {k: v for k, v in body.items() if k != "recipients"}
               for item in data)
    assert user_by_id(tenant, sender["id"])["pointsBalance"] == sender["pointsBalance"] - 14
    assert user_by_id(tenant, first["id"])["pointsBalance"] == first["pointsBalance"] + 7
    assert user_by_id(tenant, second["id"])["pointsBalance"] == second["pointsBalance"] + 7
    assert company(tenant)["kudos"] == data


def test_group_recipient_expands_to_members_without_sender(kudos, tenant):
    users = company(tenant)["users"]
    for group in ("Engineering", "Sales", "Support"):
        body = kudos_body(users[0], []) | {"recipients": [{"kind": "group_name", "value": group}]}
        response = kudos.post("/kudos", json=body)
        if response.status_code == 200:
            emails = [item["recipients"][0]["value"] for item in response.json()["data"]]
            assert users[0]["email"] not in emails and len(emails) == len(set(emails)) >= 1
            return
    pytest.fail("no group could be sent kudos")


def test_the_spec_names_the_qualities_badges_and_groups_every_company_has(kudos, tenant):
    """What the mock accepts is discoverable from the spec: each name of the fixtures is listed
    (marked inferred: the real API types them as any string), and each one listed works."""
    from mockserver.vendor import discover

    [vendor] = discover(["kudosnow"])
    schemas, fixtures = vendor.spec["components"]["schemas"], vendor.fixtures
    quality, badge = schemas["QualityReference"]["properties"]["value"], schemas["BadgeName"]
    recipient = schemas["UserReference"]["properties"]["value"]
    for schema, names in ((quality, fixtures["qualities"]), (badge, fixtures["badges"]),
                          (recipient, fixtures["groups"])):
        text = " ".join(schema["description"].split())
        assert schema["x-inferred"] and "enum" not in schema and schema["example"]
        assert all(f"`{name}`" in text for name in names), (names, text)
    assert quality["example"] in fixtures["qualities"] and badge["example"] in fixtures["badges"]
    sender, receiver = rich_users(tenant, 2)
    for name, badge_name in zip(fixtures["qualities"], fixtures["badges"] * 2, strict=False):
        body = kudos_body(sender, [receiver], badge_name=badge_name.upper(),
                          qualities=[{"kind": "name", "value": name.lower()}])
        assert kudos.post("/kudos", json=body).status_code == 200, name
    for group in fixtures["groups"]:
        body = kudos_body(sender, []) | {"recipients": [{"kind": "group_name", "value": group}]}
        assert kudos.post("/kudos", json=body).status_code == 200, group


def test_kudos_without_points_moves_nothing(kudos, tenant):
    sender, recipient = company(tenant)["users"][:2]
    assert kudos.post("/kudos", json=kudos_body(sender, [recipient])).status_code == 200
    assert "points" not in company(tenant)["kudos"][0]
    assert user_by_id(tenant, sender["id"]) == sender


@pytest.mark.parametrize("change,status", [
    (lambda b: b | {"level": "amazing"}, 400),
    (lambda b: {k: v for k, v in b.items() if k != "level"}, 400),
    (lambda b: {k: v for k, v in b.items() if k != "qualities"}, 400),
    (lambda b: {k: v for k, v in b.items() if k != "message"}, 400),
    (lambda b: b | {"message": {}}, 400),
    (lambda b: b | {"recipients": []}, 400),
    (lambda b: b | {"recipients": [{"kind": "phone", "value": "1"}]}, 400),
    (lambda b: b | {"sender": {"kind": "email"}}, 400),
    (lambda b: b | {"sender": {"kind": "group_name", "value": "Sales"}}, 400),
    (lambda b: b | {"qualities": [{"kind": "title", "value": "Teamwork"}]}, 400),
    (lambda b: b | {"qualities": [{"kind": "name", "value": "Laziness"}]}, 400),
    (lambda b: b | {"badge_name": "Nope"}, 400),
    (lambda b: b | {"points": -1}, 400),
    (lambda b: b | {"points": "5"}, 400),
    (lambda b: b | {"points": 10**9}, 400),
    (lambda b: b | {"sender": {"kind": "email", "value": "ghost@example.com"}}, 404),
    (lambda b: b | {"recipients": [{"kind": "email", "value": "ghost@example.com"}]}, 404),
    (lambda b: b | {"recipients": [{"kind": "group_name", "value": "Nobody"}]}, 404),
])
def test_give_kudos_rejects_bad_bodies_and_stores_nothing(kudos, tenant, change, status):
    before = company(tenant)
    sender, recipient = before["users"][:2]
    assert_error(kudos.post("/kudos", json=change(kudos_body(sender, [recipient]))), status)
    assert company(tenant) == before


def test_sender_among_recipients_is_400(kudos, tenant):
    sender, other = company(tenant)["users"][:2]
    assert_error(kudos.post("/kudos", json=kudos_body(sender, [other, sender])), 400)


def test_not_enough_points_is_400(kudos, tenant):
    before = company(tenant)
    poorest, other = sorted(before["users"], key=lambda u: u["pointsBalance"])[:2]
    response = kudos.post("/kudos", json=kudos_body(poorest, [other], points=poorest["pointsBalance"] + 1))
    assert_error(response, 400)
    assert company(tenant) == before


# --- redemptions --------------------------------------------------------------------------------

def test_redeem_deducts_points_and_lists_newest_first(kudos, tenant):
    user, sender = rich_users(tenant, 2)
    response = kudos.post("/redemptions", json=redemption_body(user, sender, notes="desk"))
    assert response.status_code == 200, response.text
    redemption = response.json()["data"]
    assert redemption["userId"] == str(user["id"]) and redemption["createdBy"] == sender["id"]
    assert redemption["createdAt"] == redemption["updatedAt"] == "2026-01-01"
    assert redemption["currencyCode"] == "USD" and redemption["description"] == "" and redemption["notes"] == "desk"
    assert "cancellationDate" not in redemption
    assert user_by_id(tenant, user["id"])["pointsBalance"] == user["pointsBalance"] - 100
    history = kudos.get("/redemptions", params={"userId": user["id"]}).json()["data"]
    assert history["page"] == 1 and history["data"][0] == redemption
    assert history["totalCount"] == len([r for r in company(tenant)["redemptions"] if r["userId"] == str(user["id"])])


def test_redemption_history_pages(kudos, tenant):
    everything = company(tenant)["redemptions"]
    assert len(everything) == 10
    first = kudos.get("/redemptions").json()["data"]
    assert first["totalCount"] == 10 and len(first["data"]) == 10  # perPage defaults to 15
    pages = [kudos.get("/redemptions", params={"page": n, "perPage": 4}).json()["data"] for n in (1, 2, 3, 4)]
    assert [len(page["data"]) for page in pages] == [4, 4, 2, 0]
    assert [r for page in pages for r in page["data"]] == list(reversed(everything))
    assert [page["page"] for page in pages] == [1, 2, 3, 4]


@pytest.mark.parametrize("params,status", [
    ({"page": 0}, 400), ({"perPage": 0}, 400), ({"perPage": 101}, 400), ({"userId": "x"}, 400), ({"userId": 1}, 404),
])
def test_redemption_history_bad_parameters(kudos, params, status):
    assert_error(kudos.get("/redemptions", params=params), status)


@pytest.mark.parametrize("change,status", [
    (lambda b: {k: v for k, v in b.items() if k != "transactionId"}, 400),
    (lambda b: b | {"kudosPoints": 0}, 400),
    (lambda b: b | {"kudosPoints": "100"}, 400),
    (lambda b: b | {"currencyCode": "dollars"}, 400),
    (lambda b: b | {"userId": 1}, 404),
    (lambda b: b | {"senderId": 1}, 404),
    (lambda b: b | {"kudosPoints": 1_000_000}, 400),
])
def test_redeem_rejects_bad_bodies(kudos, tenant, change, status):
    before = company(tenant)
    user, sender = rich_users(tenant, 2)
    assert_error(kudos.post("/redemptions", json=change(redemption_body(user, sender))), status)
    assert company(tenant) == before


def test_cancel_refunds_once(kudos, tenant):
    user, sender = rich_users(tenant, 2)
    redemption = kudos.post("/redemptions", json=redemption_body(user, sender)).json()["data"]
    tenant.advance(86400 * 2)
    params = {"userId": user["id"], "senderId": sender["id"]}
    response = kudos.delete(f"/redemptions/{redemption['id']}", params=params)
    assert response.status_code == 200, response.text
    cancelled = response.json()["data"]
    assert cancelled["cancellationDate"] == cancelled["updatedAt"] == "2026-01-03"
    assert cancelled["createdAt"] == "2026-01-01"
    assert user_by_id(tenant, user["id"])["pointsBalance"] == user["pointsBalance"]
    assert_error(kudos.delete(f"/redemptions/{redemption['id']}", params=params), 400)
    assert user_by_id(tenant, user["id"])["pointsBalance"] == user["pointsBalance"]


def test_cancel_errors(kudos, tenant):
    user, sender, stranger = rich_users(tenant, 3)
    redemption = kudos.post("/redemptions", json=redemption_body(user, sender)).json()["data"]
    path = f"/redemptions/{redemption['id']}"
    assert_error(kudos.delete("/redemptions/1", params={"userId": user["id"], "senderId": sender["id"]}), 404)
    assert_error(kudos.delete(path, params={"userId": stranger["id"], "senderId": sender["id"]}), 404)
    assert_error(kudos.delete(path, params={"userId": user["id"], "senderId": stranger["id"]}), 403)
    assert_error(kudos.delete(path, params={"userId": user["id"]}), 400)
    # a non-integer id matches no route
    assert_error(kudos.delete("/redemptions/abc", params={"userId": user["id"], "senderId": sender["id"]}), 404)
    assert "cancellationDate" not in company(tenant)["redemptions"][-1]
    # the redemption's own user may cancel it too
    assert kudos.delete(path, params={"userId": user["id"], "senderId": user["id"]}).status_code == 200


# --- errors and limits --------------------------------------------------------------------------

@pytest.mark.parametrize("accept,status", [
    ("text/html", 406), ("application/xml", 406), ("application/json;q=0", 406),
    ("application/json", 200), ("*/*", 200), ("text/html, application/*;q=0.5", 200),
])
def test_accept_header_negotiation(kudos, tenant, accept, status):
    email = company(tenant)["users"][0]["email"]
    response = kudos.get("/users/lookup", params={"email": email}, headers={"Accept": accept})
    assert response.status_code == status
    if status == 406:
        assert_error(response, 406)


@pytest.mark.parametrize("raw,content_type,status", [
    (b"{", "application/json", 400), (b"\xff", "application/json", 400),
    (b"a=b", "application/x-www-form-urlencoded", 415), (b"[" + b"1," * 600_000 + b"1]", "application/json", 413),
])
def test_garbage_bodies_are_json_errors(kudos, tenant, raw, content_type, status):
    before = company(tenant)
    assert_error(kudos.post("/redemptions", content=raw, headers={"Content-Type": content_type}), status)
    assert company(tenant) == before


def test_unknown_route_is_json_404(kudos):
    assert_error(kudos.get("/rewards"), 404)
    assert_error(kudos.put("/kudos", json={}), 405)


def test_1000_requests_per_hour_per_token_overall(kudos, tenant, server):
    email = company(tenant)["users"][0]["email"]
    for index in range(1000):
        path, params = ("/users/lookup", {"email": email}) if index % 2 else ("/redemptions", {})
        assert kudos.get(path, params=params).status_code == 200
        if index % 100 == 99:
            tenant.advance(60)  # 10 minutes in all
    refused = kudos.get("/redemptions")
    assert_error(refused, 429)
    assert refused.headers["Retry-After"] == str(3600 - 600)  # now t=600; the first hundred leave at t=3600
    other = server.new_tenant()
    with other.client("kudosnow") as other_client:
        assert other_client.get("/redemptions").status_code == 200
    tenant.advance(3600 - 600)
    assert kudos.get("/redemptions").status_code == 200


# --- saved state --------------------------------------------------------------------------------

def test_an_export_of_schema_1_with_unnumbered_kudos_imports():
    """Schema 1 kept kudos records without an id: they are numbered in their order on import, and
    kudos given afterwards continue the numbering."""
    with running(ticking=False) as server:
        tenant = server.new_tenant(tenant="older")
        sender, first, second = rich_users(tenant, 3)
        with tenant.client("kudosnow") as client:
            given = client.post("/kudos", json=kudos_body(sender, [first, second], points=1)).json()["data"]
            given += client.post("/kudos", json=kudos_body(sender, [first], points=1)).json()["data"]
        before = company(tenant)
        document = server.admin.get("/__admin/state/export").json()
        record = next(t for t in document["tenants"] if t["id"] == "older")["workspaces"]["kudosnow"]
        assert record["schema"] == 2
        assert [kudos["id"] for kudos in record["data"]["kudos"]] == [1, 2, 3] and record["data"]["next_kudos_id"] == 4
        record["schema"] = 1
        del record["data"]["next_kudos_id"]
        record["data"]["kudos"] = [{k: v for k, v in kudos.items() if k != "id"} for kudos in record["data"]["kudos"]]
        assert record["data"]["kudos"] == given
        assert server.admin.post("/__admin/state/import", content=orjson.dumps(document)).status_code == 204
        migrated = next(t for t in server.admin.get("/__admin/state/export").json()["tenants"] if t["id"] == "older")
        assert migrated["workspaces"]["kudosnow"]["schema"] == 2
        assert [kudos["id"] for kudos in migrated["workspaces"]["kudosnow"]["data"]["kudos"]] == [1, 2, 3]
        assert company(tenant) == before
        with tenant.client("kudosnow") as client:
            assert client.post("/kudos", json=kudos_body(sender, [second])).status_code == 200
        again = next(t for t in server.admin.get("/__admin/state/export").json()["tenants"] if t["id"] == "older")
        assert [kudos["id"] for kudos in again["workspaces"]["kudosnow"]["data"]["kudos"]] == [1, 2, 3, 4]
        assert company(tenant)["kudos"][:3] == given
