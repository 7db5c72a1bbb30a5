"""Business rules the server answers, not the pages: the overdue cases (counted without a cap),
each grid's indicators joined to the choropleth, and whether a work order was rectified on time.

Two counties in one deployment (the demo's 320681 and 三元区 350404), every role holding one, the
other or both; what each account gets is compared with SQL written here."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, text

from api.app import create_app
from api.settings import DatabaseSettings
from layers.cases.codes import seed_case_categories
from layers.store import db
from tests.accounts import TEST_AUTH, bearer, ensure_account
from tests.counties import DEMO, SANYUAN, Account, CountyRows, readable, two_counties

ROLES = ("admin", "planner", "leader", "inspector", "dispatcher", "handler")
SCOPES = {"a": (DEMO,), "b": (SANYUAN,), "city": (DEMO, SANYUAN)}
UNITS = {DEMO: "启东测试中队", SANYUAN: "三元区测试中队"}
NAMES = ["admin", *(f"{r}-{s}" for r in ROLES for s in SCOPES)]
PERIOD = {"from": "2026-03-01", "to": "2026-03-31"}
MEASURES = ("registered", "closed", "due", "closed_rate", "on_time_rate", "overdue")


@dataclass(frozen=True)
class World:
    """The database, its two counties' rows and the accounts."""

    url: str
    engine: Engine
    rows: dict[str, CountyRows]
    accounts: dict[str, Account]


@pytest.fixture(scope="module")
def world(pg_server: Any) -> Iterator[World]:
    from tests.databases import fresh_database

    databases = fresh_database(pg_server, "rules")
    url = next(databases)
    engine = db.make_engine(pg_server.as_owner(url))
    with engine.begin() as conn:
        seed_case_categories(conn)
        demo, second = two_counties(conn)
    rows = {DEMO: demo, SANYUAN: second}
    accounts = {"admin": Account("admin", None)}
    for role in ROLES:
        for scope, held in SCOPES.items():
            grids = tuple(rows[c].communities[0] for c in held) if role == "inspector" else ()
            unit = UNITS[held[-1]] if role == "handler" else None
            accounts[f"{role}-{scope}"] = Account(role, held, grids, unit)
    for name, account in accounts.items():
        ensure_account(
            engine, name, account.role, account.grids, account.unit, account.counties or ()
        )
    yield World(url, engine, rows, accounts)
    engine.dispose()
    next(databases, None)


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    app = create_app(DatabaseSettings(database_url=world.url), auth_settings=TEST_AUTH)
    with TestClient(app, follow_redirects=False) as c:
        yield c


OVERDUE = "t.status NOT IN ('closed', 'rejected') AND t.deadline < now()"


@pytest.mark.parametrize("name", NAMES)
def test_the_overdue_cases_are_counted_by_the_server_for_what_the_account_reads(
    client: TestClient, world: World, name: str
) -> None:
    account = world.accounts[name]
    with world.engine.connect() as conn:
        expected = readable(conn, account, "cases", OVERDUE)
        of_class = readable(conn, account, "cases", f"{OVERDUE} AND t.category_code LIKE 'E02%'")
    answer = client.get("/stats/overdue", headers=bearer(name))
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    assert doc["count"] == len(expected) and {c["id"] for c in doc["cases"]} == expected
    assert all(c["deadline"] and c["category"] for c in doc["cases"])
    classed = client.get("/stats/overdue?category=E02", headers=bearer(name)).json()
    assert classed["count"] == len(of_class) and {c["id"] for c in classed["cases"]} == of_class
    assert client.get("/stats/overdue?category=E01", headers=bearer(name)).json()["count"] == 0


def test_the_overdue_count_has_no_cap_and_the_list_is_the_longest_overdue(
    client: TestClient, world: World
) -> None:
    demo = world.rows[DEMO]
    with world.engine.begin() as conn:
        conn.execute(
            text("""
            INSERT INTO cases (adcode, geom, category_code, source, status, reported_at,
                               registered_at, dispatched_at, deadline, grid_code, unit)
            SELECT c.adcode, c.geom, 'E0201', 'inspector', 'dispatched', c.reported_at,
                   c.registered_at, c.dispatched_at, c.deadline - n * interval '1 minute',
                   c.grid_code, c.unit
            FROM cases AS c, generate_series(1, 2345) AS n
            WHERE c.id = :id
        """),
            {"id": demo.ids["cases"][2]},
        )
    try:
        with world.engine.connect() as conn:
            expected = readable(conn, world.accounts["leader-a"], "cases", OVERDUE)
            oldest = (
                conn.execute(
                    text(
                        f"SELECT t.id FROM cases AS t WHERE {OVERDUE} AND t.adcode = :a "
                        "ORDER BY t.deadline, t.id LIMIT 5"
                    ),
                    {"a": DEMO},
                )
                .scalars()
                .all()
            )
        doc = client.get("/stats/overdue?top=5", headers=bearer("leader-a")).json()
        assert doc["count"] == len(expected) > 2_000
        assert [c["id"] for c in doc["cases"]] == oldest
        other = client.get("/stats/overdue", headers=bearer("leader-b")).json()
        assert other["count"] == 1  # 三元区 keeps its own one
    finally:
        with world.engine.begin() as conn:
            conn.execute(
                text("DELETE FROM cases WHERE id > :last"),
                {"last": max(world.rows[SANYUAN].ids["cases"] + demo.ids["cases"])},
            )


