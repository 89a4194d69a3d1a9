"""API coverage (`GET /__admin/coverage`, `mockserver coverage`, the pytest plugin's
`--mockserver-coverage`): which documented operations and statuses requests exercised."""

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from xml.etree import ElementTree

import pytest
from click.testing import CliRunner

from mockserver.cli import main
from mockserver.testing import running
from mockserver.vendor import data_dir, load_yaml

ROOT = Path(__file__).parent.parent


def documented(vendor: str) -> dict[str, list[str]]:
    """operationId -> its documented response keys, as the spec lists them."""
    spec = load_yaml(data_dir("specs") / f"{vendor}.yaml")
    return {operation["operationId"]: [str(key) for key in operation["responses"]]
            for item in spec["paths"].values() for operation in item.values()
            if isinstance(operation, dict) and "operationId" in operation}


def exercised(report: dict, vendor: str) -> dict:
    """The operations with calls: operationId -> (calls, statuses answered, undocumented)."""
    return {op["operation"]: (op["calls"], {key: n for key, n in op["statuses"].items() if n}, op["undocumented"])
            for op in report["vendors"][vendor]["operations"] if op["calls"]}


@pytest.fixture(scope="module")
def server():
    with running(ticking=False) as server:
        yield server


def exercise(tenant) -> None:
    """A known subset: karmabot listUsers 200 and a 503 fault (undocumented), createPlus 201 and
    400, two requests that match no operation (404, 405); dailybot listKudos 200."""
    tenant.fault("karmabot", status=503, count=1, operation="listUsers")
    with tenant.client("karmabot") as karma:
        assert karma.get("/users").status_code == 503
        users = karma.get("/users").json()["users"]
        assert karma.post("/pluses", json={"user_ids": [users[1]["id"]], "from_id": users[0]["id"]}).status_code == 201
        assert karma.post("/pluses", json={}).status_code == 400
        assert karma.get("/nowhere").status_code == 404
        assert karma.delete("/users").status_code == 405
    with tenant.client("dailybot") as daily:
        assert daily.get("/kudos/").status_code == 200


def test_a_tenants_report_counts_exactly_what_it_exercised(server):
    tenant = server.new_tenant()
    exercise(tenant)
    with tenant.client("karmabot", authenticated=False) as stranger:
        assert stranger.get("/users").status_code == 401  # no tenant's: not in this tenant's report

    report = tenant.coverage()
    assert report["tenant"] == tenant.id and set(report["vendors"]) == {
        "karmabot", "dailybot", "community", "corteza", "kudosnow"}
    karmabot = report["vendors"]["karmabot"]
    assert exercised(report, "karmabot") == {"listUsers": (2, {"200": 1}, {"503": 1}),
                                             "createPlus": (2, {"201": 1, "400": 1}, {})}
    assert karmabot["unmatched"] == {"calls": 2, "statuses": {"404": 1, "405": 1}}
    spec = documented("karmabot")
    assert [(op["operation"], op["method"], op["path"], list(op["statuses"])) for op in karmabot["operations"]] == [
        (op_id, method, path, spec[op_id]) for op_id, method, path in [
            ("listChannels", "GET", "/channels"), ("listUsers", "GET", "/users"), ("listValues", "GET", "/values"),
            ("listAchievements", "GET", "/achievements"), ("createPlus", "POST", "/pluses")]]
    assert karmabot["summary"] == {"operations": 5, "operations_exercised": 2,
                                   "statuses": sum(map(len, spec.values())), "statuses_seen": 3, "calls": 6}
    assert karmabot["base_path"] == "/karmabot/api/v1"
    assert exercised(report, "dailybot") == {"listKudos": (1, {"200": 1}, {})}
    for vendor in ("community", "corteza", "kudosnow"):
        summary = report["vendors"][vendor]["summary"]
        assert summary["calls"] == summary["operations_exercised"] == summary["statuses_seen"] == 0
        assert summary["operations"] == len(documented(vendor))

    one_vendor = server.coverage(tenant.id, "dailybot")
    assert list(one_vendor["vendors"]) == ["dailybot"] and one_vendor["vendors"]["dailybot"] == report["vendors"]["dailybot"]
    everyone = server.coverage()["vendors"]["karmabot"]["operations"]
    assert next(op for op in everyone if op["operation"] == "listUsers")["statuses"]["401"] >= 1  # the stranger's


