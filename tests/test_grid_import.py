"""A second county's whole grid hierarchy from its surveyors' GBK Shapefile in Gauss-Krüger metres:
imported through the CLI and the API, every mistake refused where it is, history kept."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio.raw
import pytest
import shapely
from fastapi.testclient import TestClient
from shapely.geometry import MultiPolygon, Polygon
from sqlalchemy import Engine, text

from api.app import create_app
from api.settings import DatabaseSettings
from gis.gcj02 import geometry_to_gcj02
from layers.engine import filein
from layers.grids import gridsource
from layers.places import counties
from layers.places.boundary import County
from layers.store import db
from tests.accounts import TEST_AUTH, bearer, ensure_account
from tests.countyfiles import (
    ADCODE,
    EPSG,
    HEIGHT,
    TO_ZONE,
    WIDTH,
    X0,
    Y0,
    Row,
    code,
    grid,
    hierarchy,
    lonlat,
    official_boundary,
    rect,
    write_shapefile,
    zipped,
)
from tests.databases import PgServer, fresh_database
from tests.support import citygrid


def add_county(owner_url: str) -> None:
    engine = db.make_engine(owner_url)
    try:
        with engine.begin() as conn:
            counties.add(conn, County(ADCODE, "三明市三元区", official_boundary()))
    finally:
        engine.dispose()


def counts(engine: Engine) -> tuple[Any, ...]:
    """Everything an import that is refused (or a dry run, or a repeat) must leave as it was."""
    with engine.connect() as conn:
        return tuple(
            conn.execute(text(sql)).one()
            for sql in (
                "SELECT count(*), max(id), md5(coalesce(string_agg(t::text, ',' ORDER BY id), '')) FROM grids t",
                "SELECT count(*) FROM audit_log",
            )
        )


@pytest.fixture(scope="module")
def world(pg_server: PgServer) -> Iterator[tuple[str, Engine]]:
    databases = fresh_database(pg_server, "gridimport")
    url = next(databases)
    add_county(pg_server.as_owner(url))
    ensure_account(url, "sanyuan", "planner", counties=(ADCODE,))
    ensure_account(url, "qidong", "planner", counties=("320681",))
    ensure_account(url, "boss", "leader", counties=(ADCODE,))
    engine = db.make_engine(url)
    yield url, engine
    engine.dispose()
    next(databases, None)


@pytest.fixture(scope="module")
def client(world: tuple[str, Engine]) -> Iterator[TestClient]:
    settings = DatabaseSettings(database_url=world[0])
    with TestClient(create_app(settings, auth_settings=TEST_AUTH)) as c:
        c.headers.update(bearer("sanyuan"))
        yield c


def upload(
    client: TestClient, shp: Path, valid_from: str, user: str = "sanyuan", **extra: str
) -> Any:
    return client.post(
        "/grids/import",
        data={"county": ADCODE, "valid_from": valid_from, **extra},
        files=[("file", ("三元区网格.zip", zipped(shp), "application/zip"))],
        headers=bearer(user),
    )


def with_rows(change: Callable[[list[Row]], None]) -> list[Row]:
    rows = hierarchy()
    change(rows)
    return rows


def by_code(rows: list[Row], wanted: str) -> Row:
    return next(r for r in rows if r["网格编码"] == wanted)


def _gap(rows: list[Row]) -> None:
    rows.remove(by_code(rows, code(1, 1, 4)))


def _overlap(rows: list[Row]) -> None:
    by_code(rows, code(1, 1, 1))["geom"] = rect(0, 1000, 1600, 2000)


def _overhang(rows: list[Row]) -> None:
    by_code(rows, code(1))["geom"] = rect(-500, 0, 3000, HEIGHT)
    by_code(rows, code(1, 2))["geom"] = rect(-500, 2000, 3000, HEIGHT)


def _outside_parent(rows: list[Row]) -> None:
    by_code(rows, code(1, 1, 2))["geom"] = rect(1500, 1000, 3000, 2300)


def _bad_code(rows: list[Row]) -> None:
    by_code(rows, code(1, 1, 3))["网格编码"] = "35040400100100"


def _duplicate(rows: list[Row]) -> None:
    by_code(rows, code(1, 1, 3))["网格编码"] = code(1, 1, 4)


def _sliver(rows: list[Row]) -> None:
    corner = rect(1492, 0, 1500, 8)
    third = by_code(rows, code(1, 1, 3))
    third["geom"] = third["geom"].difference(corner)
    rows.append(grid("单元", code(1, 1, 5), code(1, 1), "碎片", corner))


def _invalid_ring(rows: list[Row]) -> None:
    x, y = X0 + 1500, Y0 + 1000
    bow = Polygon([(x, y), (x + 1500, y + 1000), (x + 1500, y), (x, y + 1000), (x, y)])
    by_code(rows, code(1, 1, 2))["geom"] = bow


def _unknown_level(rows: list[Row]) -> None:
    by_code(rows, code(2, 2))["层级"] = "科室"


def _missing_parent(rows: list[Row]) -> None:
    row = by_code(rows, code(1, 1, 4))
    row["网格编码"], row["上级编码"] = code(1, 9, 1), code(1, 9)


MISTAKES = {
    "gap": (_gap, "gap", ()),
    "overlap": (_overlap, "overlap", (code(1, 1, 1), code(1, 1, 2))),
    "overhang": (_overhang, "outside_county", (code(1),)),
    "child outside parent": (_outside_parent, "outside", (code(1, 1, 2),)),
    "bad code": (_bad_code, "malformed_code", ("35040400100100",)),
    "duplicate code": (_duplicate, "duplicate_code", (code(1, 1, 4),)),
    "sliver": (_sliver, "sliver", (code(1, 1, 5),)),
    "invalid ring": (_invalid_ring, "invalid", (code(1, 1, 2),)),
    "unknown level": (_unknown_level, "unknown_level", (code(2, 2),)),
    "missing parent": (_missing_parent, "missing_parent", (code(1, 9, 1),)),
}


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_every_mistake_is_refused_where_it_is_and_nothing_is_written(
    mistake: str, client: TestClient, world: tuple[str, Engine], tmp_path: Path
) -> None:
    change, kind, codes = MISTAKES[mistake]
    shp = write_shapefile(tmp_path, with_rows(change))
    before = counts(world[1])
    answer = upload(client, shp, "2021-01-01")
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["code"] == "grid_import_refused"
    found = [p for p in body["problems"] if p["code"] == kind]
    assert found, body["problems"]
    problem = found[0]
    assert set(codes) <= set(problem["codes"])
    if codes:
        assert problem["rows"] and problem["file"] == "三元区网格.zip"
    assert 117.5 < problem["lon"] < 117.7 and 26.1 < problem["lat"] < 26.3
    x, y = TO_ZONE.transform(problem["lon"], problem["lat"])
    assert abs(problem["x"] - x) < 0.2 and abs(problem["y"] - y) < 0.2  # lon/lat to 1e-6°
    assert problem["crs"] == "EPSG:4548 (3° zone, CM 117°E)"
    assert "EPSG:4548（3° 带，中央经线 117°E）x=" in problem["message"]
    assert f"{problem['lon']:.6f}" in problem["message"]
    assert counts(world[1]) == before


def test_the_county_boundary_is_met_within_its_tolerance_only(
    client: TestClient, world: tuple[str, Engine], tmp_path: Path
) -> None:
    """The 20 m bulge of the official boundary is tolerated; 100 m of it is a gap."""
    rows = hierarchy()
    for r in rows:  # every grid shifted 100 m south: the north strip of the county is uncovered
        r["geom"] = shapely.affinity.translate(r["geom"], 0, -100)
    answer = upload(client, write_shapefile(tmp_path, rows), "2021-01-01", dry_run="true")
    assert answer.status_code == 422
    kinds = {p["code"] for p in answer.json()["problems"]}
    assert kinds == {"county_gap", "outside_county"}
    fine = upload(
        client, write_shapefile(tmp_path / "ok", hierarchy()), "2021-01-01", dry_run="true"
    )
    assert fine.status_code == 200, fine.text


def test_only_a_planner_of_the_county_imports_its_grids(
    client: TestClient, world: tuple[str, Engine], tmp_path: Path
) -> None:
    shp = write_shapefile(tmp_path, hierarchy())
    before = counts(world[1])
    other = upload(client, shp, "2021-01-01", user="qidong")
    assert other.status_code == 403 and other.json()["code"] == "outside_county"
    assert upload(client, shp, "2021-01-01", user="boss").status_code == 403
    assert counts(world[1]) == before


def grids_on(client: TestClient, day: str) -> list[tuple[Any, ...]]:
    features = client.get(f"/grids?at={day}").json()["features"]
    return sorted(
        (
            f["id"],
            f["properties"]["code"],
            f["properties"]["name"],
            f["properties"]["responsible_person"],
            f["properties"]["valid_from"],
            f["properties"]["valid_to"],
        )
        for f in features
        if f["properties"]["code"].startswith(ADCODE)
    )


def section_stats(client: TestClient, day: str) -> list[dict[str, Any]]:
    """Statistics by section grid on a day, without when each grid's version ended."""
    stats = client.get(f"/grids/stats?at={day}&level=section").json()
    return [{k: v for k, v in s.items() if k != "valid_to"} for s in stats]


