"""Handling units belong to a county: listed by the viewer's counties, declared only in a county
the admin holds, dispatched to only from their own county's cases, held by handler accounts of
that county; and the migration placing the units declared before counties existed.

The demo county (320681) and 三元区 (350404) each hold grids whose responsible unit is the
county's own (启东测试中队, 三元区测试中队), a unit declared in each, and one name declared in both.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import shapely
from fastapi.testclient import TestClient
from shapely.geometry import Point
from sqlalchemy import Connection, Engine, text

from api.app import create_app
from api.settings import DatabaseSettings
from layers.accounts import users
from layers.cases import units
from layers.errors import AccountError
from layers.places import counties
from layers.store import db, migrate
from tests.accounts import ROLES, TEST_AUTH, bearer, ensure_account
from tests.counties import (
    DEMO,
    DEMO_CENTRE,
    DEMO_ZONE,
    SANYUAN,
    SANYUAN_CENTRE,
    SANYUAN_ZONE,
    CountyRows,
    fill_county,
    sanyuan,
    two_counties,
)
from tests.databases import PgServer, fresh_database

SCOPES = {"a": (DEMO,), "b": (SANYUAN,), "city": (DEMO, SANYUAN)}
GRID_UNITS = {DEMO: "启东测试中队", SANYUAN: "三元区测试中队"}
DECLARED = {DEMO: "启东新设中队", SANYUAN: "三元区新设中队"}
SHARED = "两地同名中队"  # declared in both counties: two units
NAMES = ["admin", *(f"{r}-{s}" for r in ROLES for s in SCOPES)]


@dataclass(frozen=True)
class World:
    """The database, the rows of each county and the counties each account holds."""

    url: str
    engine: Engine
    demo: CountyRows
    second: CountyRows
    held: dict[str, tuple[str, ...] | None]


@pytest.fixture(scope="module")
def world(pg_server: Any) -> Iterator[World]:
    databases = fresh_database(pg_server, "units")
    url = next(databases)
    engine = db.make_engine(pg_server.as_owner(url))
    with engine.begin() as conn:
        demo, second = two_counties(conn)
        for adcode, name in DECLARED.items():
            units.add(conn, name, adcode, "tests")
            units.add(conn, SHARED, adcode, "tests")
    ensure_account(engine, "admin", "admin")  # the deployment's admin: every county
    held: dict[str, tuple[str, ...] | None] = {"admin": None}
    rows = {DEMO: demo, SANYUAN: second}
    for role in ROLES:
        for scope, adcodes in SCOPES.items():
            name = f"{role}-{scope}"
            held[name] = adcodes
            grids = tuple(rows[a].communities[0] for a in adcodes) if role == "inspector" else ()
            unit = GRID_UNITS[adcodes[-1]] if role == "handler" else None
            ensure_account(engine, name, role, grids, unit, adcodes)
    yield World(url, engine, demo, second, held)
    engine.dispose()
    next(databases, None)


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    app = create_app(DatabaseSettings(database_url=world.url), auth_settings=TEST_AUTH)
    with TestClient(app) as c:
        yield c


def traces(engine: Engine) -> tuple[Any, ...]:
    """The units, the cases, their events and the audit log: what a refusal leaves as it was."""
    with engine.connect() as conn:
        return tuple(
            conn.execute(
                text(f"SELECT md5(coalesce(string_agg(to_jsonb(t)::text, '' ORDER BY t::text), ''))"
                     f" FROM {table} AS t")
            ).scalar_one()
            for table in ("units", "cases", "case_events", "audit_log", "users")
        )  # fmt: skip


# --- listing ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_units_are_listed_only_for_the_viewers_counties(
    client: TestClient, world: World, name: str
) -> None:
    held = world.held[name]
    answer = client.get("/units", headers=bearer(name))
    assert answer.status_code == 200, answer.text
    listed = {(u["adcode"], u["name"]): u["sources"] for u in answer.json()}
    with world.engine.connect() as conn:
        expected = set(
            conn.execute(
                text("""
                SELECT adcode, responsible_unit FROM grids
                WHERE valid_to IS NULL AND responsible_unit IS NOT NULL
                  AND (CAST(:held AS text[]) IS NULL OR adcode = ANY(:held))
                UNION
                SELECT adcode, name FROM units
                WHERE CAST(:held AS text[]) IS NULL OR adcode = ANY(:held)
            """),
                {"held": list(held) if held is not None else None},
            ).all()
        )
    assert set(listed) == {(a, n) for a, n in expected}
    for adcode in held or (DEMO, SANYUAN):  # each county's own, and the shared name once in each
        assert listed[(adcode, GRID_UNITS[adcode])] == ["grid"]
        assert listed[(adcode, SHARED)] == ["declared"]
    others = {DEMO, SANYUAN} - set(held or (DEMO, SANYUAN))
    assert not any(adcode in others for adcode, _ in listed)
    names = {u["adcode"]: u["county"] for u in answer.json()}
    assert names.get(SANYUAN, "三元区") == "三元区"


# --- declaring --------------------------------------------------------------------------------


def test_a_unit_is_declared_only_in_a_county_the_admin_holds(
    client: TestClient, world: World
) -> None:
    before = traces(world.engine)
    refusals = (
        ("admin-a", SANYUAN, 403, "outside_county"),
        ("admin-a", "999999", 403, "outside_county"),  # an unknown county is outside too
        ("admin", "999999", 404, "unknown_county"),
        ("dispatcher-city", DEMO, 403, "forbidden"),
        ("planner-a", DEMO, 403, "forbidden"),
        ("admin-a", DEMO, 409, "unit_exists"),
    )
    for account, adcode, status, code in refusals:
        name = DECLARED[DEMO] if code == "unit_exists" else "新的中队"
        answer = client.post(
            "/units", json={"name": name, "adcode": adcode}, headers=bearer(account)
        )
        assert answer.status_code == status and answer.json()["code"] == code, (account, adcode)
        assert answer.json()["message"] and answer.json()["message_en"]
    assert traces(world.engine) == before
    added = client.post(
        "/units", json={"name": "新的中队", "adcode": SANYUAN}, headers=bearer("admin-b")
    )
    assert added.status_code == 201, added.text
    body = added.json()
    assert body == {
        "id": body["id"],
        "name": "新的中队",
        "adcode": SANYUAN,
        "county": "三元区",
        "credit_code": None,
        "type": "department",
        "type_label": "主管部门",
        "contact_person": None,
        "contact_phone": None,
        "active": True,
        "counties": [SANYUAN],
        "sources": ["declared"],
    }
    listed = {
        (u["adcode"], u["name"]) for u in client.get("/units", headers=bearer("leader-a")).json()
    }
    assert (SANYUAN, "新的中队") not in listed and (DEMO, "新的中队") not in listed
    with world.engine.connect() as conn:
        audit = conn.execute(
            text(
                "SELECT actor, adcode FROM audit_log WHERE layer = 'units' ORDER BY id DESC LIMIT 1"
            )
        ).one()
    assert tuple(audit) == ("admin-b", SANYUAN)


# --- dispatching ------------------------------------------------------------------------------


def _registered_case(conn: Connection, rows: CountyRows) -> int:
    """A registered case in the county's west section, with no unit yet."""
    lon, lat = rows.lonlat(-1125, 500)
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


