"""OGC API - Features Parts 1-3 as the conformance tests check them, against the demo city."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from openapi_spec_validator import validate
from pyproj import Transformer
from sqlalchemy import Engine, text

from api.app import create_app
from api.settings import DatabaseSettings
from tests.accounts import TEST_AUTH, bearer, ensure_account, sign_in

EPSG = "http://www.opengis.net/def/crs/EPSG/0/"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


@pytest.fixture(scope="module")
def client(database_url: str, demo: dict[str, int]) -> Iterator[TestClient]:
    settings = DatabaseSettings(database_url=database_url)
    with TestClient(create_app(settings, auth_settings=TEST_AUTH)) as c:
        yield sign_in(c, database_url)


def sql_count(engine: Engine, sql: str, **params: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())


def get(client: TestClient, url: str) -> dict[str, Any]:
    response = client.get(url)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_landing_conformance_and_openapi(client: TestClient) -> None:
    rels = {link["rel"]: link["href"] for link in get(client, "/")["links"]}
    assert {"self", "service-desc", "service-doc", "conformance", "data"} <= set(rels)
    conforms = get(client, "/conformance")["conformsTo"]
    for part in (
        "ogcapi-features-1/1.0/conf/core",
        "ogcapi-features-1/1.0/conf/geojson",
        "ogcapi-features-2/1.0/conf/crs",
        "ogcapi-features-3/1.0/conf/filter",
        "cql2/1.0/conf/cql2-json",
    ):
        assert any(part in c for c in conforms), part
    api = get(client, "/api")
    assert "/collections/{collectionId}/items" in api["paths"]
    assert api["openapi"].startswith("3.0") and "oas30" in " ".join(conforms)
    validate(api)  # a valid OpenAPI 3.0 document


def test_collections_have_links_extents_and_crs(client: TestClient) -> None:
    collections = {c["id"]: c for c in get(client, "/collections")["collections"]}
    cases = collections["cases"]
    assert {link["rel"] for link in cases["links"]} >= {"self", "items"}
    west, south, east, north = cases["extent"]["spatial"]["bbox"][0]
    assert 121.4 < west < east < 122.0 and 31.6 < south < north < 32.2
    start, end = cases["extent"]["temporal"]["interval"][0]
    assert start.startswith("2023-01-01") and end.startswith("2023-12-31")
    assert CRS84 in cases["crs"] and f"{EPSG}4490" in cases["crs"] and f"{EPSG}4550" in cases["crs"]
    assert collections["dust_inspections"]["crs"] == [CRS84]


@pytest.mark.parametrize("sortby", ["", "&sortby=-started_on"])
def test_paging_through_three_pages(client: TestClient, sortby: str) -> None:
    url: str | None = f"/collections/dust_sites/items?limit=100{sortby}"
    pages, ids = [], []
    while url:
        body = get(client, url)
        pages.append((body["numberReturned"], body["numberMatched"]))
        ids += [f["id"] for f in body["features"]]
        links = {link["rel"]: link["href"] for link in body["links"]}
        assert links["self"]
        if sortby:  # offset paging when sorted, with prev links; keyset cursors otherwise
            assert ("prev" in links) == (len(pages) > 1)
        url = links.get("next")
    assert pages == [(100, 226), (100, 226), (26, 226)]
    assert len(set(ids)) == 226
    if not sortby:
        assert ids == sorted(ids)


def test_number_matched_is_exact_or_said_to_be_estimated(
    client: TestClient, engine: Engine
) -> None:
    small = get(client, "/collections/billboards/items?limit=1&type=pole")
    assert small["numberMatched"] == sql_count(
        engine, "SELECT count(*) FROM billboards WHERE type = 'pole'"
    )
    assert "numberMatchedIsEstimate" not in small
    large = get(client, "/collections/cases/items?limit=1")
    assert large["numberMatchedIsEstimate"] is True
    assert abs(large["numberMatched"] - 152821) / 152821 < 0.05


@pytest.fixture(scope="module")
def narrow_viewers(engine: Engine, demo: dict[str, int]) -> dict[str, str]:
    """An inspector of the busiest community and its unit: name → the SQL of the cases each reads."""
    with engine.connect() as conn:
        code, unit = conn.execute(
            text("""
            SELECT g.code, g.responsible_unit FROM grids AS g
            WHERE g.level = 'community' AND g.valid_to IS NULL
            ORDER BY (SELECT count(*) FROM cases AS c WHERE c.unit = g.responsible_unit) DESC,
                     g.code
            LIMIT 1
        """)
        ).one()
    ensure_account(engine, "count-inspector", "inspector", (code,))
    ensure_account(engine, "count-unit", "handler", unit=unit)
    area = f"""(SELECT ST_Transform(ST_Buffer(ST_Transform(g.geom, citygrid_gk_srid(g.geom)),
                   {TEST_AUTH.patrol_buffer_m}), 4490) FROM grids AS g
                WHERE g.code = '{code}' AND g.valid_to IS NULL)"""
    return {
        "count-inspector": f"ST_Intersects(c.geom, {area})",
        "count-unit": f"c.unit = '{unit}'",
    }


@pytest.mark.parametrize("limit", [1, 2000])  # a page, and a streamed one
@pytest.mark.parametrize("viewer", ["count-inspector", "count-unit"])
def test_number_matched_counts_what_a_narrow_viewer_reads(
    client: TestClient, engine: Engine, narrow_viewers: dict[str, str], viewer: str, limit: int
) -> None:
    """Not the planner's guess for the whole table: the exact number of the viewer's rows."""
    where = narrow_viewers[viewer]
    for start, end in (
        ("2000-01-01T00:00:00Z", "2099-12-31T23:59:59Z"),
        ("2023-03-01T00:00:00Z", "2023-03-31T23:59:59Z"),
        ("2021-01-01T00:00:00Z", "2021-12-31T23:59:59Z"),  # before the demo's year
    ):
        answer = client.get(
            f"/collections/cases/items?limit={limit}&datetime={start}/{end}",
            headers=bearer(viewer),
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        expected = sql_count(
            engine,
            f"SELECT count(*) FROM cases AS c WHERE {where} AND c.reported_at BETWEEN :s AND :e",
            s=start,
            e=end,
        )
        assert body["numberMatched"] == expected, (viewer, start)
        assert "numberMatchedIsEstimate" not in body
        assert body["numberReturned"] == min(limit, expected)
    assert expected == 0  # the last period has no case: not a guess of 1


@pytest.mark.parametrize("viewer", ["count-inspector", "count-unit"])
def test_collection_extents_are_those_of_the_viewers_rows(
    client: TestClient, engine: Engine, narrow_viewers: dict[str, str], viewer: str
) -> None:
    """The extent in space and time a narrow viewer is told is that of the cases they read."""
    with engine.connect() as conn:
        box, whole = (
            list(
                conn.execute(
                    text(
                        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                        f"(SELECT ST_Extent(c.geom) AS e FROM cases AS c WHERE {where}) AS x"
                    )
                ).one()
            )
            for where in (narrow_viewers[viewer], "TRUE")
        )
        first, last = conn.execute(
            text(
                "SELECT min(c.reported_at), max(c.reported_at) FROM cases AS c "
                f"WHERE {narrow_viewers[viewer]}"
            )
        ).one()
    assert box != whole  # the viewer's cases cover less than the county's
    listed = get_as(client, "/collections", viewer)["collections"]
    for doc in (
        get_as(client, "/collections/cases", viewer),
        *(c for c in listed if c["id"] == "cases"),
    ):
        assert doc["extent"]["spatial"]["bbox"][0] == pytest.approx(box)
        start, end = doc["extent"]["temporal"]["interval"][0]
        assert (datetime.fromisoformat(start), datetime.fromisoformat(end)) == (first, last)


def get_as(client: TestClient, url: str, username: str) -> dict[str, Any]:
    answer = client.get(url, headers=bearer(username))
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


@pytest.mark.parametrize("role", ["admin", "planner", "leader", "dispatcher"])
def test_number_matched_of_the_whole_table_may_be_estimated(
    client: TestClient, database_url: str, role: str
) -> None:
    """Viewers of every case get the planner's estimate of the large table, flagged as one."""
    ensure_account(database_url, f"count-{role}", role)
    body = client.get("/collections/cases/items?limit=1", headers=bearer(f"count-{role}")).json()
    assert body["numberMatchedIsEstimate"] is True
    assert abs(body["numberMatched"] - 152821) / 152821 < 0.05


