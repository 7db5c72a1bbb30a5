"""The `citygrid` command: clear one-sentence failures, and an idempotent `run`."""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from shapely.geometry import box
from sqlalchemy import create_engine, make_url, text

from layers.errors import SetupError
from layers.store import cluster, db, migrate
from tests.accounts import SERVER_ENV, bearer
from tests.databases import PgServer, fresh_database
from tests.street import COMMUNITIES, SIDE, TO_LONLAT, family_box, insert_grid
from tests.support import (
    CITYGRID,
    ROOT,
    assert_clear_failure,
    citygrid,
    citygrid_process,
    free_port,
    stop,
    wait_healthy,
)


@pytest.mark.parametrize(
    ("url", "phrase"),
    [
        (
            "postgresql://citygrid:secret@127.0.0.1:1/nowhere",
            "Cannot connect to the database at 127.0.0.1:1/nowhere",
        ),
        ("mysql://user:pw@127.0.0.1/db", "needs PostgreSQL with PostGIS"),
        ("this is not a url", "is not a valid database URL"),
    ],
)
def test_wrong_database_url_is_one_clear_sentence(url: str, phrase: str) -> None:
    env = {"CITYGRID_DATABASE_URL": url}
    assert_clear_failure(citygrid_process("db", "status", env=env), phrase)  # the installed script
    for command in (["db", "status"], ["db", "up"], ["demo", "load"]):
        assert_clear_failure(citygrid(*command, env=env), phrase)


def test_db_down_never_touches_an_external_server() -> None:
    result = citygrid("db", "down", env={"CITYGRID_DATABASE_URL": "postgresql://a:b@127.0.0.1:1/x"})
    assert result.returncode == 0 and "not managed by citygrid" in result.stderr


@pytest.mark.parametrize(
    ("content", "phrase"),
    [
        ("{not json", "cannot be read as vector data"),
        ('{"type": "Point", "coordinates": [121.6, 31.8]}', "holds no polygon"),
        (
            '{"type": "Polygon", "coordinates": [[[121.6, 31.8], [121.7, 31.9], [121.7, 31.8], [121.6, 31.9], [121.6, 31.8]]]}',
            "polygon is invalid",
        ),
        (
            '{"type": "Polygon", "coordinates": [[[31.8, 121.6], [31.9, 121.6], [31.9, 121.7], [31.8, 121.6]]]}',
            "not longitude/latitude in China",
        ),
        ("", "cannot be read as vector data"),
    ],
)
def test_corrupt_boundary_file_is_one_clear_sentence(
    tmp_path: Path, content: str, phrase: str
) -> None:
    path = tmp_path / "county.geojson"
    path.write_text(content)
    assert_clear_failure(citygrid("boundary", "check", str(path)), "The boundary file", phrase)


def test_missing_boundary_file(tmp_path: Path) -> None:
    assert_clear_failure(
        citygrid("boundary", "check", str(tmp_path / "absent.geojson")), "cannot be read"
    )


def test_shipped_boundary_checks_out() -> None:
    from citygrid_data import data_file

    result = citygrid("boundary", "check", "--gcj02", str(data_file("qidong_320681_gcj02.geojson")))
    assert result.returncode == 0, result.stderr
    assert "1,672" in result.stderr and "EPSG:4550" in result.stderr


