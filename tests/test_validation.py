"""Connexion sharp edges closed in the core, shown through HTTP on a minimal spec."""

import connexion
import pytest
from starlette.testclient import TestClient

from mockserver import validation

SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "t", "version": "1"},
    "paths": {"/things": {"post": {
        "operationId": "tests.test_validation.create_thing",
        "requestBody": {"required": True, "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Thing"}},
            "application/x-www-form-urlencoded": {"schema": {"$ref": "#/components/schemas/Thing"}}}},
        "responses": {"200": {"description": "ok"}}}}},
    "components": {"schemas": {"Thing": {
        "type": "object", "required": ["id", "name"],
        "properties": {"id": {"type": "integer", "readOnly": True}, "name": {"type": "string"}}}}},
}


async def create_thing(body):
    return {"id": 1, "name": body["name"]}


@pytest.fixture(scope="module")
def client():
    app = connexion.AsyncApp(__name__)
    app.add_api(SPEC, validator_map=validation.VALIDATOR_MAP)
    with TestClient(app) as test_client:
        yield test_client


@pytest.mark.parametrize("send", [lambda c: c.post("/things", json={"name": "a"}),
                                  lambda c: c.post("/things", data={"name": "a"})])
def test_required_read_only_properties_are_not_demanded(client, send):
    response = send(client)
    assert response.status_code == 200 and response.json() == {"id": 1, "name": "a"}


def test_other_required_properties_still_are(client):
    response = client.post("/things", json={"id": 5})
    assert response.status_code == 400 and "'name' is a required property" in response.text
