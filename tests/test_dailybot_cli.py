"""The official Dailybot CLI (`dailybot-cli` from PyPI), unchanged, against the mock: installed into
a virtual environment of its own, pointed at the mock with DAILYBOT_API_URL and a tenant's key."""

import json
import os
import subprocess
import sys
import venv

import pytest

CLI = "dailybot-cli==3.27.13"
UNREACHABLE = ("Could not find a version", "No matching distribution", "ConnectionError", "Network is unreachable",
               "Temporary failure in name resolution", "Max retries exceeded")


@pytest.fixture(scope="module")
def dailybot(tmp_path_factory):
    """The `dailybot` command of the official CLI (skipped only when the package registry cannot
    be reached)."""
    home = tmp_path_factory.mktemp("dailybot-cli")
    venv.create(home / "venv", with_pip=False)  # this pip installs into it (--python): no ensurepip, 3 s less
    installed = subprocess.run([sys.executable, "-m", "pip", "--python", str(home / "venv" / "bin" / "python"),
                                "install", "-q", CLI],
                               capture_output=True, text=True, timeout=600)
    if installed.returncode != 0:
        if any(sign in installed.stderr for sign in UNREACHABLE):
            pytest.skip(f"the package registry is unreachable, so {CLI} cannot be installed: "
                        f"{installed.stderr.strip().splitlines()[-1]}")
        raise AssertionError(installed.stderr)
    return home


@pytest.fixture
def run(dailybot, server):
    tenant = server.new_tenant(rate_limits=False)
    env = os.environ | {"HOME": str(dailybot), "DAILYBOT_API_KEY": tenant.credentials["dailybot"]["api_key"],
                        "DAILYBOT_API_URL": server.base_url("dailybot").removesuffix("/v1")}

    def command(*arguments: str):
        done = subprocess.run([dailybot / "venv" / "bin" / "dailybot", *arguments, "--json"], env=env,
                              capture_output=True, text=True, timeout=120, cwd=dailybot)
        assert done.returncode == 0, done.stdout + done.stderr
        return json.loads(done.stdout)

    command.tenant = tenant
    return command


def test_me_and_the_directory(run):
    state = run.tenant.state("dailybot")
    me = run("me")
    assert me["uuid"] == run.tenant.credentials["dailybot"]["user_uuid"] == state["users"][0]["uuid"]
    assert me["full_name"] == state["users"][0]["full_name"]
    assert [user["uuid"] for user in run("user", "list")] == [user["uuid"] for user in state["users"]]
    assert [team["name"] for team in run("team", "list")] == [team["name"] for team in state["teams"]]


def test_kudos_give_to_a_user_and_to_a_team_then_list_them(run):
    state = run.tenant.state("dailybot")
    before = len(state["kudos"])
    someone = state["users"][3]
    given = run("kudos", "give", "--to", someone["full_name"], "--message", "Great release", "--yes")
    after = run.tenant.state("dailybot")["kudos"]
    assert len(after) == before + 1 and after[-1]["id"] == given["id"]
    assert [receiver["uuid"] for receiver in after[-1]["receivers"]] == [someone["uuid"]]

    run.tenant.advance(60)
    team = next(team for team in state["teams"] if state["users"][0]["uuid"] not in
                [member["uuid"] for member in team["members"]])
    to_team = run("kudos", "give", "--team", team["name"], "--message", "Shipped", "--yes")
    active = [member["uuid"] for member in team["members"] if member["is_active"]]
    latest = run.tenant.state("dailybot")["kudos"][-1]
    assert latest["id"] == to_team["id"] and [receiver["uuid"] for receiver in latest["receivers"]] == active

    page = run("kudos", "list", "--filter", "given", "--page", "1", "--page-size", "2", "--since", "2026-01-01")
    assert [kudo["id"] for kudo in page] == [to_team["id"], given["id"]]