def test_counts_outlive_the_journal_ring_and_its_clearing_and_go_with_the_tenant():
    with running(ticking=False, journal_limit=3) as server:
        tenant = server.new_tenant()
        with tenant.client("karmabot") as karma:
            for _ in range(10):
                assert karma.get("/channels").status_code == 200
        assert len(tenant.requests()) == 3
        assert exercised(tenant.coverage(), "karmabot") == {"listChannels": (10, {"200": 10}, {})}
        server.admin.delete("/__admin/requests", params={"tenant": tenant.id}).raise_for_status()
        assert exercised(tenant.coverage(), "karmabot") == {"listChannels": (10, {"200": 10}, {})}
        server.admin.post("/__admin/reset").raise_for_status()  # the journal stays, and so do the counts
        assert exercised(tenant.coverage(), "karmabot") == {"listChannels": (10, {"200": 10}, {})}

        server.admin.post(f"/__admin/tenants/{tenant.id}/reset").raise_for_status()
        assert exercised(tenant.coverage(), "karmabot") == {}
        server.admin.delete(f"/__admin/tenants/{tenant.id}").raise_for_status()
        gone = server.admin.get("/__admin/coverage", params={"tenant": tenant.id})
        assert gone.status_code == 400
        assert gone.json() == {"error": {"code": 400, "message": f"unknown tenant {tenant.id!r}"}}


def test_the_report_equals_a_count_over_the_journal(server):
    """Every vendor, successes and failures, two tenants and strangers: the journal holds every
    entry (the run fits the ring), and counting its entries gives the report's numbers."""
    tenants = [server.new_tenant(), server.new_tenant()]
    for number, tenant in enumerate(tenants):
        for vendor, path in [("karmabot", "/users"), ("karmabot", "/values"), ("dailybot", "/kudos/"),
                             ("dailybot", "/me/"), ("kudosnow", "/redemptions"), ("community", "/boards"),
                             ("community", "/tags"), ("corteza", "/channels/"), ("corteza", "/nowhere")]:
            for authenticated in (True, False)[:number + 1]:
                with tenant.client(vendor, authenticated=authenticated) as client:
                    client.get(path)
                    client.post(path, content=b"{not json", headers={"Content-Type": "application/json"})
    journal = server.admin.get("/__admin/requests").json()["requests"]
    assert 0 < len(journal) < 1000
    counted = Counter((entry["vendor"], entry["operation"], entry["status"]) for entry in journal)
    reported: Counter = Counter()
    for vendor, found in server.coverage()["vendors"].items():
        for op in found["operations"]:
            for key, n in [*op["statuses"].items(), *op["undocumented"].items()]:
                if n:
                    reported[vendor, op["operation"], key] += n
        for key, n in found["unmatched"]["statuses"].items():
            reported[vendor, None, key] += n
    from mockserver.coverage import documented_as
    from mockserver.vendor import discover
    vendors = {vendor.name: vendor for vendor in discover()}
    expected: Counter = Counter()
    for (vendor, operation, status), n in counted.items():
        key = documented_as(vendors[vendor].operations[operation], status) if operation else None
        expected[vendor, operation, key or str(status)] += n
    assert reported == expected
    assert sum(1 for vendor, operation, _ in expected if operation is None) >= 2  # unmatched ones counted too


def test_a_vendor_or_tenant_that_names_nothing_is_a_400(server):
    for params, says in [({"vendor": "karmabots"}, "unknown vendor 'karmabots'"),
                         ({"tenant": "nobody-here"}, "unknown tenant 'nobody-here'")]:
        answer = server.admin.get("/__admin/coverage", params=params)
        assert answer.status_code == 400 and says in answer.json()["error"]["message"]


