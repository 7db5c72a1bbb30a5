"""Files out, and back in: every format exported from one database imports into another with the
same shapes (within 1 cm) and values; exports follow the filters and rights of `/items`."""

from __future__ import annotations

import io
import shutil
import sqlite3
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyogrio.raw
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import Transformer
from sqlalchemy import text

from api.app import create_app
from api.settings import DatabaseSettings
from layers.registry import LAYERS
from tests.accounts import TEST_AUTH, bearer
from tests.world import World, make_world, point, snapshot, square

FORMATS = ("gpkg", "shp", "geojson", "kml", "csv", "xlsx")
COMPARED = {
    "billboards": ("type", "face_area_m2", "owner", "risk_grade", "last_inspected_on"),
    "parking_lots": ("name", "category", "spaces", "registration", "operator"),
}


def _client(world: World) -> TestClient:
    app = create_app(DatabaseSettings(database_url=world.url), auth_settings=TEST_AUTH)
    return TestClient(app)


@pytest.fixture(scope="module")
def source(pg_server: Any) -> Iterator[World]:
    for world in make_world(pg_server, "export_src"):
        with _client(world) as client:
            for n, (dx, owner, grade) in enumerate(
                [(40, "汇龙广告公司", "A"), (-40, "启东市城管局", "D"), (80, None, None)]
            ):
                feature = {
                    "type": "Feature",
                    "geometry": point(1 + n % 2, dx),
                    "properties": {
                        "type": "shop_sign",
                        "face_area_m2": 3.25 + n,
                        "owner": owner,
                        "risk_grade": grade,
                        "last_inspected_on": f"2023-0{n + 4}-1{n}",
                    },
                }
                assert (
                    client.post(
                        "/collections/billboards/items", json=feature, headers=bearer("admin")
                    ).status_code
                    == 201
                )
                lot = {
                    "type": "Feature",
                    "geometry": square(1 + n % 2, dx * 3),
                    "properties": {
                        "name": f"第{n + 1}停车场",
                        "category": "public",
                        "spaces": 20 + n,
                        "registration": "registered",
                        "operator": owner,
                    },
                }
                assert (
                    client.post(
                        "/collections/parking_lots/items", json=lot, headers=bearer("admin")
                    ).status_code
                    == 201
                )
        yield world


@pytest.fixture(scope="module")
def target(pg_server: Any) -> Iterator[World]:
    yield from make_world(pg_server, "export_dst")


def rows(world: World, layer: str, after: int = 0) -> list[tuple[Any, ...]]:
    names = ", ".join(COMPARED[layer])
    with world.engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text(f"SELECT ST_AsBinary(geom), {names} FROM {layer} WHERE id > :a ORDER BY id"),
                {"a": after},
            )
        ]


def top_id(world: World, layer: str) -> int:
    with world.engine.connect() as conn:
        return int(conn.execute(text(f"SELECT coalesce(max(id), 0) FROM {layer}")).scalar_one())


@pytest.mark.parametrize("layer", list(COMPARED))
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_goes_out_and_back_in(
    source: World, target: World, layer: str, fmt: str
) -> None:
    with _client(source) as out:
        exported = out.get(
            f"/collections/{layer}/export", params={"format": fmt}, headers=bearer("admin")
        )
    assert exported.status_code == 200, exported.text
    assert "attachment" in exported.headers["content-disposition"]
    suffix = ".zip" if fmt == "shp" else f".{fmt}"
    before = top_id(target, layer)
    with _client(target) as back:
        answer = back.post(
            f"/collections/{layer}/import",
            params={"filename": f"{layer}{suffix}", "mode": "copy"},  # another database's ids
            content=exported.content,
            headers={**bearer("admin"), "Content-Type": "application/octet-stream"},
        )
    assert answer.status_code == 200, answer.text
    sent, arrived = rows(source, layer), rows(target, layer, before)
    assert len(arrived) == len(sent) == answer.json()["imported"] == answer.json()["new"]
    for a, b in zip(sent, arrived, strict=True):
        shape_a, shape_b = shapely.from_wkb(bytes(a[0])), shapely.from_wkb(bytes(b[0]))
        assert shapely.hausdorff_distance(shape_a, shape_b) < 1e-7  # about 1 cm in degrees
        for name, x, y in zip(COMPARED[layer], a[1:], b[1:], strict=True):
            assert x == pytest.approx(y) if isinstance(x, float) else x == y, (fmt, name, x, y)