def test_missing_postgis_without_apt_is_one_sentence(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bare = cluster.Server(15, tmp_path / "bin", tmp_path / "share")
    monkeypatch.setattr(cluster, "find_server", lambda: bare)
    monkeypatch.setattr(cluster, "_can_apt", lambda: None)
    with pytest.raises(SetupError, match="PostGIS is not installed and cannot be installed here"):
        cluster.ensure_server(print)
    monkeypatch.setattr(cluster, "find_server", lambda: None)
    with pytest.raises(SetupError, match="PostgreSQL is not installed"):
        cluster.ensure_server(print)


def _run_once(url: str, owner_url: str, log: Path) -> dict[str, int]:
    """Start `make run` on an external database (the API's role and the schema's owner), read
    the layer counts once it serves, stop it with Ctrl-C."""
    port = free_port()
    with log.open("w") as out:
        proc = subprocess.Popen(
            ["make", "--no-print-directory", "-C", str(ROOT), "run"],
            env={
                **os.environ,
                **SERVER_ENV,
                "CITYGRID_DATABASE_URL": url,
                "CITYGRID_MIGRATION_DATABASE_URL": owner_url,
                "CITYGRID_PORT": str(port),
                # the demo passwords go to the state directory: not the project's own
                "CITYGRID_STATE_DIR": str(log.parent / "state"),
                "CITYGRID_DEMO_FUME_MONTHS": "1",  # the readings' year is the slow part
            },
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_healthy(proc, f"http://127.0.0.1:{port}", log, 180)
        layers = httpx.get(
            f"http://127.0.0.1:{port}/layers", headers=bearer("admin"), timeout=10
        ).json()
        assert f"http://127.0.0.1:{port}/docs" in log.read_text()
        assert f"http://127.0.0.1:{port}/maps/overview" in log.read_text()
        return {layer["id"]: layer["count"] for layer in layers}
    finally:
        stop(proc, group=True)


def test_run_twice_keeps_the_same_rows(
    pg_server: PgServer, scratch_url: str, tmp_path: Path
) -> None:
    owner_url = pg_server.as_owner(scratch_url)
    first = _run_once(scratch_url, owner_url, tmp_path / "first.log")
    assert first["grids"] == 422 and first["cases"] == 152821
    first_log = (tmp_path / "first.log").read_text()
    assert "demo city 启东市 loaded" in first_log
    assert "演示账号" in first_log and "insp-" in first_log  # the demo's passwords, shown once
    assert "maint-01" in first_log  # the units cases are routed to, listed one by one
    second = _run_once(scratch_url, owner_url, tmp_path / "second.log")
    assert second == first
    second_log = (tmp_path / "second.log").read_text()
    assert "data already loaded" in second_log and "演示账号" not in second_log


@pytest.fixture
def unprivileged_url(pg_server: PgServer) -> Iterator[str]:
    """A database owned by a role that may not create the PostGIS extension."""
    name, role = f"citygrid_test_limited_{os.getpid()}", f"citygrid_limited_{os.getpid()}"
    admin = create_engine(pg_server.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE ROLE {role} LOGIN PASSWORD 'limited'"))
        conn.execute(text(f"CREATE DATABASE {name} OWNER {role}"))
    try:
        yield (
            make_url(pg_server.url(name))
            .set(username=role, password="limited")
            .render_as_string(hide_password=False)
        )
    finally:
        db.drop_database(pg_server.admin_url, name)
        with admin.connect() as conn:
            conn.execute(text(f"DROP ROLE IF EXISTS {role}"))
        admin.dispose()


def test_no_right_to_create_postgis_is_one_clear_sentence(unprivileged_url: str) -> None:
    result = citygrid("db", "up", env={"CITYGRID_DATABASE_URL": unprivileged_url})
    assert_clear_failure(result, "The database refused the schema migration", "postgis")
    engine = db.make_engine(unprivileged_url)
    try:
        assert migrate.current_revision(engine) is None  # nothing half-applied
    finally:
        engine.dispose()


def test_grids_check_of_the_demo_city_finds_nothing(database_url: str) -> None:
    env = {"CITYGRID_DATABASE_URL": database_url}
    table = citygrid("grids", "check", env=env)
    assert table.returncode == 0, table.stderr
    assert "未发现问题" in table.stdout and "空隙" in table.stdout  # the table lists every kind
    report = json.loads(citygrid("grids", "check", "--json", env=env).stdout)
    engine = db.make_engine(database_url)
    with engine.connect() as conn:
        current = conn.execute(text("SELECT count(*) FROM grids WHERE valid_to IS NULL")).scalar()
    engine.dispose()
    assert report["ok"] and report["children"] == current and not any(report["counts"].values())


@pytest.fixture
def defective_family(pg_server: PgServer) -> Iterator[str]:
    """A community whose sections leave a 1 m² hole, one of them coded under another community."""
    databases = fresh_database(pg_server, "cli_grids")
    url = next(databases)
    engine = db.make_engine(url)
    x0, y0 = family_box(0, 0)
    with engine.begin() as conn:
        insert_grid(
            conn,
            "community",
            COMMUNITIES[1],
            None,
            box(x0, y0, x0 + 2 * SIDE, y0 + SIDE),
            "2020-01-01",
        )
        west = box(x0, y0, x0 + SIDE, y0 + SIDE).difference(
            box(x0 + 100, y0 + 100, x0 + 101, y0 + 101)
        )
        east = box(x0 + SIDE, y0, x0 + 2 * SIDE, y0 + SIDE)
        insert_grid(
            conn, "section", f"{COMMUNITIES[1][:12]}001", COMMUNITIES[1], west, "2020-01-01"
        )
        insert_grid(
            conn, "section", f"{COMMUNITIES[2][:12]}002", COMMUNITIES[1], east, "2020-01-01"
        )
    engine.dispose()
    yield url
    next(databases, None)


def test_grids_check_lists_planted_problems_and_fails(defective_family: str) -> None:
    env = {"CITYGRID_DATABASE_URL": defective_family}
    table = citygrid("grids", "check", "--parent", COMMUNITIES[1], env=env)
    assert table.returncode == 1 and "Traceback" not in table.stderr
    lines = table.stdout.splitlines()
    assert any("空隙" in line and "1.00 ㎡" in line for line in lines), table.stdout
    assert any("编码与上级不符" in line and f"{COMMUNITIES[2][:12]}002" in line for line in lines)
    assert "发现 2 个问题" in table.stdout

    report = json.loads(citygrid("grids", "check", "--json", env=env).stdout)
    assert report["counts"]["gap"] == 1 and report["counts"]["code_parent_mismatch"] == 1
    gap = next(f for f in report["problems"]["features"] if f["properties"]["kind"] == "gap")
    assert gap["properties"]["kind_label"] == "空隙" and gap["geometry"]["type"] == "Polygon"

    slivers = json.loads(
        citygrid("grids", "check", "--json", "--sliver-m2", "100000", env=env).stdout
    )
    assert slivers["counts"]["sliver"] == 2  # both 90,000 m² sections fall under the limit


def test_grids_check_of_an_unknown_parent_is_one_clear_sentence(defective_family: str) -> None:
    result = citygrid(
        "grids",
        "check",
        "--parent",
        "320681999999000",
        env={"CITYGRID_DATABASE_URL": defective_family},
    )
    assert_clear_failure(result, "320681999999000")


def test_users_commands_manage_accounts(defective_family: str) -> None:
    env = {"CITYGRID_DATABASE_URL": defective_family, "COLUMNS": "200"}  # rows unwrapped
    added = citygrid(
        "users", "add", "zhang.san", "--role", "inspector", "--grid", COMMUNITIES[1],
        "--password", "patrol-2026", "--display-name", "张三", "--county", "320681", env=env,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert_clear_failure(
        citygrid(
            "users", "add", "no-county", "--role", "leader", "--password", "Harbour-lights-9",
            env=env,
        ),
        "needs the counties",
    )  # fmt: skip
    assert_clear_failure(
        citygrid(
            "users", "add", "far-county", "--role", "leader", "--password", "Harbour-lights-9",
            "--county", "350404", env=env,
        ),
        "No county has the code(s) 350404",
    )  # fmt: skip
    prompted = subprocess.run(
        [CITYGRID, "users", "add", "li-si", "--role", "leader", "--county", "320681"],
        input="leader-pass-1\nleader-pass-1\n",
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
        check=False,
    )
    assert prompted.returncode == 0, prompted.stderr
    assert "leader-pass-1" not in prompted.stdout + prompted.stderr
    listed = citygrid("users", "list", env=env).stdout
    assert "zhang.san" in listed and "张三" in listed and COMMUNITIES[1] in listed
    assert "li-si" in listed and "领导" in listed
    unknown_unit = citygrid(
        "users", "add", "unit-a", "--role", "handler", "--unit", "城管一中队",
        "--password", "Harbour-lights-9", "--county", "320681", env=env,
    )  # fmt: skip
    assert_clear_failure(unknown_unit, "not a handling unit", "320681")
    assert citygrid("units", "add", "城管一中队", "--county", "320681", env=env).returncode == 0
    unit = citygrid(
        "users", "add", "unit-a", "--role", "handler", "--unit", "城管一中队",
        "--password", "Harbour-lights-9", "--county", "320681", env=env,
    )  # fmt: skip
    assert unit.returncode == 0, unit.stderr
    assert "城管一中队" in citygrid("users", "list", env=env).stdout
    assert_clear_failure(
        citygrid(
            "users", "add", "unit-b", "--role", "handler", "--password", "Harbour-lights-9", env=env
        ),
        "needs its unit",
    )
    assert citygrid("users", "set-role", "li-si", "--role", "planner", env=env).returncode == 0
    assert citygrid("users", "disable", "zhang.san", env=env).returncode == 0
    listed = citygrid("users", "list", env=env).stdout
    assert "网格规划员" in listed and "停用" in listed
    assert_clear_failure(
        citygrid(
            "users", "add", "x y", "--role", "leader", "--password", "Harbour-lights-9", env=env
        ),
        "not a valid user name",
    )
    assert_clear_failure(
        citygrid(
            "users", "add", "wang", "--role", "mayor", "--password", "Harbour-lights-9", env=env
        ),
        "Unknown role",
    )
    assert_clear_failure(
        citygrid("users", "add", "wang", "--role", "leader", "--password", "short", env=env),
        "at least 8",
    )
    for password, reason in (("password", "too common"), ("wang-2026-qd", "user name")):
        assert_clear_failure(
            citygrid("users", "add", "wang", "--role", "leader", "--password", password, env=env),
            reason,
        )
    assert_clear_failure(
        citygrid("users", "passwd", "li-si", "--password", "12345678", env=env), "too common"
    )
    engine = db.make_engine(defective_family)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT string_agg(password_hash, ' ') FROM users")).scalar()
    engine.dispose()
    assert "patrol-2026" not in stored and "leader-pass-1" not in stored


def test_import_command_checks_reports_and_writes(defective_family: str, tmp_path: Path) -> None:
    import numpy as np
    import pyogrio.raw
    import shapely

    x0, y0 = family_box(0, 0)
    lon, lat = TO_LONLAT.transform(x0 + 150, y0 + 150)
    path = tmp_path / "parks.geojson"
    square = shapely.Polygon(
        [(lon, lat), (lon + 0.0005, lat), (lon + 0.0005, lat + 0.0004), (lon, lat + 0.0004)]
    )
    pyogrio.raw.write(
        str(path),
        shapely.to_wkb([square, square]),
        [
            np.asarray(["北门停车场", "南门停车场"], dtype=object),
            np.asarray(["公共停车场", "错误类别"], dtype=object),
            np.asarray([40, 60], dtype=object),
            np.asarray(["已备案", "已备案"], dtype=object),
        ],
        ["名称", "类别", "泊位数", "备案状态"],
        driver="GeoJSON",
        crs="EPSG:4490",
        geometry_type="Polygon",
    )
    env = {"CITYGRID_DATABASE_URL": defective_family}
    refused = citygrid(
        "import", "parking_lots", str(path), "--errors-csv", str(tmp_path / "bad.csv"), env=env
    )
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "1 行有问题" in refused.stdout and "错误类别" in refused.stdout
    assert (
        (tmp_path / "bad.csv")
        .read_text(encoding="utf-8-sig")
        .splitlines()[1]
        .startswith("2,category")
    )
    path.write_text(
        path.read_text(encoding="utf-8").replace("错误类别", "临时停车场"), encoding="utf-8"
    )
    dry = citygrid("import", "parking_lots", str(path), "--dry-run", env=env)
    assert dry.returncode == 0 and "dry run" in dry.stderr
    done = citygrid("import", "parking_lots", str(path), env=env)
    assert done.returncode == 0 and "2 rows imported into parking_lots" in done.stderr
    engine = db.make_engine(defective_family)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT name, category, spaces FROM parking_lots ORDER BY name")
        ).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [
        ("北门停车场", "public", 40),
        ("南门停车场", "temporary", 60),
    ]
    out = tmp_path / "lots.zip"
    exported = citygrid("export", "parking_lots", str(out), "--encoding", "GBK", env=env)
    assert exported.returncode == 0 and "2 features of parking_lots" in exported.stderr
    with zipfile.ZipFile(out) as archive:
        assert "北门停车场".encode("gbk") in archive.read("lots.dbf")
    wrong = citygrid("export", "parking_lots", str(tmp_path / "lots.dwg"), env=env)
    assert wrong.returncode != 0 and "Traceback" not in wrong.stderr
    gk = tmp_path / "gk.zip"
    options = ("--encoding", "cp936", "--crs", "EPSG:4550", "--raw-codes")
    assert citygrid("export", "parking_lots", str(gk), *options, env=env).returncode == 0
    with zipfile.ZipFile(gk) as archive:
        assert "123E" in archive.read("gk.prj").decode()
        dbf = archive.read("gk.dbf")
        assert b"temporary" in dbf and "泊位数".encode("gbk") in dbf and dbf[29] == 0x4D
    again = citygrid(
        "import", "parking_lots", str(gk), "--mode", "upsert", "--encoding", "gbk", "--dry-run",
        env=env,
    )  # fmt: skip
    assert "matched by id: 0 new, 0 changed, 2 unchanged" in again.stderr, again.stderr
    twice = citygrid("import", "parking_lots", str(gk), env=env)
    assert twice.returncode == 1 and "2 行有问题" in twice.stdout


def test_units_commands_declare_and_list_units(defective_family: str) -> None:
    env = {"CITYGRID_DATABASE_URL": defective_family, "COLUMNS": "200"}  # rows unwrapped
    county = ("--county", "320681")
    added = citygrid("units", "add", "新设城管中队", *county, env=env)
    assert added.returncode == 0, added.stderr
    assert "320681" in added.stdout
    listed = citygrid("units", "list", env=env).stdout
    assert "测试单位" in listed and "网格责任单位" in listed
    assert "新设城管中队" in listed and "管理员登记" in listed and "320681" in listed
    assert "新设城管中队" in citygrid("units", "list", *county, env=env).stdout
    assert_clear_failure(
        citygrid("units", "add", "新设城管中队", *county, env=env), "already declared"
    )
    assert_clear_failure(citygrid("units", "add", "   ", *county, env=env), "printable characters")
    assert_clear_failure(
        citygrid("units", "add", "新设城管中队二", "--county", "350404", env=env),
        "no county 350404",
    )
    assert_clear_failure(citygrid("units", "list", "--county", "350404", env=env), "350404")
    assert citygrid("units", "add", "新设城管中队", env=env).returncode == 2  # --county is required
    engine = db.make_engine(defective_family)
    with engine.connect() as conn:
        declared = conn.execute(
            text("SELECT name, adcode, added_by FROM units WHERE added_by NOT LIKE 'grid %'")
        ).all()
    engine.dispose()
    assert [(name, adcode) for name, adcode, _ in declared] == [("新设城管中队", "320681")]
    assert declared[0][2].startswith("cli:")


def test_units_import_takes_a_spreadsheet_all_or_nothing(
    defective_family: str, tmp_path: Path
) -> None:
    env = {"CITYGRID_DATABASE_URL": defective_family, "COLUMNS": "200"}
    sheet = tmp_path / "单位.csv"
    sheet.write_text(
        "单位名称,统一社会信用代码,类型,联系人,联系电话\n"
        "启东市环卫处,91110000600037341L,主管部门,王五,0513-83000001\n"
        "启东市燃气公司,91440300708461136X,企业,,\n",
        encoding="gbk",
    )
    refused = citygrid("units", "import", str(sheet), "--county", "320681", env=env)
    assert refused.returncode == 1 and "校验码" in refused.stdout, refused.stdout
    assert "启东市环卫处" not in citygrid("units", "list", env=env).stdout
    sheet.write_text(
        sheet.read_text(encoding="gbk").replace("91440300708461136X", "91440300708461136T"),
        encoding="gbk",
    )
    done = citygrid("units", "import", str(sheet), "--county", "320681", env=env)
    assert done.returncode == 0 and "2 added" in done.stderr, done.stderr
    listed = citygrid("units", "list", "--county", "320681", env=env).stdout
    assert "91110000600037341L" in listed and "企业" in listed
