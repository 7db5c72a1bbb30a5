"""The component inventory (部件普查): 16-digit IDs held to their county and subclass on every
write and import, units checked, census imports refused per row, versions kept on status
changes and yearly updates, reads limited by county, patrol area and tiles."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from api.app import create_app
from api.settings import DatabaseSettings
from gis.validate import Limits
from layers.cases.codes import seed_case_categories
from layers.engine import filein
from layers.engine.access import Viewer
from layers.engine.editing import EditContext
from layers.engine.importing import ImportRefused, import_rows
from layers.engine.importkeys import ImportMode
from layers.errors import InvalidFeature
from layers.registry import COMPONENTS, Role
from layers.store import db
from tests.accounts import TEST_AUTH, bearer, ensure_account
from tests.counties import DEMO, SANYUAN, two_counties
from tests.databases import fresh_database
from tests.street import COMMUNITIES, STREET
from tests.support import JPEG, bureau_today
from tests.world import EAST_UNIT, World, ids_in, middle, point, snapshot, tile_ids, tile_index

UNIT = "测试单位"  # the test street's grids' responsible unit
FIRST = "3206810101000001"


def component(community: int, dx: float = 0.0, **properties: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": point(community, dx),
        "properties": {"subclass_code": "C0101", "status": "intact", **properties},
    }


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    app = create_app(DatabaseSettings(database_url=world.url), auth_settings=TEST_AUTH)
    with TestClient(app) as c:
        yield c


def create(client: TestClient, feature: dict[str, Any]) -> dict[str, Any]:
    answer = client.post("/collections/components/items", json=feature, headers=bearer("admin"))
    assert answer.status_code == 201, answer.text
    got = client.get(answer.headers["location"], headers=bearer("admin"))
    body: dict[str, Any] = got.json()
    return body


def test_a_new_component_gets_the_next_id_and_its_grid_community_and_street(
    client: TestClient, world: World
) -> None:
    first = create(client, component(1, name="上水井盖", maintainer_unit=UNIT))
    second = create(client, component(1, 10.0))
    other = create(client, component(1, 20.0, subclass_code="C0102"))
    assert first["properties"]["component_code"] == FIRST
    assert second["properties"]["component_code"] == "3206810101000002"
    assert other["properties"]["component_code"] == "3206810102000001"
    props = first["properties"]
    assert props["grid_code"] == f"{COMMUNITIES[1][:12]}002"
    assert props["community"] == f"测试{COMMUNITIES[1][-6:]}"
    assert props["street"] == f"测试{STREET[-6:]}"
    assert props["valid_from"] == bureau_today().isoformat()
    assert props["valid_to"] is None


@pytest.mark.parametrize(
    ("properties", "status", "code"),
    [
        ({"component_code": "32068101010001"}, 400, "component_code_format"),
        ({"component_code": "3206810101A00009"}, 400, "component_code_format"),
        ({"component_code": "3504040101000009"}, 400, "component_code_county"),
        ({"component_code": "3206810201000009"}, 400, "component_code_subclass"),
        ({"subclass_code": "E0101"}, 400, "subclass_not_component"),
        ({"subclass_code": "C9999"}, 400, "reference_not_found"),
        ({"component_code": FIRST}, 409, "component_code_taken"),
        ({"owner_unit": "不存在的单位"}, 400, "unknown_unit"),
        ({"status": "坏了"}, 400, None),
    ],
)
def test_a_bad_id_subclass_or_unit_is_refused_and_changes_nothing(
    client: TestClient, world: World, properties: dict[str, Any], status: int, code: str | None
) -> None:
    with world.engine.connect() as conn:
        stored = conn.execute(
            text("SELECT count(*) FROM components WHERE component_code = :c"), {"c": FIRST}
        ).scalar_one()
    if not stored:
        create(client, component(1))
    before = snapshot(world.engine)
    answer = client.post(
        "/collections/components/items",
        json=component(1, 50.0, **properties),
        headers=bearer("admin"),
    )
    assert answer.status_code == status, answer.text
    if code is not None:
        assert answer.json()["code"] == code
    assert answer.json()["message"] and answer.json()["message_en"]
    assert snapshot(world.engine) == before


def test_moving_a_component_into_another_id_or_subclass_is_checked(
    client: TestClient, world: World
) -> None:
    made = create(client, component(2, 60.0, maintainer_unit=EAST_UNIT))
    url = f"/collections/components/items/{made['id']}"
    answer = client.patch(
        url, json={"properties": {"subclass_code": "C0102"}}, headers=bearer("admin")
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == "component_code_subclass"


def test_a_status_change_keeps_the_version_it_replaces(client: TestClient, world: World) -> None:
    made = create(client, component(2, 80.0, owner_unit=UNIT))
    fid, code = made["id"], made["properties"]["component_code"]
    with world.engine.begin() as conn:  # surveyed in an earlier census
        conn.execute(
            text("UPDATE components SET valid_from = '2025-03-01' WHERE id = :id"), {"id": fid}
        )
    answer = client.patch(
        f"/collections/components/items/{fid}",
        json={"properties": {"status": "damaged"}},
        headers=bearer("admin"),
    )
    assert answer.status_code in (200, 204), answer.text
    today = bureau_today()
    with world.engine.connect() as conn:
        versions = conn.execute(
            text(
                "SELECT id, status, valid_from, valid_to FROM components "
                "WHERE component_code = :c ORDER BY valid_from"
            ),
            {"c": code},
        ).all()
    assert [(v.status, v.valid_from, v.valid_to) for v in versions] == [
        ("intact", date(2025, 3, 1), today),
        ("damaged", today, None),
    ]
    assert versions[1].id == fid  # the feature keeps its id; the old version is a row of its own

    def status_on(day: date) -> list[str]:
        got = client.get(
            "/collections/components/items",
            params={"datetime": day.isoformat(), "filter": f"component_code = '{code}'"},
            headers=bearer("admin"),
        )
        assert got.status_code == 200, got.text
        return [f["properties"]["status"] for f in got.json()["features"]]

    assert status_on(today - timedelta(days=1)) == ["intact"]
    assert status_on(today) == ["damaged"]
    old = client.patch(
        f"/collections/components/items/{versions[0].id}",
        json={"properties": {"status": "lost"}},
        headers=bearer("admin"),
    )
    assert old.status_code == 409 and old.json()["code"] == "version_ended"


def test_inspectors_read_components_of_their_patrol_area_and_tiles_show_them(
    client: TestClient, world: World
) -> None:
    west = create(client, component(1, -200.0))["id"]
    east = create(client, component(2, -200.0))["id"]
    seen = ids_in(
        client.get(
            "/collections/components/items", params={"limit": 1000}, headers=bearer("inspector")
        ).json()
    )
    assert west in seen and east not in seen
    refused = client.post(
        "/collections/components/items", json=component(1, -180.0), headers=bearer("inspector")
    )
    assert refused.status_code == 403
    from tests.street import lonlat

    x, y = middle(1)
    lon, lat = lonlat(shapely.Point(x - 200.0, y)).coords[0]
    tx, ty = tile_index(lon, lat, 17)
    assert west in tile_ids(client, "components", 17, tx, ty, "admin")
    assert west in tile_ids(client, "components", 17, tx, ty, "inspector")
    ex, ey = middle(2)
    elon, elat = lonlat(shapely.Point(ex - 200.0, ey)).coords[0]
    etx, ety = tile_index(elon, elat, 17)
    assert east in tile_ids(client, "components", 17, etx, ety, "admin")
    assert east not in tile_ids(client, "components", 17, etx, ety, "inspector")


def stored_photos(world: World) -> list[Any]:
    with world.engine.connect() as conn:
        return list(conn.execute(text("SELECT id, sha256 FROM component_photos ORDER BY id")))


def upload(client: TestClient, code: str, data: bytes, user: str = "admin") -> Any:
    return client.post(
        f"/components/{code}/photos",
        files={"photo": ("井盖.jpg", data, "image/jpeg")},
        headers=bearer(user),
    )


def test_photos_follow_the_component_across_its_versions_and_its_readers(
    client: TestClient, world: World
) -> None:
    west = create(client, component(1, -150.0))
    code = west["properties"]["component_code"]
    east_code = create(client, component(2, -150.0))["properties"]["component_code"]
    added = upload(client, code, JPEG)
    assert added.status_code == 201, added.text
    photo_id = added.json()["id"]
    assert added.headers["location"].endswith(f"/components/{code}/photos/{photo_id}")
    # a new version (status change) keeps the photo
    changed = client.patch(
        f"/collections/components/items/{west['id']}",
        json={"properties": {"status": "damaged"}},
        headers=bearer("admin"),
    )
    assert changed.status_code in (200, 204), changed.text
    for user in ("admin", "leader", "inspector"):
        listed = client.get(f"/components/{code}/photos", headers=bearer(user))
        assert listed.status_code == 200, (user, listed.text)
        assert [p["id"] for p in listed.json()] == [photo_id]
        assert listed.json()[0]["sha256"] == hashlib.sha256(JPEG).hexdigest()
        picture = client.get(f"/components/{code}/photos/{photo_id}", headers=bearer(user))
        assert picture.content == JPEG and picture.headers["content-type"] == "image/jpeg"
    # outside the inspector's patrol area the component and its photos look absent
    assert upload(client, east_code, JPEG).status_code == 201
    hidden = client.get(f"/components/{east_code}/photos", headers=bearer("inspector"))
    assert hidden.status_code == 404 and hidden.json()["code"] == "component_not_found"
    before = stored_photos(world)
    refusals = {
        "inspector": (upload(client, code, JPEG, "inspector"), 403),
        "leader": (upload(client, code, JPEG, "leader"), 403),
        "not an image": (upload(client, code, b"GIF89a" + bytes(64)), 400),
        "no such component": (upload(client, "3206810199999999", JPEG), 404),
        "bad code": (upload(client, "32068101", JPEG), 400),
        "oversized": (upload(client, code, b"\xff\xd8\xff" + bytes(9 * 1024 * 1024)), 413),
        "no photo": (
            client.post(
                f"/components/{code}/photos",
                files={"picture": ("p.jpg", JPEG, "image/jpeg")},
                headers=bearer("admin"),
            ),
            400,
        ),
        "not a form": (
            client.post(f"/components/{code}/photos", data={"x": "1"}, headers=bearer("admin")),
            415,
        ),
    }
    for name, (answer, status) in refusals.items():
        assert answer.status_code == status, (name, answer.text)
        assert answer.json()["message"] and answer.json()["message_en"], name
    assert stored_photos(world) == before
    assert (
        client.delete(f"/components/{code}/photos/{photo_id}", headers=bearer("leader")).status_code
        == 403
    )
    assert (
        client.delete(f"/components/{code}/photos/{photo_id}", headers=bearer("admin")).status_code
        == 204
    )
    gone = client.get(f"/components/{code}/photos/{photo_id}", headers=bearer("admin"))
    assert gone.status_code == 404 and gone.json()["code"] == "photo_not_found"
    with world.engine.connect() as conn:
        audited = conn.execute(
            text(
                "SELECT count(*) FROM audit_log WHERE layer = 'components' AND feature_id = :id "
                "AND (after ? 'photo_id' OR before ? 'photo_id')"
            ),
            {"id": west["id"]},
        ).scalar_one()
    assert audited == 2


# --- census import ----------------------------------------------------------------------------


def census(path: Path, rows: list[dict[str, Any]], dx: float = 300.0) -> Path:
    """A surveyor's census as a GeoPackage with Chinese column names."""
    geoms = [shapely.geometry.shape(point(1, dx + 5.0 * i)) for i in range(len(rows))]
    gpd.GeoDataFrame(rows, geometry=geoms, crs="EPSG:4490").to_file(path, driver="GPKG")
    return path


