"""Writes by county: two counties in one deployment, and every write route kept to the account's.

启东 (320681, the demo's county, in EPSG:4550) and a generated 三明市三元区 (350404, a 6 km square
around 117.61 °E 26.23 °N, in EPSG:4548), each with a street, a community and two sections, and
one row of each kind. Accounts of each writing role hold county A, county B, both, or (the
deployment's admin) every county. A write in a county the account does not hold is refused (a
new row: 403; a stored row or grid: 404, as if absent) and leaves every table and the audit log
as they were.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio.raw
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import Transformer
from shapely.geometry import box, mapping
from sqlalchemy import Engine, text

from api.app import create_app
from api.settings import DatabaseSettings
from layers.cases.codes import seed_case_categories
from layers.places import counties
from layers.places.boundary import County
from layers.registry import LAYERS
from layers.store import db
from tests.accounts import TEST_AUTH, bearer, ensure_account
from tests.databases import fresh_database
from tests.support import citygrid

A, B = "320681", "350404"
ZONES = {A: 4550, B: 4548}
CENTRES = {A: (121.65, 31.80), B: (117.61, 26.23)}
HALF_SIDE = 3000.0  # B's generated boundary: a square of 6 km
STREETS = {A: f"{A}100000000", B: f"{B}001000000"}
COMMUNITY = {A: f"{A}100001000", B: f"{B}001001000"}
SECTIONS = {a: (f"{COMMUNITY[a][:12]}001", f"{COMMUNITY[a][:12]}002") for a in (A, B)}
NEITHER = (119.0, 29.0)  # in 浙江, far from both


def _to_gk(adcode: str) -> Transformer:
    return Transformer.from_crs(4490, ZONES[adcode], always_xy=True)


def _to_lonlat(adcode: str) -> Transformer:
    return Transformer.from_crs(ZONES[adcode], 4490, always_xy=True)


def origin(adcode: str) -> tuple[float, float]:
    """The county's test street's south-west corner, in metres of its zone."""
    x, y = _to_gk(adcode).transform(*CENTRES[adcode])
    return x - 600.0, y - 450.0


def lonlat(adcode: str, geom: shapely.Geometry) -> shapely.Geometry:
    t = _to_lonlat(adcode)
    return shapely.transform(geom, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))


def spot(adcode: str, section: int = 0, dx: float = 0.0) -> tuple[float, float]:
    """The middle of a section of the county's test community (lon, lat)."""
    x0, y0 = origin(adcode)
    x, y = lonlat(adcode, shapely.Point(x0 + 300 + 600 * section + dx, y0 + 450)).coords[0]
    return float(x), float(y)


def sanyuan() -> County:
    """The generated 三元区: a square around its centre, in CGCS2000."""
    x, y = _to_gk(B).transform(*CENTRES[B])
    square = box(x - HALF_SIDE, y - HALF_SIDE, x + HALF_SIDE, y + HALF_SIDE)
    return County(B, "三元区", shapely.MultiPolygon([lonlat(B, square)]))


def _insert_grid(
    conn: Any, adcode: str, level: str, code: str, parent: str | None, geom: Any
) -> None:
    conn.execute(
        text("""
        INSERT INTO grids (adcode, geom, level, code, name, parent_code, responsible_unit,
                           responsible_person, valid_from)
        VALUES (:adcode, ST_Multi(ST_GeomFromWKB(:wkb, 4490)), :level, :code, :name, :parent,
                '测试单位', '原责任人', '2020-01-01')
    """),
        {
            "adcode": adcode,
            "wkb": shapely.to_wkb(lonlat(adcode, geom)),
            "level": level,
            "code": code,
            "name": f"测试{code[-6:]}",
            "parent": parent,
        },
    )


def _grids(conn: Any, adcode: str) -> None:
    x0, y0 = origin(adcode)
    whole = box(x0, y0, x0 + 1200, y0 + 900)
    _insert_grid(conn, adcode, "street", STREETS[adcode], None, whole)
    _insert_grid(conn, adcode, "community", COMMUNITY[adcode], STREETS[adcode], whole)
    for k, code in enumerate(SECTIONS[adcode]):
        half = box(x0 + 600 * k, y0, x0 + 600 * (k + 1), y0 + 900)
        _insert_grid(conn, adcode, "section", code, COMMUNITY[adcode], half)


