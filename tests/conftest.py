pytest_plugins = ["pytester"]

import pytest

from mockserver.testing import running


@pytest.fixture(scope="session")
def server():
    """One server per test process; every test works in a tenant of its own. The clock is frozen
    so time moves only when a test says so."""
    with running(seed=0, ticking=False) as server:
        yield server


@pytest.fixture
def tenant(server):
    return server.new_tenant()


@pytest.fixture
def karma(tenant):
    with tenant.client("karmabot") as client:
        yield client
