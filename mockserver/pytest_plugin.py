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
"""

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from mockserver.testing import RunningServer, TenantHandle


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mockserver")
    group.addoption("--mockserver-url", default=os.environ.get("MOCKSERVER_URL"),
                    help="Use the mockserver at this URL instead of starting one in-process.")
    group.addoption("--mockserver-seed", type=int, default=0, help="Seed of the in-process mockserver.")
    group.addoption("--mockserver-admin-token", default=os.environ.get("MOCKSERVER_ADMIN_TOKEN"),
                    help="The admin token of the server given by --mockserver-url, if it has one.")


@pytest.fixture(scope="session")
def mockserver(request: pytest.FixtureRequest) -> Iterator["RunningServer"]:
    """The session's server (`RunningServer`): `url`, `base_url(vendor)`, `new_tenant()`."""
    from mockserver.testing import connect, running  # here, not at import: the plugin costs nothing until used

    url = request.config.getoption("mockserver_url")
    if url:
        try:
            server = connect(url, request.config.getoption("mockserver_admin_token"))
        except Exception as exc:  # one clear message for the session, not a traceback per test
            pytest.exit(f"mockserver: the server at {url} (--mockserver-url / MOCKSERVER_URL) cannot be used: {exc}",
                        returncode=pytest.ExitCode.USAGE_ERROR)
        yield server
        server.close()
        return
    with running(seed=request.config.getoption("mockserver_seed"), ticking=False) as server:
        yield server


@pytest.fixture
def mockserver_tenant(mockserver: "RunningServer") -> Iterator["TenantHandle"]:
    """A fresh tenant (`TenantHandle`) for one test, deleted after it."""
    tenant = mockserver.new_tenant()
    yield tenant
    tenant.delete()