@pytest.mark.parametrize("dispatcher", ["dispatcher-city", "admin"])
def test_a_case_is_dispatched_only_to_a_unit_of_its_own_county(
    client: TestClient, world: World, dispatcher: str
) -> None:
    with world.engine.begin() as conn:
        cases = {
            DEMO: _registered_case(conn, world.demo),
            SANYUAN: _registered_case(conn, world.second),
        }
    for adcode, case_id in cases.items():
        other = SANYUAN if adcode == DEMO else DEMO
        before = traces(world.engine)
        for unit in (GRID_UNITS[other], DECLARED[other]):
            answer = client.post(
                f"/cases/{case_id}/transitions",
                json={"action": "dispatch", "unit": unit},
                headers=bearer(dispatcher),
            )
            assert answer.status_code == 409, answer.text
            body = answer.json()
            assert body["code"] == "unit_not_in_county" and adcode in body["message"]
            assert "own county" in body["message_en"]
        assert traces(world.engine) == before
        for unit in (GRID_UNITS[adcode], DECLARED[adcode], SHARED):
            answer = client.post(
                f"/cases/{case_id}/transitions",
                json={"action": "dispatch", "unit": unit},
                headers=bearer(dispatcher),
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["unit"] == unit
            with world.engine.begin() as conn:
                conn.execute(
                    text("UPDATE cases SET status = 'registered', unit = NULL WHERE id = :id"),
                    {"id": case_id},
                )


@pytest.mark.parametrize("editor", ["admin-city", "admin"])
def test_a_cases_unit_set_through_the_items_api_is_a_unit_of_its_county(
    client: TestClient, world: World, editor: str
) -> None:
    with world.engine.begin() as conn:
        case_id = _registered_case(conn, world.demo)
    url = f"/collections/cases/items/{case_id}"
    before = traces(world.engine)
    for unit, status, code in (
        (GRID_UNITS[SANYUAN], 409, "unit_not_in_county"),
        (DECLARED[SANYUAN], 409, "unit_not_in_county"),
        ("哪里都没有的中队", 400, "unknown_unit"),
    ):
        answer = client.patch(url, json={"properties": {"unit": unit}}, headers=bearer(editor))
        assert answer.status_code == status, answer.text
        assert answer.json()["code"] == code
    assert traces(world.engine) == before
    created = client.post(
        "/collections/cases/items",
        json={
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": list(world.demo.lonlat(-1125, 400))},
            "properties": {
                "category_code": "E0101",
                "source": "inspector",
                "status": "registered",
                "reported_at": "2026-11-30T09:00:00+08:00",
                "unit": DECLARED[SANYUAN],
            },
        },
        headers=bearer(editor),
    )
    assert created.status_code == 409, created.text
    assert created.json()["code"] == "unit_not_in_county"
    assert traces(world.engine) == before
    answer = client.patch(
        url, json={"properties": {"unit": DECLARED[DEMO]}}, headers=bearer(editor)
    )
    assert answer.status_code == 204, answer.text
    with world.engine.connect() as conn:
        stored = conn.execute(text("SELECT unit FROM cases WHERE id = :id"), {"id": case_id})
        assert stored.scalar_one() == DECLARED[DEMO]


def test_a_unit_nowhere_is_still_unknown(client: TestClient, world: World) -> None:
    with world.engine.begin() as conn:
        case_id = _registered_case(conn, world.second)
    before = traces(world.engine)
    answer = client.post(
        f"/cases/{case_id}/transitions",
        json={"action": "dispatch", "unit": "哪里都没有的中队"},
        headers=bearer("dispatcher-b"),
    )
    assert answer.status_code == 400 and answer.json()["code"] == "unknown_unit"
    assert traces(world.engine) == before


def test_a_dispatcher_of_one_county_does_not_see_the_other_countys_case(
    client: TestClient, world: World
) -> None:
    with world.engine.begin() as conn:
        case_id = _registered_case(conn, world.demo)
    answer = client.post(
        f"/cases/{case_id}/transitions",
        json={"action": "dispatch", "unit": GRID_UNITS[SANYUAN]},
        headers=bearer("dispatcher-b"),
    )
    assert answer.status_code == 404


# --- handler accounts -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("unit", "held", "accepted"),
    [
        (GRID_UNITS[DEMO], (SANYUAN,), False),
        (DECLARED[DEMO], (SANYUAN,), False),
        ("哪里都没有的中队", (DEMO,), False),
        (GRID_UNITS[DEMO], (DEMO,), True),
        (DECLARED[SANYUAN], (SANYUAN,), True),
        (DECLARED[SANYUAN], (DEMO, SANYUAN), True),  # a city account: a unit of one of them
    ],
)
def test_a_handler_accounts_unit_is_a_unit_of_its_counties(
    world: World, unit: str, held: tuple[str, ...], accepted: bool
) -> None:
    username = f"unit-{abs(hash((unit, held))) % 10**8}"
    before = traces(world.engine)
    with world.engine.begin() as conn:
        if accepted:
            account = users.add(
                conn, username, "handler", "x", "tests", unit=unit, counties=list(held)
            )
            assert account.unit == unit and account.counties == tuple(sorted(held))
            return
        with pytest.raises(AccountError) as refused:
            users.add(conn, username, "handler", "x", "tests", unit=unit, counties=list(held))
    assert refused.value.code == "unit_not_in_county"
    assert unit in refused.value.message_zh and held[0] in refused.value.message_en
    assert traces(world.engine) == before


