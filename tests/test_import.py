"""Files in: every format, field names or Chinese labels, code labels, CRS (GK zones, GCJ-02),
GBK Shapefiles with or without a .cpg, and all-or-nothing with every bad row reported."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyogrio.raw
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import Transformer
from shapely.geometry import mapping
from sqlalchemy import text

from api.app import create_app
from api.settings import DatabaseSettings
from gis.gcj02 import wgs84_to_gcj02
from tests.accounts import TEST_AUTH, bearer
from tests.street import family_box, lonlat
from tests.uploads import OWNER, billboard_columns, spots, upload, write
from tests.world import PROPERTIES, World, middle, snapshot


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    app = create_app(DatabaseSettings(database_url=world.url), auth_settings=TEST_AUTH)
    with TestClient(app) as c:
        c.headers.update(bearer("admin"))
        yield c


def count(world: World, layer: str, where: str = "TRUE") -> int:
    with world.engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {layer} WHERE {where}")).scalar_one())


def zipped(shp: Path, keep_cpg: bool = True, cpg: str | None = None) -> Path:
    out = shp.with_suffix(".zip")
    with zipfile.ZipFile(out, "w") as archive:
        for part in shp.parent.glob(f"{shp.stem}.*"):
            if part.suffix.lower() in (".zip",) or (part.suffix.lower() == ".cpg" and not keep_cpg):
                continue
            if part.suffix.lower() == ".cpg" and cpg is not None:
                archive.writestr(part.name, cpg)
                continue
            archive.write(part, part.name)
        if cpg is not None and not (shp.with_suffix(".cpg")).exists():
            archive.writestr(f"{shp.stem}.cpg", cpg)
    return out


def test_geojson_with_chinese_labels_and_code_labels(
    client: TestClient, world: World, tmp_path: Path
) -> None:
    before = count(world, "billboards")
    path = write(tmp_path / "signs.geojson", spots(20), billboard_columns(20), "GeoJSON")
    answer = upload(client, "billboards", path)
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["ok"] and report["imported"] == 20
    assert report["mapping"] == {
        "设施类型": "type",
        "牌面面积(㎡)": "face_area_m2",
        "owner": "owner",
    }
    assert count(world, "billboards") == before + 20
    assert count(world, "billboards", f"owner = '{OWNER}' AND type = 'pole'") == 20


@pytest.mark.parametrize(
    ("cpg", "keep"),
    [("936", True), (None, False), ("UTF-8", True)],
    ids=["gbk-with-cpg", "gbk-without-cpg", "gbk-with-wrong-cpg"],
)
def test_gbk_shapefiles_keep_their_chinese(
    client: TestClient, world: World, tmp_path: Path, cpg: str | None, keep: bool
) -> None:
    columns = {
        "设施类型": ["高炮"] * 5,
        "MJ": [12.5] * 5,
        "owner": [OWNER] * 5,
    }  # DBF: 10-byte names
    shp = write(tmp_path / "gbk.shp", spots(5), columns, "ESRI Shapefile", encoding="GBK")
    for sidecar in tmp_path.glob("gbk.cpg"):
        sidecar.unlink()
    archive = zipped(shp, keep, cpg)
    dbf = (tmp_path / "gbk.dbf").read_bytes()
    assert OWNER.encode("gbk") in dbf and OWNER.encode("utf-8") not in dbf  # really GBK
    before = count(world, "billboards", f"owner = '{OWNER}'")
    answer = upload(client, "billboards", archive, map="MJ:face_area_m2")
    assert answer.status_code == 200, answer.text
    assert answer.json()["encoding"] == "GBK" and answer.json()["mapping"]["MJ"] == "face_area_m2"
    if cpg == "UTF-8":
        assert any("与内容不符" in n for n in answer.json()["notes"])
    assert count(world, "billboards", f"owner = '{OWNER}'") == before + 5


def test_three_bad_rows_among_a_thousand_refuse_the_file(
    client: TestClient, world: World, tmp_path: Path
) -> None:
    points = spots(1000)
    columns = billboard_columns(1000)
    columns["牌面面积(㎡)"] = list(columns["牌面面积(㎡)"])
    columns["设施类型"] = list(columns["设施类型"])
    columns["lon"] = [p[0] for p in points]
    columns["lat"] = [p[1] for p in points]
    columns["牌面面积(㎡)"][16] = "十二"  # row 17: not a number
    columns["设施类型"][511] = "飞艇"  # row 512: not in the code list
    columns["lon"][997] = 120.0  # row 998: far outside the county
    path = write(tmp_path / "signs.csv", [], columns, "CSV", crs=None)
    before = snapshot(world.engine)
    answer = upload(client, "billboards", path)
    assert answer.status_code == 400 and answer.json()["code"] == "import_refused"
    report = answer.json()["report"]
    assert report["bad_rows"] == 3
    assert [(e["row"], e["field"]) for e in report["errors"]] == [
        (17, "face_area_m2"),
        (512, "type"),
        (998, "geometry"),
    ]
    assert "未导入任何数据" in answer.json()["message"]
    assert snapshot(world.engine) == before
    listed = upload(client, "billboards", path, report="csv")
    lines = listed.content.decode("utf-8-sig").splitlines()
    assert lines[0] == "行号,字段,取值,问题代码,问题" and len(lines) == 4
    assert lines[1].startswith("17,face_area_m2,十二,property_wrong_type")


def test_dry_run_checks_and_writes_nothing(
    client: TestClient, world: World, tmp_path: Path
) -> None:
    path = write(tmp_path / "ok.gpkg", spots(10), billboard_columns(10), "GPKG")
    before = snapshot(world.engine)
    answer = upload(client, "billboards", path, **{"dry-run": "true"})
    assert answer.status_code == 200 and answer.json()["ok"] and answer.json()["dry_run"]
    assert answer.json()["imported"] == 0 and snapshot(world.engine) == before


def test_xlsx_kml_and_gauss_kruger_sources(
    client: TestClient, world: World, tmp_path: Path
) -> None:
    points = spots(6)
    columns = billboard_columns(6) | {
        "经度": [p[0] for p in points],
        "纬度": [p[1] for p in points],
    }
    before = count(world, "billboards")
    assert (
        upload(
            client, "billboards", write(tmp_path / "s.xlsx", [], columns, "XLSX", crs=None)
        ).status_code
        == 200
    )
    kml = write(tmp_path / "s.kml", points, billboard_columns(6), "KML", crs="EPSG:4326")
    assert upload(client, "billboards", kml).status_code == 200, "kml"
    to_gk = Transformer.from_crs(4490, 4550, always_xy=True)
    projected = [to_gk.transform(*p) for p in points]
    gpkg = write(tmp_path / "gk.gpkg", projected, billboard_columns(6), "GPKG", crs="EPSG:4550")
    answer = upload(client, "billboards", gpkg)
    assert answer.status_code == 200 and "Gauss" in answer.json()["crs"], answer.text
    assert count(world, "billboards") == before + 18


def test_gcj02_coordinates_are_shifted_back(
    client: TestClient, world: World, tmp_path: Path
) -> None:
    points = spots(3)
    lon, lat = wgs84_to_gcj02([p[0] for p in points], [p[1] for p in points])
    columns = billboard_columns(3) | {"lng": list(lon), "lat": list(lat)}
    columns["owner"] = ["高德描点"] * 3
    answer = upload(
        client,
        "billboards",
        write(tmp_path / "amap.csv", [], columns, "CSV", crs=None),
        crs="gcj02",
    )
    assert answer.status_code == 200, answer.text
    with world.engine.connect() as conn:
        stored = conn.execute(
            text(
                "SELECT ST_X(geom), ST_Y(geom) FROM billboards WHERE owner = '高德描点' ORDER BY id"
            )
        ).all()
    for (x, y), (px, py) in zip(stored, points, strict=True):
        assert abs(x - px) < 1e-5 and abs(y - py) < 1e-5  # about 1 m


@pytest.mark.parametrize("kind", ["bomb", "traversal", "format", "no-shapefile"])
def test_unsafe_or_unusable_uploads_are_refused(
    client: TestClient, world: World, tmp_path: Path, kind: str
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        if kind == "bomb":  # 300 MiB of zeros: a few hundred KiB zipped, past 5 × the upload limit
            with archive.open("a.shp", "w") as member:
                for _ in range(300):
                    member.write(bytes(1024 * 1024))
        elif kind == "traversal":
            archive.writestr("../../etc/a.shp", b"x")
        else:
            archive.writestr("readme.txt", b"x")
    path = tmp_path / ("x.zip" if kind != "format" else "x.docx")
    path.write_bytes(buffer.getvalue())
    before = snapshot(world.engine)
    answer = upload(client, "billboards", path)
    assert answer.status_code in (400, 413) and answer.json()["message"], answer.text
    assert snapshot(world.engine) == before


def test_only_roles_editing_the_layer_import(client: TestClient, tmp_path: Path) -> None:
    path = write(tmp_path / "signs.geojson", spots(2), billboard_columns(2), "GeoJSON")
    refused = client.post(
        "/collections/billboards/import",
        params={"filename": path.name},
        content=path.read_bytes(),
        headers={**bearer("leader"), "Content-Type": "application/octet-stream"},
    )
    assert refused.status_code == 403
    grids = upload(client, "grids", path)
    assert grids.status_code == 400 and grids.json()["code"] == "use_grid_operations"
    missing = write(tmp_path / "bare.geojson", spots(2), {"owner": ["x", "y"]}, "GeoJSON")
    answer = upload(client, "billboards", missing)
    assert answer.status_code == 400 and answer.json()["code"] == "import_missing_columns"
    assert json.dumps(answer.json(), ensure_ascii=False).count("类型") >= 1


def test_the_report_of_bad_rows_cannot_start_a_formula(
    client: TestClient, world: World, tmp_path: Path
) -> None:
    points = spots(3)
    columns = billboard_columns(3)
    columns["牌面面积(㎡)"] = ["=cmd|' /C calc'!A0", "-1+cmd|' /C calc'!A0", 12.5]
    columns["设施类型"] = ["高炮", "高炮", "@SUM(A1)"]
    columns["lon"] = [p[0] for p in points]
    columns["lat"] = [p[1] for p in points]
    path = write(tmp_path / "formulas.csv", [], columns, "CSV", crs=None)
    listed = upload(client, "billboards", path, report="csv")
    assert listed.status_code == 400
    rows = list(csv.reader(io.StringIO(listed.content.decode("utf-8-sig"))))[1:]
    values = {(int(r[0]), r[1]): r[2] for r in rows}
    assert values == {
        (1, "face_area_m2"): "'=cmd|' /C calc'!A0",
        (2, "face_area_m2"): "'-1+cmd|' /C calc'!A0",
        (3, "type"): "'@SUM(A1)",
    }
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for r in rows for cell in r)


def _street_point(dx: float, dy: float = 450.0) -> shapely.Geometry:
    """A point `dx` metres east of the test street's west edge (negative: outside it)."""
    x0, y0 = family_box(0, 0)
    return lonlat(shapely.Point(x0 + dx, y0 + dy))


