"""Part 4 editing: all-or-nothing writes, ETags, audit, and a corpus of bad inputs that change nothing."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from api.settings import DatabaseSettings, EditingSettings
from gis.validate import Limits
from layers.cases.codes import seed_case_categories
from layers.engine import editing
from layers.engine.access import Viewer
from layers.errors import PreconditionFailed
from layers.registry import LAYERS, Role
from layers.store import db
from tests.accounts import TEST_AUTH, sign_in
from tests.databases import fresh_database

GEOJSON = {"Content-Type": "application/geo+json"}
STREET = "MULTIPOLYGON(((121.60 31.75, 121.70 31.75, 121.70 31.85, 121.60 31.85, 121.60 31.75)))"
SECTION = "MULTIPOLYGON(((121.60 31.75, 121.65 31.75, 121.65 31.85, 121.60 31.85, 121.60 31.75)))"
SQUARE = [[[121.62, 31.80], [121.621, 31.80], [121.621, 31.801], [121.62, 31.801], [121.62, 31.80]]]


def feature(geometry: Any, **properties: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry, "properties": properties}


BILLBOARD = feature(
    {"type": "Point", "coordinates": [121.65, 31.80]},
    type="wall",
    face_area_m2=12.5,
    owner="测试单位",
)
BUILDING = feature(
    {"type": "Polygon", "coordinates": SQUARE}, category="new", found_by="patrol", status="pending"
)


@pytest.fixture(scope="module")
def engine(pg_server: Any) -> Iterator[Engine]:
    databases = fresh_database(pg_server, "editing")
    url = next(databases)
    eng = db.make_engine(url)
    with eng.begin() as conn:
        for level, code, parent, wkt in (
            ("street", "320681100000000", None, STREET),
            ("section", "320681100001001", "320681100001000", SECTION),
        ):
            conn.execute(
                text("""
                INSERT INTO grids (adcode, geom, level, code, name, parent_code, valid_from)
                VALUES ('320681', ST_GeomFromText(:wkt, 4490), :level, :code, '测试网格', :parent, '2023-01-01')
            """),
                {"wkt": wkt, "level": level, "code": code, "parent": parent},
            )
        seed_case_categories(conn)
        conn.execute(
            text("""
            INSERT INTO dust_sites (adcode, geom, name, site_type, status)
            VALUES ('320681', ST_SetSRID(ST_MakePoint(121.65, 31.8), 4490), '测试工地', 'construction', 'active')
        """)
        )
    yield eng
    eng.dispose()
    next(databases, None)


@pytest.fixture(scope="module")
def client(engine: Engine) -> Iterator[TestClient]:
    url = engine.url.render_as_string(hide_password=False)
    limits = EditingSettings(max_body_bytes=20_000, max_vertices=50)
    app = create_app(
        DatabaseSettings(database_url=url), editing_limits=limits, auth_settings=TEST_AUTH
    )
    with TestClient(app) as c:
        yield sign_in(c, engine)


def state(engine: Engine) -> dict[str, Any]:
    """Row counts, the audit log and every row's content: what a refused request must not change."""
    with engine.connect() as conn:
        out: dict[str, Any] = {
            name: conn.execute(
                text(
                    f"SELECT count(*), md5(coalesce(string_agg(t::text, ',' ORDER BY id), '')) FROM {name} t"
                )
            ).one()
            for name in LAYERS
        }
        out["audit"] = conn.execute(text("SELECT count(*) FROM audit_log")).scalar_one()
    return out


def post(client: TestClient, layer: str, body: Any) -> Any:
    return client.post(
        f"/collections/{layer}/items", content=json.dumps(body, ensure_ascii=False), headers=GEOJSON
    )


def test_create_read_update_delete_with_audit(client: TestClient, engine: Engine) -> None:
    created = post(client, "billboards", BILLBOARD)
    assert created.status_code == 201
    path = created.headers["location"].replace("http://testserver", "")
    read = client.get(path)
    assert (
        read.headers["etag"] == created.headers["etag"]
        and read.json()["properties"]["owner"] == "测试单位"
    )
    patched = client.patch(
        path,
        content=json.dumps({"properties": {"risk_grade": "C"}}),
        headers={**GEOJSON, "If-Match": read.headers["etag"]},
    )
    assert patched.status_code == 204 and patched.headers["etag"] != read.headers["etag"]
    assert client.get(path).json()["properties"]["risk_grade"] == "C"
    replaced = client.put(
        path,
        content=json.dumps(
            feature(
                {"type": "Point", "coordinates": [121.66, 31.81]}, type="pole", face_area_m2=300
            )
        ),
        headers={**GEOJSON, "If-Match": patched.headers["etag"]},
    )
    assert replaced.status_code == 204
    after = client.get(path).json()
    assert after["properties"]["owner"] is None and after["properties"]["type"] == "pole"
    assert client.delete(path, headers={"If-Match": replaced.headers["etag"]}).status_code == 204
    assert client.get(path).status_code == 404
    fid = int(path.rsplit("/", 1)[1])
    with engine.connect() as conn:
        log = conn.execute(
            text(
                "SELECT action, actor, before IS NULL, after IS NULL, adcode FROM audit_log "
                "WHERE layer = 'billboards' AND feature_id = :id ORDER BY id"
            ),
            {"id": fid},
        ).all()
    assert [row[0] for row in log] == ["create", "update", "replace", "delete"]
    assert log[0][2] and not log[0][3] and not log[3][2] and log[3][3] and log[0][4] == "320681"


