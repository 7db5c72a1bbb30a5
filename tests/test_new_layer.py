"""A layer added by a declaration and its table alone: a line layer and a multipoint layer, never
seen by the rest of the code, go through items, editing, tiles, import, export, pages and the
demo loader."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mapbox_vector_tile
import numpy as np
import pyogrio
import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from api.settings import DatabaseSettings
from gis.validate import GeometryProblem, validate_geometry
from layers.demo import load as demo_city
from layers.places import counties
from layers.registry import (
    LAYERS,
    Field,
    FieldType,
    GeometryKind,
    Layer,
    Style,
    codes,
    length,
    register,
    unregister,
)
from layers.store import db
from layers.store.tables import create_layer_table, drop_layer_table, forget_layer_table
from tests.accounts import TEST_AUTH, bearer, ensure_account, sign_in

GEOJSON = {"Content-Type": "application/geo+json"}
FORMATS = ("geojson", "gpkg", "shp", "kml", "csv", "xlsx")

ROUTES = Layer(
    id="patrol_routes",
    title_zh="巡查路线",
    title_en="Patrol routes",
    geometry=GeometryKind.MULTILINESTRING,
    fields=(
        Field(
            "kind",
            FieldType.TEXT,
            "路线类型",
            "Kind",
            codes(("foot", "步行巡查", "On foot"), ("vehicle", "车巡", "By vehicle")),
            required=True,
            indexed=True,
        ),
        Field("lanes", FieldType.INTEGER, "车道数", "Lanes", minimum=1, maximum=8),
        Field("opened_on", FieldType.DATE, "启用日期", "Opened on", indexed=True),
        length(),
    ),
    style=Style("#117a65", "#117a65", 0.0, 3.0),
    popup_fields=("kind", "lanes", "opened_on", "length_m"),
    length_field="length_m",
    temporal=("opened_on",),
)

BINS = Layer(
    id="sorting_points",
    title_zh="垃圾分类投放点",
    title_en="Garbage-sorting points",
    geometry=GeometryKind.MULTIPOINT,
    fields=(
        Field(
            "sort",
            FieldType.TEXT,
            "投放类型",
            "Sort",
            codes(("kitchen", "厨余垃圾", "Kitchen"), ("other", "其他垃圾", "Other")),
            required=True,
        ),
        Field("bins", FieldType.INTEGER, "桶数", "Bins", minimum=1, maximum=50),
        Field("placed_on", FieldType.DATE, "设置日期", "Placed on"),
    ),
    style=Style("#7d3c98", "#a569bd", 0.8, 1.0),
    popup_fields=("sort", "bins", "placed_on"),
)

NEW = (ROUTES, BINS)
# Two streets of 启东市 (汇龙镇), in CGCS2000 degrees
EAST_WEST = [[121.640, 31.805], [121.650, 31.805], [121.660, 31.806]]
NORTH_SOUTH = [[121.655, 31.800], [121.655, 31.812]]
CROSSING = [[121.64, 31.80], [121.66, 31.81], [121.66, 31.80], [121.64, 31.81]]
POINT = {"type": "Point", "coordinates": [121.65, 31.80]}


def feature(geometry: dict[str, Any], **properties: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry, "properties": properties}


def line(coords: list[list[float]], **properties: Any) -> dict[str, Any]:
    return feature({"type": "LineString", "coordinates": coords}, **properties)


@dataclass(frozen=True)
class World:
    """The test database holding the new layers, an owner's engine on it, a signed-in client."""

    url: str
    engine: Engine
    client: TestClient


@pytest.fixture(scope="module")
def world(pg_server: Any) -> Iterator[World]:
    from tests.databases import fresh_database

    databases = fresh_database(pg_server, "new_layer")
    url = next(databases)
    owner = db.make_engine(pg_server.as_owner(url))
    for layer in NEW:
        register(layer)
    try:
        with owner.begin() as conn:
            for layer in NEW:
                create_layer_table(conn, layer)  # what the layer's migration runs
        app = create_app(DatabaseSettings(database_url=url), auth_settings=TEST_AUTH)
        with TestClient(app) as client:
            ensure_account(url, "planner", "planner")
            yield World(url, owner, sign_in(client, url))
        with owner.begin() as conn:
            for layer in NEW:
                drop_layer_table(conn, layer)
    finally:
        for layer in NEW:
            unregister(layer.id)
            forget_layer_table(layer)
        owner.dispose()
        next(databases, None)