def test_datetime_instant_interval_and_open_ends(client: TestClient, engine: Engine) -> None:
    assert (
        get(client, "/collections/grids/items?limit=1&datetime=2023-06-01")["numberMatched"] == 422
    )
    assert get(client, "/collections/grids/items?limit=1&datetime=2022-06-01")["numberMatched"] == 0
    day = get(client, "/collections/work_orders/items?limit=1000&datetime=2023-03-01/2023-03-31")
    assert day["numberMatched"] == sql_count(
        engine,
        "SELECT count(*) FROM work_orders WHERE issued_on BETWEEN '2023-03-01' AND '2023-03-31'",
    )
    before = get(client, "/collections/work_orders/items?limit=1&datetime=../2023-03-31")[
        "numberMatched"
    ]
    after = get(client, "/collections/work_orders/items?limit=1&datetime=2023-04-01/..")[
        "numberMatched"
    ]
    assert before + after == 104
    moment = get(
        client,
        "/collections/dust_inspections/items?limit=1&datetime=2023-03-01T00:00:00%2B08:00/2023-03-02T00:00:00%2B08:00",
    )
    assert moment["numberMatched"] == sql_count(
        engine,
        "SELECT count(*) FROM dust_inspections WHERE inspected_on BETWEEN '2023-03-01' AND '2023-03-02'",
    )