HELD = {"a": (A,), "b": (B,), "ab": (A, B)}
ACCOUNTS = {
    **{f"admin_{k}": ("admin", v) for k, v in HELD.items()},
    **{f"planner_{k}": ("planner", v) for k, v in HELD.items()},
    **{f"dispatcher_{k}": ("dispatcher", v) for k, v in HELD.items()},
    "handler_a": ("handler", (A,)),
    "admin": ("admin", None),  # the deployment's admin: every county
}
INSPECTORS = {  # their patrol grids
    "inspector_a": (A,),
    "inspector_b": (B,),
    "inspector_ab": (A, B),
}


def billboard(at: tuple[float, float], owner: str = "测试业主") -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": list(at)},
        "properties": {"type": "pole", "face_area_m2": 12.0, "owner": owner},
    }


@dataclass(frozen=True)
class World:
    """The database and, per county, the ids of its rows."""

    url: str
    engine: Engine
    rows: dict[str, dict[str, int]]


def _create(client: TestClient, layer: str, feature: dict[str, Any]) -> int:
    answer = client.post(f"/collections/{layer}/items", json=feature, headers=bearer("admin"))
    assert answer.status_code == 201, answer.text
    return int(answer.headers["location"].rsplit("/", 1)[1])


def _rows_of(client: TestClient, adcode: str) -> dict[str, int]:
    ids = {"billboards": _create(client, "billboards", billboard(spot(adcode)))}
    site = {"name": "测试工地", "site_type": "construction", "status": "active"}
    ids["dust_sites"] = _create(
        client,
        "dust_sites",
        {"type": "Feature", "geometry": mapping(shapely.Point(spot(adcode))), "properties": site},
    )
    inspection = {
        "dust_site_id": ids["dust_sites"],
        "inspected_on": "2026-11-20",
        "inspector": "张三",
        "problems_found": 1,
    }
    ids["dust_inspections"] = _create(
        client, "dust_inspections", {"type": "Feature", "geometry": None, "properties": inspection}
    )
    case = {
        "category_code": "E0101",
        "source": "inspector",
        "status": "reported",
        "reported_at": "2026-11-20T09:30:00+08:00",
    }
    ids["cases"] = _create(
        client,
        "cases",
        {
            "type": "Feature",
            "geometry": mapping(shapely.Point(spot(adcode, 1))),
            "properties": case,
        },
    )
    return ids


def writes_world(pg_server: Any, suffix: str) -> Iterator[World]:
    """Two counties with their grids, accounts and one row of every layer each."""
    databases = fresh_database(pg_server, suffix)
    url = next(databases)
    engine = db.make_engine(url)
    with engine.begin() as conn:
        seed_case_categories(conn)
        counties.add(conn, sanyuan())
        for adcode in (A, B):
            _grids(conn, adcode)
    for name, (role, held) in ACCOUNTS.items():
        unit = "测试单位" if role == "handler" else None
        ensure_account(url, name, role, unit=unit, counties=held or ())
    for name, held in INSPECTORS.items():
        patrol = tuple(SECTIONS[a][0] for a in held)
        ensure_account(url, name, "inspector", patrol, counties=held)
    app = create_app(DatabaseSettings(database_url=url), auth_settings=TEST_AUTH)
    with TestClient(app) as client:
        rows = {adcode: _rows_of(client, adcode) for adcode in (A, B)}
    yield World(url, engine, rows)
    engine.dispose()
    next(databases, None)


@pytest.fixture(scope="module")
def world(pg_server: Any) -> Iterator[World]:
    yield from writes_world(pg_server, "countywrites")


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    app = create_app(DatabaseSettings(database_url=world.url), auth_settings=TEST_AUTH)
    with TestClient(app, follow_redirects=False) as c:
        yield c


def state(engine: Engine) -> dict[str, Any]:
    """Every row of every layer, the grids' people and the audit log."""
    with engine.connect() as conn:
        tables = [*LAYERS, "grid_inspectors", "audit_log", "case_events"]
        return {
            table: conn.execute(
                text(
                    "SELECT md5(coalesce(string_agg(to_jsonb(t)::text, '' ORDER BY to_jsonb(t)::text),"
                    f" '')) FROM \"{table}\" AS t"
                )
            ).scalar_one()
            for table in tables
        }


