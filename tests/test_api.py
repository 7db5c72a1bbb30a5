"""The API skeleton: landing page, health, layers, and errors as JSON with a machine code."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import DatabaseSettings
from layers.registry import LAYERS
from tests.accounts import TEST_AUTH, bearer, sign_in


@pytest.fixture(scope="module")
def client(database_url: str, demo: dict[str, int]) -> Iterator[TestClient]:
    settings = DatabaseSettings(database_url=database_url)
    with TestClient(create_app(settings, auth_settings=TEST_AUTH)) as c:
        yield sign_in(c, database_url)


def test_landing_links_to_docs_and_layers(client: TestClient) -> None:
    body = client.get("/").json()
    rels = {link["rel"]: link["href"] for link in body["links"]}
    assert rels["service-doc"].endswith("/docs") and rels["data"].endswith("/collections")
    assert client.get("/docs").status_code == 200


def test_health(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json()["status"] == "ok"


def test_layers_list_every_registry_layer_with_its_count(
    client: TestClient, demo: dict[str, int]
) -> None:
    layers = {layer["id"]: layer for layer in client.get("/layers").json()}
    assert set(layers) == set(LAYERS)
    # the demo's load also counts what is no layer (the fume readings' time series)
    assert {k: v["count"] for k, v in layers.items()} == {k: demo[k] for k in LAYERS}
    assert layers["cases"]["title"] == "城管案件"


def test_unknown_path_is_a_json_404(client: TestClient) -> None:
    response = client.get("/nowhere")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found" and response.json()["message"]


def test_unreachable_database_is_a_503_with_a_code() -> None:
    settings = DatabaseSettings(database_url="postgresql://citygrid:x@127.0.0.1:1/none")
    with TestClient(create_app(settings, auth_settings=TEST_AUTH)) as c:
        response = c.get("/collections/cases/items", headers=bearer("admin"))
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "database_unreachable"
    assert "无法连接" in body["message"] and "cannot be reached" in body["message_en"]
