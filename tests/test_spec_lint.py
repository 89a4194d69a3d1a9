"""Every spec passes the ecosystem's linters, Spectral (`spectral:oas`, .spectral.yaml) and Redocly
(`recommended`, redocly.yaml), with no error and no warning: the rules turned off are turned off in
those files, each with its reason.

The linters are npm packages pinned in package.json / package-lock.json. CI installs them (`npm ci`
in .ci/run); where they are not installed yet, the first test installs them the same way, so the
check never silently goes missing (without npm it fails, saying so).
"""

import fcntl
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
BIN = ROOT / "node_modules" / ".bin"
QUIET = os.environ | {"REDOCLY_TELEMETRY": "off", "NO_COLOR": "1"}


@pytest.fixture(scope="module")
def linters() -> Path:
    """node_modules/.bin with both linters, installed from the lock file if need be (one process at a
    time: pytest-xdist runs two)."""
    with open(ROOT / "package-lock.json") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ((BIN / "spectral").exists() and (BIN / "redocly").exists()):
            npm = shutil.which("npm")
            assert npm, "the spec linters are npm packages: install Node.js 20+ and run `npm ci`"
            subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=ROOT, check=True, capture_output=True,
                           timeout=600)
    return BIN


@pytest.mark.parametrize("spec", SPECS, ids=lambda path: path.stem)
def test_spectral_finds_nothing(linters, spec):
    report = subprocess.run([linters / "spectral", "lint", str(spec.relative_to(ROOT)), "--format", "json",
                             "--output", "/dev/stdout", "--quiet"], cwd=ROOT, capture_output=True, text=True,
                            env=QUIET, timeout=120)
    findings = json.loads(report.stdout or "[]")
    assert [f"{spec.name}:{item['range']['start']['line'] + 1} {item['code']}: {item['message']}"
            for item in findings] == [], report.stderr


@pytest.mark.parametrize("spec", SPECS, ids=lambda path: path.stem)
def test_redocly_finds_nothing(linters, spec):
    # By the API's name in redocly.yaml, so its own rules there apply.
    report = subprocess.run([linters / "redocly", "lint", spec.stem, "--format", "json"], cwd=ROOT,
                            capture_output=True, text=True, env=QUIET, timeout=120)
    problems = json.loads(report.stdout)["problems"]
    assert [f"{spec.name} {problem['ruleId']}: {problem['message']}" for problem in problems] == [], report.stderr
