"""Vector tiles: ST_AsMVT content, aggregation that adds up, size caps, ETag/304, cache invalidation."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import mapbox_vector_tile
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, text

from api.app import create_app
from api.settings import DatabaseSettings
from layers.engine.tiles import TileCache, fetch_tile
from layers.registry import LAYERS, spatial_layers
from layers.store import db
from tests.accounts import TEST_AUTH, bearer, ensure_account, sign_in

SEAT = (121.657, 31.808)
COUNTY = (121.42, 31.61, 121.98, 32.13)
MAX_TILE_BYTES = 500 * 1024


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return int((lon + 180) / 360 * n), int(y)


def tiles_covering(
    west: float, south: float, east: float, north: float, z: int
) -> list[tuple[int, int]]:
    x0, y0 = tile_of(west, north, z)
    x1, y1 = tile_of(east, south, z)
    return [(x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]


@pytest.fixture(scope="module")
def client(database_url: str, demo: dict[str, int]) -> Iterator[TestClient]:
    settings = DatabaseSettings(database_url=database_url)
    with TestClient(create_app(settings, auth_settings=TEST_AUTH)) as c:
        yield sign_in(c, database_url)


def decode(data: bytes) -> dict[str, list[dict[str, object]]]:
    layers = mapbox_vector_tile.decode(data)
    return {name: layer["features"] for name, layer in layers.items()}


def test_tile_holds_the_features_with_their_fields(client: TestClient, engine: Engine) -> None:
    z = 14
    x, y = tile_of(*SEAT, z)
    response = client.get(f"/collections/billboards/tiles/WebMercatorQuad/{z}/{x}/{y}")
    assert (
        response.status_code == 200
        and response.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    )
    features = decode(response.content)["billboards"]
    with engine.connect() as conn:
        expected = conn.execute(
            text(
                "SELECT count(*) FROM billboards"
                " WHERE ST_Intersects(ST_Transform(geom, 3857), ST_TileEnvelope(:z, :x, :y, margin => 64.0 / 4096))"
            ),
            {"z": z, "x": x, "y": y},
        ).scalar_one()
    assert len(features) == expected > 0
    keys = set().union(*(f["properties"] for f in features))  # MVT leaves out null values
    assert (
        {"type", "owner", "face_area_m2", "risk_grade"}
        <= keys
        <= set(LAYERS["billboards"].popup_fields)
    )


@pytest.mark.parametrize("z", [8, 10, 12])
def test_aggregated_points_add_up_to_every_case(client: TestClient, z: int) -> None:
    total = cells = 0
    for x, y in tiles_covering(*COUNTY, z):
        features = decode(
            client.get(f"/collections/cases/tiles/WebMercatorQuad/{z}/{x}/{y}").content
        ).get("cases", [])
        for f in features:
            px, py = f["geometry"]["coordinates"]
            if 0 <= px < 4096 and 0 < py <= 4096:  # the tile proper, not its buffer
                total += int(f["properties"]["count"])
                cells += 1
    assert cells < total / 10  # aggregated, not one feature per case
    assert total == 152821


def test_no_tile_of_the_demo_city_exceeds_500_kb(database_url: str, demo: dict[str, int]) -> None:
    engine = db.make_engine(database_url)
    largest: dict[str, tuple[int, str]] = {}
    try:
        with engine.connect() as conn:
            for layer in spatial_layers():
                for z in range(6, 17):
                    area = (
                        COUNTY
                        if z <= 13
                        else (SEAT[0] - 0.04, SEAT[1] - 0.04, SEAT[0] + 0.04, SEAT[1] + 0.04)
                    )
                    for x, y in tiles_covering(*area, z):
                        size = len(fetch_tile(conn, layer, z, x, y).data)
                        if size > largest.get(layer.id, (0, ""))[0]:
                            largest[layer.id] = (size, f"{z}/{x}/{y}")
    finally:
        engine.dispose()
    print("largest tiles:", largest)
    assert all(size <= MAX_TILE_BYTES for size, _ in largest.values()), largest


def test_etag_and_not_modified(client: TestClient) -> None:
    url = "/collections/grids/tiles/WebMercatorQuad/10/857/418"
    first = client.get(url)
    assert first.headers["etag"] and first.headers["cache-control"] == "private, no-cache"
    again = client.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["cache-control"] == "private, no-cache"


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/collections/cases/tiles/WebMercatorQuad/23/0/0", 400),
        ("/collections/cases/tiles/WebMercatorQuad/3/8/0", 400),
        ("/collections/cases/tiles/WebMercatorQuad/3/-1/0", 400),
        ("/collections/work_orders/tiles/WebMercatorQuad/3/1/1", 400),
        ("/collections/nope/tiles/WebMercatorQuad/3/1/1", 404),
        ("/collections/cases/tiles/WebMercatorQuad/a/1/1", 400),
    ],
)
def test_bad_tile_requests(client: TestClient, url: str, status: int) -> None:
    response = client.get(url)
    assert response.status_code == status and response.json()["code"]


def test_cache_never_serves_a_changed_layer(scratch_url: str) -> None:
    engine = db.make_engine(scratch_url)
    cache = TileCache()
    insert = text("""
        INSERT INTO billboards (adcode, geom, type, face_area_m2)
        VALUES ('320681', ST_SetSRID(ST_MakePoint(:lon, 31.808), 4490), 'wall', 5)
    """)
    z = 12
    x, y = tile_of(*SEAT, z)
    try:
        with engine.begin() as conn:
            conn.execute(insert, {"lon": 121.657})
        with engine.connect() as conn:
            first = fetch_tile(conn, LAYERS["billboards"], z, x, y, cache)
            assert (
                fetch_tile(conn, LAYERS["billboards"], z, x, y, cache) is first
            )  # served from the cache
        with engine.begin() as conn:
            conn.execute(insert, {"lon": 121.658})
        with engine.connect() as conn:
            second = fetch_tile(conn, LAYERS["billboards"], z, x, y, cache)
    finally:
        engine.dispose()
    assert len(decode(first.data)["billboards"]) == 1
    assert len(decode(second.data)["billboards"]) == 2 and second.etag != first.etag


def test_api_tile_cache_follows_writes_from_any_process(scratch_url: str) -> None:
    """Served from memory without a query, yet a write by another connection is seen at once."""
    engine = db.make_engine(scratch_url)
    insert = text("""
        INSERT INTO billboards (adcode, geom, type, face_area_m2)
        VALUES ('320681', ST_SetSRID(ST_MakePoint(:lon, 31.808), 4490), 'wall', 5)
    """)
    z = 12
    x, y = tile_of(*SEAT, z)
    url = f"/collections/billboards/tiles/WebMercatorQuad/{z}/{x}/{y}"
    try:
        with engine.begin() as conn:
            conn.execute(insert, {"lon": 121.657})
        app = create_app(DatabaseSettings(database_url=scratch_url), auth_settings=TEST_AUTH)
        with TestClient(app) as c:
            sign_in(c, scratch_url)
            watcher = app.state.layer_versions
            for _ in range(100):
                if watcher.current("billboards") is not None:
                    break
                time.sleep(0.05)
            first = c.get(url)
            assert c.get(url).headers["etag"] == first.headers["etag"]
            with engine.begin() as conn:  # another writer, not through this app
                conn.execute(insert, {"lon": 121.658})
            deadline = time.monotonic() + 2
            while (
                watcher.current("billboards") == int(first.headers["etag"].split("-")[1])
                and time.monotonic() < deadline
            ):
                time.sleep(0.01)
            second = c.get(url)
    finally:
        engine.dispose()
    assert len(decode(first.content)["billboards"]) == 1
    assert len(decode(second.content)["billboards"]) == 2


# --- one viewer's tile never reaches another ----------------------------------------------

SCOPE_ZOOM = 16
SCOPE_LAYERS = ("cases", "billboards")


@dataclass(frozen=True)
class Scopes:
    """A busy tile shared by two units (each a community's), and what each test viewer may read
    of it, counted by SQL written here."""

    tile: tuple[int, int, int]
    viewers: dict[str, tuple[str, tuple[str, ...], str | None]]  # name: (role, grids, unit)
    expected: dict[str, dict[str, int]]  # layer: viewer: features


def _shared_tile(conn: Connection, z: int) -> tuple[tuple[int, int, int], list[tuple[str, str]]]:
    """The tile at zoom `z` holding the most cases of more than one grid's unit (not a
    maintainer's or a rule's), and its two busiest units with their community grids."""
    x, y = conn.execute(
        text("""
        WITH t AS (
            SELECT floor((ST_X(geom) + 180) / 360 * 2 ^ :z)::int AS x,
                   floor((1 - asinh(tan(radians(ST_Y(geom)))) / pi()) / 2 * 2 ^ :z)::int AS y, unit
            FROM cases WHERE routed_by = 'territory'
        )
        SELECT x, y FROM t GROUP BY x, y HAVING count(DISTINCT unit) > 1
        ORDER BY count(*) DESC, x, y LIMIT 1
    """),
        {"z": z},
    ).one()
    units = conn.execute(
        text("""
        SELECT c.unit, min(g.code) FROM cases AS c
        JOIN grids AS g ON g.responsible_unit = c.unit AND g.level = 'community' AND g.valid_to IS NULL
        WHERE ST_Intersects(ST_Transform(c.geom, 3857), ST_TileEnvelope(:z, :x, :y))
        GROUP BY c.unit ORDER BY count(*) DESC, c.unit LIMIT 2
    """),
        {"z": z, "x": x, "y": y},
    ).all()
    return (z, x, y), [(unit, code) for unit, code in units]


def _expected(
    conn: Connection,
    layer: str,
    tile: tuple[int, int, int],
    grids: tuple[str, ...],
    unit: str | None,
) -> int:
    """Points of `layer` drawn in the tile, inside the grids (widened by the patrol buffer, in
    metres of the Gauss-Krüger zone) and of the unit, when given."""
    z, x, y = tile
    # a point is drawn when it lands within the tile's 64-unit buffer on its 4096-unit grid
    where = [
        "ST_AsMVTGeom(ST_Transform(t.geom, 3857), ST_TileEnvelope(:z, :x, :y), 4096, 64, true) IS NOT NULL"
    ]
    if grids:
        where.append("""ST_Intersects(t.geom, (
            SELECT ST_Transform(ST_Buffer(ST_Transform(u.geom, citygrid_gk_srid(u.geom)), :m), 4490)
            FROM (SELECT ST_Union(g.geom) AS geom FROM grids AS g
                  WHERE g.code = ANY(:grids) AND g.valid_to IS NULL) AS u))""")
    if unit is not None:
        where.append("t.unit = :unit")
    return int(
        conn.execute(
            text(f'SELECT count(*) FROM "{layer}" AS t WHERE {" AND ".join(where)}'),
            {
                "z": z,
                "x": x,
                "y": y,
                "grids": list(grids),
                "unit": unit,
                "m": TEST_AUTH.patrol_buffer_m,
            },
        ).scalar_one()
    )


@pytest.fixture(scope="module")
def scopes(engine: Engine, demo: dict[str, int]) -> Scopes:
    with engine.connect() as conn:
        tile, ((unit_a, grid_a), (unit_b, grid_b)) = _shared_tile(conn, SCOPE_ZOOM)
    viewers: dict[str, tuple[str, tuple[str, ...], str | None]] = {
        "scope-admin": ("admin", (), None),
        "scope-planner": ("planner", (), None),
        "scope-leader": ("leader", (), None),
        "scope-dispatcher": ("dispatcher", (), None),
        "scope-insp-a": ("inspector", (grid_a,), None),
        "scope-insp-b": ("inspector", (grid_b,), None),
        "scope-unit-a": ("handler", (), unit_a),
        "scope-unit-b": ("handler", (), unit_b),
    }
    for name, (role, grids, unit) in viewers.items():
        ensure_account(engine, name, role, grids, unit)
    with engine.connect() as conn:
        expected = {
            layer: {
                name: _expected(conn, layer, tile, grids, unit if layer == "cases" else None)
                for name, (_, grids, unit) in viewers.items()
            }
            for layer in SCOPE_LAYERS
        }
    cases = expected["cases"]
    # the scopes differ in this tile, so no order of requests can pass by luck
    assert len({cases["scope-admin"], cases["scope-unit-a"], cases["scope-unit-b"]}) == 3, cases
    assert cases["scope-insp-a"] != cases["scope-insp-b"], cases
    boards = expected["billboards"]
    assert len({boards["scope-admin"], boards["scope-insp-a"], boards["scope-insp-b"]}) > 1, boards
    return Scopes(tile, viewers, expected)


def _ready(app: Any, names: tuple[str, ...]) -> None:
    """Wait until the version listener vouches for every table, so tiles come from memory."""
    watcher = app.state.layer_versions
    deadline = time.monotonic() + 10
    while any(watcher.current(n) is None for n in names):
        assert time.monotonic() < deadline, "the version listener did not connect"
        time.sleep(0.05)


@pytest.mark.parametrize("order", ["forward", "backward"])
def test_the_tile_cache_never_hands_a_tile_to_another_scope(
    database_url: str, scopes: Scopes, order: str
) -> None:
    """Every role, and two inspectors and two units of different scopes, one after the other on
    one app (so the cache is shared), in both orders: each gets what SQL says it may read."""
    names = list(scopes.viewers)
    if order == "backward":
        names.reverse()
    z, x, y = scopes.tile
    app = create_app(DatabaseSettings(database_url=database_url), auth_settings=TEST_AUTH)
    varies: set[str] = set()
    with TestClient(app) as c:
        _ready(app, SCOPE_LAYERS)
        for name in names:
            for layer in SCOPE_LAYERS:
                url = f"/collections/{layer}/tiles/WebMercatorQuad/{z}/{x}/{y}"
                for _ in range(2):  # asked, then served from the cache
                    answer = c.get(url, headers=bearer(name))
                    assert answer.status_code == 200, answer.text
                    got = len(decode(answer.content).get(layer, []))
                    assert got == scopes.expected[layer][name], (layer, name, order)
                    varies.add(answer.headers.get("vary", ""))
        # viewers of one scope share a tile: the three county offices' one, the deployment
        # admin's (every county), and one per inspector and unit of cases; the units read every
        # billboard of their county, the county offices' tile
        assert len(app.state.tile_cache) == 6 + 4
    # and a browser keeps them apart when another account signs in
    assert varies == {"Authorization, Cookie"}