def test_exports_follow_the_filters_and_rights_of_items(source: World) -> None:
    with _client(source) as client:
        west = client.get(
            "/collections/billboards/export",
            params={
                "format": "csv",
                "bbox": ",".join(
                    map(
                        str,
                        shapely.from_wkb(bytes(rows(source, "billboards")[0][0]))
                        .buffer(0.0001)
                        .bounds,
                    )
                ),
            },
            headers=bearer("admin"),
        )
        mine = client.get(
            "/collections/billboards/export", params={"format": "csv"}, headers=bearer("inspector")
        )
        everything = client.get(
            "/collections/billboards/export", params={"format": "csv"}, headers=bearer("leader")
        )
        graded = client.get(
            "/collections/billboards/export",
            params={
                "format": "csv",
                "filter": "risk_grade = 'D'",
                "properties": "owner,risk_grade",
            },
            headers=bearer("leader"),
        )
        bad = client.get(
            "/collections/billboards/export", params={"format": "dwg"}, headers=bearer("leader")
        )
    lines = lambda r: r.content.decode("utf-8").splitlines()  # noqa: E731
    assert len(lines(everything)) - 1 == len(rows(source, "billboards"))
    assert 1 < len(lines(mine)) - 1 < len(lines(everything)) - 1  # the west community only
    assert len(lines(west)) - 1 == 1
    assert lines(graded)[0] == "id,设置单位,风险等级,经度,纬度" and len(lines(graded)) == 2
    assert "启东市城管局" in lines(graded)[1]
    assert bad.status_code == 400 and bad.json()["message"]


def test_labels_aliases_and_encodings(source: World, tmp_path: Path) -> None:
    with _client(source) as client:
        gpkg = client.get(
            "/collections/billboards/export", params={"format": "gpkg"}, headers=bearer("admin")
        )
        gbk = client.get(
            "/collections/billboards/export",
            params={"format": "shp", "encoding": "GBK"},
            headers=bearer("admin"),
        )
        xlsx = client.get(
            "/collections/billboards/export", params={"format": "xlsx"}, headers=bearer("admin")
        )
    path = tmp_path / "b.gpkg"
    path.write_bytes(gpkg.content)
    with sqlite3.connect(path) as db:
        titles = dict(db.execute("SELECT column_name, title FROM gpkg_data_columns").fetchall())
    assert titles["face_area_m2"] == "牌面面积(㎡)" and titles["owner"] == "设置单位"
    with zipfile.ZipFile(io.BytesIO(gbk.content)) as archive:
        names = archive.namelist()
        dbf = archive.read(next(n for n in names if n.endswith(".dbf")))
        cpg = archive.read(next(n for n in names if n.endswith(".cpg"))).decode()
    assert "汇龙广告公司".encode("gbk") in dbf and cpg.strip().upper() in ("CP936", "936", "GBK")
    assert xlsx.headers["content-type"].startswith("application/vnd.openxmlformats")