def _bowtie() -> shapely.Geometry:
    x, y = middle(1)
    ring = [(x, y), (x + 40, y + 40), (x + 40, y), (x, y + 40), (x, y)]
    return lonlat(shapely.Polygon(ring))


GEOMETRY_CASES = {
    "49.5 m outside": ("billboards", lambda: _street_point(-49.5), None),
    "60 km outside": ("billboards", lambda: _street_point(-60000), "outside_every_county"),
    "axis swapped": (
        "billboards",
        lambda: shapely.transform(_street_point(600), lambda xy: xy[:, ::-1]),
        "geometry_axis_swapped",
    ),
    "polygon for points": ("billboards", lambda: _bowtie().envelope, "geometry_wrong_type"),
    "self-intersecting": ("parking_lots", _bowtie, "geometry_invalid"),
}


@pytest.mark.parametrize("case", list(GEOMETRY_CASES))
def test_files_and_the_api_check_geometry_alike(
    client: TestClient, tmp_path: Path, case: str
) -> None:
    layer, make, code = GEOMETRY_CASES[case]
    geom = make()
    properties = PROPERTIES[layer]
    direct = client.post(
        f"/collections/{layer}/items",
        json={"type": "Feature", "geometry": mapping(geom), "properties": properties},
    )
    path = tmp_path / "one.geojson"
    pyogrio.raw.write(
        str(path), shapely.to_wkb([geom]), [np.asarray([v], dtype=object) for v in properties.values()],
        list(properties), driver="GeoJSON", crs="EPSG:4490", geometry_type="Unknown",
    )  # fmt: skip
    filed = upload(client, layer, path)
    if code is None:
        assert direct.status_code == 201, direct.text
        assert filed.status_code == 200 and filed.json()["imported"] == 1, filed.text
        return
    status = 422 if code == "outside_every_county" else 400
    assert direct.status_code == status and direct.json()["code"] == code, direct.text
    assert filed.status_code == 400, filed.text
    errors = filed.json()["report"]["errors"]
    assert [(e["field"], e["code"]) for e in errors] == [("geometry", code)]
    assert errors[0]["message"] + "。" == direct.json()["message"]


