"""Every spec is valid OpenAPI, every operation resolves to a handler, every extension parses."""

from pathlib import Path

import pytest
import yaml
from openapi_spec_validator import validate

from mockserver.vendor import discover, snake_case

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