@pytest.mark.parametrize("name", ["admin", "leader-a", "leader-b", "leader-city", "dispatcher-b"])
@pytest.mark.parametrize("level", ["section", "street"])
def test_the_choropleth_carries_each_grids_indicators(
    client: TestClient, name: str, level: str
) -> None:
    grids = client.get("/stats/choropleth", params={**PERIOD, "level": level}, headers=bearer(name))
    assert grids.status_code == 200, grids.text
    rows = client.get(
        "/stats/indicators", params={**PERIOD, "by": level}, headers=bearer(name)
    ).json()["rows"]
    by_code = {r["key"]: r for r in rows}
    features = grids.json()["features"]
    assert features
    for f in features:
        row = by_code.get(f["properties"]["code"], {})
        for measure in MEASURES:
            default = 0 if measure == "overdue" else None
            assert f["properties"][measure] == row.get(measure, default), (f["id"], measure)
    assert sum(f["properties"]["due"] or 0 for f in features) == sum(r["due"] for r in rows) > 0


def _today(conn: Connection) -> date:
    day: date = conn.execute(text("SELECT (now() AT TIME ZONE 'Asia/Shanghai')::date")).scalar_one()
    return day


def _order(conn: Connection, fid: int) -> tuple[str, date | None]:
    found = conn.execute(
        text("SELECT result, rectified_on FROM work_orders WHERE id = :id"), {"id": fid}
    ).one()
    return found[0], found[1]


def _reopen(world: World, fid: int, deadline: date | None = None) -> None:
    with world.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE work_orders SET result = 'open', rectified_on = NULL, "
                "deadline = coalesce(CAST(:deadline AS date), deadline) WHERE id = :id"
            ),
            {"id": fid, "deadline": deadline},
        )


@pytest.mark.parametrize("name", NAMES)
def test_a_work_order_rectified_is_on_time_or_late_by_the_server(
    client: TestClient, world: World, name: str
) -> None:
    account = world.accounts[name]
    for adcode in (DEMO, SANYUAN):
        fid = world.rows[adcode].ids["work_orders"][0]
        _reopen(world, fid)
        with world.engine.connect() as conn:
            seen = fid in readable(conn, account, "work_orders")
            today = _today(conn)
        answer = client.post(f"/work_orders/{fid}/rectified", json={}, headers=bearer(name))
        writes = account.role in ("admin", "inspector")
        assert answer.status_code == (404 if not seen else 200 if writes else 403), answer.text
        with world.engine.connect() as conn:
            stored = _order(conn, fid)
        if answer.status_code == 200:
            assert stored == ("late", today)  # the deadline, 2026-03-09, has passed
            assert answer.json() == {
                "id": fid,
                "deadline": "2026-03-09",
                "result": "late",
                "rectified_on": today.isoformat(),
            }
            assert answer.headers["ETag"].startswith('"')
        else:
            assert stored == ("open", None)
        _reopen(world, fid)


def test_on_time_late_and_what_is_refused(client: TestClient, world: World) -> None:
    fid = world.rows[DEMO].ids["work_orders"][0]
    with world.engine.connect() as conn:
        today = _today(conn)
    _reopen(world, fid, deadline=today + timedelta(days=5))
    done = client.post(f"/work_orders/{fid}/rectified", headers=bearer("inspector-a"))
    assert done.status_code == 200, done.text
    assert done.json()["result"] == "on_time"
    again = client.post(f"/work_orders/{fid}/rectified", headers=bearer("inspector-a"))
    assert again.status_code == 409 and again.json()["code"] == "already_rectified"
    _reopen(world, fid, deadline=today - timedelta(days=1))
    yesterday = (today - timedelta(days=1)).isoformat()
    back_then = client.post(
        f"/work_orders/{fid}/rectified", json={"rectified_on": yesterday}, headers=bearer("admin")
    )
    assert back_then.status_code == 200 and back_then.json()["result"] == "on_time"
    _reopen(world, fid)
    for body, code in (
        ({"rectified_on": (today + timedelta(days=1)).isoformat()}, "property_out_of_range"),
        ({"rectified_on": "2026-03-01"}, "property_out_of_range"),  # before it was issued
        ({"result": "on_time"}, None),  # the client does not say
    ):
        refused = client.post(f"/work_orders/{fid}/rectified", json=body, headers=bearer("admin"))
        assert 400 <= refused.status_code < 500, refused.text
        assert code is None or refused.json()["code"] == code
        assert "message" in refused.json()
        with world.engine.connect() as conn:
            assert _order(conn, fid) == ("open", None)
    missing = client.post("/work_orders/999999/rectified", headers=bearer("admin"))
    assert missing.status_code == 404
    _reopen(world, fid, deadline=date(2026, 3, 9))
