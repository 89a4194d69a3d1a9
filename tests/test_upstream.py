"""The private names of Connexion (mockserver.upstream) and Schemathesis
(mockserver.upstream_schemathesis) the package uses still exist: an upgrade that moves one fails
here, and nowhere else needs looking at. Nothing else in the package reaches into a library's
private names, and the server runs without Schemathesis (the `fuzz` extra)."""

import ast
import subprocess
import sys
from pathlib import Path

import connexion.validators
import pytest

from mockserver import upstream, upstream_schemathesis

PACKAGE = Path(upstream.__file__).parent
FENCES = {"upstream.py": "connexion", "upstream_schemathesis.py": "schemathesis"}


@pytest.mark.parametrize("module, name", [(module, name) for module in (upstream, upstream_schemathesis)
                                          for name in module.__all__])
def test_every_name_upstream_offers_is_there(module, name):
    assert getattr(module, name) is not None


@pytest.mark.parametrize("validator", [connexion.validators.JSONRequestBodyValidator,
                                       connexion.validators.FormDataValidator,
                                       connexion.validators.MultiPartFormDataValidator])
def test_connexions_body_validators_keep_the_members_used(validator):
    instance = validator(schema={"type": "object"}, required=False, nullable=False, encoding="utf-8",
                         strict_validation=False)
    for member in upstream.VALIDATOR_MEMBERS:
        assert hasattr(instance, member), f"{validator.__name__}.{member} is gone"


def test_expected_statuses_are_schemathesis_defaults():
    assert "2xx" in upstream_schemathesis.POSITIVE_EXPECTED_STATUSES
    assert "400" in upstream_schemathesis.NEGATIVE_EXPECTED_STATUSES


def test_no_other_module_imports_a_private_name_of_connexion_or_schemathesis():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            library = (getattr(node, "module", None) or "").split(".")[0]
            if isinstance(node, ast.ImportFrom) and library in ("connexion", "schemathesis") \
                    and FENCES.get(path.name) != library:
                parts = (node.module or "").split(".") + [alias.name for alias in node.names]
                if any(part.startswith("_") for part in parts):
                    offenders.append(f"{path.relative_to(PACKAGE)}: from {node.module} import ...")
    assert offenders == []


def test_the_server_runs_without_schemathesis():
    """`pip install .` (no extras) then `mockserver serve`: nothing the server imports needs the fuzz extra."""
    hide = "import sys; sys.modules['schemathesis'] = None; "
    served = subprocess.run([sys.executable, "-c", hide + "from mockserver.testing import running\n"
                             "import mockserver.cli, mockserver.proxy, mockserver.replay\n"
                             "with running() as s:\n"
                             "    with s.new_tenant().client('karmabot') as karma: print(karma.get('/users').status_code)"],
                            capture_output=True, text=True, timeout=60)
    assert served.stdout.strip() == "200", served.stderr[-2000:]
    fuzz = subprocess.run([sys.executable, "-c", hide + "from mockserver.cli import main; main()", "fuzz", "--vendor",
                           "karmabot", "--base-url", "http://127.0.0.1:9"], capture_output=True, text=True, timeout=60)
    assert fuzz.returncode == 2 and "pip install 'mockserver[fuzz]'" in fuzz.stderr