def test_replacement_keeps_history_and_a_repeat_changes_nothing(
    client: TestClient, world: tuple[str, Engine], tmp_path: Path
) -> None:
    engine = world[1]
    first = upload(client, write_shapefile(tmp_path / "a", hierarchy()), "2021-01-01")
    assert first.status_code == 200, first.text
    assert first.json()["new"] == 10
    assert first.json()["units_added"] == ["三元区城市管理局"]  # the county's directory had none
    with engine.connect() as conn:
        assert conn.execute(
            text("SELECT type FROM units WHERE adcode = :a AND name = '三元区城市管理局'"),
            {"a": ADCODE},
        ).scalar_one() in ("street", "community", "department")
    year_2021 = grids_on(client, "2021-06-01")
    assert len(year_2021) == 10 and {g[4] for g in year_2021} == {"2021-01-01"}
    assert {g[3] for g in year_2021} >= {"王3网格", "王1街道"}

    stats_2021 = section_stats(client, "2021-06-01")
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO grid_inspectors (grid_code, name) VALUES (:a, '赵巡'), (:b, '钱巡')"),
            {"a": code(1, 2), "b": code(1, 1, 1)},
        )

    rows = hierarchy()
    for k in (1, 2, 3, 4):  # the community redrawn in two halves
        rows.remove(by_code(rows, code(1, 1, k)))
    rows += [
        grid("单元", code(1, 1, 5), code(1, 1), "西半", rect(0, 0, 1500, 2000)),
        grid("单元", code(1, 1, 6), code(1, 1), "东半", rect(1500, 0, 3000, 2000)),
    ]
    by_code(rows, code(2))["责任人"] = "李新"
    changed = write_shapefile(tmp_path / "b", rows)
    before = counts(engine)
    early = upload(client, changed, "2021-01-01")
    assert early.status_code == 422 and early.json()["code"] == "grid_import_too_early"
    assert counts(engine) == before

    second = upload(client, changed, "2022-01-01")
    assert second.status_code == 200, second.text
    assert (second.json()["new"], second.json()["closed"]) == (3, 5)
    assert second.json()["units_added"] == []
    assert grids_on(client, "2021-06-01") == [
        g[:5]
        + (
            ("2022-01-01",)
            if g[1] in {code(2), *(code(1, 1, k) for k in (1, 2, 3, 4))}
            else (None,)
        )
        for g in year_2021
    ]
    now = {g[1]: g for g in grids_on(client, "2022-06-01")}
    assert len(now) == 8 and now[code(2)][3] == "李新" and now[code(2)][4] == "2022-01-01"
    assert section_stats(client, "2021-06-01") == stats_2021
    people = client.get(f"/grids/{code(1, 2)}/people").json()
    assert [i["name"] for i in people["inspectors"]] == ["赵巡"]  # the grid survived, unchanged
    kept = {g[1]: g[0] for g in year_2021}
    assert now[code(1)][0] == kept[code(1)] and now[code(1)][4] == "2021-01-01"

    settled = counts(engine)
    again = upload(client, changed, "2023-01-01")
    assert again.status_code == 200 and again.json()["unchanged"] == 8
    assert (again.json()["new"], again.json()["closed"]) == (0, 0)
    assert counts(engine) == settled