def post(client: TestClient, layer: str, body: Any, **headers: str) -> Any:
    return client.post(
        f"/collections/{layer}/items",
        content=json.dumps(body, ensure_ascii=False),
        headers={**GEOJSON, **headers},
    )


def rows(world: World, layer: str) -> list[Any]:
    with world.engine.connect() as conn:
        return list(conn.execute(text(f"SELECT * FROM {layer} ORDER BY id")).all())


def routes(world: World) -> list[tuple[Any, ...]]:
    """The stored routes: their fields and shapes."""
    with world.engine.connect() as conn:
        found = conn.execute(
            text("SELECT kind, lanes, opened_on, ST_AsBinary(geom) FROM patrol_routes ORDER BY id")
        ).all()
    return [(*r[:3], shapely.from_wkb(bytes(r[3]))) for r in found]


def clear(world: World) -> None:
    with world.engine.begin() as conn:
        for layer in NEW:
            conn.execute(text(f"TRUNCATE {layer.id} RESTART IDENTITY"))


def test_lines_and_multipoints_are_checked_and_promoted() -> None:
    promoted = validate_geometry(line(EAST_WEST)["geometry"], "MultiLineString", None)
    assert promoted.geom_type == "MultiLineString"
    assert validate_geometry({"type": "Point", "coordinates": [1, 2]}, "MultiPoint", None).equals(
        shapely.MultiPoint([(1, 2)])
    )
    for doc, code in (
        ({"type": "LineString", "coordinates": [[0, 0], [1, 1], [1, 0], [0, 1]]}, "not_simple"),
        ({"type": "LineString", "coordinates": [[0, 0]]}, "too_few_points"),
        ({"type": "LineString", "coordinates": [[0, 0], [0, 0]]}, "invalid"),
        ({"type": "Point", "coordinates": [0, 0]}, "wrong_type"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}, "wrong_type"),
    ):
        with pytest.raises(GeometryProblem) as problem:
            validate_geometry(doc, "MultiLineString", None)
        assert problem.value.code == f"geometry_{code}"
    with pytest.raises(GeometryProblem) as crossing:
        validate_geometry(
            {"type": "LineString", "coordinates": [[0, 0], [2, 2], [2, 0], [0, 2]]},
            "LineString",
            None,
        )
    assert crossing.value.location == (1.0, 1.0)


def test_items_filters_bbox_and_single_item(world: World) -> None:
    clear(world)
    client = world.client
    for body in (
        line(EAST_WEST, kind="vehicle", lanes=4, opened_on="2025-03-01"),
        line(NORTH_SOUTH, kind="foot", opened_on="2024-06-01"),
    ):
        assert post(client, "patrol_routes", body).status_code == 201
    created = post(
        client,
        "sorting_points",
        feature(POINT, sort="kitchen", bins=3),
    )
    assert created.status_code == 201, created.text
    every = client.get("/collections/patrol_routes/items").json()
    assert every["numberReturned"] == 2
    assert {f["geometry"]["type"] for f in every["features"]} == {"MultiLineString"}
    # the length is kept in metres: about 1.9 km east-west at 31.8° N
    metres = {f["properties"]["kind"]: f["properties"]["length_m"] for f in every["features"]}
    assert metres["vehicle"] == pytest.approx(1895, rel=0.01)
    assert metres["foot"] == pytest.approx(1331, rel=0.01)
    assert (
        client.get("/collections/patrol_routes/items", params={"kind": "foot"}).json()[
            "numberReturned"
        ]
        == 1
    )
    wide = client.get(
        "/collections/patrol_routes/items",
        params={"filter": "lanes > 2 AND opened_on > DATE('2025-01-01')"},
    ).json()
    assert [f["properties"]["kind"] for f in wide["features"]] == ["vehicle"]
    west = client.get(
        "/collections/patrol_routes/items", params={"bbox": "121.63,31.80,121.645,31.81"}
    )
    assert [f["properties"]["kind"] for f in west.json()["features"]] == ["vehicle"]
    dated = client.get(
        "/collections/patrol_routes/items", params={"datetime": "2024-01-01/2024-12-31"}
    )
    assert [f["properties"]["kind"] for f in dated.json()["features"]] == ["foot"]
    bad = client.get("/collections/patrol_routes/items", params={"kind": "boat"})
    assert bad.status_code == 400 and "code" in bad.json()
    path = created.headers["location"].replace("http://testserver", "")
    one = client.get(path).json()
    assert one["geometry"]["type"] == "MultiPoint" and one["properties"]["sort"] == "kitchen"
    meta = client.get("/collections/patrol_routes").json()
    assert meta["title"] and meta["extent"]["spatial"]["bbox"][0][0] == pytest.approx(121.64)
    queryables = client.get("/collections/patrol_routes/queryables").json()["properties"]
    assert queryables["geom"]["format"] == "geometry-multilinestring"
    assert queryables["kind"]["enum"] == ["foot", "vehicle"]
    listed = {c["id"] for c in client.get("/collections").json()["collections"]}
    assert {"patrol_routes", "sorting_points"} <= listed


