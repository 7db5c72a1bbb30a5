"""The OpenAPI document: errors from the one error table, real media types, bodies read by hand;
and a 405 that names every method of its path. No database needed: nothing here reaches one."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from api import errors
from api.app import create_app
from api.settings import DatabaseSettings, EditingSettings
from layers.errors import CitygridError

NOWHERE = DatabaseSettings(database_url="postgresql://nobody@127.0.0.1:1/nothing")
ERROR_REF = {"$ref": "#/components/schemas/Error"}


def document() -> dict[str, Any]:
    return create_app(NOWHERE).openapi()


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op) for path, item in doc["paths"].items() for method, op in item.items()
    ]


def test_every_operation_documents_the_common_errors_with_the_error_body() -> None:
    doc = document()
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    for path, method, op in operations(doc):
        for status in ("400", "401", "403", "404", "409", "429", "503"):
            content = op["responses"][status]["content"]["application/json"]
            assert content["schema"] == ERROR_REF, (method, path, status)
        body_statuses = {"411", "413", "415"} & set(op["responses"])
        assert bool(body_statuses) == ("requestBody" in op), (method, path)


def test_a_status_added_to_the_error_table_is_documented_everywhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Teapot(CitygridError):
        code = "teapot"

    monkeypatch.setitem(errors.STATUS_BY_ERROR, Teapot, 418)
    for path, method, op in operations(document()):
        assert op["responses"]["418"]["content"]["application/json"]["schema"] == ERROR_REF, (
            method,
            path,
        )


def test_changes_document_if_match_and_its_preconditions() -> None:
    item = document()["paths"]["/collections/{collectionId}/items/{feature_id}"]
    for method in ("put", "patch", "delete"):
        header = next(p for p in item[method]["parameters"] if p["name"] == "If-Match")
        assert not header["required"] and header["schema"]["minLength"] == 1
        assert "412" in item[method]["responses"] and "428" not in item[method]["responses"]
    assert "412" not in item["get"]["responses"]
    assert "204" in item["put"]["responses"] and "200" not in item["put"]["responses"]


@pytest.mark.parametrize(
    ("path", "method", "media_type"),
    [
        ("/grids", "get", "application/geo+json"),
        ("/collections/{collectionId}/items", "get", "application/geo+json"),
        ("/collections/{collectionId}/queryables", "get", "application/schema+json"),
        ("/patrol/cases", "get", "application/geo+json"),
        ("/stats/indicators", "get", "text/csv"),
        ("/stats/choropleth", "get", "application/geo+json"),
    ],
)
def test_hand_built_answers_document_their_media_type(
    path: str, method: str, media_type: str
) -> None:
    assert media_type in document()["paths"][path][method]["responses"]["200"]["content"]


def test_bodies_read_from_the_stream_are_documented() -> None:
    paths = document()["paths"]
    feature = paths["/collections/{collectionId}/items"]["post"]["requestBody"]
    assert feature["required"] and "application/geo+json" in feature["content"]
    schema = feature["content"]["application/geo+json"]["schema"]
    assert schema["properties"]["type"]["enum"] == ["Feature"]
    upload = paths["/collections/{collectionId}/import"]["post"]["requestBody"]
    assert "application/octet-stream" in upload["content"]
    people = paths["/grids/{code}/people"]["put"]["requestBody"]["content"]["application/json"]
    assert people["schema"]["additionalProperties"] is False


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PATCH", "/collections/grids/items", "GET, HEAD, OPTIONS, POST"),
        ("POST", "/collections/grids/items/1", "DELETE, GET, HEAD, OPTIONS, PATCH, PUT"),
        ("DELETE", "/grids/320681100001000/people", "GET, PUT"),
    ],
)
def test_405_names_every_method_of_the_path(method: str, path: str, allowed: str) -> None:
    answer = TestClient(create_app(NOWHERE)).request(method, path)
    assert answer.status_code == 405
    assert answer.headers["allow"] == allowed
    assert answer.json()["code"] == "method_not_allowed"


def test_a_deployment_requiring_if_match_documents_it_and_its_428() -> None:
    app = create_app(NOWHERE, editing_limits=EditingSettings(require_if_match=True))
    item = app.openapi()["paths"]["/collections/{collectionId}/items/{feature_id}"]
    for method in ("put", "patch", "delete"):
        header = next(p for p in item[method]["parameters"] if p["name"] == "If-Match")
        assert header["required"]
        assert {"412", "428"} <= set(item[method]["responses"])


def test_options_answers_are_documented_with_their_allow_header() -> None:
    paths = document()["paths"]
    for path in (
        "/collections/{collectionId}/items",
        "/collections/{collectionId}/items/{feature_id}",
    ):
        answer = paths[path]["options"]["responses"]["204"]
        assert "Allow" in answer["headers"]
        assert "head" in paths[path] and "get" in paths[path]
