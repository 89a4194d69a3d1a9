"""Every private name of Connexion this package uses, in one place (Schemathesis', which only
`mockserver fuzz` needs, are in upstream_schemathesis.py: the server runs without it).

Connexion is pinned (pyproject.toml); tests/test_upstream.py checks that each name below still
exists, so an upgrade that moves one fails there, loudly, and nowhere else. Handlers get their
arguments exactly as Connexion would pass them because its own argument mapping is used (not copied).
"""

import functools
from collections.abc import AsyncIterator, Callable
from typing import Any

from connexion.decorators.parameter import _get_body_argument_form as get_body_argument_form
from connexion.decorators.parameter import _get_file_arguments as get_file_arguments
from connexion.decorators.parameter import _get_query_defaults as get_query_defaults
from connexion.decorators.parameter import _get_val_from_param as get_val_from_param
from connexion.validators import AbstractRequestBodyValidator
from starlette.types import Scope

__all__ = ["get_body_argument_form", "get_file_arguments", "get_query_defaults", "get_val_from_param",
           "body_schema", "body_nullable", "validate_body", "parse_body", "compiled_once"]

# Members of Connexion's request body validators (connexion.validators) used here.
VALIDATOR_MEMBERS = ("_schema", "_nullable", "_validate", "_parse", "_validator")


def compiled_once(validator_class: type[AbstractRequestBodyValidator],
                  build: Callable[[dict[str, Any]], Any]) -> type[AbstractRequestBodyValidator]:
    """A subclass of one of Connexion's body validators whose (private) `_validator`, the schema
    validator it checks bodies with, is `build(schema)`, made once per operation."""
    member = functools.cached_property(lambda self: build(self._schema))
    return type(validator_class.__name__, (validator_class,), {"_validator": member})


def body_schema(validator: AbstractRequestBodyValidator) -> dict[str, Any]:
    schema: dict[str, Any] = validator._schema
    return schema


def body_nullable(validator: AbstractRequestBodyValidator) -> bool:
    return bool(validator._nullable)


def validate_body(validator: AbstractRequestBodyValidator, data: object) -> None:
    validator._validate(data)


async def parse_body(validator: AbstractRequestBodyValidator, stream: AsyncIterator[bytes], scope: Scope) -> Any:
    return await validator._parse(stream, scope)