def test_a_role_change_to_handler_checks_the_unit_too(world: World) -> None:
    before = traces(world.engine)
    with world.engine.begin() as conn, pytest.raises(AccountError) as refused:
        users.set_role(conn, "leader-b", "handler", "tests", GRID_UNITS[DEMO])
    assert refused.value.code == "unit_not_in_county"
    assert traces(world.engine) == before


# --- the migration ----------------------------------------------------------------------------


def _declare_before_counties(conn: Connection, *names: str) -> None:
    for name in names:
        conn.execute(text("INSERT INTO units (name, added_by) VALUES (:n, 'before')"), {"n": name})


def _placed(conn: Connection) -> set[tuple[str, str, str]]:
    rows = conn.execute(text("SELECT adcode, name, added_by FROM units")).all()
    return {(a, n, b) for a, n, b in rows}


def test_the_migration_places_units_by_grids_cases_accounts_and_audits_the_rest(
    scratch_owner: Engine,
) -> None:
    migrate.downgrade(scratch_owner, "0016")
    with scratch_owner.begin() as conn:
        demo = fill_county(conn, DEMO, DEMO_CENTRE, DEMO_ZONE, "启东测试中队")
        second = fill_county(
            conn, SANYUAN, SANYUAN_CENTRE, SANYUAN_ZONE, "三元区测试中队", county=sanyuan()
        )
        conn.execute(  # a name both counties' streets give
            text("UPDATE grids SET responsible_unit = '同名中队' WHERE code = ANY(:c)"),
            {"c": [demo.street, second.street]},
        )
        conn.execute(  # a grid unit of 启东 also named by a 三元区 case: the grids decide
            text("UPDATE cases SET unit = '启东测试中队' WHERE id = :id"),
            {"id": second.ids["cases"][2]},
        )
        conn.execute(
            text("UPDATE cases SET unit = '案件中队' WHERE id = :id"),
            {"id": second.ids["cases"][0]},
        )
        conn.execute(
            text("""
            INSERT INTO users (username, role, password_hash, unit)
            VALUES ('old-unit', 'handler', 'x', '账号中队')
        """)
        )
        conn.execute(
            text("INSERT INTO user_counties (username, adcode) VALUES ('old-unit', :a)"),
            {"a": SANYUAN},
        )
        _declare_before_counties(
            conn, "同名中队", "启东测试中队", "案件中队", "账号中队", "无处中队"
        )
    migrate.upgrade(scratch_owner, "0017")
    with scratch_owner.connect() as conn:
        assert _placed(conn) == {
            (DEMO, "同名中队", "before"),
            (SANYUAN, "同名中队", "before"),
            (DEMO, "启东测试中队", "before"),
            (SANYUAN, "案件中队", "before"),
            (SANYUAN, "账号中队", "before"),
        }
        audit = conn.execute(
            text("""
            SELECT actor, action, before ->> 'name' FROM audit_log WHERE layer = 'units'
        """)
        ).all()
        assert [tuple(a) for a in audit] == [("migration 0017", "delete", "无处中队")]
    # down again: one row per name, as before counties
    migrate.downgrade(scratch_owner, "0016")
    with scratch_owner.connect() as conn:
        names = conn.execute(text("SELECT name FROM units ORDER BY name")).scalars().all()
    assert sorted(names) == sorted(["同名中队", "启东测试中队", "案件中队", "账号中队"])
    migrate.upgrade(scratch_owner)
    assert migrate.schema_drift(scratch_owner) == []
    with scratch_owner.connect() as conn:
        assert units.counties_of(conn, "案件中队") == [SANYUAN]


