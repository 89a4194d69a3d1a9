"""Contract fuzzing with Schemathesis, configured from a vendor's spec.

The same configuration drives the test suite (in process, against the ASGI app) and is meant for
users checking any server against our spec.
"""

import base64
import binascii

from schemathesis.config import SchemathesisConfig
from schemathesis.config._checks import PositiveDataAcceptanceConfig

from mockserver.vendor import Vendor


def auth_entries(vendor: Vendor, headers: dict[str, str]) -> dict:
    """Schemathesis `auth.openapi` entries for the vendor's security schemes, from ready-to-send headers."""
    sent = {name.lower(): value for name, value in headers.items()}
    entries = {}
    for name, scheme in vendor.spec.get("components", {}).get("securitySchemes", {}).items():
        if scheme["type"] == "apiKey" and scheme["in"] == "header" and scheme["name"].lower() in sent:
            entries[name] = {"api_key": sent[scheme["name"].lower()]}
        elif scheme["type"] == "http" and "authorization" in sent:
            kind, _, value = sent["authorization"].partition(" ")
            if kind.lower() == "bearer" == scheme["scheme"].lower():
                entries[name] = {"bearer": value}
            elif kind.lower() == "basic" == scheme["scheme"].lower():
                try:
                    username, _, password = base64.b64decode(value).decode().partition(":")
                except (binascii.Error, UnicodeDecodeError):
                    continue
                entries[name] = {"username": username, "password": password}
    return entries


def config(vendor: Vendor, headers: dict[str, str], *, max_examples: int = 25, seed: int = 0,
           base_url: str | None = None) -> SchemathesisConfig:
    """Every check on, a fixed seed and budget, and the vendor's documented exceptions.

    Operations may declare `x-semantic-errors`: statuses they document for schema-valid input
    refused by a business rule (Dailybot's empty receivers list is a 400); the positive-data check
    accepts those there and nowhere else. Unknown query parameters are not generated: the vendors
    (and we) ignore them, and the spec cannot say so.
    """
    operations = [
        {"include-operation-id": op_id,
         "checks": {"positive_data_acceptance": {"expected-statuses": [
             *PositiveDataAcceptanceConfig._DEFAULT_EXPECTED_STATUSES, *map(str, statuses)]}}}
        for op_id, operation in vendor.operations.items()
        if (statuses := operation.extensions.get("x-semantic-errors"))
    ]
    data = {
        "seed": seed,
        "generation": {"max-examples": max_examples, "deterministic": True, "allow-extra-parameters": False},
        "auth": {"openapi": auth_entries(vendor, headers)},
        "operations": operations,
    }
    if base_url:
        data["base-url"] = base_url
    return SchemathesisConfig.from_dict(data)
