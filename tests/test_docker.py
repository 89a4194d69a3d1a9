"""The commands the Dockerfile and compose.yaml run, run here (no Docker engine on this machine):
the server command, then the health check against it."""

import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

from tests.served import free_port

ROOT = Path(__file__).parent.parent


def dockerfile_json(instruction: str) -> list[str]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return json.loads(re.search(rf"^{instruction}\b.*?(\[.*\])\s*$", text, re.M).group(1))


def on_port(command: list[str], port: int) -> list[str]:
    return [str(port) if part == "8080" else part.replace(":8080/", f":{port}/") for part in command]


def serve_then_check(serve: list[str], check: list[str], tmp_path) -> None:
    port = free_port()
    assert serve[0] == "mockserver"
    server = subprocess.Popen([sys.executable, "-m", "mockserver", *on_port(serve, port)[1:]], cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if subprocess.run(on_port(check, port), capture_output=True).returncode == 0:
                return
            subprocess.run(["sleep", "0.1"])
        raise AssertionError("the health check never passed")
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_dockerfile_cmd_serves_and_its_healthcheck_passes(tmp_path):
    healthcheck = dockerfile_json("HEALTHCHECK")  # the command after HEALTHCHECK ... CMD
    assert healthcheck[0] == "python"
    serve_then_check(dockerfile_json("CMD"), [sys.executable, *healthcheck[1:]], tmp_path)


def test_dockerfile_runs_as_a_non_root_user():
    assert re.search(r"^USER (?!root)\w+", (ROOT / "Dockerfile").read_text(), re.M)


def test_compose_example_serves_with_a_state_file(tmp_path):
    service = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]["mockserver"]
    command = [part.replace("/data/", f"{tmp_path}/") for part in service["command"]]
    check = service["healthcheck"]["test"][1:]
    assert check[0] == "python"
    assert command[command.index("--state-file") + 1] == f"{tmp_path}/state.db"
    serve_then_check(command, [sys.executable, *check[1:]], tmp_path)


def test_the_readme_ci_recipe_works(tmp_path):
    """The GitHub Actions steps the README shows, from the install on (the checkout aside), on a
    free port: the server starts, the health wait ends, and a test run with the plugin passes."""
    readme = (ROOT / "README.md").read_text()
    recipe = yaml.safe_load(re.search(r"```yaml\n# GitHub Actions\n(.*?)```", readme, re.S).group(1))
    steps = [step for step in recipe["steps"] if "run" in step]
    install, serve, wait, test = (step["run"] for step in steps)
    assert install == "python3 -m pip install ./mockserver"  # this checkout is installed already
    port = str(free_port())
    (tmp_path / "test_it.py").write_text(
        "def test_it(mockserver_tenant):\n"
        "    with mockserver_tenant.client('karmabot') as karma:\n"
        "        assert karma.get('/users').status_code == 200\n")
    environment = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
                   **{key: value.replace("8080", port) for key, value in steps[-1]["env"].items()}}
    server = subprocess.Popen(["sh", "-c", serve.replace("8080", port)], cwd=tmp_path, env=environment)
    try:
        assert subprocess.run(["sh", "-c", wait.replace("8080", port)], cwd=tmp_path, env=environment).returncode == 0
        done = subprocess.run(["sh", "-c", test + " -p no:cacheprovider"], cwd=tmp_path, env=environment,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout[-2000:]
        assert "mockserver API coverage" in done.stdout
        covered = json.loads((tmp_path / "mockserver-coverage.json").read_text())
        assert covered["vendors"]["karmabot"]["summary"]["calls"] == 1
    finally:
        subprocess.run(["pkill", "-f", f"mockserver serve --port {port}"])
        server.wait(timeout=10)
