"""The details issue 33 found in the specs, each held (answers keeping to the spec are held by the
suite's answer check: conftest fails any test that sees one drift)."""

from mockserver.vendor import discover

VENDORS = {vendor.name: vendor for vendor in discover()}


def test_kudosnow_marks_the_redemption_bounds_the_seed_does_not_give():
    """The seed's example redeems `kudosPoints: 0` (a placeholder, as its `userId: 0` is); the bound that
    refuses it is ours, and says so."""
    redemption = VENDORS["kudosnow"].spec["components"]["schemas"]["CreateRedemption"]
    assert redemption["x-inferred"] and "placeholders" in redemption["description"]
    assert redemption["properties"]["kudosPoints"]["minimum"] == 1


def test_kudosnow_declares_every_documented_error_status():
    """Reference notes: 400, 401, 403, 406, 429, 500 and 503."""
    for operation in VENDORS["kudosnow"].operations.values():
        assert {"400", "401", "429", "500", "503"} <= set(operation.responses), operation.id


def test_dailybot_list_items_carry_only_declared_fields(tenant):
    kudo = VENDORS["dailybot"].spec["components"]["schemas"]["Kudo"]["properties"]
    with tenant.client("dailybot") as dailybot:
        for filter_ in ("kudos_received", "kudos_given"):
            for item in dailybot.get("/kudos/", params={"filter": filter_}).json()["results"]:
                assert set(item) <= set(kudo), set(item) - set(kudo)


def test_karmabot_marks_what_the_seed_leaves_out():
    spec = VENDORS["karmabot"].spec
    limited = spec["components"]["responses"]["RateLimited"]
    assert limited["x-inferred"] and limited["headers"]["Retry-After"]["x-inferred"]
    for path in ("/channels", "/users", "/values", "/achievements"):
        page = spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        [items] = page["properties"].values()
        assert items["x-inferred"] and items["maxItems"] == spec["paths"][path]["get"]["x-page-size"]


# --- a path that differs from an operation's only by its trailing slash (x-trailing-slash) -----------

SLASH_TOGGLED = {"dailybot": "/kudos", "karmabot": "/users/", "community": "/boards/", "corteza": "/channels",
                 "kudosnow": "/kudos/"}


def test_every_spec_says_how_its_server_answers_a_toggled_trailing_slash():
    answers = {name: vendor.spec["x-trailing-slash"]["answer"] for name, vendor in VENDORS.items()}
    assert answers == {"dailybot": "redirect", "karmabot": "not-found", "community": "not-found",
                       "corteza": "not-found", "kudosnow": "not-found"}
    assert VENDORS["dailybot"].spec["x-trailing-slash"]["status"] == 301  # Django's APPEND_SLASH
    for vendor in VENDORS.values():
        assert "trailing slash" in vendor.spec["info"]["description"].replace("\n", " "), vendor.name


def test_dailybot_redirects_a_path_without_its_slash_as_django_does(tenant):
    """CommonMiddleware with APPEND_SLASH, DEBUG off: 301 for any method, the query kept, before auth."""
    with tenant.client("dailybot") as daily:
        for method in ("GET", "POST"):
            moved = daily.request(method, "/kudos", params={"limit": 1}, headers={"X-API-KEY": "wrong"})
            assert moved.status_code == 301, (method, moved.text)
            assert moved.headers["location"] == tenant.server.base_url("dailybot") + "/kudos/?limit=1"
        assert daily.get("/users/someone").headers["location"].endswith("/dailybot/v1/users/someone/")
        assert daily.get("/nothing").status_code == 404


def test_the_other_vendors_answer_their_own_not_found_for_a_toggled_slash(tenant):
    for name in ("karmabot", "community", "corteza", "kudosnow"):
        with tenant.client(name) as client:
            toggled = client.get(SLASH_TOGGLED[name])
            unknown = client.get("/no-such-path")
        assert "location" not in toggled.headers, name
        assert (toggled.status_code, toggled.headers.get("X-Mockserver-Error-Status")) == (
            unknown.status_code, unknown.headers.get("X-Mockserver-Error-Status")), name
        assert toggled.headers.get("X-Mockserver-Error-Status", str(toggled.status_code)) == "404", name
        assert toggled.json().keys() == unknown.json().keys(), name
