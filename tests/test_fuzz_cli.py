"""`mockserver fuzz`: the same contract checks against any server, for users' CI pipelines."""

import subprocess
import sys
import xml.etree.ElementTree as ElementTree

import pytest
from click.testing import CliRunner

from mockserver.cli import main
from mockserver.testing import running
from tests.drifting import DriftingProxy


@pytest.fixture(scope="module")
def unlimited():
    with running(ticking=False) as server:
        yield server, server.new_tenant(rate_limits=False)


def fuzz(*args):
    return subprocess.run([sys.executable, "-m", "mockserver", "fuzz", "--max-examples", "5", *args],
                          capture_output=True, text=True, timeout=600)


def header_args(tenant, vendor):
    return [arg for name, value in tenant.credentials[vendor]["headers"].items()
            for arg in ("--header", f"{name}: {value}")]


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
    with DriftingProxy(server.base_url(vendor).removesuffix(path), **drift) as proxy:
        result = fuzz("--vendor", vendor, "--base-url", proxy.url + path, *header_args(tenant, vendor),
                      "--phases", "positive", "--junit", str(report))
    assert result.returncode != 0
    assert "Test Phases" not in result.stdout  # Schemathesis' phases were not asked for
    failing = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert any(finding in line for line in failing), result.stdout[-3000:]
    positive = ElementTree.parse(report).getroot().find("testsuite[@name='positive phase']")
    assert [case.get("name") for case in positive if case.find("failure") is not None] == [
        line.split(" ", 2)[2].strip() for line in failing]


def test_without_the_positive_phase(unlimited):
    server, tenant = unlimited
    result = fuzz("--vendor", "kudosnow", "--base-url", server.base_url("kudosnow"), *header_args(tenant, "kudosnow"),
                  "--no-positive", "--phases", "positive,examples", "--max-examples", "1")
    assert result.returncode == 0 and "Positive phase" not in result.stdout and "Examples" in result.stdout
