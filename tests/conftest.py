import logging
import os

import pytest

from mockserver import answercheck
from mockserver.testing import running
from tests.redis_server import RedisServer
from tests.served import Served

pytest_plugins = ["pytester"]

# Every server the suite starts checks its own answers against its spec: those made in this process
# (MockServer's default) and `mockserver serve` subprocesses (which inherit the environment).
os.environ[answercheck.VARIABLE] = "1"


class DriftLog(logging.Handler):
    """The answer drifts the servers in this process log (logger `mockserver.answers`)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


DRIFTS = DriftLog()
answercheck.logger.addHandler(DRIFTS)



def _drift_mark() -> tuple[int, list[int]]:
    return len(DRIFTS.lines), [len(served.drifts()) for served in Served.started]


def _drifts_since(mark: tuple[int, list[int]]) -> list[str]:
    own, theirs = mark
    found = DRIFTS.lines[own:]
    for index, served in enumerate(Served.started):
        found += served.drifts()[theirs[index] if index < len(theirs) else 0:]
    return found


@pytest.fixture(autouse=True)
def _answers_keep_to_the_spec(request):
    """A test during which any server answered outside its own spec fails (at teardown), naming
    the drift; a test about drift itself takes `answer_drifts` and judges them."""
    mark = _drift_mark()
    yield
    drifted = _drifts_since(mark)
    if drifted and "answer_drifts" not in request.fixturenames:
        pytest.fail("the mock answered outside its spec:\n" + "\n".join(drifted), pytrace=False)


@pytest.fixture
def answer_drifts():
    """`answer_drifts()`: the drifts logged since the test began, for tests that cause them on purpose."""
    mark = _drift_mark()
    return lambda: _drifts_since(mark)


@pytest.fixture(scope="session")
def server():
    """One server per test process; every test works in a tenant of its own. The clock is frozen
    so time moves only when a test says so."""
    with running(seed=0, ticking=False) as server:
        yield server


@pytest.fixture(autouse=True)
def _tenants_deleted_after_each_test(request):
    """Tenants a test creates on the session server are deleted after it: the suite leaks none."""
    if "server" not in request.fixturenames:
        yield
        return
    server = request.getfixturevalue("server")

    def tenant_ids() -> set[str]:
        return {entry["tenant"] for entry in server.admin.get("/__admin/tenants").json()["tenants"]}

    before = tenant_ids()
    yield
    for tenant_id in tenant_ids() - before:
        server.admin.delete(f"/__admin/tenants/{tenant_id}").raise_for_status()


@pytest.fixture
def tenant(server):
    return server.new_tenant()


@pytest.fixture
def karma(tenant):
    with tenant.client("karmabot") as client:
        yield client


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """A private redis-server for the tests of workers sharing state (see tests/redis_server.py)."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server.url
    server.stop()
