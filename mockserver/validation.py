"""Request validation: Connexion's rules, honouring `readOnly`, with a compiled fast path.

Connexion 3 ignores `readOnly`, so a property that is both required and read-only (an id the
server assigns) would be demanded in requests. These validators skip such properties when
checking `required`; everything else is Connexion's own validation.

Valid input, the common case, is accepted by jsonschema-rs (compiled, Draft 4); anything it
rejects is judged and worded by the Python validator with the rules above.
"""

import json
from collections.abc import Iterator
from typing import Any

import jsonschema_rs
from connexion.datastructures import MediaTypeDict
from connexion.json_schema import Draft4RequestValidator
from connexion.validators import (
    FormDataValidator,
    JSONRequestBodyValidator,
    MultiPartFormDataValidator,
)
from jsonschema import Draft4Validator, ValidationError
from jsonschema.validators import extend

from mockserver import upstream
from mockserver.errors import MAX_QUOTED


def _required_unless_read_only(validator: Any, required: list[str], instance: Any,
                               schema: dict[str, Any]) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    properties = schema.get("properties", {})
    for name in required:
        if name not in instance and not properties.get(name, {}).get("readOnly", False):
            yield ValidationError(f"{name!r} is a required property")


RequestValidator = extend(Draft4RequestValidator, {"required": _required_unless_read_only})


class QuickValidator:
    """`validate(instance)` as RequestValidator (or the `full` Draft 4 validator class given) has
    it, fast for valid input. The Rust validator is never the more lenient of the two (it knows
    neither OpenAPI's `nullable` nor the readOnly rule, both of which only allow more), so only
    its acceptance is final."""

    def __init__(self, schema: dict[str, Any], full: type[Draft4Validator] | None = None) -> None:
        self.full = (full or RequestValidator)(schema, format_checker=Draft4Validator.FORMAT_CHECKER)
        self.quick: jsonschema_rs.Draft4Validator | None
        try:
            self.quick = jsonschema_rs.Draft4Validator(schema, validate_formats=True)
        except ValueError:  # a schema the Rust validator does not take
            self.quick = None

    def validate(self, instance: object) -> None:
        try:
            if self.quick is not None and self.quick.is_valid(instance):
                return
        except (ValueError, OverflowError):  # a value Rust cannot hold, an integer beyond 64 bits
            pass
        try:
            self.full.validate(instance)
        except ValidationError as error:
            error.message = worded(error)
            raise


def worded(error: ValidationError) -> str:
    """jsonschema's message with the offending value as JSON, cut short, instead of its Python repr
    (`True`, `None`, `{'a': nan}`, a 4,000-character string whole)."""
    shown = repr(error.instance)
    if not error.message.startswith(shown):
        return str(error.message)
    return _as_json(error.instance) + str(error.message)[len(shown):]


def _as_json(value: object) -> str:
    if isinstance(value, str):  # quoted as jsonschema quotes names and values elsewhere in the message
        return repr(value) if len(value) <= MAX_QUOTED else repr(value[:MAX_QUOTED - 4] + "...")
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= MAX_QUOTED else text[:MAX_QUOTED - 3] + "..."


# Connexion's body validators, checking with QuickValidator (built once: the pipeline keeps one
# validator per operation).
JSONBodyValidator = upstream.compiled_once(JSONRequestBodyValidator, QuickValidator)
FormBodyValidator = upstream.compiled_once(FormDataValidator, QuickValidator)
MultiPartBodyValidator = upstream.compiled_once(MultiPartFormDataValidator, QuickValidator)


VALIDATOR_MAP = {"body": MediaTypeDict({
    "*/*json": JSONBodyValidator,
    "application/x-www-form-urlencoded": FormBodyValidator,
    "multipart/form-data": MultiPartBodyValidator,
})}