def test_the_cli_prints_a_running_servers_report_in_three_formats(server):
    tenant = server.new_tenant()
    exercise(tenant)
    runner = CliRunner()
    base = ["coverage", "--base-url", server.url, "--tenant", tenant.id]

    text = runner.invoke(main, [*base, "--vendor", "karmabot"])
    assert text.exit_code == 0, text.output
    lines, statuses = text.output.splitlines(), sum(map(len, documented("karmabot").values()))
    assert lines[1].split() == ["karmabot", "2", "of", "5", "40.0%", "3", "of", str(statuses),
                                f"{300 / statuses:.1f}%", "6"]
    assert "karmabot: never exercised (3): listChannels (GET /channels); listValues (GET /values); " \
           "listAchievements (GET /achievements)" in lines
    assert "karmabot: statuses the spec does not document: listUsers 503 (x1)" in lines
    assert "karmabot: requests that matched no operation: 2" in lines

    as_json = runner.invoke(main, [*base, "--format", "json"])
    assert json.loads(as_json.output) == tenant.coverage()

    junit = ElementTree.fromstring(runner.invoke(main, [*base, "--format", "junit"]).output.split("?>", 1)[1])
    karmabot = junit.find("testsuite[@name='karmabot']")
    cases = {case.get("name"): case for case in karmabot.iter("testcase")}
    assert cases["GET /users 200"].find("skipped") is None
    assert cases["GET /users 401"].find("skipped") is not None
    assert cases["GET /users 503"].find("failure").get("message") == "answered 1 times; the spec does not document it"
    assert karmabot.get("failures") == "1" and int(karmabot.get("tests")) == len(cases)

    # karmabot 2 of 5, dailybot 1 of 9: 3 of 14 operations of the vendors called
    assert runner.invoke(main, [*base, "--fail-under", "21"]).exit_code == 0
    below = runner.invoke(main, [*base, "--fail-under", "22"])
    assert below.exit_code == 1 and "21.4% of documented operations exercised, under --fail-under 22" in below.output
    unreachable = subprocess.run([sys.executable, "-m", "mockserver", "coverage", "--base-url", "http://127.0.0.1:9"],
                                 capture_output=True, text=True, cwd=ROOT)
    assert unreachable.returncode == 1 and "cannot reach http://127.0.0.1:9" in unreachable.stderr
    assert "Traceback" not in unreachable.stderr


PLUGIN_TESTS = '''
def test_karmabot(mockserver_tenant):
    with mockserver_tenant.client("karmabot") as karma:
        users = karma.get("/users").json()["users"]
        assert karma.post("/pluses", json={"user_ids": [users[1]["id"]], "from_id": users[0]["id"]}).status_code == 201

def test_reset_and_an_extra_tenant(mockserver_tenant, mockserver):
    with mockserver_tenant.client("karmabot") as karma:
        assert karma.get("/channels").status_code == 200
    mockserver_tenant.reset()  # what it did before still counts
    other = mockserver.new_tenant()
    with other.client("dailybot") as daily:
        assert daily.get("/kudos/").status_code == 200
'''


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one-process", "xdist"])
def test_the_pytest_plugin_reports_the_runs_coverage(pytester, workers):
    pytester.makepyfile(PLUGIN_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *workers, "--mockserver-coverage=cov.json")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*mockserver API coverage*",
                                 "dailybot * 1 of 9  11.1% *",
                                 "karmabot * 3 of 5  60.0% *",
                                 "28.6% of the documented operations of the vendors called; "
                                 "written to cov.json and cov.xml"])
    report = json.loads((pytester.path / "cov.json").read_text())
    assert exercised(report, "karmabot") == {"listUsers": (1, {"200": 1}, {}), "createPlus": (1, {"201": 1}, {}),
                                             "listChannels": (1, {"200": 1}, {})}
    assert exercised(report, "dailybot") == {"listKudos": (1, {"200": 1}, {})}
    assert ElementTree.parse(pytester.path / "cov.xml").getroot().tag == "testsuites"


def test_the_pytest_plugin_fails_a_run_under_the_bound(pytester):
    pytester.makepyfile(PLUGIN_TESTS)
    below = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--mockserver-coverage-fail-under=29")
    below.assert_outcomes(passed=2)
    assert below.ret == pytest.ExitCode.TESTS_FAILED
    below.stdout.fnmatch_lines(["*28.6% of the documented operations*FAIL: under --mockserver-coverage-fail-under 29"])
    assert (pytester.path / "mockserver-coverage.json").exists()
    assert pytester.runpytest_inprocess("-p", "no:cacheprovider", "--mockserver-coverage-fail-under=28").ret == 0
    clobbering = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--mockserver-coverage", "test_x.py")
    assert clobbering.ret == pytest.ExitCode.USAGE_ERROR
