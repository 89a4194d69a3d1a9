"""pytest plugin (installed with the package): a mockserver for the test session, a fresh
tenant for each test.

    def test_karma(mockserver_tenant):
        with mockserver_tenant.client("karmabot") as karma:
            assert karma.get("/users").status_code == 200

The server starts in-process on a free port with a frozen clock (move it with
`mockserver_tenant.advance(seconds)`); `--mockserver-url URL` (or MOCKSERVER_URL) uses a server
that already runs instead (with `--mockserver-admin-token` or MOCKSERVER_ADMIN_TOKEN when it
has an admin token). Under pytest-xdist each worker gets its own server, or shares the one
given by URL; tenants keep the tests apart either way.

`--mockserver-coverage[=FILE]` reports which documented operations and statuses the run
exercised: a table at the end, JSON in FILE (mockserver-coverage.json) and JUnit XML beside it
(.xml); `--mockserver-coverage-fail-under N` fails the run below N percent of the documented
operations of the vendors it called. It counts the tenants the run made (reset or deleted ones
included) and, of a server it started, every request.
"""

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from mockserver import ADMIN_TOKEN_VARIABLE

if TYPE_CHECKING:
    from mockserver.testing import RunningServer, TenantHandle


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mockserver")
    group.addoption("--mockserver-url", default=os.environ.get("MOCKSERVER_URL"),
                    help="Use the mockserver at this URL instead of starting one in-process.")
    group.addoption("--mockserver-seed", type=int, default=0, help="Seed of the in-process mockserver.")
    group.addoption("--mockserver-admin-token", default=os.environ.get(ADMIN_TOKEN_VARIABLE),
                    help="The admin token of the server given by --mockserver-url, if it has one.")
    group.addoption("--mockserver-coverage", nargs="?", const="mockserver-coverage.json", metavar="FILE",
                    help="Report the documented operations and statuses the run exercised: a table, JSON in FILE "
                         "(default mockserver-coverage.json) and JUnit XML beside it (.xml).")
    group.addoption("--mockserver-coverage-fail-under", type=float, metavar="PERCENT",
                    help="Fail the run when fewer of the documented operations of the vendors it called were exercised.")


COVERAGE = pytest.StashKey[dict[str, Any]]()  # the run's coverage report, once known


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("mockserver_coverage_fail_under") is not None and not config.getoption("mockserver_coverage"):
        config.option.mockserver_coverage = "mockserver-coverage.json"  # a bound needs the report
    path = config.getoption("mockserver_coverage")
    if path and not path.endswith(".json"):  # e.g. `--mockserver-coverage tests/`: a test path, not to overwrite
        raise pytest.UsageError(f"--mockserver-coverage: {path!r} is not a .json file; write "
                                "--mockserver-coverage=FILE.json, or give test paths before the option")


@pytest.fixture(scope="session")
def mockserver(request: pytest.FixtureRequest) -> Iterator["RunningServer"]:
    """The session's server (`RunningServer`): `url`, `base_url(vendor)`, `new_tenant()`."""
    from mockserver.testing import connect, running  # here, not at import: the plugin costs nothing until used

    config = request.config
    url = config.getoption("mockserver_url")
    if url:
        try:
            server = connect(url, config.getoption("mockserver_admin_token"))
        except Exception as exc:  # one clear message for the session, not a traceback per test
            pytest.exit(f"mockserver: the server at {url} (--mockserver-url / MOCKSERVER_URL) cannot be used: {exc}",
                        returncode=pytest.ExitCode.USAGE_ERROR)
        yield from _covered(server, config)
        server.close()
        return
    with running(seed=config.getoption("mockserver_seed"), ticking=False) as server:
        yield from _covered(server, config)


def _covered(server: "RunningServer", config: pytest.Config) -> Iterator["RunningServer"]:
    """The server for the session; with --mockserver-coverage, the run's coverage read at its end."""
    if not config.getoption("mockserver_coverage"):
        yield server
        return
    server.collect_coverage()
    yield server
    config.stash[COVERAGE] = server.run_coverage()


@pytest.fixture
def mockserver_tenant(mockserver: "RunningServer") -> Iterator["TenantHandle"]:
    """A fresh tenant (`TenantHandle`) for one test, deleted after it."""
    tenant = mockserver.new_tenant()
    yield tenant
    tenant.delete()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """pytest-xdist: a worker's coverage added to the run's."""
    from mockserver.coverage import merge

    sent = getattr(node, "workeroutput", {}).get("mockserver_coverage")
    if sent:
        config = node.config
        config.stash[COVERAGE] = merge(config.stash.get(COVERAGE, {"tenant": None, "vendors": {}}), json.loads(sent))


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The run's coverage: sent on by an xdist worker; else written, and held to the bound."""
    from mockserver import coverage

    config = session.config
    report = config.stash.get(COVERAGE, None)
    if not config.getoption("mockserver_coverage") or report is None:
        return
    if hasattr(config, "workeroutput"):
        config.workeroutput["mockserver_coverage"] = json.dumps(report)
        return
    path = Path(config.getoption("mockserver_coverage"))
    path.write_text(json.dumps(report, indent=2))
    path.with_suffix(".xml").write_text(coverage.junit(report))
    bound = config.getoption("mockserver_coverage_fail_under")
    if bound is not None and coverage.exercised_percent(report) < bound and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    from mockserver import coverage

    report = config.stash.get(COVERAGE, None)
    if not config.getoption("mockserver_coverage") or hasattr(config, "workeroutput"):
        return
    terminalreporter.section("mockserver API coverage")
    if report is None:
        terminalreporter.write_line("no test used the mockserver fixtures")
        return
    terminalreporter.write_line(coverage.text(report))
    path = Path(config.getoption("mockserver_coverage"))
    exercised, bound = coverage.exercised_percent(report), config.getoption("mockserver_coverage_fail_under")
    line = f"{exercised:.1f}% of the documented operations of the vendors called; written to {path} and " \
           f"{path.with_suffix('.xml')}"
    if bound is not None and exercised < bound:
        line += f"; FAIL: under --mockserver-coverage-fail-under {bound:g}"
    terminalreporter.write_line(line, red=bound is not None and exercised < bound)
