import pytest

from mockserver.testing import running
from tests.redis_server import RedisServer

pytest_plugins = ["pytester"]


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