def test_cli_imports_a_gbk_shapefile_without_its_cpg(
    pg_server: PgServer, scratch_url: str, tmp_path: Path
) -> None:
    add_county(pg_server.as_owner(scratch_url))
    shp = write_shapefile(tmp_path, hierarchy(), cpg=False)
    env = {"CITYGRID_DATABASE_URL": scratch_url}
    engine = db.make_engine(scratch_url)
    try:
        empty = counts(engine)
        args = ["import", "grids", str(shp), "--county", ADCODE, "--valid-from", "2021-01-01"]
        dry = citygrid(*args, "--dry-run", env=env)
        assert dry.returncode == 0, dry.stderr
        assert "dry run" in dry.stderr and "10 new" in dry.stderr
        assert counts(engine) == empty

        done = citygrid(*args, env=env)
        assert done.returncode == 0, done.stderr
        assert "GBK" in done.stderr and "EPSG:4548 (3° zone, CM 117°E)" in done.stderr
        with engine.connect() as conn:
            stored = conn.execute(
                text(
                    "SELECT code, level, parent_code, name, responsible_person, responsible_unit, "
                    "valid_from, adcode FROM grids WHERE valid_to IS NULL ORDER BY code"
                )
            ).all()
        assert len(stored) == 10
        assert stored[0] == (
            code(1), "street", None, "第1街道", "王1街道", "三元区城市管理局", date(2021, 1, 1), ADCODE
        )  # fmt: skip
        assert stored[1][:3] == (code(1, 1), "community", code(1))
        imported = counts(engine)

        repeat = citygrid(*args[:-1], "2021-03-01", env=env)
        assert repeat.returncode == 0 and "10 unchanged" in repeat.stderr
        assert counts(engine) == imported

        bad = write_shapefile(tmp_path / "bad", with_rows(_gap))
        refused = citygrid(
            "import", "grids", str(bad), "--county", ADCODE, "--valid-from", "2022-01-01", env=env
        )
        assert refused.returncode == 1
        assert "空隙" in refused.stdout and "EPSG:4548" in refused.stdout + refused.stderr
        assert "Traceback" not in refused.stderr
        assert counts(engine) == imported
    finally:
        engine.dispose()