def row(code: str | None, **extra: Any) -> dict[str, Any]:
    return {
        "部件标识码": code,
        "部件名称": "井盖",
        "小类代码": "C0101",
        "状态": "完好",
        "主管部门": UNIT,
        "权属单位": UNIT,
        "养护单位": EAST_UNIT,
        "初始日期": "2025-05-01",
        "数据来源": "普查",
        "定位精度": "≤0.5米",
        **extra,
    }


def run_import(
    world: World,
    path: Path,
    mode: ImportMode = ImportMode.APPEND,
    as_of: date | None = None,
    remove_missing: bool = False,
) -> dict[str, Any]:
    ctx = EditContext(Viewer("tests", Role.ADMIN, counties=(DEMO,)), Limits())
    source = filein.read(path, filein.FileLimits())
    with world.engine.begin() as conn:
        report = import_rows(
            conn, COMPONENTS, source, ctx, None, None, False, None, mode, as_of, remove_missing
        )
    return report.document()


def test_a_census_with_bad_rows_is_refused_row_by_row(
    client: TestClient, world: World, tmp_path: Path
) -> None:
    path = census(
        tmp_path / "census.gpkg",
        [
            row("3206810101100001"),
            row("32068101011"),  # 2: bad ID
            row("3206810101100003", 权属单位="不存在的单位"),  # 3: unknown unit
            row("3206810101100004"),
            row("3206810101100004"),  # 5: duplicate ID
            row("3206810102100006"),  # 6: ID of another subclass
            row("3504040101100007"),  # 7: ID of another county
            row(None, 小类代码="E0101"),  # 8: an event category
        ],
    )
    before = snapshot(world.engine)
    answer = client.post(
        "/collections/components/import",
        params={"filename": "census.gpkg"},
        content=path.read_bytes(),
        headers={**bearer("admin"), "Content-Type": "application/octet-stream"},
    )
    assert answer.status_code == 400, answer.text
    errors = {(e["row"], e["code"]) for e in answer.json()["report"]["errors"]}
    assert errors == {
        (2, "component_code_format"),
        (3, "unknown_unit"),
        (5, "duplicate_key"),
        (6, "component_code_subclass"),
        (7, "component_code_county"),
        (8, "subclass_not_component"),
    }
    assert snapshot(world.engine) == before
    stored = row(FIRST)  # an ID stored already: refused when appended
    with pytest.raises(ImportRefused) as refused:
        run_import(world, census(tmp_path / "again.gpkg", [stored]))
    assert [e.code for e in refused.value.report.errors] == ["row_exists"]


