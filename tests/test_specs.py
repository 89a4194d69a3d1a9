"""Every spec is valid OpenAPI, every operation resolves to a handler, every extension parses."""

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from openapi_spec_validator import validate

from mockserver.vendor import METHODS, discover, snake_case

SPECS = sorted((Path(__file__).parent.parent / "specs").glob("*.yaml"))
VENDORS = discover()


def test_every_vendor_has_a_spec():
    assert sorted(f"{vendor.name}.yaml" for vendor in VENDORS) == [spec.name for spec in SPECS]


@pytest.mark.parametrize("vendor", VENDORS, ids=lambda vendor: vendor.name)
def test_spec_is_valid_openapi(vendor):
    validate(vendor.spec)


@pytest.mark.parametrize("vendor", VENDORS, ids=lambda vendor: vendor.name)
def test_every_operation_has_a_handler_and_documents_its_errors(vendor):
    assert vendor.operations
    for op_id, operation in vendor.operations.items():
        assert callable(getattr(vendor.handlers, snake_case(op_id), None)), op_id
        for rule in operation.rate_limits:
            assert rule.item.amount > 0


@pytest.mark.parametrize("vendor", VENDORS, ids=lambda vendor: vendor.name)
def test_rate_limited_operations_document_429_with_retry_after(vendor):
    for path_item in vendor.spec["paths"].values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or "operationId" not in operation:
                continue
            if vendor.operations[operation["operationId"]].rate_limits:
                response = operation["responses"]["429"]
                if "$ref" in response:
                    response = vendor.spec["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
                assert "Retry-After" in response["headers"]


@pytest.mark.parametrize("vendor", VENDORS, ids=lambda vendor: vendor.name)
def test_each_workspace_keeps_the_contract(vendor):
    from mockserver.vendor import Workspace

    members = {name for name in vars(Workspace) if not name.startswith("_")} | set(Workspace.__annotations__)
    members -= {"deliveries"}  # only for vendors that send webhooks
    assert {name for name in members if not hasattr(vendor.state, name)} == set()
    assert isinstance(vendor.state.SCHEMA, int)


class StrictLoader(yaml.SafeLoader):
    """YAML as strict loaders read it: a key given twice in one mapping is an error."""


def _unique_keys(loader, node, deep=False):
    keys = [loader.construct_object(key, deep=deep) for key, _ in node.value]
    repeated = sorted({str(key) for key in keys if keys.count(key) > 1})
    if repeated:
        raise yaml.constructor.ConstructorError(None, None, f"repeated keys {repeated}", node.start_mark)
    return loader.construct_mapping(node, deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_keys)


@pytest.mark.parametrize("path", SPECS + sorted((Path(__file__).parent.parent / "fixtures").glob("*.yaml")),
                         ids=lambda path: path.name)
def test_specs_and_fixtures_load_with_a_strict_yaml_loader(path):
    yaml.load(path.read_text(), Loader=StrictLoader)


EXTENSIONS = json.loads((Path(__file__).parent / "spec_extensions.schema.json").read_text())


def _extensions(node, path=()):
    """(where, name, value) of every `x-` key in a spec, `where` as spec_extensions.schema.json names places."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            yield from _extensions(item, (*path, index))
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if isinstance(key, str) and key.startswith("x-"):
            yield _place(path), key, value
        else:
            yield from _extensions(value, (*path, key))


def _place(path):
    parent = path[-2] if len(path) > 1 else None
    if not path:
        return "root"
    if path == ("info",):
        return "info"
    if path[-1] in METHODS and parent not in ("properties",):
        return "operation"
    return {"parameters": "parameter", "securitySchemes": "security scheme", "responses": "response",
            "links": "link"}.get(parent, "elsewhere")


@pytest.mark.parametrize("vendor", VENDORS, ids=lambda vendor: vendor.name)
def test_every_extension_is_documented_and_well_formed(vendor):
    """Each `x-` key is one spec_extensions.schema.json describes, where it may stand, with a value it allows."""
    documented = EXTENSIONS["properties"]
    for where, name, value in _extensions(vendor.spec):
        assert name in documented, f"{name} is not in tests/spec_extensions.schema.json (nor the README's table)"
        allowed = documented[name]["x-where"]
        assert "anywhere" in allowed or where in allowed, f"{name} stands at a {where}; it belongs at {allowed}"
        jsonschema.validate({name: value}, EXTENSIONS)


def test_the_extension_schema_describes_each_extension():
    for name, entry in EXTENSIONS["properties"].items():
        assert entry["description"] and entry["x-where"], name


@pytest.mark.parametrize("vendor", VENDORS, ids=lambda vendor: vendor.name)
def test_nullable_stands_beside_a_type(vendor):
    """OpenAPI 3.0.3: `nullable: true` admits null only where `type` is given in the same schema;
    beside `allOf` alone it admits nothing, and strict validators refuse the null."""
    def walk(node, path):
        if isinstance(node, dict):
            if node.get("nullable") is True:
                yield path, "type" in node
            for key, value in node.items():
                yield from walk(value, f"{path}/{key}")
        elif isinstance(node, list):
            for index, item in enumerate(node):
                yield from walk(item, f"{path}/{index}")

    assert [path for path, typed in walk(vendor.spec, "") if not typed] == []


@pytest.mark.parametrize("vendor", [vendor for vendor in VENDORS if "x-error-status" not in vendor.spec],
                         ids=lambda vendor: vendor.name)
def test_every_operation_that_takes_a_body_documents_413_and_415_with_their_own_answers(vendor):
    """Each with a response of its own (not the 400's) whose example is an error of that status."""
    marks = {"413": ("payload_too_large", "REQUEST_ENTITY_TOO_LARGE"),
             "415": ("unsupported_media_type", "UNSUPPORTED_MEDIA_TYPE")}
    for path_item in vendor.spec["paths"].values():
        for method in METHODS:
            operation = path_item.get(method)
            if not operation or "requestBody" not in operation:
                continue
            responses = vendor.operations[operation["operationId"]].responses
            for status in ("413", "415"):
                assert status in responses, (operation["operationId"], status)
                assert responses[status] is not responses["400"], (operation["operationId"], status)
                example = json.dumps(responses[status]["content"]["application/json"]["example"])
                assert any(mark in example for mark in marks[status]), (operation["operationId"], status, example)
