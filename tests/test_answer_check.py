"""`serve --check-answers` (and the suite, which runs every server with it: conftest): each answer
is checked against its operation's documented responses; a drift is logged and named in a header."""

import httpx
import pytest

from mockserver import answercheck
from mockserver.contract import Checker
from mockserver.testing import running
from mockserver.vendor import discover
from mockserver.vendors.karmabot import responses as karmabot_handlers
from tests.served import Served

HEADER = answercheck.HEADER
VALUE = {"id": 1, "color": "#4C94FF", "description": None, "emoji": ":gem:", "image_url": None}  # no `name`


@pytest.fixture
def drifting_server(monkeypatch):
    """A server whose Karma bot `listValues` answers a value without its required `name`."""

    async def list_values(cursor=None):
        return {"values": [VALUE]}

    monkeypatch.setattr(karmabot_handlers, "list_values", list_values)
    with running(ticking=False, vendors=["karmabot"], check_answers=True) as server:
        yield server


def test_a_drift_is_logged_and_named_in_a_header(drifting_server, answer_drifts):
    with drifting_server.new_tenant().client("karmabot") as karma:
        answer = karma.get("/values")
        assert answer.status_code == 200 and answer.json() == {"values": [VALUE]}
        assert answer.headers[HEADER].startswith("1: response body /values/0/name")
        assert HEADER not in karma.get("/users").headers  # kept to the spec
    [logged] = answer_drifts()
    assert logged.startswith("answer drift: karmabot GET /karmabot/api/v1/values (listValues) answered 200: ")
    assert "response body /values/0/name: expected present (required); got absent" in logged


def test_off_nothing_is_checked(monkeypatch, answer_drifts):
    async def list_values(cursor=None):
        return {"values": [{"id": 1}]}

    monkeypatch.setattr(karmabot_handlers, "list_values", list_values)
    with running(ticking=False, vendors=["karmabot"], check_answers=False) as server:
        assert server.app.answer_check is None
        with server.new_tenant().client("karmabot") as karma:
            assert HEADER not in karma.get("/values").headers
    assert answer_drifts() == []


def test_the_environment_turns_it_on_when_the_option_is_unset(monkeypatch):
    monkeypatch.setenv(answercheck.VARIABLE, "1")
    assert answercheck.wanted(None) and not answercheck.wanted(False)
    monkeypatch.setenv(answercheck.VARIABLE, "0")
    assert not answercheck.wanted(None) and answercheck.wanted(True)
    monkeypatch.delenv(answercheck.VARIABLE)
    assert not answercheck.wanted(None)


def test_answers_of_injected_faults_and_of_the_mocks_own_limits_are_not_checked(drifting_server, answer_drifts):
    tenant = drifting_server.new_tenant()
    tenant.fault("karmabot", status=418, operation="listUsers", count=2)  # a status no operation documents
    with tenant.client("karmabot") as karma:
        assert karma.get("/users").status_code == 418
        assert karma.get("/values").headers.get(HEADER) is None  # while a fault is set for the vendor
        assert karma.get("/users").status_code == 418
        assert karma.get("/values").headers.get(HEADER)  # the fault spent: checked again
        too_long = karma.get("/users", params={"q": "x" * 9000})
        assert too_long.status_code == 414 and HEADER not in too_long.headers
    assert len(answer_drifts()) == 1


def test_forced_answers_are_checked_and_keep_to_the_spec(server):
    """`Prefer: code=` answers with the status's own documented example: 413 and 415 each have theirs."""
    with server.new_tenant().client("community") as community:
        too_large = community.post("/boards", json={}, headers={"Prefer": "code=413"})
        unsupported = community.post("/boards", json={}, headers={"Prefer": "code=415"})
    assert too_large.status_code == 413 and too_large.json()["status"] == "REQUEST_ENTITY_TOO_LARGE"
    assert unsupported.status_code == 415 and unsupported.json()["status"] == "UNSUPPORTED_MEDIA_TYPE"
    assert HEADER not in too_large.headers and HEADER not in unsupported.headers


def test_a_streamed_binary_answer_is_checked_whole(server):
    """Corteza's attachment download: its documented media type, held until its last byte."""
    tenant = server.new_tenant()
    with tenant.client("corteza") as corteza:
        channel = corteza.get("/channels/").json()["response"][0]["channelID"]
        uploaded = corteza.post(f"/channels/{channel}/attach", files={"upload": ("notes.txt", b"hello", "text/plain")})
        download = corteza.get(uploaded.json()["response"]["url"])
    assert download.status_code == 200 and download.content == b"hello" and HEADER not in download.headers


def test_nullable_is_read_as_openapi_3_0_has_it():
    """`nullable: true` admits null where it stands, and nothing else than the schema does."""
    checker = Checker(discover(["dailybot"])[0])
    kudo = {"id": "k", "parent": None, "user": None, "receivers": [], "company_value": None, "content": "",
            "is_anonymous": True, "by_dailybot": False, "metadata": {}, "created_at": "2026-01-01T00:00:00Z"}
    page = {"count": 1, "next": None, "previous": None, "results": [kudo]}
    headers = {"content-type": "application/json"}
    assert checker.response("listKudos", 200, headers, httpx.Response(200, json=page).content)[1] == []
    wrong = page | {"results": [kudo | {"user": 5}]}
    [problem] = checker.response("listKudos", 200, headers, httpx.Response(200, json=wrong).content)[1]
    assert problem.pointer == "/results/0/user"


def test_serve_takes_the_option(monkeypatch):
    monkeypatch.delenv(answercheck.VARIABLE)
    served = Served("--check-answers", "--vendor", "karmabot", "--clock", "frozen")
    banner = served.stop()
    assert f"answers checked against the specs: a drift is logged and named in {HEADER}" in banner
    served = Served("--vendor", "karmabot", "--clock", "frozen")
    assert "answers checked" not in served.stop()