def test_areas_and_derived_fields_are_computed_by_the_server(client: TestClient) -> None:
    body = json.loads(json.dumps(BUILDING))
    body["properties"]["area_m2"] = 1.0  # ignored: the database measures
    path = (
        post(client, "illegal_buildings", body).headers["location"].replace("http://testserver", "")
    )
    area = client.get(path).json()["properties"]["area_m2"]
    assert 9_000 < area < 11_000  # 0.001° × 0.001° at 31.8°N ≈ 94.6 m × 111 m
    case = post(
        client,
        "cases",
        feature(
            {"type": "Point", "coordinates": [121.62, 31.80]},
            category_code="E0503",
            source="public",
            status="reported",
            reported_at="2024-03-01T09:00:00+08:00",
        ),
    )
    assert case.status_code == 201
    grid = client.get(case.headers["location"].replace("http://testserver", "")).json()[
        "properties"
    ]["grid_code"]
    assert grid == "320681100001001"


def test_child_rows_take_their_parents_county(client: TestClient) -> None:
    created = post(
        client,
        "dust_inspections",
        feature(
            None, dust_site_id=1, inspected_on="2024-03-02", inspector="王伟", problems_found=0
        ),
    )
    assert created.status_code == 201


def test_lost_update_exactly_one_wins(client: TestClient, engine: Engine) -> None:
    path = (
        post(client, "billboards", BILLBOARD).headers["location"].replace("http://testserver", "")
    )
    fid = int(path.rsplit("/", 1)[1])
    tag = client.get(path).headers["etag"]
    ctx = editing.EditContext(Viewer("测试", Role.ADMIN), Limits(), "320681")
    layer = LAYERS["billboards"]
    first = engine.connect()
    first_tx = first.begin()
    editing.update(
        first, layer, fid, {"properties": {"owner": "甲"}}, tag, ctx
    )  # holds the row lock
    outcome: list[str] = []

    def second_client() -> None:
        with engine.begin() as conn:
            try:
                editing.update(conn, layer, fid, {"properties": {"owner": "乙"}}, tag, ctx)
                outcome.append("won")
            except PreconditionFailed:
                outcome.append("412")

    worker = threading.Thread(target=second_client)
    worker.start()
    worker.join(timeout=1.0)
    assert worker.is_alive()  # waiting for the first client's lock
    first_tx.commit()
    first.close()
    worker.join(timeout=10)
    assert outcome == ["412"]
    assert client.get(path).json()["properties"]["owner"] == "甲"
    again = client.patch(
        path,
        content=json.dumps({"properties": {"owner": "丙"}}),
        headers={**GEOJSON, "If-Match": tag},
    )
    assert again.status_code == 412


def _ring(n: int) -> list[list[float]]:
    import math

    pts = [
        [
            121.63 + 0.002 * math.cos(2 * math.pi * i / n),
            31.80 + 0.002 * math.sin(2 * math.pi * i / n),
        ]
        for i in range(n)
    ]
    return [*pts, pts[0]]