FORMULA = "=cmd|' /C calc'!A0"


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_spreadsheet_exports_neutralise_formulas_and_keep_negative_numbers(
    source: World, tmp_path: Path, fmt: str
) -> None:
    with source.engine.begin() as conn:
        added = conn.execute(
            text("""
            INSERT INTO billboards (geom, adcode, type, face_area_m2, owner, address)
            SELECT geom, adcode, type, -12.5, :owner, :address FROM billboards ORDER BY id LIMIT 1
            RETURNING id
        """),
            {"owner": FORMULA, "address": "@SUM(1+1)*cmd|' /C calc'!A0"},
        ).scalar_one()
    try:
        with _client(source) as client:
            exported = client.get(
                "/collections/billboards/export",
                params={"format": fmt},
                headers=bearer("admin"),
            )
    finally:
        with source.engine.begin() as conn:
            conn.execute(text("DELETE FROM billboards WHERE id = :id"), {"id": added})
    assert exported.status_code == 200, exported.text
    path = tmp_path / f"out.{fmt}"
    path.write_bytes(exported.content)
    meta, _, _, values = pyogrio.raw.read(path)
    names = meta["fields"].tolist()
    columns = dict(zip(names, values, strict=True))
    at = [str(v) for v in columns["设置单位"]].index("'" + FORMULA)
    row = {name: column[at] for name, column in columns.items()}
    assert row["设置单位"] == "'" + FORMULA and row["地址"].startswith("'@")
    assert float(row["牌面面积(㎡)"]) == -12.5
    if fmt == "xlsx":
        assert isinstance(row["牌面面积(㎡)"], float)  # a number cell, not text
    else:
        assert ",-12.5," in exported.text  # not quoted, not prefixed


def _shapefile(content: bytes, folder: Path, keep_cpg: bool = True) -> Path:
    """The exported zip unpacked into `folder` (its .cpg dropped unless `keep_cpg`); the .shp."""
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        archive.extractall(folder)
    if not keep_cpg:
        for cpg in folder.glob("*.cpg"):
            cpg.unlink()
    return next(folder.glob("*.shp"))


def test_a_gbk_shapefile_reads_right_without_its_cpg(source: World, tmp_path: Path) -> None:
    with _client(source) as client:
        signs = client.get(
            "/collections/billboards/export",
            params={"format": "shp", "encoding": "gbk"},
            headers=bearer("admin"),
        )
        grids = client.get(
            "/collections/grids/export",
            params={"format": "shp", "encoding": "CP936"},
            headers=bearer("admin"),
        )
    assert signs.status_code == grids.status_code == 200, signs.text + grids.text
    shp = _shapefile(signs.content, tmp_path / "signs", keep_cpg=False)
    assert shp.with_suffix(".dbf").read_bytes()[29] == 0x4D  # dBASE language driver: CP936
    meta, _, _, values = pyogrio.raw.read(shp)
    columns = dict(zip(meta["fields"].tolist(), values, strict=True))
    assert list(columns) == [
        "id", "设施类型", "face_m2", "设置单位", "地址", "登记编号", "风险等级", "safety_rpt", "last_insp",
        "拆除日期", "removed_m2",
    ]  # fmt: skip
    assert "汇龙广告公司" in columns["设置单位"].tolist()
    assert set(columns["设施类型"].tolist()) == {"店招", "高炮"}
    assert sorted(columns["id"].tolist()) == [r[0] for r in ids(source, "billboards")]
    if shutil.which("ogrinfo"):  # GDAL's own command line, as a clerk would open it
        listed = subprocess.run(
            ["ogrinfo", "-ro", "-al", "-q", str(shp)], capture_output=True, check=True
        ).stdout.decode("utf-8")
        assert "设置单位 (String) = 汇龙广告公司" in listed and "设施类型 (String) = 店招" in listed
    grid_columns = pyogrio.raw.read(_shapefile(grids.content, tmp_path / "grids", False))[0]
    names = grid_columns["fields"].tolist()
    assert {"网格编码", "网格层级", "责任人", "责任单位", "parent_cd"} <= set(names)
    assert not any(n.startswith(("responsibl", "responsi_")) for n in names)


def ids(world: World, layer: str) -> list[tuple[int]]:
    with world.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(f"SELECT id FROM {layer} ORDER BY id"))]