def test_billboards_update_by_their_registration_number(
    client: TestClient, world: World, tmp_path: Path
) -> None:
    points = spots(2)
    columns = billboard_columns(2) | {"登记编号": ["QD-2026-0001", "QD-2026-0002"]}
    path = write(tmp_path / "reg.geojson", points, columns, "GeoJSON")
    first = upload(client, "billboards", path)
    assert first.status_code == 200, first.text
    assert (first.json()["key"], first.json()["new"], first.json()["imported"]) == (
        "registration_no", 2, 2,
    )  # fmt: skip
    again = upload(client, "billboards", path)
    assert again.status_code == 400
    assert {e["code"] for e in again.json()["report"]["errors"]} == {"row_exists"}
    columns["owner"] = [OWNER, "改名广告公司"]
    edited = write(tmp_path / "reg2.geojson", points, columns, "GeoJSON")
    dry = upload(client, "billboards", edited, mode="upsert", **{"dry-run": "true"})
    assert (dry.json()["new"], dry.json()["changed"], dry.json()["unchanged"]) == (0, 1, 1)
    done = upload(client, "billboards", edited, mode="upsert")
    assert (done.json()["imported"], done.json()["updated"]) == (0, 1), done.text
    assert count(world, "billboards", "registration_no LIKE 'QD-2026-%'") == 2
    assert (
        count(world, "billboards", "registration_no = 'QD-2026-0002' AND owner = '改名广告公司'")
        == 1
    )
    with world.engine.begin() as conn:
        conn.execute(
            text("""
            INSERT INTO billboards (geom, adcode, type, face_area_m2, registration_no)
            SELECT geom, adcode, type, face_area_m2, registration_no FROM billboards
            WHERE registration_no = 'QD-2026-0001'
        """)
        )
    ambiguous = upload(client, "billboards", edited, mode="upsert")
    assert ambiguous.status_code == 400
    assert [(e["row"], e["code"]) for e in ambiguous.json()["report"]["errors"]] == [
        (1, "key_ambiguous")
    ]