def test_editing_by_admin_and_refused_for_others(world: World) -> None:
    clear(world)
    client = world.client
    created = post(client, "patrol_routes", line(EAST_WEST, kind="foot", lanes=2))
    assert created.status_code == 201, created.text
    path = created.headers["location"].replace("http://testserver", "")
    etag = client.get(path).headers["etag"]
    patched = client.patch(
        path,
        content=json.dumps({"properties": {"lanes": 3}}),
        headers={**GEOJSON, "If-Match": etag},
    )
    assert patched.status_code == 204, patched.text
    replaced = client.put(
        path,
        content=json.dumps(line(NORTH_SOUTH, kind="vehicle", opened_on="2025-05-05")),
        headers={**GEOJSON, "If-Match": patched.headers["etag"]},
    )
    assert replaced.status_code == 204, replaced.text
    after = client.get(path).json()["properties"]
    assert after["kind"] == "vehicle" and after["lanes"] is None
    assert after["length_m"] == pytest.approx(1331, rel=0.01)  # measured again with the shape
    before = rows(world, "patrol_routes")
    for body, code in (
        (line(CROSSING, kind="foot"), "geometry_not_simple"),
        (line(EAST_WEST, kind="boat"), "property_not_in_code_list"),
        (line(EAST_WEST, kind="foot", lanes=99), "property_out_of_range"),
        (line(EAST_WEST, kind="foot", opened_on="2025-02-30"), "property_wrong_type"),
        (feature(POINT, kind="foot"), "geometry_wrong_type"),
        (line([[121.0, 31.0], [121.01, 31.0]], kind="foot"), "outside_every_county"),
    ):
        refused = post(client, "patrol_routes", body)
        assert refused.status_code in (400, 422) and refused.json()["message"], refused.text
        assert refused.json()["code"] == code, refused.text
    planner = post(client, "patrol_routes", line(EAST_WEST, kind="foot"), **bearer("planner"))
    assert planner.status_code == 403, planner.text
    etag = client.get(path).headers["etag"]
    denied = client.delete(path, headers={**bearer("planner"), "If-Match": etag})
    assert denied.status_code == 403
    assert rows(world, "patrol_routes") == before
    assert client.delete(path, headers={"If-Match": etag}).status_code == 204
    assert client.get(path).status_code == 404


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return int((lon + 180) / 360 * n), int(y)


def test_tiles_hold_the_lines_at_every_zoom(world: World) -> None:
    clear(world)
    assert post(world.client, "patrol_routes", line(EAST_WEST, kind="foot")).status_code == 201
    for z in range(10, 17):
        x, y = tile_of(121.6505, 31.8052, z)
        answer = world.client.get(f"/collections/patrol_routes/tiles/WebMercatorQuad/{z}/{x}/{y}")
        assert answer.status_code == 200, (z, answer.text)
        features = mapbox_vector_tile.decode(answer.content)["patrol_routes"]["features"]
        assert len(features) == 1 and features[0]["properties"]["kind"] == "foot", z
        assert "LineString" in features[0]["geometry"]["type"], z  # a line, never a cluster