def test_bbox_in_other_crs_selects_the_same_features(client: TestClient) -> None:
    lonlat = get(client, "/collections/billboards/items?limit=10000&bbox=121.6,31.75,121.7,31.85")
    latlon = get(
        client,
        f"/collections/billboards/items?limit=10000&bbox=31.75,121.6,31.85,121.7&bbox-crs={EPSG}4490",
    )
    assert [f["id"] for f in lonlat["features"]] == [f["id"] for f in latlon["features"]]
    to_gk = Transformer.from_crs(4490, 4550, always_xy=True)
    (e1, e2), (n1, n2) = to_gk.transform([121.6, 121.7], [31.75, 31.85])
    gk = get(
        client,
        f"/collections/billboards/items?limit=10000&bbox={min(n1, n2)},{min(e1, e2)},{max(n1, n2)},{max(e1, e2)}&bbox-crs={EPSG}4550",
    )
    assert {f["id"] for f in lonlat["features"]} <= {f["id"] for f in gk["features"]}


@pytest.mark.parametrize("epsg", [4326, 4490, 3857, 4549, 4550])
def test_crs_round_trip_and_axis_order(client: TestClient, epsg: int) -> None:
    base = get(client, "/collections/billboards/items/7")
    lon, lat = base["geometry"]["coordinates"]
    response = client.get(f"/collections/billboards/items/7?crs={EPSG}{epsg}")
    assert response.headers["content-crs"] == f"<{EPSG}{epsg}>"
    a, b = response.json()["geometry"]["coordinates"]
    x, y = (
        (a, b) if epsg == 3857 else (b, a)
    )  # EPSG axis order: 3857 east/north, the others north first
    back = Transformer.from_crs(epsg, 4490, always_xy=True).transform(x, y)
    assert back == pytest.approx((lon, lat), abs=1e-7)
    if epsg in (4326, 4490):
        assert (a, b) == pytest.approx((lat, lon), abs=1e-7)
    assert (
        client.get(f"/collections/billboards/items?limit=1&crs={EPSG}{epsg}").headers["content-crs"]
        == f"<{EPSG}{epsg}>"
    )


def test_properties_selects_fields(client: TestClient) -> None:
    feature = get(client, "/collections/cases/items?limit=1&properties=status,reported_at")[
        "features"
    ][0]
    assert set(feature["properties"]) == {"id", "status", "reported_at"}  # id always


