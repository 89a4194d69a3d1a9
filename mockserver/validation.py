"""Request body validation that honours `readOnly`.

Connexion 3 ignores `readOnly`, so a property that is both required and read-only (an id the
server assigns) would be demanded in requests. These validators skip such properties when
checking `required`; everything else is Connexion's own validation.
"""

import functools

from connexion.datastructures import MediaTypeDict
from connexion.json_schema import Draft4RequestValidator
from connexion.validators import FormDataValidator, JSONRequestBodyValidator, MultiPartFormDataValidator
from jsonschema import Draft4Validator, ValidationError
from jsonschema.validators import extend


def _required_unless_read_only(validator, required, instance, schema):
    if not validator.is_type(instance, "object"):
        return
    properties = schema.get("properties", {})
    for name in required:
        if name not in instance and not properties.get(name, {}).get("readOnly", False):
            yield ValidationError(f"{name!r} is a required property")


RequestValidator = extend(Draft4RequestValidator, {"required": _required_unless_read_only})


class _ReadOnlyAware:
    @functools.cached_property
    def _validator(self):  # built once: the pipeline keeps one validator per operation
        return RequestValidator(self._schema, format_checker=Draft4Validator.FORMAT_CHECKER)


class JSONBodyValidator(_ReadOnlyAware, JSONRequestBodyValidator):
    pass


class FormBodyValidator(_ReadOnlyAware, FormDataValidator):
    pass


class MultiPartBodyValidator(_ReadOnlyAware, MultiPartFormDataValidator):
    pass


VALIDATOR_MAP = {"body": MediaTypeDict({
    "*/*json": JSONBodyValidator,
    "application/x-www-form-urlencoded": FormBodyValidator,
    "multipart/form-data": MultiPartBodyValidator,
})}