def test_a_census_keeps_valid_ids_assigns_missing_ones_and_reads_names(
    world: World, tmp_path: Path
) -> None:
    path = census(
        tmp_path / "ids.gpkg",
        [
            row("3206810117200001", 小类代码="路灯"),  # the subclass by its name
            row(None),
            row(None, 小类代码="路灯损坏", 状态="破损"),  # by a former name, now an alias
        ],
        dx=600.0,
    )
    report = run_import(world, path)
    assert report["imported"] == 3
    with world.engine.connect() as conn:
        got = conn.execute(
            text(
                "SELECT component_code, subclass_code, status, maintainer_unit, accuracy, "
                "data_source, grid_code IS NOT NULL FROM components "
                "WHERE first_surveyed_on = '2025-05-01' ORDER BY component_code"
            )
        ).all()
    codes = [g[0] for g in got]
    assert "3206810117200001" in codes
    assert "3206810117200002" in codes  # after the highest serial of its county and subclass
    assert all(g[3] == EAST_UNIT and g[4] == "0.5m" and g[5] == "census" and g[6] for g in got)
    assert any(g[2] == "damaged" for g in got)


def test_a_yearly_update_keeps_history_and_removes_only_when_asked(
    world: World, tmp_path: Path
) -> None:
    with world.engine.begin() as conn:  # this test's census stands alone in the county
        conn.execute(text("DELETE FROM components"))
    codes = [f"32068101013000{n:02d}" for n in range(1, 4)]
    run_import(world, census(tmp_path / "y1.gpkg", [row(c) for c in codes]), as_of=date(2025, 6, 1))
    update = [row(codes[0], 状态="破损"), row(codes[1]), row("3206810101300009")]
    path = census(tmp_path / "y2.gpkg", update)
    kept = run_import(world, path, ImportMode.UPSERT, date(2026, 6, 1))
    assert (kept["new"], kept["changed"], kept["unchanged"], kept["removed"]) == (1, 1, 1, 0)
    with pytest.raises(InvalidFeature) as refused:  # removing needs one county and an upsert
        run_import(world, path, ImportMode.APPEND, date(2026, 6, 1), remove_missing=True)
    assert refused.value.code == "import_remove_refused"
    done = run_import(world, path, ImportMode.UPSERT, date(2026, 6, 1), remove_missing=True)
    assert done["removed"] == 1

    def inventory(day: str) -> dict[str, str]:
        with world.engine.connect() as conn:
            return dict(
                conn.execute(
                    text(
                        "SELECT component_code, status FROM components "
                        "WHERE valid_from <= :d AND (valid_to IS NULL OR valid_to > :d)"
                    ),
                    {"d": date.fromisoformat(day)},
                ).all()
            )

    assert inventory("2026-05-31") == dict.fromkeys(codes, "intact")
    assert inventory("2026-06-01") == {
        codes[0]: "damaged",
        codes[1]: "intact",
        codes[2]: "removed",
        "3206810101300009": "intact",
    }