def test_the_migration_gives_the_one_stored_county_the_units_nothing_names(
    scratch_owner: Engine,
) -> None:
    migrate.downgrade(scratch_owner, "0016")
    with scratch_owner.begin() as conn:
        assert [c.adcode for c in counties.all_counties(conn)] == [DEMO]
        _declare_before_counties(conn, "无处中队")
    migrate.upgrade(scratch_owner, "0017")
    with scratch_owner.connect() as conn:
        assert _placed(conn) == {(DEMO, "无处中队", "before")}
        assert conn.execute(text("SELECT count(*) FROM audit_log")).scalar_one() == 0


def test_the_migration_keeps_nothing_when_no_county_is_stored(
    pg_server: PgServer, empty_url: str
) -> None:
    engine = db.make_engine(pg_server.as_owner(empty_url))
    try:
        migrate.downgrade(engine, "0016")
        with engine.begin() as conn:
            _declare_before_counties(conn, "无处中队")
        migrate.upgrade(engine)
        with engine.connect() as conn:
            assert _placed(conn) == set()
            left = (
                conn.execute(
                    text("SELECT before ->> 'name' FROM audit_log WHERE actor = 'migration 0017'")
                )
                .scalars()
                .all()
            )
        assert left == ["无处中队"]
    finally:
        engine.dispose()