def test_queryables_describe_the_registry_fields(client: TestClient) -> None:
    response = client.get("/collections/billboards/queryables", headers={"Accept-Language": "zh"})
    assert response.headers["content-type"].startswith("application/schema+json")
    props = response.json()["properties"]
    assert props["type"]["enum"][:2] == ["pole", "rooftop"] and props["type"]["title"] == "设施类型"
    assert props["face_area_m2"]["type"] == "number" and "geom" in props


FILTERS = [  # (layer, cql2-text, cql2-json, SQL)
    (
        "billboards",
        "type = 'pole'",
        {"op": "=", "args": [{"property": "type"}, "pole"]},
        "type = 'pole'",
    ),
    (
        "billboards",
        "face_area_m2 > 100 AND NOT (type = 'pole')",
        {
            "op": "and",
            "args": [
                {"op": ">", "args": [{"property": "face_area_m2"}, 100]},
                {"op": "not", "args": [{"op": "=", "args": [{"property": "type"}, "pole"]}]},
            ],
        },
        "face_area_m2 > 100 AND type <> 'pole'",
    ),
    (
        "billboards",
        "type IN ('pole','wall') OR risk_grade = 'D'",
        {
            "op": "or",
            "args": [
                {"op": "in", "args": [{"property": "type"}, ["pole", "wall"]]},
                {"op": "=", "args": [{"property": "risk_grade"}, "D"]},
            ],
        },
        "type IN ('pole','wall') OR risk_grade = 'D'",
    ),
    (
        "parking_lots",
        "spaces BETWEEN 50 AND 100",
        {"op": "between", "args": [{"property": "spaces"}, 50, 100]},
        "spaces BETWEEN 50 AND 100",
    ),
    (
        "dust_sites",
        "name LIKE '%拆迁%'",
        {"op": "like", "args": [{"property": "name"}, "%拆迁%"]},
        "name LIKE '%拆迁%'",
    ),
    (
        "billboards",
        "removed_on IS NULL",
        {"op": "isNull", "args": [{"property": "removed_on"}]},
        "removed_on IS NULL",
    ),
    (
        "billboards",
        "S_WITHIN(geom, POLYGON((121.6 31.75, 121.7 31.75, 121.7 31.85, 121.6 31.85, 121.6 31.75)))",
        {
            "op": "s_within",
            "args": [
                {"property": "geom"},
                {
                    "type": "Polygon",
                    "coordinates": [
                        [
                            [121.6, 31.75],
                            [121.7, 31.75],
                            [121.7, 31.85],
                            [121.6, 31.85],
                            [121.6, 31.75],
                        ]
                    ],
                },
            ],
        },
        "ST_Within(geom, ST_MakeEnvelope(121.6, 31.75, 121.7, 31.85, 4490))",
    ),
    (
        "cases",
        "S_INTERSECTS(geom, BBOX(121.6,31.75,121.7,31.85)) AND status = 'parked'",
        {
            "op": "and",
            "args": [
                {
                    "op": "s_intersects",
                    "args": [{"property": "geom"}, {"bbox": [121.6, 31.75, 121.7, 31.85]}],
                },
                {"op": "=", "args": [{"property": "status"}, "parked"]},
            ],
        },
        "ST_Intersects(geom, ST_MakeEnvelope(121.6, 31.75, 121.7, 31.85, 4490)) AND status = 'parked'",
    ),
    (
        "cases",
        "T_INTERSECTS(reported_at, INTERVAL('2023-05-01T00:00:00+08:00','2023-05-02T00:00:00+08:00'))",
        {
            "op": "t_intersects",
            "args": [
                {"property": "reported_at"},
                {"interval": ["2023-05-01T00:00:00+08:00", "2023-05-02T00:00:00+08:00"]},
            ],
        },
        "reported_at BETWEEN '2023-05-01T00:00:00+08:00' AND '2023-05-02T00:00:00+08:00'",
    ),
    (
        "cases",
        "reported_at T_AFTER TIMESTAMP('2023-12-31T00:00:00+08:00')",
        {
            "op": "t_after",
            "args": [{"property": "reported_at"}, {"timestamp": "2023-12-31T00:00:00+08:00"}],
        },
        "reported_at > '2023-12-31T00:00:00+08:00'",
    ),
    (
        "work_orders",
        "T_BEFORE(issued_on, DATE('2023-02-01'))",
        {"op": "t_before", "args": [{"property": "issued_on"}, {"date": "2023-02-01"}]},
        "issued_on < '2023-02-01'",
    ),
]