# --- two counties ---------------------------------------------------------------------------


def test_components_are_read_by_county(pg_server: Any) -> None:
    databases = fresh_database(pg_server, "components_counties")
    url = next(databases)
    owner = db.make_engine(pg_server.as_owner(url))
    try:
        with owner.begin() as conn:
            seed_case_categories(conn)
            demo, second = two_counties(conn)
            ids = {}
            for rows in (demo, second):
                ids[rows.adcode] = conn.execute(
                    text(
                        "INSERT INTO components (adcode, geom, component_code, subclass_code, "
                        "status, valid_from) VALUES (:a, ST_SetSRID(ST_MakePoint(:x, :y), 4490), "
                        ":code, 'C0101', 'intact', '2025-01-01') RETURNING id"
                    ),
                    {"a": rows.adcode, "code": f"{rows.adcode}0101000001"}
                    | dict(zip(("x", "y"), rows.lonlat(10.0, 10.0), strict=True)),
                ).scalar_one()
        ensure_account(owner, "leader-b", "leader", counties=(SANYUAN,))
        ensure_account(owner, "admin-a", "admin", counties=(DEMO,))
        app = create_app(DatabaseSettings(database_url=url), auth_settings=TEST_AUTH)
        with TestClient(app) as client:
            seen = ids_in(
                client.get("/collections/components/items", headers=bearer("leader-b")).json()
            )
            assert seen == {ids[SANYUAN]}
            refused = client.patch(
                f"/collections/components/items/{ids[SANYUAN]}",
                json={"properties": {"status": "lost"}},
                headers=bearer("admin-a"),
            )
            assert refused.status_code == 404
            sanyuan_code = f"{SANYUAN}0101000001"
            assert (
                client.get(f"/components/{sanyuan_code}/photos", headers=bearer("leader-b")).json()
                == []
            )
            elsewhere = client.post(
                f"/components/{sanyuan_code}/photos",
                files={"photo": ("p.jpg", JPEG, "image/jpeg")},
                headers=bearer("admin-a"),
            )
            assert elsewhere.status_code == 404
        # the database itself refuses an ID of another county
        with pytest.raises(IntegrityError, match="component_code_county"), owner.begin() as conn:
            conn.execute(
                text("UPDATE components SET component_code = :c WHERE id = :id"),
                {"c": f"{DEMO}0101000002", "id": ids[SANYUAN]},
            )
    finally:
        owner.dispose()
        next(databases, None)