def adcode_of(world: World, layer: str, fid: int) -> str:
    with world.engine.connect() as conn:
        return str(
            conn.execute(text(f'SELECT adcode FROM "{layer}" WHERE id = :id'), {"id": fid}).scalar()
        )


# --- creating -------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["admin_a", "admin_b", "admin_ab", "admin"])
@pytest.mark.parametrize("where", [A, B])
def test_a_new_row_goes_to_its_county_if_the_account_holds_it(
    client: TestClient, world: World, who: str, where: str
) -> None:
    held = ACCOUNTS[who][1]
    before = state(world.engine)
    answer = client.post(
        "/collections/billboards/items", json=billboard(spot(where)), headers=bearer(who)
    )
    if held is None or where in held:
        assert answer.status_code == 201, answer.text
        fid = int(answer.headers["location"].rsplit("/", 1)[1])
        assert adcode_of(world, "billboards", fid) == where
        with world.engine.connect() as conn:
            logged = conn.execute(
                text(
                    "SELECT adcode FROM audit_log WHERE layer = 'billboards' AND feature_id = :id"
                ),
                {"id": fid},
            ).scalar_one()
        assert logged == where
    else:
        assert answer.status_code == 403, answer.text
        assert answer.json()["code"] == "outside_county"
        assert answer.json()["message"] and answer.json()["message_en"]
        assert state(world.engine) == before


def test_a_row_outside_every_county_names_the_nearest_and_the_distance(
    client: TestClient, world: World
) -> None:
    x, y = _to_gk(B).transform(*CENTRES[B])
    far = lonlat(B, shapely.Point(x + HALF_SIDE + 1000, y)).coords[0]
    before = state(world.engine)
    answer = client.post(
        "/collections/billboards/items", json=billboard(far), headers=bearer("admin")
    )
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["code"] == "outside_every_county"
    assert body["nearest_county"] == B and abs(body["distance_m"] - 1000) < 2
    assert "三元区" in body["message"] and "1,000" in body["message_en"]
    assert state(world.engine) == before
    nowhere = client.post(
        "/collections/billboards/items", json=billboard(NEITHER), headers=bearer("admin")
    )
    assert nowhere.status_code == 422 and nowhere.json()["nearest_county"] in (A, B)


def test_a_row_just_outside_a_boundary_belongs_to_that_county(
    client: TestClient, world: World
) -> None:
    x, y = _to_gk(B).transform(*CENTRES[B])
    near = lonlat(B, shapely.Point(x + HALF_SIDE + 100, y)).coords[0]  # within 200 m
    refused = client.post(
        "/collections/billboards/items", json=billboard(near), headers=bearer("admin_a")
    )
    assert refused.status_code == 403 and refused.json()["code"] == "outside_county"
    answer = client.post(
        "/collections/billboards/items", json=billboard(near), headers=bearer("admin_b")
    )
    assert answer.status_code == 201, answer.text
    assert adcode_of(world, "billboards", int(answer.headers["location"].rsplit("/", 1)[1])) == B


@pytest.mark.parametrize("who", ["admin_a", "admin_b"])
def test_a_child_takes_its_parents_county_and_the_parent_must_be_readable(
    client: TestClient, world: World, who: str
) -> None:
    inspection = {
        "dust_site_id": world.rows[B]["dust_sites"],
        "inspected_on": "2026-11-21",
        "inspector": "李四",
        "problems_found": 0,
    }
    before = state(world.engine)
    answer = client.post(
        "/collections/dust_inspections/items",
        json={"type": "Feature", "geometry": None, "properties": inspection},
        headers=bearer(who),
    )
    if who == "admin_b":
        assert answer.status_code == 201, answer.text
        fid = int(answer.headers["location"].rsplit("/", 1)[1])
        assert adcode_of(world, "dust_inspections", fid) == B
    else:
        assert answer.status_code == 400 and answer.json()["code"] == "reference_not_found"
        assert state(world.engine) == before


