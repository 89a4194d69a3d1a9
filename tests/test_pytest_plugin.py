"""The pytest plugin as its users see it: in a pytest run of its own over a small test file (in
this process, as the plugin loads from its entry point there too; under xdist, in processes of
their own)."""

import pytest

from mockserver.testing import running

TESTS = '''
def test_one(mockserver_tenant):
    with mockserver_tenant.client("karmabot") as karma:
        users = karma.get("/users").json()["users"]
        assert karma.post("/pluses", json={"user_ids": [users[1]["id"]], "from_id": users[0]["id"]}).status_code == 201
    assert len(mockserver_tenant.state("karmabot")["pluses"]) == 1
    assert mockserver_tenant.verify(vendor="karmabot", operation="createPlus") == 1
    assert mockserver_tenant.verify(vendor="karmabot", operation="createPlus", body={"from_id": users[0]["id"]}) == 1
    assert mockserver_tenant.verify(vendor="karmabot", operation="createPlus", body={"from_id": 1}) == 0

def test_two(mockserver_tenant):
    assert mockserver_tenant.state("karmabot")["pluses"] == []  # its own tenant
    assert mockserver_tenant.advance(60) == "2026-01-01T00:01:00Z"
    assert set(mockserver_tenant.base_urls) == {"karmabot", "dailybot", "community", "corteza", "kudosnow"}
    assert mockserver_tenant.requests() == []

def test_three(mockserver_tenant, mockserver):
    other = mockserver.new_tenant()
    assert other.id != mockserver_tenant.id

def test_four(mockserver_tenant):
    with mockserver_tenant.client("dailybot") as daily:
        assert daily.get("/kudos/").status_code == 200
'''


def test_fixtures_give_each_test_a_tenant_of_its_own(pytester):
    pytester.makepyfile(TESTS)
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=4)


def test_works_under_xdist(pytester):
    pytester.makepyfile(TESTS)
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2").assert_outcomes(passed=4)


def test_uses_a_running_server_given_by_url(pytester):
    with running(ticking=False) as server:
        pytester.makepyfile(TESTS)
        result = pytester.runpytest_inprocess("-p", "no:cacheprovider", f"--mockserver-url={server.url}")
        result.assert_outcomes(passed=4)
        tenants = server.admin.get("/__admin/tenants").json()["tenants"]
        assert [t["tenant"] for t in tenants] == ["default", "tenant-5"]  # test_three's extra tenant stays


def test_passes_the_admin_token_of_a_running_server(pytester, monkeypatch):
    with running(ticking=False, admin_token="s3cret") as server:
        pytester.makepyfile(TESTS)
        refused = pytester.runpytest_inprocess("-p", "no:cacheprovider", f"--mockserver-url={server.url}")
        assert refused.ret != 0  # no token: the admin API says 401
        monkeypatch.setenv("MOCKSERVER_ADMIN_TOKEN", "s3cret")
        pytester.runpytest_inprocess("-p", "no:cacheprovider", f"--mockserver-url={server.url}").assert_outcomes(
            passed=4)


def test_an_unreachable_server_is_one_clear_error(pytester):
    pytester.makepyfile(TESTS)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--mockserver-url=http://127.0.0.1:9")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    output = result.stdout.str() + result.stderr.str()
    assert output.count("http://127.0.0.1:9") >= 1 and "Traceback" not in output


def test_tenant_helpers_for_faults_and_reset(pytester):
    pytester.makepyfile('''
def test_helpers(mockserver_tenant, mockserver):
    fault = mockserver_tenant.fault("karmabot", status=503, count=1)
    assert fault["tenant"] == mockserver_tenant.id
    with mockserver_tenant.client("karmabot") as karma:
        assert karma.get("/users").status_code == 503
        users = karma.get("/users").json()["users"]
        assert karma.post("/pluses", json={"from_id": users[0]["id"], "user_ids": [users[1]["id"]]}).status_code == 201
    mockserver_tenant.reset()
    assert mockserver_tenant.state("karmabot")["pluses"] == [] and mockserver_tenant.requests() == []
''')
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_a_refused_helper_call_says_what_the_server_said():
    from mockserver.testing import MockserverError

    with running(ticking=False) as server:
        tenant = server.new_tenant()
        assert repr(tenant) == f"TenantHandle({tenant.id!r})"
        with pytest.raises(MockserverError) as refused:
            tenant.verify(vendor="community", operation="createPosts")
        assert refused.value.status == 400
        assert refused.value.message.startswith("unknown operation 'createPosts' of community; known: ")
        assert "answered 400: unknown operation 'createPosts'" in str(refused.value)
        with pytest.raises(MockserverError, match="needs a status from 400 to 599"):
            tenant.fault("karmabot", status="teapot")


def test_clean_under_warnings_as_errors_and_a_running_server_needs_none_of_the_servers_code(pytester, monkeypatch):
    pytester.makepyfile('''
import sys

def test_it(mockserver_tenant):
    with mockserver_tenant.client("karmabot") as karma:
        assert karma.get("/users").status_code == 200
    if "--mockserver-url" in " ".join(sys.argv):
        assert "mockserver.app" not in sys.modules and "connexion" not in sys.modules
''')
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)  # a run of its own, not one of this suite's workers
    quiet = ("-p", "no:cacheprovider", "-p", "no:benchmark", "-W", "error")  # pytest-benchmark's warnings are not ours
    pytester.runpytest_subprocess(*quiet).assert_outcomes(passed=1)
    with running(ticking=False) as server:
        pytester.runpytest_subprocess(*quiet, f"--mockserver-url={server.url}").assert_outcomes(passed=1)