BAD_POSTS: list[tuple[str, str, Any, int, str]] = [  # (name, layer, body, status, code)
    (
        "self-intersection",
        "illegal_buildings",
        feature(
            {
                "type": "Polygon",
                "coordinates": [
                    [
                        [121.62, 31.80],
                        [121.63, 31.81],
                        [121.63, 31.80],
                        [121.62, 31.81],
                        [121.62, 31.80],
                    ]
                ],
            },
            **BUILDING["properties"],
        ),
        400,
        "geometry_invalid",
    ),
    (
        "unclosed ring",
        "illegal_buildings",
        feature(
            {
                "type": "Polygon",
                "coordinates": [
                    [[121.62, 31.80], [121.63, 31.80], [121.63, 31.81], [121.62, 31.81]]
                ],
            },
            **BUILDING["properties"],
        ),
        400,
        "geometry_ring_not_closed",
    ),
    (
        "too few points",
        "illegal_buildings",
        feature(
            {
                "type": "Polygon",
                "coordinates": [[[121.62, 31.80], [121.63, 31.80], [121.62, 31.80]]],
            },
            **BUILDING["properties"],
        ),
        400,
        "geometry_too_few_points",
    ),
    (
        "empty polygon",
        "illegal_buildings",
        feature({"type": "Polygon", "coordinates": []}, **BUILDING["properties"]),
        400,
        "geometry_too_few_points",
    ),
    (
        "too many vertices",
        "illegal_buildings",
        feature({"type": "Polygon", "coordinates": [_ring(80)]}, **BUILDING["properties"]),
        400,
        "geometry_too_many_vertices",
    ),
    (
        "wrong type for points",
        "billboards",
        {**BILLBOARD, "geometry": {"type": "Polygon", "coordinates": SQUARE}},
        400,
        "geometry_wrong_type",
    ),
    (
        "wrong type for polygons",
        "illegal_buildings",
        {**BUILDING, "geometry": {"type": "Point", "coordinates": [121.62, 31.8]}},
        400,
        "geometry_wrong_type",
    ),
    (
        "line string",
        "illegal_buildings",
        {
            **BUILDING,
            "geometry": {"type": "LineString", "coordinates": [[121.62, 31.8], [121.63, 31.8]]},
        },
        400,
        "geometry_wrong_type",
    ),
    (
        "outside every county",
        "billboards",
        {**BILLBOARD, "geometry": {"type": "Point", "coordinates": [122.6, 31.8]}},
        422,
        "outside_every_county",
    ),
    (
        "swapped lat/lon",
        "billboards",
        {**BILLBOARD, "geometry": {"type": "Point", "coordinates": [31.80, 121.65]}},
        400,
        "geometry_axis_swapped",
    ),
    (
        "projected metres",
        "billboards",
        {**BILLBOARD, "geometry": {"type": "Point", "coordinates": [395000.0, 3520000.0]}},
        400,
        "geometry_outside_county",
    ),
    (
        "string coordinates",
        "billboards",
        {**BILLBOARD, "geometry": {"type": "Point", "coordinates": ["121.6", "31.8"]}},
        400,
        "geometry_malformed",
    ),
    (
        "one coordinate",
        "billboards",
        {**BILLBOARD, "geometry": {"type": "Point", "coordinates": [121.6]}},
        400,
        "geometry_malformed",
    ),
    (
        "unknown geometry type",
        "billboards",
        {**BILLBOARD, "geometry": {"type": "Circle", "coordinates": [121.6, 31.8]}},
        400,
        "geometry_malformed",
    ),
    ("no geometry", "billboards", {**BILLBOARD, "geometry": None}, 400, "geometry_missing"),
    (
        "geometry on a child table",
        "dust_inspections",
        feature(
            {"type": "Point", "coordinates": [121.65, 31.8]},
            dust_site_id=1,
            inspected_on="2024-03-02",
            inspector="王伟",
            problems_found=0,
        ),
        400,
        "geometry_not_allowed",
    ),
    (
        "unknown property",
        "billboards",
        {**BILLBOARD, "properties": {**BILLBOARD["properties"], "colour": "red"}},
        400,
        "unknown_property",
    ),
    (
        "wrong property type",
        "billboards",
        {**BILLBOARD, "properties": {**BILLBOARD["properties"], "face_area_m2": "big"}},
        400,
        "property_wrong_type",
    ),
    (
        "boolean for a number",
        "billboards",
        {**BILLBOARD, "properties": {**BILLBOARD["properties"], "face_area_m2": True}},
        400,
        "property_wrong_type",
    ),
    (
        "code not in list",
        "billboards",
        {**BILLBOARD, "properties": {**BILLBOARD["properties"], "type": "zeppelin"}},
        400,
        "property_not_in_code_list",
    ),
    (
        "missing required",
        "billboards",
        {**BILLBOARD, "properties": {"owner": "x"}},
        400,
        "missing_property",
    ),
    (
        "bad date",
        "illegal_buildings",
        {**BUILDING, "properties": {**BUILDING["properties"], "found_on": "2024-02-30"}},
        400,
        "property_wrong_type",
    ),
    (
        "timestamp without zone",
        "cases",
        feature(
            {"type": "Point", "coordinates": [121.62, 31.8]},
            category_code="E0503",
            source="public",
            status="reported",
            reported_at="2024-03-01T09:00:00",
        ),
        400,
        "property_wrong_type",
    ),
    (
        "unknown category code",
        "cases",
        feature(
            {"type": "Point", "coordinates": [121.62, 31.8]},
            category_code="E9999",
            source="public",
            status="reported",
            reported_at="2024-03-01T09:00:00+08:00",
        ),
        400,
        "reference_not_found",
    ),
    (
        "bad grid code format",
        "grids",
        feature(
            {"type": "Polygon", "coordinates": SQUARE},
            level="section",
            code="3206811",
            name="x",
            valid_from="2024-01-01",
        ),
        400,
        "property_bad_format",
    ),
    (
        "missing parent",
        "work_orders",
        feature(None, issued_on="2024-03-01", deadline="2024-03-05", result="open"),
        400,
        "missing_property",
    ),
    (
        "parent that does not exist",
        "work_orders",
        feature(
            None, dust_site_id=999, issued_on="2024-03-01", deadline="2024-03-05", result="open"
        ),
        400,
        "reference_not_found",
    ),
    (
        "properties not an object",
        "billboards",
        {**BILLBOARD, "properties": ["type", "wall"]},
        400,
        "properties_not_object",
    ),
    ("body is an array", "billboards", [BILLBOARD], 400, "body_not_object"),
    ("unknown collection", "nothing", BILLBOARD, 404, "unknown_collection"),
]