def test_moving_a_row_into_a_county_not_held_is_refused(client: TestClient, world: World) -> None:
    fid = client.post(
        "/collections/billboards/items", json=billboard(spot(A, 0, 20)), headers=bearer("admin_a")
    )
    assert fid.status_code == 201
    url = fid.headers["location"].split("://", 1)[1].split("/", 1)[1]
    before = state(world.engine)
    moved = client.patch(
        f"/{url}",
        json={"geometry": {"type": "Point", "coordinates": list(spot(B))}},
        headers=bearer("admin_a"),
    )
    assert moved.status_code == 403 and moved.json()["code"] == "outside_county"
    assert state(world.engine) == before


def test_a_desk_report_in_a_county_not_held_is_refused(client: TestClient, world: World) -> None:
    feature = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": list(spot(B))},
        "properties": {"category_code": "E0101", "description": "占道经营"},
    }
    form = {"feature": json.dumps(feature, ensure_ascii=False)}
    before = state(world.engine)
    refused = client.post("/cases", data=form, headers=bearer("dispatcher_a"))
    assert refused.status_code == 403 and refused.json()["code"] == "outside_county"
    assert state(world.engine) == before
    done = client.post("/cases", data=form, headers=bearer("dispatcher_b"))
    assert done.status_code == 201, done.text
    assert adcode_of(world, "cases", done.json()["id"]) == B


# --- changing stored rows -------------------------------------------------------------------

CHANGES = {
    "patch": lambda c, url, h: c.patch(url, json={"properties": {"owner": "改"}}, headers=h),
    "put": lambda c, url, h: c.put(
        url,
        json={
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": list(spot(B, 0, 30))},
            "properties": {"type": "pole", "face_area_m2": 9.0},
        },
        headers=h,
    ),
    "delete": lambda c, url, h: c.delete(url, headers=h),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_another_countys_row_cannot_be_changed_and_looks_absent(
    client: TestClient, world: World, change: str
) -> None:
    fid = world.rows[B]["billboards"]
    url = f"/collections/billboards/items/{fid}"
    before = state(world.engine)
    for who in ("admin_a", "dispatcher_a", "planner_a"):
        answer = CHANGES[change](client, url, bearer(who))
        expected = 404 if who == "admin_a" else 403  # the others may not edit billboards at all
        assert answer.status_code == expected, (who, answer.text)
    assert state(world.engine) == before


def test_another_countys_child_row_cannot_be_changed(client: TestClient, world: World) -> None:
    fid = world.rows[B]["dust_inspections"]
    before = state(world.engine)
    answer = client.patch(
        f"/collections/dust_inspections/items/{fid}",
        json={"properties": {"problems_found": 3}},
        headers=bearer("admin_a"),
    )
    assert answer.status_code == 404 and answer.json()["code"] == "feature_not_found"
    assert state(world.engine) == before


def test_own_county_rows_change_for_one_and_two_county_accounts(
    client: TestClient, world: World
) -> None:
    for who in ("admin_b", "admin_ab", "admin"):
        fid = (
            client.post(
                "/collections/billboards/items", json=billboard(spot(B, 0, 40)), headers=bearer(who)
            )
            .headers["location"]
            .rsplit("/", 1)[1]
        )
        url = f"/collections/billboards/items/{fid}"
        assert CHANGES["patch"](client, url, bearer(who)).status_code == 204
        assert CHANGES["put"](client, url, bearer(who)).status_code == 204
        assert adcode_of(world, "billboards", int(fid)) == B
        assert CHANGES["delete"](client, url, bearer(who)).status_code == 204


@pytest.mark.parametrize("who", list(INSPECTORS))
@pytest.mark.parametrize("where", [A, B])
def test_an_inspectors_report_goes_to_the_county_of_its_place(
    client: TestClient, world: World, who: str, where: str
) -> None:
    feature = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": list(spot(where))},
        "properties": {"category_code": "E0101", "description": "暴露垃圾"},
    }
    before = state(world.engine)
    answer = client.post(
        "/cases", data={"feature": json.dumps(feature, ensure_ascii=False)}, headers=bearer(who)
    )
    if where in INSPECTORS[who]:
        assert answer.status_code == 201, answer.text
        fid = answer.json()["id"]
        assert adcode_of(world, "cases", fid) == where
        with world.engine.connect() as conn:
            grid = conn.execute(text("SELECT grid_code FROM cases WHERE id = :i"), {"i": fid})
            assert grid.scalar_one() == SECTIONS[where][0]
    else:
        assert answer.status_code == 403, answer.text
        assert state(world.engine) == before


