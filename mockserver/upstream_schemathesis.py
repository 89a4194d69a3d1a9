"""Every private name of Schemathesis this package uses, in one place; only `mockserver fuzz`
imports it (Schemathesis is the `fuzz` extra). Pinned in pyproject.toml and checked by
tests/test_upstream.py, as upstream.py is for Connexion."""

from schemathesis.config._checks import NegativeDataRejectionConfig, PositiveDataAcceptanceConfig

__all__ = ["POSITIVE_EXPECTED_STATUSES", "NEGATIVE_EXPECTED_STATUSES"]

# Schemathesis' default statuses for its positive and negative data checks, which `mockserver
# fuzz` extends (it cannot add to them through its public configuration).
POSITIVE_EXPECTED_STATUSES = PositiveDataAcceptanceConfig._DEFAULT_EXPECTED_STATUSES
NEGATIVE_EXPECTED_STATUSES = NegativeDataRejectionConfig._DEFAULT_EXPECTED_STATUSES