def test_the_streets_parent_is_the_official_boundary(
    pg_server: PgServer, scratch_url: str, tmp_path: Path
) -> None:
    """A county without grids has its county-level family: its first streets can be uploaded
    under it, and they are checked against the boundary, not against themselves."""
    add_county(pg_server.as_owner(scratch_url))
    ensure_account(scratch_url, "sanyuan", "planner", counties=(ADCODE,))
    county = f"{ADCODE}000000000"
    streets = [r for r in hierarchy() if r["层级"] == "街道"]
    settings = DatabaseSettings(database_url=scratch_url)
    with TestClient(create_app(settings, auth_settings=TEST_AUTH)) as c:
        c.headers.update(bearer("sanyuan"))
        west_only = write_shapefile(tmp_path / "west", streets[:1])
        first = c.post(
            f"/grids/{county}/children?filename=west.zip",
            content=zipped(west_only),
            headers={"Content-Type": "application/zip"},
        )
        assert first.status_code == 200, first.text  # less of a gap than before
        gaps = first.json()["report"]["problems"]["features"]
        assert [g["properties"]["kind"] for g in gaps] == ["gap"]
        assert gaps[0]["properties"]["area_m2"] > 11_000_000  # the eastern half of the county

        both = write_shapefile(tmp_path / "both", streets)
        answer = c.post(
            f"/grids/{county}/children?filename=both.zip",
            content=zipped(both),
            headers={"Content-Type": "application/zip"},
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["report"]["ok"]
        assert c.post("/grids/check", json={"parent": county}).json()["ok"]

        engine = db.make_engine(pg_server.as_owner(scratch_url))
        with engine.begin() as conn:  # the county's boundary redrawn 300 m further east
            wider = rect(0, 0, WIDTH + 300, HEIGHT)
            counties.set_boundary(conn, ADCODE, MultiPolygon([lonlat(wider)]))
        engine.dispose()
        report = c.post("/grids/check", json={"parent": county}).json()
        assert report["counts"]["gap"] == 1 and not report["ok"]


def write_layer(path: Path, rows: list[Row], columns: dict[str, str], crs: str) -> Path:
    """Rows as a GeoJSON or GeoPackage in longitude/latitude with columns renamed."""
    pyogrio.raw.write(
        str(path),
        shapely.to_wkb(np.asarray([r["geom"] for r in rows], dtype=object)),
        [np.asarray([r[c] for r in rows], dtype=object) for c in columns],
        list(columns.values()),
        geometry_type="Polygon",
        crs=crs,
        driver="GPKG" if path.suffix == ".gpkg" else "GeoJSON",
    )
    return path


def test_several_files_a_bureaus_own_columns_and_amap_coordinates(
    client: TestClient, world: tuple[str, Engine], tmp_path: Path
) -> None:
    rows = [r | {"geom": lonlat(r["geom"])} for r in hierarchy()]
    upper = [r for r in rows if r["层级"] != "单元"]
    english = {"层级": "level", "网格编码": "code", "上级编码": "parent_code", "网格名称": "name"}
    own = {"层级": "级别", "网格编码": "编号", "上级编码": "父级", "网格名称": "名字"}
    files = [
        write_layer(tmp_path / "upper.geojson", upper, english, "EPSG:4490"),
        write_layer(tmp_path / "sections.gpkg", [r for r in rows if r["层级"] == "单元"], own, "EPSG:4490"),
    ]  # fmt: skip
    before = counts(world[1])
    parts = [("file", (p.name, p.read_bytes(), "application/octet-stream")) for p in files]
    mapping = {"map": ["级别=level", "编号=code", "父级=parent_code", "名字=name"]}
    fields = {"county": ADCODE, "valid_from": "2030-01-01", "dry_run": "true"} | mapping
    answer = client.post("/grids/import", data=fields, files=parts)
    assert answer.status_code == 200, answer.text
    assert answer.json()["rows"] == 10 and answer.json()["dry_run"]
    unmapped = client.post("/grids/import", data=fields | {"map": []}, files=parts)
    assert unmapped.status_code == 400 and unmapped.json()["code"] == "import_missing_columns"

    amap = [r | {"geom": geometry_to_gcj02(r["geom"])} for r in upper]
    del amap[-1]  # the east street's north community is missing
    traced = write_layer(tmp_path / "amap.geojson", amap, english, "EPSG:4326")
    part = [("file", (traced.name, traced.read_bytes(), "application/geo+json"))]
    as_gcj = {"county": ADCODE, "valid_from": "2020-01-01", "crs": "gcj02"}
    refused = client.post("/grids/import", data=as_gcj, files=part)
    assert refused.status_code == 422
    gap = next(p for p in refused.json()["problems"] if p["code"] == "gap")
    assert gap["parent_code"] == code(2) and gap["crs"] == "GCJ-02 (Amap/Tencent)"
    assert (
        400
        < shapely.Point(gap["lon"], gap["lat"]).distance(shapely.Point(gap["x"], gap["y"]))
        * 111_000
        < 1000
    )  # the Amap shift, in metres
    assert counts(world[1]) == before


def test_a_kml_placemarks_empty_name_does_not_hide_its_grid_name(tmp_path: Path) -> None:
    path = tmp_path / "streets.kml"
    street = lonlat(rect(0, 0, 3000, HEIGHT))
    columns = {
        "层级": ["街道"],
        "网格编码": [code(1)],
        "网格名称": ["列东街道"],
        "责任人": ["王五"],
    }
    pyogrio.raw.write(
        str(path),
        shapely.to_wkb(np.asarray([street], dtype=object)),
        [np.asarray(v, dtype=object) for v in columns.values()],
        list(columns),
        geometry_type="Polygon",
        crs="EPSG:4326",
        driver="KML",
    )
    source = filein.read(path, filein.FileLimits())
    assert "Name" in source.columns  # GDAL's own, empty here
    read = gridsource.read_rows([(path.name, source)], None, {}, EPSG)
    assert (read.rows[0].level, read.rows[0].code) == ("street", code(1))
    assert (
        read.attributes[0]["name"] == "列东街道"
        and read.attributes[0]["responsible_person"] == "王五"
    )
    assert read.places[0].label_en == "EPSG:4326 (WGS 84)"
