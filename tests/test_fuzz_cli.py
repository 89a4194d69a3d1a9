"""`mockserver fuzz`: the same contract checks against any server, for users' CI pipelines."""

import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
from click.testing import CliRunner

from mockserver.cli import main
from mockserver.testing import running
from tests.drifting import DriftingProxy

ROOT = Path(__file__).parent.parent  # the checkout the command imports
COUNTS = ("tests", "failures", "errors", "skipped")

@pytest.fixture(scope="module")
def unlimited():
    with running(ticking=False) as server:
        yield server, server.new_tenant(rate_limits=False)


def fuzz(*args):
    return subprocess.run([sys.executable, "-m", "mockserver", "fuzz", "--max-examples", "5", *args],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)


def header_args(tenant, vendor):
    return [arg for name, value in tenant.credentials[vendor]["headers"].items()
            for arg in ("--header", f"{name}: {value}")]


def totals(element) -> dict[str, int]:
    return {name: int(element.get(name)) for name in COUNTS}


def assert_totals_add_up(root) -> None:
    """Each suite counts its own cases (a case failed, errored or skipped), and the root sums its suites."""
    suites = root.findall("testsuite")
    for suite in suites:
        cases = suite.findall("testcase")
        assert totals(suite) == {"tests": len(cases), **{
            name: sum(case.find(kind) is not None for case in cases)
            for name, kind in (("failures", "failure"), ("errors", "error"), ("skipped", "skipped"))}}, suite.get("name")
    assert totals(root) == {name: sum(totals(suite)[name] for suite in suites) for name in COUNTS}


def test_the_mock_passes_its_own_contract_with_a_junit_report(unlimited, tmp_path):
    server, tenant = unlimited
    report = tmp_path / "karmabot.xml"
    result = fuzz("--vendor", "karmabot", "--base-url", server.base_url("karmabot"),
                  *header_args(tenant, "karmabot"), "--junit", str(report))
    assert result.returncode == 0, result.stdout[-3000:]
    suites = ElementTree.parse(report).getroot()
    cases = suites.findall(".//testcase")
    assert len(cases) >= 5 and not suites.findall(".//failure")
    positive = suites.find("testsuite[@name='positive phase']")
    assert {case.get("name") for case in positive} >= {"POST /pluses (createPlus)", "GET /users (listUsers)"}
    assert_totals_add_up(suites)
    assert "Positive phase: 5/5 documented success statuses reached, 0 operation(s) with problems." in result.stdout


def test_corteza_is_checked_through_its_200_errors(unlimited):
    """The coverage phase's negative cases are judged by the status Corteza's 200 errors stand for;
    a form's `params=true` is the array ["true"] as the server reads it, not a wrong type."""
    server, tenant = unlimited
    result = fuzz("--vendor", "corteza", "--base-url", server.base_url("corteza"), *header_args(tenant, "corteza"),
                  "--phases", "coverage")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "1 failed" not in result.stdout and "Coverage" in result.stdout


def test_drift_between_a_server_and_the_spec_fails_the_run(unlimited, tmp_path):
    """A server that does not behave as the spec says (here: another API altogether) is caught."""
    server, tenant = unlimited
    report = tmp_path / "drift.xml"
    result = fuzz("--vendor", "karmabot", "--base-url", server.base_url("dailybot"),
                  *header_args(tenant, "dailybot"), "--junit", str(report), "--phases", "examples")
    assert result.returncode != 0
    assert ElementTree.parse(report).getroot().findall(".//failure")


def refused(*args):
    """The command's own answer to arguments it refuses (click's, in this process: nothing is run)."""
    return CliRunner().invoke(main, ["fuzz", "--vendor", "karmabot", "--base-url", "http://127.0.0.1:9", *args])


def test_bad_arguments():
    assert CliRunner().invoke(main, ["fuzz", "--vendor", "nope", "--base-url", "http://127.0.0.1:9"]).exit_code == 2
    assert refused("--header", "no-colon").exit_code == 2
    assert refused("--rate-limit", "6/minutes").exit_code == 2
    for phases in ("positive,nope", ","):
        result = refused("--phases", phases)
        assert result.exit_code == 2 and "choose among positive, examples, coverage, fuzzing, stateful" in result.output