@pytest.mark.parametrize(
    ("asked", "cpg", "label_fits"),
    [("utf8", "UTF-8", False), ("UTF-8", "UTF-8", False), ("gb18030", "GB18030", True)],
)
def test_encodings_by_any_usual_name(
    source: World, tmp_path: Path, asked: str, cpg: str, label_fits: bool
) -> None:
    with _client(source) as client:
        answer = client.get(
            "/collections/billboards/export",
            params={"format": "shp", "encoding": asked},
            headers=bearer("admin"),
        )
        unknown = client.get(
            "/collections/billboards/export",
            params={"format": "shp", "encoding": "big5"},
            headers=bearer("admin"),
        )
    assert answer.status_code == 200, answer.text
    shp = _shapefile(answer.content, tmp_path)
    assert shp.with_suffix(".cpg").read_text().strip() == cpg
    names = pyogrio.raw.read(shp)[0]["fields"].tolist()
    assert ("设施类型" in names) is label_fits and ("type" in names) is not label_fits
    assert unknown.status_code == 400 and unknown.json()["message_en"]


def test_codes_as_labels_or_raw(source: World) -> None:
    with _client(source) as client:
        labelled, raw = (
            client.get(
                "/collections/billboards/export",
                params={"format": "csv", "properties": "type,risk_grade", **extra},
                headers=bearer("admin"),
            )
            for extra in ({}, {"codes": "raw"})
        )
    assert labelled.text.splitlines()[0] == "id,设施类型,风险等级,经度,纬度"
    assert {line.split(",")[1] for line in labelled.text.splitlines()[1:]} == {"店招", "高炮"}
    assert "A级(安全)" in labelled.text and "D级(危险)" in labelled.text
    assert {line.split(",")[1] for line in raw.text.splitlines()[1:]} == {"shop_sign", "pole"}
    assert ",A," in raw.text and "A级" not in raw.text


def test_exports_in_a_gauss_kruger_zone(source: World, tmp_path: Path) -> None:
    with _client(source) as client:
        gpkg, csv_file, kml = (
            client.get(
                "/collections/billboards/export",
                params={"format": fmt, "crs": "EPSG:4550"},
                headers=bearer("admin"),
            )
            for fmt in ("gpkg", "csv", "kml")
        )
        bad = client.get(
            "/collections/billboards/export",
            params={"format": "gpkg", "crs": "EPSG:2000"},
            headers=bearer("admin"),
        )
    assert bad.status_code == 400
    path = tmp_path / "gk.gpkg"
    path.write_bytes(gpkg.content)
    meta, _, wkb, _ = pyogrio.raw.read(path)
    assert meta["crs"] == "EPSG:4550"
    to_gk = Transformer.from_crs(4490, 4550, always_xy=True)
    stored = [shapely.from_wkb(bytes(r[0])) for r in rows(source, "billboards")]
    expected = [to_gk.transform(p.x, p.y) for p in stored]
    got = [(p.x, p.y) for p in shapely.from_wkb(wkb)]
    assert all(
        abs(a - c) < 0.01 and abs(b - d) < 0.01
        for (a, b), (c, d) in zip(got, expected, strict=True)
    )
    lines = csv_file.text.splitlines()
    assert lines[0].endswith(",X,Y")
    x, y = (float(v) for v in lines[1].split(",")[-2:])
    assert abs(x - expected[0][0]) < 0.01 and abs(y - expected[0][1]) < 0.01
    kml_path = tmp_path / "gk.kml"
    kml_path.write_bytes(kml.content)
    first = shapely.from_wkb(pyogrio.raw.read(kml_path)[2][0])
    assert abs(first.x - stored[0].x) < 1e-7 and abs(first.y - stored[0].y) < 1e-7  # KML: degrees


def _import(world: World, layer: str, content: bytes, filename: str, **params: Any) -> Any:
    with _client(world) as client:
        return client.post(
            f"/collections/{layer}/import",
            params={"filename": filename, **params},
            content=content,
            headers={**bearer("admin"), "Content-Type": "application/octet-stream"},
        )


