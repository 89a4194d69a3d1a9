"""The private names of Connexion and Schemathesis that mockserver.upstream uses still exist: an
upgrade that moves one fails here, and nowhere else needs looking at. Nothing else in the package
reaches into a library's private names."""

import ast
from pathlib import Path

import connexion.validators
import pytest

from mockserver import upstream

PACKAGE = Path(upstream.__file__).parent


@pytest.mark.parametrize("name", upstream.__all__)
def test_every_name_upstream_offers_is_there(name):
    assert getattr(upstream, name) is not None


@pytest.mark.parametrize("validator", [connexion.validators.JSONRequestBodyValidator,
                                       connexion.validators.FormDataValidator,
                                       connexion.validators.MultiPartFormDataValidator])
def test_connexions_body_validators_keep_the_members_used(validator):
    instance = validator(schema={"type": "object"}, required=False, nullable=False, encoding="utf-8",
                         strict_validation=False)
    for member in upstream.VALIDATOR_MEMBERS:
        assert hasattr(instance, member), f"{validator.__name__}.{member} is gone"


def test_expected_statuses_are_schemathesis_defaults():
    assert "2xx" in upstream.POSITIVE_EXPECTED_STATUSES and "400" in upstream.NEGATIVE_EXPECTED_STATUSES


def test_no_other_module_imports_a_private_name_of_connexion_or_schemathesis():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "upstream.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ("connexion", "schemathesis"):
                parts = (node.module or "").split(".") + [alias.name for alias in node.names]
                if any(part.startswith("_") for part in parts):
                    offenders.append(f"{path.relative_to(PACKAGE)}: from {node.module} import ...")
    assert offenders == []
