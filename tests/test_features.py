"""Collections and items: GeoJSON from PostGIS, bbox and field filters, paging, clear 4xx."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from api.settings import DatabaseSettings
from layers.engine.features import (
    ItemsQuery,
    Paging,
    TimeRange,
    count_matched,
    fetch_items,
    find_items,
)
from layers.registry import LAYERS
from tests.accounts import TEST_AUTH, sign_in

SEAT_BBOX = "121.60,31.76,121.72,31.86"


@pytest.fixture(scope="module")
def client(database_url: str, demo: dict[str, int]) -> Iterator[TestClient]:
    settings = DatabaseSettings(database_url=database_url)
    with TestClient(create_app(settings, auth_settings=TEST_AUTH)) as c:
        yield sign_in(c, database_url)


def count(engine: Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


def test_every_layer_is_a_collection(client: TestClient) -> None:
    ids = [c["id"] for c in client.get("/collections").json()["collections"]]
    assert ids == list(LAYERS)
    assert client.get("/collections/cases?lang=zh").json()["title"] == "城管案件"


def test_bbox_returns_exactly_the_features_in_the_box(client: TestClient, engine: Engine) -> None:
    body = client.get(f"/collections/billboards/items?bbox={SEAT_BBOX}&limit=10000").json()
    expected = count(
        engine, f"SELECT count(*) FROM billboards WHERE geom && ST_MakeEnvelope({SEAT_BBOX}, 4490)"
    )
    assert 0 < body["numberReturned"] == len(body["features"]) == expected
    for f in body["features"]:
        lon, lat = f["geometry"]["coordinates"]
        assert 121.60 <= lon <= 121.72 and 31.76 <= lat <= 31.86
        assert set(f["properties"]) == {"id", *(fld.name for fld in LAYERS["billboards"].fields)}


def test_field_filter_and_sortby(client: TestClient) -> None:
    body = client.get("/collections/grids/items?level=community&limit=100").json()
    assert body["numberReturned"] == 66 and {
        f["properties"]["level"] for f in body["features"]
    } == {"community"}
    cases = client.get("/collections/cases/items?sortby=-reported_at&limit=50").json()["features"]
    times = [f["properties"]["reported_at"] for f in cases]
    assert times == sorted(times, reverse=True)


def test_paging_by_next_links_visits_every_feature_once(client: TestClient) -> None:
    url, seen = "/collections/dust_sites/items?limit=100", []
    while url:
        body = client.get(url).json()
        seen += [f["id"] for f in body["features"]]
        url = next((link["href"] for link in body["links"] if link["rel"] == "next"), None)
    assert len(seen) == len(set(seen)) == 226


def test_single_item(client: TestClient) -> None:
    feature = client.get("/collections/parking_lots/items/1").json()
    assert (
        feature["type"] == "Feature"
        and feature["id"] == 1
        and feature["geometry"]["type"] == "MultiPolygon"
    )


@pytest.mark.parametrize(
    ("url", "status", "code"),
    [
        ("/collections/nope/items", 404, "unknown_collection"),
        ("/collections/cases/items/0", 404, "feature_not_found"),
        ("/collections/cases/items/abc", 400, "invalid_request"),
        ("/collections/cases/items?bbox=1,2,3", 400, "invalid_request"),
        ("/collections/cases/items?bbox=121.7,31.8,121.6,31.9", 400, "bbox_reversed"),
        ("/collections/cases/items?bbox=a,b,c,d", 400, "invalid_request"),
        ("/collections/cases/items?limit=0", 400, "invalid_request"),
        ("/collections/cases/items?limit=10001", 400, "invalid_request"),
        ("/collections/cases/items?offset=-1", 400, "invalid_request"),
        ("/collections/cases/items?colour=red", 400, "invalid_parameter"),
        ("/collections/cases/items?status=lost", 400, "property_not_in_code_list"),
        ("/collections/cases/items?sortby=-colour", 400, "unknown_property"),
        ("/collections/cases/items?reported_at=yesterday", 400, "property_wrong_type"),
        ("/collections/parking_lots/items?spaces=many", 400, "property_wrong_type"),
    ],
)
def test_bad_requests_get_a_clear_4xx(client: TestClient, url: str, status: int, code: str) -> None:
    response = client.get(url)
    assert response.status_code == status
    body = response.json()
    assert body["code"] == code and body["message"] and body["message_en"]


def test_large_pages_are_streamed_with_the_same_features(client: TestClient) -> None:
    streamed = client.get("/collections/cases/items?limit=3000&sortby=reported_at")
    assert streamed.status_code == 200 and "content-length" not in streamed.headers  # chunked
    body = streamed.json()
    assert body["numberReturned"] == len(body["features"]) == 3000
    pieces = [
        client.get(f"/collections/cases/items?limit=1000&sortby=reported_at&offset={o}").json()
        for o in (0, 1000, 2000)
    ]
    assert [f["id"] for f in body["features"]] == [f["id"] for p in pieces for f in p["features"]]
    assert body["features"][0] == pieces[0]["features"][0]
    assert any(link["rel"] == "next" for link in body["links"]) and body["numberMatched"] > 3000
    keyset = client.get("/collections/cases/items?limit=2000").json()
    following = next(link["href"] for link in keyset["links"] if link["rel"] == "next")
    assert f"after={keyset['features'][-1]['id']}" in following


@pytest.mark.parametrize(
    "time", [TimeRange(date(2023, 5, 1), date(2023, 5, 31)), TimeRange(date(2023, 12, 1), None)]
)
def test_pages_of_few_matches_are_the_same_either_way(engine: Engine, time: TimeRange) -> None:
    """Finding the matches first (few of them) gives the very page the id walk gives."""
    query = ItemsQuery(LAYERS["cases"], limit=50, offset=20, time=time)
    with engine.connect() as conn:
        walked = fetch_items(conn, query).body
        query.few_matches = True
        found = fetch_items(conn, query).body
    assert found == walked and json.loads(found)["numberReturned"] == 50


def test_the_engine_counts_plans_and_pages_without_the_route(
    engine: Engine, demo: dict[str, int]
) -> None:
    """One call answers an items query: the count, the plan chosen from it, the page and where
    the next and previous pages start; a large page is streamed, the same features."""
    may = TimeRange(date(2023, 5, 1), date(2023, 5, 31))
    query = ItemsQuery(LAYERS["cases"], limit=50, offset=50, time=may)
    with engine.connect() as conn:
        result = find_items(conn, query, stream_above=1000)
        whole = find_items(conn, ItemsQuery(LAYERS["cases"], limit=5, time=may), 1000)
        streamed = find_items(conn, replace(query, limit=5, offset=0), stream_above=4)
        matched, _ = count_matched(conn, query)
        first, rest = streamed.chunks(lambda paging: {})
        sent = json.loads(first + b"".join(rest))
    assert result.matched == matched and result.query.few_matches  # few: found first
    assert result.rows is None and result.page is not None and result.page.returned == 50
    assert result.paging(50, 1) == Paging(
        {"offset": "100", "limit": "50"}, {"offset": "0", "limit": "50"}
    )
    assert whole.paging(5, 42) == Paging({"after": "42", "limit": "5"}, None)
    doc = json.loads(whole.body(lambda paging: {"next": json.dumps(paging.next)}))
    assert doc["numberMatched"] == matched and doc["next"]["after"] == str(
        doc["features"][-1]["id"]
    )
    assert streamed.page is None and streamed.rows is not None
    assert sent["features"] == json.loads(whole.body(lambda paging: {}))["features"]
