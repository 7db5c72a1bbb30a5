"""Components that are lines or areas (护栏, 绿地 …): their own layers with the inventory's IDs,
placement (the grid holding most of them), lengths and areas and versions; the catalogue's
geometry of a subclass decides the layer; cases, indicators and photos find them by ID; reads
limited by county and patrol area, tiles included."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from api.app import create_app
from api.settings import DatabaseSettings
from gis.validate import Limits
from layers.cases import units
from layers.cases.codes import seed_case_categories
from layers.engine import filein
from layers.engine.access import Viewer
from layers.engine.editing import EditContext
from layers.engine.importing import ImportRefused, import_rows
from layers.registry import COMPONENT_LINES, Role
from layers.store import db
from tests.accounts import TEST_AUTH, bearer
from tests.counties import (
    DEMO,
    SANYUAN,
    SCOPED_NAMES,
    SCOPES,
    CountyRows,
    ensure_scoped_accounts,
    two_counties,
)
from tests.databases import fresh_database
from tests.support import JPEG, bureau_today
from tests.world import ids_in, snapshot, tile_ids, tile_index

NAMES = SCOPED_NAMES
ROADS = "启东市公路管理站"  # maintains the demo county's railings
PARKS = "启东市园林绿化管理所"  # owns and maintains its green spaces
SANYUAN_ROADS = "三元区市政所"
RAILING, GREEN, PATH = "C0206", "C0405", "C0217"  # line, area, line (盲道)


@dataclass(frozen=True)
class Shapes:
    """The database, the two counties and the features made: name → (id, component ID)."""

    engine: Engine
    url: str
    demo: CountyRows
    second: CountyRows
    made: dict[str, tuple[int, str]]


def line(rows: CountyRows, *xys: tuple[float, float]) -> dict[str, Any]:
    return {"type": "MultiLineString", "coordinates": [[list(rows.lonlat(x, y)) for x, y in xys]]}


def area(rows: CountyRows, x0: float, y0: float, x1: float, y1: float) -> dict[str, Any]:
    ring = [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]
    return {"type": "MultiPolygon", "coordinates": [[[list(rows.lonlat(x, y)) for x, y in ring]]]}


def post(client: TestClient, layer: str, geometry: Any, user: str = "admin", **props: Any) -> Any:
    feature = {"type": "Feature", "geometry": geometry, "properties": {"status": "intact", **props}}
    return client.post(f"/collections/{layer}/items", json=feature, headers=bearer(user))


def made(client: TestClient, layer: str, geometry: Any, **props: Any) -> tuple[int, str]:
    answer = post(client, layer, geometry, **props)
    assert answer.status_code == 201, answer.text
    body = client.get(answer.headers["location"], headers=bearer("admin")).json()
    return int(body["id"]), str(body["properties"]["component_code"])


@pytest.fixture(scope="module")
def shapes(pg_server: Any) -> Iterator[Shapes]:
    databases = fresh_database(pg_server, "component_shapes")
    url = next(databases)
    engine = db.make_engine(pg_server.as_owner(url))
    with engine.begin() as conn:
        seed_case_categories(conn)
        demo, second = two_counties(conn)
        for name in (ROADS, PARKS):
            units.add(conn, name, DEMO, "tests")
        units.add(conn, SANYUAN_ROADS, SANYUAN, "tests")
    rows = {DEMO: demo, SANYUAN: second}
    ensure_scoped_accounts(engine, rows)
    app = create_app(DatabaseSettings(database_url=url), auth_settings=TEST_AUTH)
    with TestClient(app) as client:
        # the west community holds sections 0 (x −1500…−750) and 1 (−750…0): most of the
        # railing (650 of 800 m) and of the green (550 of 800 m wide) lie in section 1
        features = {
            "railing": made(
                client, "component_lines", line(demo, (-900, 100), (-100, 100)),
                subclass_code=RAILING, name="滨河路护栏", maintainer_unit=ROADS,
            ),
            "green": made(
                client, "component_areas", area(demo, -1000, -300, -200, 300),
                subclass_code=GREEN, owner_unit=PARKS, maintainer_unit=PARKS,
            ),
            "east_railing": made(
                client, "component_lines", line(demo, (900, -500), (1300, -500)),
                subclass_code=RAILING, maintainer_unit=ROADS,
            ),
            "east_green": made(
                client, "component_areas", area(demo, 900, 200, 1200, 400), subclass_code=GREEN
            ),
            "sanyuan_railing": made(
                client, "component_lines", line(second, (-900, 100), (-100, 100)),
                subclass_code=RAILING, maintainer_unit=SANYUAN_ROADS,
            ),
            "sanyuan_green": made(
                client, "component_areas", area(second, -1000, -300, -200, 300),
                subclass_code=GREEN,
            ),
        }  # fmt: skip
    yield Shapes(engine, url, demo, second, features)
    engine.dispose()
    next(databases, None)


@pytest.fixture(scope="module")
def client(shapes: Shapes) -> Iterator[TestClient]:
    app = create_app(DatabaseSettings(database_url=shapes.url), auth_settings=TEST_AUTH)
    with TestClient(app) as c:
        yield c


def properties(client: TestClient, layer: str, fid: int) -> dict[str, Any]:
    answer = client.get(f"/collections/{layer}/items/{fid}", headers=bearer("admin"))
    assert answer.status_code == 200, answer.text
    props: dict[str, Any] = answer.json()["properties"]
    return props


def test_lines_and_areas_get_ids_their_grid_community_street_and_measure(
    client: TestClient, shapes: Shapes
) -> None:
    demo = shapes.demo
    railing = properties(client, "component_lines", shapes.made["railing"][0])
    green = properties(client, "component_areas", shapes.made["green"][0])
    assert railing["component_code"] == f"{DEMO}0206000001"
    assert shapes.made["east_railing"][1] == f"{DEMO}0206000002"
    assert green["component_code"] == f"{DEMO}0405000001"
    assert shapes.made["sanyuan_railing"][1] == f"{SANYUAN}0206000001"
    for props in (railing, green):  # the grid holding most of it, not the lowest code it meets
        assert props["grid_code"] == demo.sections[1]
        assert props["community"] == f"{DEMO}测试{demo.communities[0][-6:]}"
        assert props["street"] == f"{DEMO}测试{demo.street[-6:]}"
        assert props["valid_from"] == bureau_today().isoformat()
    assert railing["length_m"] == pytest.approx(800.0, abs=1.0)
    assert green["area_m2"] == pytest.approx(800.0 * 600.0, rel=1e-3)
    east = properties(client, "component_lines", shapes.made["east_railing"][0])
    assert east["grid_code"] == demo.sections[3]
    catalogue = client.get("/catalogue", headers=bearer("admin")).json()["subclasses"]
    shape_of = {s["code"]: s["geometry"] for s in catalogue}
    assert (shape_of[RAILING], shape_of[GREEN], shape_of["C0101"], shape_of["E0101"]) == (
        "line",
        "area",
        "point",
        None,
    )


@pytest.mark.parametrize(
    ("layer", "geometry", "subclass"),
    [
        ("components", "point", RAILING),  # a railing is a line
        ("component_lines", "line", "C0101"),  # a manhole cover is a point
        ("component_lines", "line", GREEN),  # a green space is an area
        ("component_areas", "area", RAILING),
    ],
)
def test_a_component_in_the_wrong_layer_for_its_subclass_is_refused(
    client: TestClient, shapes: Shapes, layer: str, geometry: str, subclass: str
) -> None:
    demo = shapes.demo
    shape = {
        "point": {"type": "Point", "coordinates": list(demo.lonlat(-600, 0))},
        "line": line(demo, (-600, 0), (-500, 0)),
        "area": area(demo, -600, 0, -500, 50),
    }[geometry]
    before = snapshot(shapes.engine)
    answer = post(client, layer, shape, subclass_code=subclass)
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["code"] == "subclass_wrong_geometry"
    assert "线状部件" in body["message"] or "点状" in body["message"] or "面状" in body["message"]
    assert body["message_en"]
    assert snapshot(shapes.engine) == before
    # nor may an edit move a component into a subclass of another geometry
    railing = shapes.made["railing"][0]
    moved = client.patch(
        f"/collections/component_lines/items/{railing}",
        json={"properties": {"subclass_code": "C0101"}},
        headers=bearer("admin"),
    )
    assert moved.status_code == 400 and moved.json()["code"] in (
        "subclass_wrong_geometry",
        "component_code_subclass",
    )


def census(path: Path, rows: CountyRows, subclasses: list[str | None]) -> Path:
    """A survey of railings as a GeoPackage of lines with Chinese column names."""
    records = [
        {"小类代码": s, "状态": "完好", "养护单位": ROADS, "初始日期": "2025-05-01"}
        for s in subclasses
    ]
    geoms = [
        shapely.geometry.shape(line(rows, (-1400, 600 + 20 * i), (-1200, 600 + 20 * i)))
        for i in range(len(records))
    ]
    gpd.GeoDataFrame(records, geometry=geoms, crs="EPSG:4490").to_file(path, driver="GPKG")
    return path


def test_a_census_of_lines_is_held_to_the_subclass_geometry(shapes: Shapes, tmp_path: Path) -> None:
    ctx = EditContext(Viewer("tests", Role.ADMIN, counties=(DEMO,)), Limits())

    def run(path: Path) -> dict[str, Any]:
        source = filein.read(path, filein.FileLimits())
        with shapes.engine.begin() as conn:
            return import_rows(conn, COMPONENT_LINES, source, ctx).document()

    before = snapshot(shapes.engine)
    with pytest.raises(ImportRefused) as refused:
        run(census(tmp_path / "bad.gpkg", shapes.demo, [PATH, "C0101", "绿地"]))
    errors = {(e.row, e.code) for e in refused.value.report.errors}
    assert errors == {(2, "subclass_wrong_geometry"), (3, "subclass_wrong_geometry")}
    assert snapshot(shapes.engine) == before
    report = run(census(tmp_path / "good.gpkg", shapes.demo, [PATH, "盲道"]))
    assert report["imported"] == 2
    with shapes.engine.connect() as conn:
        got = conn.execute(
            text(
                "SELECT component_code, grid_code, round(length_m) FROM component_lines "
                "WHERE subclass_code = :s ORDER BY component_code"
            ),
            {"s": PATH},
        ).all()
    assert [tuple(g) for g in got] == [
        (f"{DEMO}0217000001", shapes.demo.sections[0], 200),
        (f"{DEMO}0217000002", shapes.demo.sections[0], 200),
    ]


def test_ids_of_a_county_never_clash_across_the_layers(client: TestClient, shapes: Shapes) -> None:
    """A point stored under a line subclass (a census loaded around the checks) keeps its ID:
    the next line of that subclass draws the serial after it, and the database refuses a
    second current row with it in another layer."""
    demo = shapes.demo
    stray = f"{DEMO}0214000001"  # 隔音屏, a line subclass
    with shapes.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO components (adcode, geom, component_code, subclass_code, status, "
                "valid_from) VALUES (:a, ST_SetSRID(ST_MakePoint(:x, :y), 4490), :c, 'C0214', "
                "'intact', '2025-01-01')"
            ),
            {"a": DEMO, "c": stray, "x": demo.lonlat(-300, 0)[0], "y": demo.lonlat(-300, 0)[1]},
        )
    _, code = made(
        client, "component_lines", line(demo, (-400, 0), (-300, 0)), subclass_code="C0214"
    )
    assert code == f"{DEMO}0214000002"
    taken = post(
        client,
        "component_lines",
        line(demo, (-400, 50), (-300, 50)),
        subclass_code="C0214",
        component_code=stray,
    )
    assert taken.status_code == 409 and taken.json()["code"] == "component_code_taken"
    with (
        pytest.raises(IntegrityError, match=f"component code {stray} .* held in components"),
        shapes.engine.begin() as conn,
    ):
        conn.execute(
            text("UPDATE component_lines SET component_code = :c WHERE component_code = :d"),
            {"c": stray, "d": code},
        )


def case(client: TestClient, rows: CountyRows, x: float, y: float, code: str) -> Any:
    feature = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": list(rows.lonlat(x, y))},
        "properties": {"component_code": code, "problem": "damaged", "source": "patrol"},
    }
    return client.post("/cases", json=feature, headers=bearer("dispatcher-a"))


def test_a_case_on_a_line_or_an_area_goes_to_its_maintainer_within_100_m(
    client: TestClient, shapes: Shapes
) -> None:
    demo = shapes.demo
    railing, green = shapes.made["railing"][1], shapes.made["green"][1]
    near = case(client, demo, -500, 160, railing)  # 60 m from the line, 400 m from its ends
    assert near.status_code == 201, near.text
    assert (near.json()["unit"], near.json()["routed_by"]) == (ROADS, "component")
    inside = case(client, demo, -600, 0, green)  # within the green: no distance at all
    assert inside.status_code == 201, inside.text
    assert inside.json()["unit"] == PARKS
    before = snapshot(shapes.engine)
    far = case(client, demo, -500, 260, railing)  # 160 m from the line
    assert far.status_code == 400 and far.json()["code"] == "component_too_far"
    assert far.json()["distance_m"] == pytest.approx(160.0, abs=1.0)
    assert snapshot(shapes.engine) == before
    for answer in (near, inside):
        moved = client.post(
            f"/cases/{answer.json()['id']}/transitions",
            json={"action": "register"},
            headers=bearer("admin"),
        )
        assert moved.status_code == 200, moved.text
    today = str(bureau_today())
    body = client.get(
        "/stats/indicators",
        params={"from": today, "to": today, "by": "maintainer"},
        headers=bearer("leader-a"),
    )
    assert body.status_code == 200, body.text
    got = {r["key"]: r["registered"] for r in body.json()["rows"]}
    assert got.get(ROADS) == 1 and got.get(PARKS) == 1


def test_a_status_change_of_a_line_keeps_the_version_it_replaces(
    client: TestClient, shapes: Shapes
) -> None:
    fid, code = made(
        client,
        "component_lines",
        line(shapes.demo, (-1400, -600), (-1000, -600)),
        subclass_code=RAILING,
    )
    with shapes.engine.begin() as conn:
        conn.execute(
            text("UPDATE component_lines SET valid_from = '2025-03-01' WHERE id = :id"), {"id": fid}
        )
    answer = client.patch(
        f"/collections/component_lines/items/{fid}",
        json={"properties": {"status": "damaged"}},
        headers=bearer("admin"),
    )
    assert answer.status_code in (200, 204), answer.text
    with shapes.engine.connect() as conn:
        versions = conn.execute(
            text(
                "SELECT id, status, valid_from, valid_to, round(length_m) FROM component_lines "
                "WHERE component_code = :c ORDER BY valid_from"
            ),
            {"c": code},
        ).all()
    today = bureau_today()
    assert [tuple(v)[1:] for v in versions] == [
        ("intact", date(2025, 3, 1), today, 400),
        ("damaged", today, None, 400),
    ]
    assert versions[1].id == fid


def _expected(shapes: Shapes, name: str, layer: str) -> set[int]:
    """Who reads which: every role its counties; an inspector the rows meeting the west
    community of each of its counties (the patrol area), by the layout of the features."""
    if name == "admin":
        scope, role = "city", "admin"
    else:
        role, scope = name.rsplit("-", 1)
    kind = "railing" if layer == "component_lines" else "green"
    where = {DEMO: [kind, f"east_{kind}"], SANYUAN: [f"sanyuan_{kind}"]}
    names = [n for county in SCOPES[scope] for n in where[county]]
    if role == "inspector":
        names = [n for n in names if not n.startswith("east_")]
    return {shapes.made[n][0] for n in names}


@pytest.mark.parametrize("name", NAMES)
def test_readers_see_lines_and_areas_of_their_counties_and_patrol_area(
    client: TestClient, shapes: Shapes, name: str
) -> None:
    for layer in ("component_lines", "component_areas"):
        answer = client.get(
            f"/collections/{layer}/items", params={"limit": 1000}, headers=bearer(name)
        )
        assert answer.status_code == 200, answer.text
        known = {fid for fid, _ in shapes.made.values()}
        assert ids_in(answer.json()) & known == _expected(shapes, name, layer), (name, layer)
    railing_seen = shapes.made["railing"][0] in _expected(shapes, name, "component_lines")
    photos = client.get(f"/components/{shapes.made['railing'][1]}/photos", headers=bearer(name))
    assert photos.status_code == (200 if railing_seen else 404), (name, photos.text)


def test_tiles_and_photos_of_lines_and_areas(client: TestClient, shapes: Shapes) -> None:
    demo = shapes.demo
    for layer, key, x, y in (
        ("component_lines", "railing", -500, 100),
        ("component_areas", "green", -600, 0),
        ("component_lines", "east_railing", 1100, -500),
    ):
        tx, ty = tile_index(*demo.lonlat(x, y), 16)
        fid = shapes.made[key][0]
        assert fid in tile_ids(client, layer, 16, tx, ty, "admin")
        in_area = tile_ids(client, layer, 16, tx, ty, "inspector-a")
        assert (fid in in_area) == (not key.startswith("east_")), key
        assert fid not in tile_ids(client, layer, 16, tx, ty, "leader-b")
    code = shapes.made["green"][1]
    added = client.post(
        f"/components/{code}/photos",
        files={"photo": ("绿地.jpg", JPEG, "image/jpeg")},
        headers=bearer("admin"),
    )
    assert added.status_code == 201, added.text
    listed = client.get(f"/components/{code}/photos", headers=bearer("inspector-a"))
    assert [p["id"] for p in listed.json()] == [added.json()["id"]]
    with shapes.engine.connect() as conn:
        audited = conn.execute(
            text(
                "SELECT count(*) FROM audit_log WHERE layer = 'component_areas' "
                "AND feature_id = :id AND after ? 'photo_id'"
            ),
            {"id": shapes.made["green"][0]},
        ).scalar_one()
    assert audited == 1
