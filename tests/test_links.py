"""Every link the OGC pages give is real: it answers 200 in the media type it advertises."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import DatabaseSettings
from layers.registry import LAYERS
from tests.accounts import TEST_AUTH, sign_in

GEOJSON = "application/geo+json"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
PAGING = {"next", "prev"}  # followed and checked, but a paged walk stops at the first step


@pytest.fixture(scope="module")
def client(database_url: str, demo: dict[str, int]) -> Iterator[TestClient]:
    settings = DatabaseSettings(database_url=database_url)
    with TestClient(create_app(settings, auth_settings=TEST_AUTH)) as c:
        yield sign_in(c, database_url)


def media_type(value: str) -> tuple[str, frozenset[str]]:
    """A media type and its parameters, normalised for comparison."""
    kind, *params = (part.strip().lower() for part in value.split(";"))
    return kind, frozenset(p.replace(" ", "") for p in params if not p.startswith("charset="))


def links_of(body: Any) -> list[dict[str, Any]]:
    """The links of a landing page, collection list, collection, items page or feature."""
    if not isinstance(body, dict):
        return []
    found = list(body.get("links", []))
    for collection in body.get("collections", []):
        found.extend(collection.get("links", []))
    return found


def feature_urls(url: str, body: Any) -> list[str]:
    """The single-item URL of the first feature of an items page (the walk's way to items)."""
    path = urlsplit(url).path
    if not path.endswith("/items") or not body.get("features"):
        return []
    return [f"{path}/{body['features'][0]['id']}"]


def test_every_link_answers_in_its_type(client: TestClient) -> None:
    pending: deque[tuple[str, str, str]] = deque([("/", "application/json", "landing")])
    checked: dict[str, str] = {}
    while pending:
        href, kind, rel = pending.popleft()
        if href in checked:
            continue
        answer = client.get(href, headers={"Accept": kind})
        assert answer.status_code == 200, (href, answer.status_code, answer.text[:300])
        got = answer.headers["content-type"]
        assert media_type(got) == media_type(kind), (href, kind, got)
        checked[href] = rel
        if kind.endswith("json") and rel not in PAGING:
            body = answer.json()
            pending.extend((link["href"], link["type"], link["rel"]) for link in links_of(body))
            pending.extend((url, GEOJSON, "feature") for url in feature_urls(href, body))
    rels = set(checked.values())
    assert {"service-desc", "service-doc", "conformance", "data", "items", "next"} <= rels
    assert {f"/collections/{layer}" for layer in LAYERS} <= {urlsplit(u).path for u in checked}
    assert sum(1 for rel in checked.values() if rel == "feature") == len(LAYERS)


def test_service_links_name_the_openapi_document_and_the_docs(client: TestClient) -> None:
    links = {link["rel"]: link for link in client.get("/").json()["links"]}
    assert urlsplit(links["service-desc"]["href"]).path == "/api"
    assert links["service-desc"]["type"] == OPENAPI
    assert urlsplit(links["service-doc"]["href"]).path == "/docs"
    assert client.get("/api").headers["content-type"] == OPENAPI


def test_a_single_feature_links_to_itself_and_its_collection(client: TestClient) -> None:
    first = client.get("/collections/billboards/items?limit=1").json()["features"][0]
    body = client.get(f"/collections/billboards/items/{first['id']}").json()
    links = {link["rel"]: link for link in body["links"]}
    assert urlsplit(links["self"]["href"]).path == f"/collections/billboards/items/{first['id']}"
    assert links["self"]["type"] == "application/geo+json"
    assert urlsplit(links["collection"]["href"]).path == "/collections/billboards"
    assert body["properties"] == first["properties"]