@pytest.mark.parametrize("layer", list(COMPARED))
@pytest.mark.parametrize("fmt", FORMATS)
def test_reimporting_an_export_finds_every_row_unchanged(
    source: World, layer: str, fmt: str
) -> None:
    with _client(source) as out:
        exported = out.get(
            f"/collections/{layer}/export", params={"format": fmt}, headers=bearer("admin")
        )
    filename = f"{layer}.zip" if fmt == "shp" else f"{layer}.{fmt}"
    stored = len(ids(source, layer))
    before = snapshot(source.engine)
    dry = _import(source, layer, exported.content, filename, mode="upsert", **{"dry-run": "true"})
    assert dry.status_code == 200, dry.text
    assert (dry.json()["key"], dry.json()["new"], dry.json()["changed"]) == ("id", 0, 0)
    assert dry.json()["unchanged"] == stored
    appended = _import(source, layer, exported.content, filename)
    assert appended.status_code == 400 and appended.json()["code"] == "import_refused"
    report = appended.json()["report"]
    assert report["bad_rows"] == stored and report["unchanged"] == stored
    assert {e["code"] for e in report["errors"]} == {"row_exists"}
    assert snapshot(source.engine) == before


def test_an_edited_export_updates_what_changed_and_adds_what_is_new(source: World) -> None:
    with _client(source) as out:
        exported = out.get(
            "/collections/parking_lots/export", params={"format": "csv"}, headers=bearer("admin")
        )
    lines = exported.content.decode("utf-8").splitlines()
    header = lines[0].split(",")
    first = lines[1].split(",")
    fid, spaces = int(first[0]), header.index("泊位数")
    edited = list(first)
    edited[spaces] = "99"
    added = list(first)
    added[0], added[header.index("名称")] = "", "新增停车场"
    body = "\n".join([lines[0], ",".join(edited), *lines[2:], ",".join(added)]) + "\n"
    stored = len(ids(source, "parking_lots"))
    dry = _import(
        source, "parking_lots", body.encode(), "lots.csv", mode="upsert", **{"dry-run": "1"}
    )
    assert (dry.json()["new"], dry.json()["changed"], dry.json()["unchanged"]) == (
        1, 1, stored - 1,
    ), dry.text  # fmt: skip
    done = _import(source, "parking_lots", body.encode(), "lots.csv", mode="upsert")
    try:
        assert done.status_code == 200, done.text
        assert (done.json()["imported"], done.json()["updated"]) == (1, 1)
        with source.engine.connect() as conn:
            assert (
                conn.execute(
                    text("SELECT spaces FROM parking_lots WHERE id = :id"), {"id": fid}
                ).scalar_one()
                == 99
            )
            assert (
                conn.execute(
                    text("SELECT count(*) FROM parking_lots WHERE name = '新增停车场'")
                ).scalar_one()
                == 1
            )
        assert len(ids(source, "parking_lots")) == stored + 1
    finally:
        with source.engine.begin() as conn:
            conn.execute(text("DELETE FROM parking_lots WHERE name = '新增停车场'"))
            conn.execute(
                text("UPDATE parking_lots SET spaces = :s WHERE id = :id"),
                {"s": int(first[spaces]), "id": fid},
            )
    bare = "\n".join([",".join(header[1:]), *(",".join(line.split(",")[1:]) for line in lines[1:])])
    no_key = _import(source, "parking_lots", bare.encode(), "lots.csv", mode="upsert")
    assert no_key.status_code == 400 and no_key.json()["code"] == "import_no_key"


def test_the_readme_lists_every_declared_short_name() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    for layer in LAYERS.values():
        for f in layer.fields:
            if f.short_name != f.name:
                assert f"`{f.name}` {f.short_name}" in readme.replace("\n  ", " "), f.name