@pytest.mark.parametrize(
    ("name", "layer", "body", "status", "code"), BAD_POSTS, ids=[b[0] for b in BAD_POSTS]
)
def test_bad_feature_is_refused_and_changes_nothing(
    client: TestClient, engine: Engine, name: str, layer: str, body: Any, status: int, code: str
) -> None:
    before = state(engine)
    response = post(client, layer, body)
    assert response.status_code == status, response.text
    answer = response.json()
    assert answer["code"] == code and answer["message"] and answer["message_en"]
    assert state(engine) == before


RAW_BODIES = [
    (
        "NaN",
        b'{"type":"Feature","geometry":{"type":"Point","coordinates":[NaN,31.8]},"properties":{}}',
        GEOJSON,
        400,
        "not_finite",
    ),
    (
        "Infinity",
        b'{"type":"Feature","geometry":{"type":"Point","coordinates":[121.6,Infinity]},"properties":{}}',
        GEOJSON,
        400,
        "not_finite",
    ),
    ("not JSON", b"type=Feature", GEOJSON, 400, "body_not_json"),
    ("empty body", b"", GEOJSON, 400, "body_not_json"),
    (
        "not UTF-8",
        '{"type":"Feature","properties":{"owner":"测试"}}'.encode("gbk"),
        GEOJSON,
        400,
        "body_not_json",
    ),
    (
        "form content type",
        json.dumps(BILLBOARD).encode(),
        {"Content-Type": "application/x-www-form-urlencoded"},
        415,
        "unsupported_media_type",
    ),
    (
        "too large",
        json.dumps(
            {**BILLBOARD, "properties": {**BILLBOARD["properties"], "owner": "x" * 30_000}}
        ).encode(),
        GEOJSON,
        413,
        "payload_too_large",
    ),
]


@pytest.mark.parametrize(
    ("name", "raw", "headers", "status", "code"), RAW_BODIES, ids=[b[0] for b in RAW_BODIES]
)
def test_bad_body_is_refused_and_changes_nothing(
    client: TestClient,
    engine: Engine,
    name: str,
    raw: bytes,
    headers: dict[str, str],
    status: int,
    code: str,
) -> None:
    before = state(engine)
    response = client.post("/collections/billboards/items", content=raw, headers=headers)
    assert response.status_code == status and response.json()["code"] == code
    assert state(engine) == before


def test_changes_sending_a_stale_etag_are_refused(client: TestClient, engine: Engine) -> None:
    path = (
        post(client, "billboards", BILLBOARD).headers["location"].replace("http://testserver", "")
    )
    before = state(engine)
    patch = json.dumps({"properties": {"owner": "x"}})
    assert (
        client.patch(path, content=patch, headers={**GEOJSON, "If-Match": '"stale"'}).status_code
        == 412
    )
    assert client.delete(path, headers={"If-Match": '"stale"'}).status_code == 412
    assert (
        client.put(
            path, content=json.dumps(BILLBOARD), headers={**GEOJSON, "If-Match": '"stale"'}
        ).status_code
        == 412
    )
    assert (
        client.patch(
            "/collections/billboards/items/999999",
            content=patch,
            headers={**GEOJSON, "If-Match": '"x"'},
        ).status_code
        == 404
    )
    assert (
        client.patch(
            "/collections/billboards/items/abc",
            content=patch,
            headers={**GEOJSON, "If-Match": '"x"'},
        ).status_code
        == 400
    )
    tag = client.get(path).headers["etag"]
    emptied = client.patch(
        path,
        content=json.dumps({"properties": {"type": None}}),
        headers={**GEOJSON, "If-Match": tag},
    )
    assert emptied.status_code == 400 and emptied.json()["code"] == "missing_property"
    assert state(engine) == before