@pytest.mark.parametrize("path", ["transitions", "handle", "check", "photos"])
def test_another_countys_case_cannot_be_moved_on(
    client: TestClient, world: World, path: str
) -> None:
    case = world.rows[B]["cases"]
    before = state(world.engine)
    if path == "transitions":
        answer = client.post(
            f"/cases/{case}/transitions",
            json={"action": "register"},
            headers=bearer("dispatcher_a"),
        )
    elif path == "handle":
        answer = client.post(
            f"/cases/{case}/transitions", json={"action": "handle"}, headers=bearer("handler_a")
        )
    elif path == "check":
        answer = client.post(
            f"/cases/{case}/check", json={"passed": True}, headers=bearer("dispatcher_a")
        )
    else:
        answer = client.get(f"/cases/{case}/photos", headers=bearer("dispatcher_a"))
    assert answer.status_code == 404, answer.text
    assert state(world.engine) == before


# --- grids ----------------------------------------------------------------------------------


def _line_across(adcode: str) -> dict[str, Any]:
    x0, y0 = origin(adcode)
    line = shapely.LineString([(x0 + 300, y0 - 10), (x0 + 300, y0 + 910)])
    return mapping(lonlat(adcode, line))


def _square_in(adcode: str, section: int) -> dict[str, Any]:
    x0, y0 = origin(adcode)
    x = x0 + 600 * section
    return mapping(lonlat(adcode, box(x + 100, y0 + 100, x + 500, y0 + 800)))


def _grid_file(adcode: str, tmp_path: Path) -> Path:
    x0, y0 = origin(adcode)
    halves = [box(x0, y0, x0 + 600, y0 + 900), box(x0 + 600, y0, x0 + 1200, y0 + 900)]
    path = tmp_path / "children.geojson"
    pyogrio.raw.write(
        str(path),
        shapely.to_wkb([lonlat(adcode, h) for h in halves]),
        [np.asarray(["甲", "乙"], dtype=object)],
        ["name"],
        driver="GeoJSON",
        crs="EPSG:4490",
        geometry_type="Polygon",
    )
    return path


def grid_calls(adcode: str, tmp_path: Path) -> dict[str, Any]:
    """Each grid write, aimed at the county's grids."""
    s1, s2 = SECTIONS[adcode]
    community = COMMUNITY[adcode]
    return {
        "split": ("post", "/grids/split", {"json": {"line": _line_across(adcode), "code": s1}}),
        "merge": ("post", "/grids/merge", {"json": {"codes": [s1, s2]}}),
        "redraw": ("post", f"/grids/{s1}/redraw", {"json": {"geometry": _square_in(adcode, 0)}}),
        "generate": ("post", f"/grids/{community}/generate", {"json": {}}),
        "children": (
            "post",
            f"/grids/{community}/children",
            {
                "params": {"filename": "children.geojson"},
                "content": _grid_file(adcode, tmp_path).read_bytes(),
                "headers": {"Content-Type": "application/octet-stream"},
            },
        ),
        "people": (
            "put",
            f"/grids/{s1}/people",
            {"json": {"responsible_person": "三元区规划员", "inspectors": []}},
        ),
        "read people": ("get", f"/grids/{s1}/people", {}),
        "check": ("post", "/grids/check", {"json": {"parent": community}}),
    }


@pytest.mark.parametrize(
    "operation",
    ["split", "merge", "redraw", "generate", "children", "people", "read people", "check"],
)
def test_another_countys_grids_look_absent_to_a_planner(
    client: TestClient, world: World, tmp_path: Path, operation: str
) -> None:
    method, url, kwargs = grid_calls(A, tmp_path)[operation]
    headers = {**kwargs.pop("headers", {}), **bearer("planner_b")}
    before = state(world.engine)
    answer = getattr(client, method)(url, headers=headers, **kwargs)
    assert answer.status_code == 404, answer.text
    assert answer.json()["code"] == "grid_not_found"
    assert state(world.engine) == before