def test_seed_and_rate_limit_are_used_and_nothing_is_left_behind(unlimited, tmp_path):
    server, tenant = unlimited
    base = ["--vendor", "kudosnow", "--base-url", server.base_url("kudosnow"), *header_args(tenant, "kudosnow")]
    base += ["--phases", "fuzzing,stateful"]  # the phases that draw from the seed and could keep a database
    seeded = subprocess.run([sys.executable, "-m", "mockserver", "fuzz", "--max-examples", "3", "--seed", "5",
                             "--rate-limit", "1000/s", *base], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert seeded.returncode == 0, seeded.stdout[-3000:]
    assert "Seed: 5" in seeded.stdout and "not used" not in seeded.stdout
    assert list(tmp_path.iterdir()) == []  # no .hypothesis/ or schemathesis-report/ in the user's folder
    plain = subprocess.run([sys.executable, "-m", "mockserver", "fuzz", "--max-examples", "3", *base],
                           capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert plain.returncode == 0 and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("drift, vendor, path, finding", [
    ({"status": {"POST /pluses": 200}}, "karmabot", "/karmabot/api/v1", "POST /pluses (createPlus)"),
    ({"rename": ("slack_id", "slackId")}, "karmabot", "/karmabot/api/v1", "GET /users (listUsers)"),
    ({"drop_header": "has_more"}, "community", "/community/api/v1", "GET /boards (listBoards)"),
], ids=["status 201 to 200", "field renamed", "header dropped"])
def test_a_drifting_server_fails_the_positive_phase(unlimited, tmp_path, drift, vendor, path, finding):
    """A vendor's silent change (a status, a field, a header) is caught where a documented call
    succeeds, and named in the report and the JUnit file."""
    server, tenant = unlimited
    report = tmp_path / "drift.xml"
    report.write_text('<testsuites><testsuite name="positive phase" tests="9" failures="0"/></testsuites>')  # stale
    with DriftingProxy(server.base_url(vendor).removesuffix(path), **drift) as proxy:
        result = fuzz("--vendor", vendor, "--base-url", proxy.url + path, *header_args(tenant, vendor),
                      "--phases", "positive", "--junit", str(report))
    assert result.returncode != 0
    assert "Test Phases" not in result.stdout  # Schemathesis' phases were not asked for
    failing = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert any(finding in line for line in failing), result.stdout[-3000:]
    root = ElementTree.parse(report).getroot()
    (positive,) = root.findall("testsuite[@name='positive phase']")  # this run's alone
    assert [case.get("name") for case in positive if case.find("failure") is not None] == [
        line.split(" ", 2)[2].strip() for line in failing]
    assert_totals_add_up(root)
    assert totals(root)["failures"] == len(failing)


def test_the_junit_totals_count_a_failed_positive_phase_beside_schemathesis(unlimited, tmp_path):
    """The root of the report Schemathesis writes counts the positive suite added to it too."""
    server, tenant = unlimited
    report = tmp_path / "drift.xml"
    with DriftingProxy(server.base_url("karmabot").removesuffix("/karmabot/api/v1"),
                       status={"POST /pluses": 200}) as proxy:
        result = fuzz("--vendor", "karmabot", "--base-url", proxy.url + "/karmabot/api/v1",
                      *header_args(tenant, "karmabot"), "--phases", "positive,examples", "--junit", str(report))
    assert result.returncode != 0
    root = ElementTree.parse(report).getroot()
    assert [suite.get("name") for suite in root.findall("testsuite")] == ["schemathesis", "positive phase"]
    assert_totals_add_up(root)
    assert totals(root.find("testsuite[@name='positive phase']"))["failures"] == 1


@pytest.mark.parametrize("base_url, why", [
    ("http://127.0.0.1:9/karmabot/api/v1", "Connection refused"),
    ("http://nowhere.invalid/karmabot/api/v1", "nowhere.invalid"),
], ids=["refused", "no such host"])
def test_an_unreachable_base_url_is_one_line_and_exit_2(tmp_path, base_url, why):
    report = tmp_path / "report.xml"
    result = fuzz("--vendor", "karmabot", "--base-url", base_url, "--header", "Authorization: Bearer x",
                  "--junit", str(report))
    assert result.returncode == 2 and result.stdout == "", result.stdout[-3000:] + result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"Error: cannot reach {base_url}: ") and why in line
    assert not report.exists()


def test_without_the_positive_phase(unlimited):
    server, tenant = unlimited
    result = fuzz("--vendor", "kudosnow", "--base-url", server.base_url("kudosnow"), *header_args(tenant, "kudosnow"),
                  "--no-positive", "--phases", "positive,examples", "--max-examples", "1")
    assert result.returncode == 0 and "Positive phase" not in result.stdout and "Examples" in result.stdout