@pytest.mark.parametrize(("layer", "cql_text", "cql_json", "sql"), FILTERS)
def test_cql2_filters_match_sql(
    client: TestClient,
    engine: Engine,
    layer: str,
    cql_text: str,
    cql_json: dict[str, Any],
    sql: str,
) -> None:
    expected = sql_count(engine, f"SELECT count(*) FROM {layer} WHERE {sql}")
    as_text = get(client, f"/collections/{layer}/items?limit=10000&filter={quote(cql_text)}")
    as_json = get(
        client,
        f"/collections/{layer}/items?limit=10000&filter-lang=cql2-json&filter={quote(json.dumps(cql_json))}",
    )
    assert as_text["numberReturned"] == as_json["numberReturned"] == expected
    assert [f["id"] for f in as_text["features"]] == [f["id"] for f in as_json["features"]]


def test_filter_geometry_in_another_crs(client: TestClient) -> None:
    plain = get(
        client,
        f"/collections/billboards/items?limit=10000&filter={quote('S_INTERSECTS(geom, BBOX(121.6,31.75,121.7,31.85))')}",
    )
    flipped = get(
        client,
        f"/collections/billboards/items?limit=10000&filter-crs={EPSG}4490&filter={quote('S_INTERSECTS(geom, BBOX(31.75,121.6,31.85,121.7))')}",
    )
    assert plain["numberReturned"] == flipped["numberReturned"] > 0


@pytest.mark.parametrize(
    ("query", "code", "phrase"),
    [
        ("filter=colour%3D'red'", "invalid_filter", "no property 'colour'"),
        ("filter=spaces%3D'many'", "property_wrong_type", "Invalid filter: spaces"),
        ("filter=((", "invalid_filter", "cannot parse"),
        ("filter=spaces%3D1&filter-lang=sql", "invalid_request", "filter-lang"),
        ("filter-lang=cql2-json&filter=%7Bnot-json", "invalid_filter", "cannot parse"),
        ("filter=spaces%20LIKE%20'3%25'", "invalid_filter", "LIKE works on text"),
        ("filter=S_INTERSECTS(name,%20BBOX(1,2,3,4))", "invalid_filter", "spatial operators"),
        ("filter=S_INTERSECTS(geom,%20BBOX(3,4,1,2))", "invalid_filter", "BBOX"),
        ("filter=spaces%3D1&filter-crs=EPSG:9999", "invalid_request", "filter-crs"),
        ("crs=EPSG:27700", "invalid_request", "query.crs"),
        ("bbox=1,2,3,4&bbox-crs=urn:nothing", "invalid_request", "bbox-crs"),
        ("bbox=121,31,122", "invalid_request", "query.bbox"),
        ("bbox=121,31,122,nan", "invalid_request", "query.bbox"),
        ("datetime=yesterday", "invalid_request", "datetime"),
        ("datetime=2023-05-02/2023-05-01", "period_reversed", "starts after it ends"),
        ("datetime=2023-05-01T00:00:00", "invalid_request", "datetime"),
        ("datetime=../..", "invalid_request", "datetime"),
        ("datetime=2023-02-30", "invalid_datetime", "datetime=2023-02-30"),
        ("properties=spaces,colour", "unknown_property", "colour"),
        ("sortby=%2Bcolour", "unknown_property", "colour"),
    ],
)
def test_bad_parameters_are_400_with_a_reason(
    client: TestClient, query: str, code: str, phrase: str
) -> None:
    response = client.get(f"/collections/parking_lots/items?{query}")
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == code and phrase in json.dumps(body, ensure_ascii=False), body
    assert body["message"] and body["message_en"]
