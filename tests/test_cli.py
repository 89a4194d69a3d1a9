"""`mockserver serve` as a user runs it: a real process, real port, same seed same bytes."""

import os
import subprocess
import sys
import time

import httpx
import pytest

from mockserver.tenants import DEFAULT_TENANT
from tests.served import Served

DEFAULT_KARMABOT_KEY = "krm_1_d020104626bf82b1420f719a67ad9420"  # documented in README.md


def snapshot(served: Served) -> bytes:
    """Default tenant and a created tenant, bodies as served."""
    created = httpx.post(served.url + "/__admin/tenants").content
    tenants = [DEFAULT_TENANT, "tenant-2"]
    states = b"".join(httpx.get(f"{served.url}/__admin/tenants/{t}/state").content for t in tenants)
    users = httpx.get(served.url + "/karmabot/api/v1/users",
                      headers={"Authorization": f"Bearer {DEFAULT_KARMABOT_KEY}"}).content
    return created + states + users


def test_same_seed_gives_byte_identical_data_across_starts():
    snapshots = []
    for _ in range(2):
        served = Served("--seed", "7", "--clock", "frozen")
        try:
            snapshots.append(snapshot(served))
        finally:
            served.stop()
    assert snapshots[0] == snapshots[1]
    other = Served("--seed", "8", "--clock", "frozen")
    try:
        assert snapshot(other) != snapshots[0]
    finally:
        other.stop()


def test_serve_prints_urls_and_default_credentials_which_work():
    served = Served()
    try:
        response = httpx.get(served.url + "/karmabot/api/v1/channels",
                             headers={"Authorization": f"Bearer {DEFAULT_KARMABOT_KEY}"})
        assert response.status_code == 200
    finally:
        output = served.stop()
    assert f"{served.url}/karmabot/api/v1" in output
    assert DEFAULT_KARMABOT_KEY in output


def test_ticking_clock_passes_time_from_the_fixed_start():
    served = Served()
    try:
        first = httpx.post(served.url + "/__admin/tenants/default/clock", json={"advance_seconds": 0}).json()["now"]
        time.sleep(1.1)
        second = httpx.post(served.url + "/__admin/tenants/default/clock", json={"advance_seconds": 0}).json()["now"]
    finally:
        served.stop()
    assert first.startswith("2026-01-01T00:00:") and second > first


def test_vendor_option_selects_vendors_and_rejects_unknown():
    served = Served("--vendor", "karmabot")
    try:
        assert httpx.get(served.url + "/__admin/health").json()["vendors"] == ["karmabot"]
    finally:
        served.stop()
    result = subprocess.run([sys.executable, "-m", "mockserver", "serve", "--vendor", "nope"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0 and "unknown vendor" in result.stderr


def test_readme_documents_every_default_credential():
    from mockserver import MockServer

    readme = open(os.path.join(os.path.dirname(__file__), "..", "README.md")).read()
    assert "mockserver serve" in readme
    for vendor, credentials in MockServer().store.tenants[DEFAULT_TENANT].credentials().items():
        for header, value in credentials["headers"].items():
            assert f"{header}: {value}" in readme, vendor


@pytest.mark.parametrize("vendor", ["karmabot"])
def test_default_tenant_key_is_fixed_whatever_the_seed(vendor):
    from mockserver import MockServer

    keys = {MockServer(seed=seed).store.tenants[DEFAULT_TENANT].credentials()[vendor]["api_key"] for seed in (0, 1, 99)}
    assert keys == {DEFAULT_KARMABOT_KEY}


def test_the_readme_names_exactly_the_default_credentials_that_change_with_the_seed():
    from mockserver import MockServer

    by_seed = [MockServer(seed=seed).store.tenants[DEFAULT_TENANT].credentials() for seed in (0, 1)]
    changing = sorted(vendor for vendor in by_seed[0] if by_seed[0][vendor]["headers"] != by_seed[1][vendor]["headers"])
    assert changing == ["corteza", "dailybot"]
    readme = open(os.path.join(os.path.dirname(__file__), "..", "README.md")).read()
    assert "except\ntwo: Dailybot's key" in readme and "and Corteza's token" in readme