def upload(client: TestClient, layer: str, name: str, content: bytes, **params: Any) -> Any:
    return client.post(
        f"/collections/{layer}/import",
        params={"filename": name, **params},
        content=content,
        headers={"Content-Type": "application/octet-stream"},
    )


def test_import_a_file_of_lines(world: World, tmp_path: Path) -> None:
    clear(world)
    path = tmp_path / "routes.gpkg"
    shapes = [shapely.LineString(EAST_WEST), shapely.MultiLineString([NORTH_SOUTH])]
    pyogrio.raw.write(
        str(path), shapely.to_wkb(shapes),
        [np.asarray(["步行巡查", "vehicle"], dtype=object), np.asarray([2, 6])], ["路线类型", "lanes"],
        driver="GPKG", crs="EPSG:4490", geometry_type="MultiLineString",
    )  # fmt: skip
    answer = upload(world.client, "patrol_routes", path.name, path.read_bytes())
    assert answer.status_code == 200, answer.text
    assert answer.json()["imported"] == 2
    stored = [(r.kind, r.lanes, round(r.length_m)) for r in rows(world, "patrol_routes")]
    assert [s[:2] for s in stored] == [("foot", 2), ("vehicle", 6)] and stored[0][2] > 1800
    crossing = tmp_path / "crossing.csv"
    crossing.write_text(
        "wkt,kind\n"
        '"LINESTRING (121.64 31.80, 121.66 31.81, 121.66 31.80, 121.64 31.81)",foot\n'
        '"LINESTRING (121.64 31.80, 121.66 31.81)",boat\n',
        encoding="utf-8",
    )
    refused = upload(world.client, "patrol_routes", crossing.name, crossing.read_bytes())
    assert refused.status_code == 400, refused.text
    errors = refused.json()["report"]["errors"]
    assert [e["code"] for e in errors] == ["geometry_not_simple", "property_not_in_code_list"]
    assert len(rows(world, "patrol_routes")) == 2


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_export_goes_out_and_back_in(world: World, fmt: str) -> None:
    clear(world)
    for body in (
        line(EAST_WEST, kind="vehicle", lanes=4, opened_on="2025-03-01"),
        line(NORTH_SOUTH, kind="foot"),
    ):
        assert post(world.client, "patrol_routes", body).status_code == 201
    sent = routes(world)
    exported = world.client.get("/collections/patrol_routes/export", params={"format": fmt})
    assert exported.status_code == 200, exported.text
    clear(world)
    suffix = ".zip" if fmt == "shp" else f".{fmt}"
    back = upload(world.client, "patrol_routes", f"routes{suffix}", exported.content, mode="copy")
    assert back.status_code == 200, back.text
    arrived = routes(world)
    assert [a[:3] for a in arrived] == [s[:3] for s in sent]
    for a, s in zip(arrived, sent, strict=True):
        assert a[3].geom_type == "MultiLineString"
        assert shapely.hausdorff_distance(a[3], s[3]) < 1e-7


def test_the_overview_page_draws_the_new_layers(world: World) -> None:
    page = world.client.get("/maps/overview")
    assert page.status_code == 200, page.text
    assert '"key": "patrol_routes"' in page.text and '"pane": "cgLines"' in page.text
    assert '"key": "sorting_points"' in page.text and '"pane": "cgPoints"' in page.text
    assert json.dumps(BINS.title_zh) in page.text  # its title, for the layer control


def test_the_demo_loader_and_summaries_take_a_layer_without_demo_data(world: World) -> None:
    clear(world)
    assert demo_city.load_order()[-2:] == ("patrol_routes", "sorting_points")
    city = demo_city.DemoCity(demo_city.qidong())
    city.rows = {name: [] for name in LAYERS if name not in ("patrol_routes", "sorting_points")}
    with world.engine.begin() as conn:
        written = demo_city.write(conn, city)
        assert written["patrol_routes"] == written["sorting_points"] == 0
        summary = counties.summary(conn, demo_city.ADCODE)
    assert summary.rows["patrol_routes"] == 0