def test_a_planner_of_sanyuan_cannot_change_a_qidong_grids_people(
    client: TestClient, world: World
) -> None:
    code = SECTIONS[A][0]
    body = {"responsible_person": "三元区规划员", "inspectors": []}
    refused = client.put(f"/grids/{code}/people", json=body, headers=bearer("planner_b"))
    assert refused.status_code == 404
    with world.engine.connect() as conn:
        person = conn.execute(
            text("SELECT responsible_person FROM grids WHERE code = :c AND valid_to IS NULL"),
            {"c": code},
        ).scalar_one()
    assert person == "原责任人"
    done = client.put(f"/grids/{SECTIONS[B][0]}/people", json=body, headers=bearer("planner_b"))
    assert done.status_code == 200, done.text
    assert done.json()["responsible_person"] == "三元区规划员"


def test_a_grid_drawn_in_another_county_is_refused(client: TestClient, world: World) -> None:
    before = state(world.engine)
    answer = client.post(
        "/grids",
        json={"geometry": _square_in(A, 1), "level": "section"},
        headers=bearer("planner_b"),
    )
    assert answer.status_code == 403 and answer.json()["code"] == "outside_county"
    assert state(world.engine) == before


def test_splitting_by_a_line_finds_only_grids_of_the_account(
    client: TestClient, world: World
) -> None:
    before = state(world.engine)
    answer = client.post(
        "/grids/split", json={"line": _line_across(A)}, headers=bearer("planner_b")
    )
    assert answer.status_code == 422 and answer.json()["code"] == "split_target_ambiguous"
    assert state(world.engine) == before


def test_checking_every_family_covers_the_accounts_counties_only(
    client: TestClient, world: World
) -> None:
    own = client.post("/grids/check", json={}, headers=bearer("planner_b")).json()
    both = client.post("/grids/check", json={}, headers=bearer("planner_ab")).json()
    assert own["parents"] and all(p.startswith(B) for p in own["parents"])
    assert {p[:6] for p in both["parents"]} == {A, B}


# --- imports --------------------------------------------------------------------------------


def signs_file(tmp_path: Path, places: list[tuple[float, float]], owner: str) -> Path:
    path = tmp_path / f"{owner}.geojson"
    n = len(places)
    pyogrio.raw.write(
        str(path),
        shapely.to_wkb([shapely.Point(p) for p in places]),
        [
            np.asarray(["pole"] * n, dtype=object),
            np.asarray([6.0] * n, dtype=object),
            np.asarray([owner] * n, dtype=object),
        ],
        ["type", "face_area_m2", "owner"],
        driver="GeoJSON",
        crs="EPSG:4490",
        geometry_type="Point",
    )
    return path


def upload(client: TestClient, path: Path, who: str) -> Any:
    return client.post(
        "/collections/billboards/import",
        params={"filename": path.name},
        content=path.read_bytes(),
        headers={"Content-Type": "application/octet-stream", **bearer(who)},
    )


def stamped(world: World, owner: str) -> dict[str, int]:
    with world.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT adcode, count(*) FROM billboards WHERE owner = :o GROUP BY adcode"),
            {"o": owner},
        ).all()
    return {r[0]: r[1] for r in rows}


def test_an_import_is_refused_with_the_rows_outside_the_accounts_counties(
    client: TestClient, world: World, tmp_path: Path
) -> None:
    places = [spot(A), spot(B), NEITHER, spot(B, 1), spot(A, 1)]
    path = signs_file(tmp_path, places, "混合导入")
    before = state(world.engine)
    one = upload(client, path, "admin_a")
    assert one.status_code == 400 and one.json()["code"] == "import_refused"
    errors = one.json()["report"]["errors"]
    assert [(e["row"], e["code"]) for e in errors] == [
        (2, "outside_county"),
        (3, "outside_every_county"),
        (4, "outside_county"),
    ]
    two = upload(client, path, "admin_ab")
    assert [(e["row"], e["code"]) for e in two.json()["report"]["errors"]] == [
        (3, "outside_every_county")
    ]
    assert state(world.engine) == before


