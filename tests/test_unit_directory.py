"""The directory of units: credit codes checked by their check digit, every field read only within
the reader's counties, admins adding and changing units (If-Match), grid writes and dispatches
refused outside it, spreadsheets imported all or nothing, and the migration adopting every unit.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio.raw
import pytest
import shapely
from fastapi.testclient import TestClient
from shapely.geometry import Point
from sqlalchemy import Connection, Engine, text

from api.app import create_app
from api.settings import DatabaseSettings
from layers.cases import unitimport, units
from layers.errors import InvalidFeature
from layers.store import db, migrate
from tests.accounts import ROLES, TEST_AUTH, bearer, ensure_account
from tests.counties import (
    DEMO,
    DEMO_CENTRE,
    DEMO_ZONE,
    SANYUAN,
    CountyRows,
    fill_county,
    two_counties,
)
from tests.databases import fresh_database

# Codes whose 18th character GB 32100-2015 gives (computed by hand from the weights 3^i mod 31).
VALID_CODES = ("91110000600037341L", "91440300708461136T", "91350100M000100Y43")
SCOPES = {"a": (DEMO,), "b": (SANYUAN,), "city": (DEMO, SANYUAN)}
GRID_UNITS = {DEMO: "启东测试中队", SANYUAN: "三元区测试中队"}
WATER = {DEMO: "启东市水务局", SANYUAN: "三元区水利局"}
CREDIT = {DEMO: VALID_CODES[0], SANYUAN: VALID_CODES[1]}
NAMES = ["admin", *(f"{r}-{s}" for r in ROLES for s in SCOPES)]


@dataclass(frozen=True)
class World:
    """The database, the rows of each county and the counties each account holds."""

    engine: Engine
    demo: CountyRows
    second: CountyRows
    held: dict[str, tuple[str, ...] | None]


@pytest.fixture(scope="module")
def world(pg_server: Any) -> Iterator[tuple[World, str]]:
    databases = fresh_database(pg_server, "unitdir")
    url = next(databases)
    engine = db.make_engine(pg_server.as_owner(url))
    with engine.begin() as conn:
        demo, second = two_counties(conn)
        for adcode, name in WATER.items():
            entry = units.NewUnit(name, "department", CREDIT[adcode], "张三", "0513-83120000")
            units.add(conn, entry, adcode, "tests")
    ensure_account(engine, "admin", "admin")
    held: dict[str, tuple[str, ...] | None] = {"admin": None}
    rows = {DEMO: demo, SANYUAN: second}
    for role in ROLES:
        for scope, adcodes in SCOPES.items():
            name = f"{role}-{scope}"
            held[name] = adcodes
            grids = tuple(rows[a].communities[0] for a in adcodes) if role == "inspector" else ()
            unit = GRID_UNITS[adcodes[-1]] if role == "handler" else None
            ensure_account(engine, name, role, grids, unit, adcodes)
    yield World(engine, demo, second, held), url
    engine.dispose()
    next(databases, None)


@pytest.fixture(scope="module")
def client(world: tuple[World, str]) -> Iterator[TestClient]:
    app = create_app(DatabaseSettings(database_url=world[1]), auth_settings=TEST_AUTH)
    with TestClient(app) as c:
        yield c


@pytest.fixture
def w(world: tuple[World, str]) -> World:
    return world[0]


def traces(engine: Engine) -> tuple[Any, ...]:
    """The units, grids, cases and audit log: what a refusal leaves as it was."""
    with engine.connect() as conn:
        return tuple(
            conn.execute(
                text(f"SELECT md5(coalesce(string_agg(to_jsonb(t)::text, '' ORDER BY t::text), ''))"
                     f" FROM {table} AS t")
            ).scalar_one()
            for table in ("units", "grids", "cases", "audit_log")
        )  # fmt: skip


def _unit_id(engine: Engine, adcode: str, name: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT id FROM units WHERE adcode = :a AND name = :n"),
                {"a": adcode, "n": name},
            ).scalar_one()
        )


# --- the credit code --------------------------------------------------------------------------


@pytest.mark.parametrize("code", VALID_CODES)
def test_a_credit_codes_check_digit_is_computed_and_checked(code: str) -> None:
    assert units.credit_check_digit(code[:17]) == code[17]
    assert units.check_credit_code(f" {code.lower()} ") == code
    for wrong in {*units.CREDIT_CHARS} - {code[17]}:
        with pytest.raises(InvalidFeature) as refused:
            units.check_credit_code(code[:17] + wrong)
        assert refused.value.code == "bad_credit_code_check"
        assert code[17] in refused.value.message_zh


@pytest.mark.parametrize(
    "code", ["91110000600037341", "9111000060003734IL", "911100006000373410X", "91AB0000600037341L"]
)
def test_a_malformed_credit_code_is_refused(code: str) -> None:
    with pytest.raises(InvalidFeature) as refused:
        units.check_credit_code(code)
    assert refused.value.code == "bad_credit_code"


# --- reads ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_every_role_reads_only_its_counties_units(client: TestClient, w: World, name: str) -> None:
    held = w.held[name] or (DEMO, SANYUAN)
    answer = client.get("/units", headers=bearer(name))
    assert answer.status_code == 200, answer.text
    listed = {(u["adcode"], u["name"]): u for u in answer.json()}
    assert {a for a, _ in listed} == set(held)
    for adcode in held:
        water = listed[(adcode, WATER[adcode])]
        assert water["credit_code"] == CREDIT[adcode] and water["type"] == "department"
        assert water["contact_person"] == "张三" and water["active"] is True
        assert water["counties"] == [adcode] and water["sources"] == ["declared"]
        grid = listed[(adcode, GRID_UNITS[adcode])]
        assert grid["sources"] == ["grid"] and grid["type"] in ("street", "community")
    for other in {DEMO, SANYUAN} - set(held):
        assert WATER[other] not in {n for _, n in listed}
        found = client.get(
            f"/units/{_unit_id(w.engine, other, WATER[other])}", headers=bearer(name)
        )
        assert found.status_code == 404 and found.json()["code"] == "unit_not_found"
        only = client.get("/units", params={"county": other}, headers=bearer(name))
        assert only.status_code == 200 and only.json() == []
    typed = client.get("/units", params={"type": "department"}, headers=bearer(name)).json()
    assert typed and {u["type"] for u in typed} == {"department"}


# --- adding and changing ----------------------------------------------------------------------


def test_an_admin_adds_a_unit_with_every_field_and_bad_ones_change_nothing(
    client: TestClient, w: World
) -> None:
    good = {
        "name": "三元区环卫有限公司",
        "adcode": SANYUAN,
        "type": "enterprise",
        "credit_code": VALID_CODES[2],
        "contact_person": "李四",
        "contact_phone": "0598-8230000",
    }
    before = traces(w.engine)
    for change, status, code in (
        ({"credit_code": VALID_CODES[2][:17] + "0"}, 400, "bad_credit_code_check"),
        ({"credit_code": "ABC"}, 400, "bad_credit_code"),
        ({"credit_code": CREDIT[SANYUAN]}, 409, "credit_code_taken"),
        ({"name": WATER[SANYUAN]}, 409, "unit_exists"),
        ({"contact_phone": "打电话"}, 400, "bad_unit_contact"),
    ):
        answer = client.post("/units", json=good | change, headers=bearer("admin-b"))
        assert answer.status_code == status and answer.json()["code"] == code, answer.text
        assert answer.json()["message"] and answer.json()["message_en"]
    assert client.post("/units", json=good, headers=bearer("admin-a")).status_code == 403
    assert client.post("/units", json=good, headers=bearer("planner-b")).status_code == 403
    assert traces(w.engine) == before
    added = client.post("/units", json=good, headers=bearer("admin-b"))
    assert added.status_code == 201, added.text
    body = added.json()
    assert body["type_label"] == "企业" and body["credit_code"] == VALID_CODES[2]
    assert body["contact_phone"] == "0598-8230000" and body["counties"] == [SANYUAN]


def test_a_unit_changes_with_if_match_and_an_inactive_one_gets_no_case(
    client: TestClient, w: World
) -> None:
    unit_id = _unit_id(w.engine, DEMO, WATER[DEMO])
    read = client.get(f"/units/{unit_id}", headers=bearer("admin-a"))
    etag = read.headers["ETag"]
    url = f"/units/{unit_id}"
    before = traces(w.engine)
    assert client.patch(url, json={"active": False}, headers=bearer("admin-b")).status_code == 404
    assert client.patch(url, json={"active": False}, headers=bearer("planner-a")).status_code == 403
    bad = client.patch(url, json={"name": "改名"}, headers=bearer("admin-a"))
    assert bad.status_code == 400
    wrong = client.patch(
        url, json={"credit_code": CREDIT[DEMO][:17] + "X"}, headers=bearer("admin-a")
    )
    assert wrong.status_code == 400 and wrong.json()["code"] == "bad_credit_code_check"
    assert traces(w.engine) == before
    changed = client.patch(
        url, json={"contact_phone": "13800000000"}, headers=bearer("admin-a") | {"If-Match": etag}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["contact_phone"] == "13800000000" and changed.headers["ETag"] != etag
    stale = client.patch(
        url, json={"active": False}, headers=bearer("admin-a") | {"If-Match": etag}
    )
    assert stale.status_code == 412 and stale.json()["code"] == "precondition_failed"
    stopped = client.patch(url, json={"active": False}, headers=bearer("admin-a"))
    assert stopped.status_code == 200 and stopped.json()["active"] is False
    case_id = _registered_case(w.engine, w.demo)
    before = traces(w.engine)
    answer = client.post(
        f"/cases/{case_id}/transitions",
        json={"action": "dispatch", "unit": WATER[DEMO]},
        headers=bearer("dispatcher-a"),
    )
    assert answer.status_code == 409 and answer.json()["code"] == "unit_inactive", answer.text
    assert traces(w.engine) == before
    assert client.patch(url, json={"active": True}, headers=bearer("admin")).status_code == 200
    answer = client.post(
        f"/cases/{case_id}/transitions",
        json={"action": "dispatch", "unit": WATER[DEMO]},
        headers=bearer("dispatcher-a"),
    )
    assert answer.status_code == 200, answer.text
    with w.engine.connect() as conn:
        audit = conn.execute(
            text("SELECT count(*) FROM audit_log WHERE layer = 'units' AND feature_id = :id"),
            {"id": unit_id},
        ).scalar_one()
    assert audit == 4  # created, phone, stopped, restarted


def _registered_case(engine: Engine, rows: CountyRows) -> int:
    lon, lat = rows.lonlat(-1125, 500)
    with engine.begin() as conn:
        return int(
            conn.execute(
                text("""
                INSERT INTO cases (adcode, geom, category_code, source, status, reported_at,
                                   registered_at, grid_code)
                VALUES (:adcode, ST_GeomFromWKB(:wkb, 4490), 'E0101', 'inspector', 'registered',
                        now() - interval '1 hour', now() - interval '30 minutes', :grid)
                RETURNING id
            """),
                {
                    "adcode": rows.adcode,
                    "wkb": shapely.to_wkb(Point(lon, lat)),
                    "grid": rows.sections[0],
                },
            ).scalar_one()
        )


# --- grids name directory units ---------------------------------------------------------------


def test_a_grids_responsible_unit_is_one_of_its_countys_directory(
    client: TestClient, w: World
) -> None:
    code = w.demo.communities[1]
    url = f"/grids/{code}/people"
    before = traces(w.engine)
    for unit, status, error in (
        ("没有登记的社区工作站", 400, "unknown_unit"),
        (WATER[SANYUAN], 409, "unit_not_in_county"),
    ):
        answer = client.put(url, json={"responsible_unit": unit}, headers=bearer("planner-a"))
        assert answer.status_code == status and answer.json()["code"] == error, answer.text
    assert traces(w.engine) == before
    answer = client.put(url, json={"responsible_unit": WATER[DEMO]}, headers=bearer("planner-a"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["responsible_unit"] == WATER[DEMO]


def test_a_grid_written_past_the_application_adopts_its_unit(w: World) -> None:
    with w.engine.connect() as conn:  # left without commit
        conn.execute(
            text("UPDATE grids SET responsible_unit = '新设街道办事处' WHERE code = :c"),
            {"c": w.second.street},
        )
        adopted = conn.execute(
            text("SELECT type FROM units WHERE adcode = :a AND name = '新设街道办事处'"),
            {"a": SANYUAN},
        ).scalar_one()
        assert adopted == "street"
        assert units.counties_of(conn, "新设街道办事处") == [SANYUAN]


# --- importing a spreadsheet ------------------------------------------------------------------

HEADINGS = ("单位名称", "统一社会信用代码", "类型", "联系人", "联系电话")


def _xlsx(path: Path, rows: list[tuple[str, ...]]) -> Path:
    columns = [np.array([row[k] for row in rows], dtype=object) for k in range(len(HEADINGS))]
    pyogrio.raw.write(str(path), None, columns, list(HEADINGS), driver="XLSX")
    return path


def test_an_import_with_bad_rows_is_refused_row_by_row(w: World, tmp_path: Path) -> None:
    bad = _xlsx(
        tmp_path / "units.xlsx",
        [
            ("启东市园林局", "", "主管部门", "王五", "0513-1"),
            ("启东市燃气公司", VALID_CODES[2][:17] + "1", "企业", "", ""),  # wrong check digit
            ("启东市园林局", "", "主管部门", "", ""),  # the same name again
            ("", "", "企业", "", ""),
            ("启东市路灯所", "", "部门", "", ""),  # no such type
            (GRID_UNITS[DEMO], CREDIT[DEMO], "街道", "", ""),  # the water bureau's code
        ],
    )
    before = traces(w.engine)
    with w.engine.begin() as conn, pytest.raises(unitimport.UnitsRefused) as refused:
        unitimport.import_units(conn, bad, DEMO, "tests")
    found = {(e.row, e.code) for e in refused.value.report.errors}
    assert found == {
        (2, "bad_credit_code_check"),
        (3, "duplicate_in_file"),
        (4, "bad_unit_name"),
        (5, "bad_unit_type"),
        (6, "credit_code_taken"),
    }
    assert traces(w.engine) == before


def test_an_import_adds_and_updates_by_name_or_credit_code(w: World, tmp_path: Path) -> None:
    csv = tmp_path / "units.csv"
    csv.write_text(
        ",".join(HEADINGS)
        + "\n启东市园林局,,主管部门,王五,0513-83000001\n"
        + f"启东市燃气有限公司,{VALID_CODES[2]},企业,,\n"
        + f"改过名的水务局,{CREDIT[DEMO]},,赵六,\n",  # matched by its credit code
        encoding="utf-8",
    )
    with w.engine.connect() as conn:  # left without commit: the module's other tests see none
        dry = unitimport.import_units(conn, csv, DEMO, "tests", dry_run=True)
        assert dry.added == ["启东市园林局", "启东市燃气有限公司"] and dry.changed == [WATER[DEMO]]
        assert units.find(conn, "启东市园林局", DEMO) is None
        done = unitimport.import_units(conn, csv, DEMO, "tests")
        assert done.document()["added"] == dry.added and done.changed == [WATER[DEMO]]
        gas = units.find(conn, VALID_CODES[2], DEMO)
        assert gas is not None and gas.name == "启东市燃气有限公司" and gas.type == "enterprise"
        water = units.require(conn, CREDIT[DEMO], DEMO)
        assert water.name == WATER[DEMO] and water.contact_person == "赵六"
        assert water.type == "department"  # an empty cell keeps the type
        again = unitimport.import_units(conn, csv, DEMO, "tests")
        assert again.added == [] and again.changed == [] and again.unchanged == 3


# --- the migration ----------------------------------------------------------------------------


def _units(conn: Connection) -> dict[tuple[str, str], str]:
    rows = conn.execute(text("SELECT adcode, name, type FROM units")).all()
    return {(a, n): t for a, n, t in rows}


def test_the_migration_adopts_every_grids_unit_and_goes_down_again(scratch_owner: Engine) -> None:
    migrate.downgrade(scratch_owner, "0018")
    with scratch_owner.begin() as conn:
        rows = fill_county(conn, DEMO, DEMO_CENTRE, DEMO_ZONE, "汇龙镇城管中队")
        conn.execute(
            text("UPDATE grids SET responsible_unit = '汇龙镇人民政府' WHERE code = :c"),
            {"c": rows.street},
        )
        conn.execute(
            text("UPDATE grids SET responsible_unit = '南城社区居委会' WHERE code = :c"),
            {"c": rows.communities[0]},
        )
        conn.execute(
            text("INSERT INTO units (adcode, name, added_by) VALUES (:a, '环卫所', 'cli:root')"),
            {"a": DEMO},
        )
        named = set(
            conn.execute(
                text("SELECT DISTINCT responsible_unit FROM grids WHERE valid_to IS NULL")
            ).scalars()
        )
    migrate.upgrade(scratch_owner)
    assert migrate.schema_drift(scratch_owner) == []
    with scratch_owner.connect() as conn:
        adopted = _units(conn)
        assert {n for _, n in adopted} == named | {"环卫所"}
        assert adopted[(DEMO, "汇龙镇人民政府")] == "street"
        assert adopted[(DEMO, "南城社区居委会")] == "community"
        assert adopted[(DEMO, "环卫所")] == "department"
        audited = conn.execute(
            text("SELECT after ->> 'name' FROM audit_log WHERE actor = 'migration 0019'")
        ).scalars()
        assert set(audited) == named
        for name in named:
            assert units.is_known(conn, name, DEMO)
    migrate.downgrade(scratch_owner, "0018")
    with scratch_owner.connect() as conn:
        columns = conn.execute(
            text("SELECT column_name FROM information_schema.columns WHERE table_name = 'units'")
        ).scalars()
        assert set(columns) == {"adcode", "name", "added_by", "added_at"}
        assert {n for _, n in conn.execute(text("SELECT adcode, name FROM units"))} == named | {
            "环卫所"
        }
    migrate.upgrade(scratch_owner)