def test_an_import_stamps_each_row_with_its_county(
    client: TestClient, world: World, tmp_path: Path
) -> None:
    path = signs_file(tmp_path, [spot(A), spot(B), spot(B, 1), spot(A, 1), spot(B)], "两县导入")
    assert upload(client, path, "admin_a").status_code == 400
    answer = upload(client, path, "admin_ab")
    assert answer.status_code == 200, answer.text
    assert answer.json()["imported"] == 5
    assert stamped(world, "两县导入") == {A: 2, B: 3}
    with world.engine.connect() as conn:
        logged = conn.execute(
            text(
                "SELECT after -> 'counties' FROM audit_log WHERE layer = 'billboards' "
                "AND actor = 'admin_ab' AND after ? 'imported' ORDER BY id DESC LIMIT 1"
            )
        ).scalar_one()
    assert logged == [A, B]


def test_an_upsert_does_not_reach_another_countys_rows(
    client: TestClient, world: World, tmp_path: Path
) -> None:
    fid = world.rows[B]["billboards"]
    path = tmp_path / "upsert.geojson"
    pyogrio.raw.write(
        str(path),
        shapely.to_wkb([shapely.Point(spot(A, 1, 50))]),
        [np.asarray([fid], dtype=object), np.asarray(["pole"], dtype=object),
         np.asarray([7.0], dtype=object), np.asarray(["越界更新"], dtype=object)],
        ["id", "type", "face_area_m2", "owner"],
        driver="GeoJSON", crs="EPSG:4490", geometry_type="Point",
    )  # fmt: skip
    answer = client.post(
        "/collections/billboards/import",
        params={"filename": path.name, "mode": "upsert"},
        content=path.read_bytes(),
        headers={"Content-Type": "application/octet-stream", **bearer("admin_a")},
    )
    assert answer.status_code == 200, answer.text
    assert (answer.json()["new"], answer.json()["changed"]) == (1, 0)  # not B's row: a new one
    assert adcode_of(world, "billboards", fid) == B
    assert stamped(world, "越界更新") == {A: 1}


def test_the_cli_import_keeps_to_the_county_given(world: World, tmp_path: Path) -> None:
    path = signs_file(tmp_path, [spot(A), spot(B)], "命令行导入")
    env = {"CITYGRID_DATABASE_URL": world.url}
    refused = citygrid("import", "billboards", str(path), "--county", A, env=env)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "不在您可写入的范围内" in refused.stdout and stamped(world, "命令行导入") == {}
    unknown = citygrid("import", "billboards", str(path), "--county", "110101", env=env)
    assert unknown.returncode == 1 and "110101" in unknown.stderr
    done = citygrid("import", "billboards", str(path), env=env)
    assert done.returncode == 0, done.stderr
    assert stamped(world, "命令行导入") == {A: 1, B: 1}


def test_a_planner_changes_the_grids_of_the_counties_held(client: TestClient, world: World) -> None:
    """Last in this module: it replaces county B's sections."""
    merged = client.post(
        "/grids/merge", json={"codes": list(SECTIONS[B])}, headers=bearer("planner_ab")
    )
    assert merged.status_code == 200, merged.text
    created = merged.json()["created"]
    assert len(created) == 1 and created[0].startswith(B)
    with world.engine.connect() as conn:
        adcode = conn.execute(
            text("SELECT adcode FROM grids WHERE code = :c AND valid_to IS NULL"), {"c": created[0]}
        ).scalar_one()
    assert adcode == B
    generated = client.post(f"/grids/{COMMUNITY[B]}/generate", json={}, headers=bearer("planner_b"))
    assert generated.status_code == 200, generated.text
    assert all(code.startswith(B) for code in generated.json()["created"])


def test_with_no_county_stored_a_row_is_refused_with_the_first_step(empty_url: str) -> None:
    ensure_account(empty_url, "admin", "admin")
    app = create_app(DatabaseSettings(database_url=empty_url), auth_settings=TEST_AUTH)
    with TestClient(app) as fresh:
        answer = fresh.post(
            "/collections/billboards/items", json=billboard(spot(A)), headers=bearer("admin")
        )
        assert answer.status_code == 422, answer.text
        assert answer.json()["code"] == "outside_every_county"
        assert "citygrid county add" in answer.json()["message"]
        swapped = fresh.post(
            "/collections/billboards/items", json=billboard(spot(A)[::-1]), headers=bearer("admin")
        )  # a latitude of 121°: no county to tell whether the axes were exchanged
        assert swapped.status_code == 400 and swapped.json()["code"] == "geometry_outside_county"
