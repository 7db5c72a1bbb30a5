"""The heatmap's counts per day and month (migration 0036): the API answers from them exactly what
a scan of the cases answers, for every role of two counties, and every kind of write keeps them
equal to the cases counted by SQL written here."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, text

from api.app import create_app
from api.settings import DatabaseSettings
from gis.bins import bin_metres, cells_per_bin
from layers.cases import heatmap
from layers.cases.cellcounts import whole_months
from layers.cases.codes import seed_case_categories
from layers.engine.access import Viewer
from layers.registry import Role
from layers.store import db
from tests.accounts import ROLES, TEST_AUTH, bearer, ensure_account
from tests.counties import DEMO, DEMO_CENTRE, SANYUAN, Account, CountyRows, readable, two_counties
from tests.countyfiles import write_gbk_csv, year_of_cases
from tests.databases import PgServer, fresh_database
from tests.support import citygrid

SCOPES = {"a": (DEMO,), "b": (SANYUAN,), "city": (DEMO, SANYUAN)}
UNITS = {DEMO: "启东测试中队", SANYUAN: "三元区测试中队"}
CODES = ("E0101", "E0102", "E0201", "E0202", "E0501", "E0503")
PERIODS = [
    (None, None),
    (date(2026, 1, 1), date(2026, 12, 31)),  # whole months only
    (date(2026, 2, 14), date(2026, 7, 3)),  # partial months at both ends
    (date(2026, 3, 5), date(2026, 3, 5)),  # one day
    (date(2026, 4, 1), None),  # open end
    (None, date(2026, 5, 20)),  # open start
]
PERIOD_IDS = ["open", "year", "partial", "day", "from", "until"]

DAYS = """
SELECT adcode, (reported_at AT TIME ZONE 'Asia/Shanghai')::date, category_code,
       gk_srid, cell_x, cell_y, count(*)
FROM cases GROUP BY 1, 2, 3, 4, 5, 6"""
MONTHS = """
SELECT adcode, date_trunc('month', reported_at AT TIME ZONE 'Asia/Shanghai')::date AS m,
       category_code, gk_srid, cell_x, cell_y, count(*)
FROM cases GROUP BY 1, 2, 3, 4, 5, 6
UNION ALL
SELECT adcode, date_trunc('month', reported_at AT TIME ZONE 'Asia/Shanghai')::date, '*',
       gk_srid, cell_x, cell_y, count(*)
FROM cases GROUP BY 1, 2, 4, 5, 6"""


def _rows(conn: Connection, sql: str) -> dict[tuple[Any, ...], int]:
    return {tuple(r[:-1]): int(r[-1]) for r in conn.execute(text(sql))}


def assert_counted(engine: Engine) -> None:
    """The counts tables hold exactly the cases grouped by SQL of this test."""
    with engine.connect() as conn:
        days = _rows(
            conn,
            "SELECT adcode, day, category_code, gk_srid, cell_x, cell_y, n FROM case_cell_days",
        )
        months = _rows(
            conn,
            "SELECT adcode, month, category_code, gk_srid, cell_x, cell_y, n FROM case_cell_months",
        )
        assert days == _rows(conn, DAYS)
        assert months == _rows(conn, MONTHS)


def add_cases(conn: Connection, county: CountyRows, count: int, seed: int) -> None:
    """Cases of 2026 spread over the county's west and east communities, days and subclasses;
    every third one dispatched to the county's test unit."""
    rng = random.Random(seed)
    for i in range(count):
        lon, lat = county.lonlat(rng.uniform(-1500, 1500), rng.uniform(-700, 700))
        day = date.fromordinal(date(2026, 1, 1).toordinal() + rng.randrange(365))
        conn.execute(
            text("""
            INSERT INTO cases (adcode, geom, category_code, source, status, reported_at, unit)
            VALUES (:a, ST_SetSRID(ST_MakePoint(:lon, :lat), 4490), :code, 'inspector',
                    'reported', CAST(:at AS timestamptz), :unit)
        """),
            {
                "a": county.adcode,
                "lon": lon,
                "lat": lat,
                "code": rng.choice(CODES),
                # late evenings: the China-time day differs from the UTC one
                "at": f"{day.isoformat()}T{rng.choice(['00:30', '09:00', '23:45'])}:00+08:00",
                "unit": UNITS[county.adcode] if i % 3 == 0 else None,
            },
        )


def accounts(demo: CountyRows, second: CountyRows) -> dict[str, Account]:
    """The admin, and every role in the demo county, in 三元区 and in both."""
    rows = {DEMO: demo, SANYUAN: second}
    out = {"admin": Account("admin", None)}
    for role in ROLES:
        for scope, held in SCOPES.items():
            grids = tuple(rows[c].communities[0] for c in held) if role == "inspector" else ()
            unit = UNITS[held[-1]] if role == "handler" else None
            out[f"{role}-{scope}"] = Account(role, held, grids, unit)
    return out


class Counties:
    """A database of two counties with a few hundred cases each, and their accounts."""

    def __init__(self, url: str, engine: Engine, held: dict[str, Account]) -> None:
        self.url, self.engine, self.accounts = url, engine, held


@pytest.fixture(scope="module")
def world(pg_server: PgServer) -> Iterator[Counties]:
    databases = fresh_database(pg_server, "heatcounts")
    url = next(databases)
    engine = db.make_engine(pg_server.as_owner(url))
    with engine.begin() as conn:
        seed_case_categories(conn)
        demo, second = two_counties(conn)
        add_cases(conn, demo, 400, 1)
        add_cases(conn, second, 300, 2)
    held = accounts(demo, second)
    for name, account in held.items():
        ensure_account(
            engine, name, account.role, account.grids, account.unit, account.counties or ()
        )
    yield Counties(url, engine, held)
    engine.dispose()
    next(databases, None)


@pytest.fixture(scope="module")
def client(world: Counties) -> Iterator[TestClient]:
    app = create_app(DatabaseSettings(database_url=world.url), auth_settings=TEST_AUTH)
    with TestClient(app) as c:
        yield c


def viewer(name: str, account: Account) -> Viewer:
    """The viewer the API makes of the account's token."""
    return Viewer(name, Role(account.role), unit=account.unit, counties=account.counties)


def _params(
    zoom: float, period: tuple[date | None, date | None], categories: tuple[str, ...]
) -> dict[str, Any]:
    start, end = period
    params: dict[str, Any] = {"zoom": zoom}
    if start:
        params["from"] = start.isoformat()
    if end:
        params["to"] = end.isoformat()
    if categories:
        params["category"] = ",".join(categories)
    return params


def scanned(engine: Engine, query: heatmap.HeatmapQuery, interval: str | None = None) -> str:
    """The answer of a scan of the cases, the counts left aside."""
    with engine.begin() as conn:
        scan = replace(query, counts=False)
        return heatmap.frames(conn, scan, interval) if interval else heatmap.heatmap(conn, scan)


def test_the_whole_months_of_a_period() -> None:
    assert whole_months(None, None) == (None, None)
    assert whole_months(date(2026, 2, 14), date(2026, 7, 3)) == (date(2026, 3, 1), date(2026, 7, 1))
    assert whole_months(date(2026, 2, 1), date(2026, 2, 28)) == (date(2026, 2, 1), date(2026, 3, 1))
    assert whole_months(date(2026, 2, 2), date(2026, 3, 30)) is None
    assert whole_months(date(2026, 12, 2), None) == (date(2027, 1, 1), None)
    assert whole_months(None, date.max) == (None, None)
    assert whole_months(date(9999, 12, 2), None) is None


@pytest.mark.parametrize("period", PERIODS, ids=PERIOD_IDS)
def test_every_account_reads_from_the_counts_what_the_scan_reads(
    client: TestClient, world: Counties, period: tuple[date | None, date | None]
) -> None:
    for name, account in world.accounts.items():
        for zoom, categories in ((11, ()), (13, ("E01",)), (10, ("E0503", "E0201"))):
            query = heatmap.HeatmapQuery(
                zoom, None, *period, categories=categories, viewer=viewer(name, account)
            )
            answer = client.get(
                "/stats/heatmap", params=_params(zoom, period, categories), headers=bearer(name)
            )
            assert answer.status_code == 200, answer.text
            assert answer.text == scanned(world.engine, query), (name, zoom, categories)
            # the counts were read wherever the viewer is limited by county alone
            narrow = account.role in ("inspector", "handler")
            assert heatmap.counted(query, cells_per_bin(bin_metres(zoom, 30.0))) != narrow
            where = "TRUE"
            if period[0]:
                where += f" AND t.reported_at >= '{period[0]}'"
            if period[1]:
                where += f" AND t.reported_at < DATE '{period[1]}' + 1"
            if categories:
                where += (
                    " AND (" + " OR ".join(f"t.category_code LIKE '{c}%'" for c in categories) + ")"
                )
            with world.engine.connect() as conn:
                expected = len(readable(conn, account, "cases", where))
            assert answer.json()["total"] == expected, (name, zoom, categories)


def test_every_account_has_something_to_read(world: Counties) -> None:
    with world.engine.connect() as conn:
        for name, account in world.accounts.items():
            assert len(readable(conn, account, "cases")) > 10, name


@pytest.mark.parametrize("interval", ["week", "month"])
@pytest.mark.parametrize("period", PERIODS[1:4], ids=PERIOD_IDS[1:4])
def test_frames_from_the_counts_are_the_frames_of_the_scan(
    client: TestClient, world: Counties, interval: str, period: tuple[date | None, date | None]
) -> None:
    for name in (
        "admin",
        "leader-a",
        "dispatcher-city",
        "planner-b",
        "inspector-city",
        "handler-a",
    ):
        account = world.accounts[name]
        for categories in ((), ("E05",)):
            query = heatmap.HeatmapQuery(
                12, None, *period, categories=categories, viewer=viewer(name, account)
            )
            answer = client.get(
                "/stats/heatmap/frames",
                params={**_params(12, period, categories), "interval": interval},
                headers=bearer(name),
            )
            assert answer.status_code == 200, answer.text
            assert answer.text == scanned(world.engine, query, interval), (name, categories)
            if name == "admin" and not categories:
                assert json.loads(answer.text)["frames"]  # 03-05 holds a case of each county


def test_the_counts_hold_the_cases_of_both_counties(world: Counties) -> None:
    assert_counted(world.engine)


def test_the_demo_load_is_counted(engine: Engine, demo: dict[str, int]) -> None:
    assert_counted(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT sum(n) FROM case_cell_days")).scalar_one() > 100_000


@pytest.fixture
def scratch(pg_server: PgServer, scratch_url: str) -> Iterator[tuple[str, Engine]]:
    """The scratch database with the catalogue; its API URL and its owner's engine."""
    engine = db.make_engine(pg_server.as_owner(scratch_url))
    with engine.begin() as conn:
        seed_case_categories(conn)
    ensure_account(scratch_url, "admin", "admin")
    yield scratch_url, engine
    engine.dispose()


def _point(dx: float, dy: float = 0.0) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [DEMO_CENTRE[0] + dx, DEMO_CENTRE[1] + dy]}


def _patch(client: TestClient, fid: int, body: dict[str, Any]) -> None:
    etag = client.get(f"/collections/cases/items/{fid}", headers=bearer("admin")).headers["etag"]
    answer = client.patch(
        f"/collections/cases/items/{fid}", json=body, headers={**bearer("admin"), "If-Match": etag}
    )
    assert answer.status_code in (200, 204), answer.text


def test_writes_through_the_api_keep_the_counts(scratch: tuple[str, Engine]) -> None:
    url, engine = scratch
    app = create_app(DatabaseSettings(database_url=url), auth_settings=TEST_AUTH)
    year = {"zoom": 13, "from": "2026-01-01", "to": "2026-12-31"}
    with TestClient(app) as client:
        ids = []
        for n in range(6):
            feature = {
                "type": "Feature",
                "geometry": _point(0.001 * (n % 2)),
                "properties": {
                    "category_code": "E0101",
                    "source": "inspector",
                    "status": "reported",
                    "reported_at": f"2026-0{n + 1}-15T23:30:00+08:00",
                },
            }
            made = client.post("/collections/cases/items", json=feature, headers=bearer("admin"))
            assert made.status_code == 201, made.text
            ids.append(int(made.headers["location"].rsplit("/", 1)[-1]))
        assert_counted(engine)
        assert (
            client.get("/stats/heatmap", params=year, headers=bearer("admin")).json()["total"] == 6
        )
        _patch(client, ids[0], {"geometry": _point(0.02, 0.01)})  # a cell further east
        _patch(client, ids[1], {"properties": {"category_code": "E0503"}})
        _patch(client, ids[2], {"properties": {"reported_at": "2025-12-31T23:59:00+08:00"}})
        _patch(client, ids[3], {"properties": {"description": "不动位置的修改"}})
        assert_counted(engine)
        body = client.get("/stats/heatmap", params=year, headers=bearer("admin")).json()
        assert body["total"] == 5  # one moved into the year before
        classes = client.get(
            "/stats/heatmap", params={**year, "category": "E05"}, headers=bearer("admin")
        ).json()
        assert classes["total"] == 1
        etag = client.get(f"/collections/cases/items/{ids[4]}", headers=bearer("admin")).headers[
            "etag"
        ]
        gone = client.delete(
            f"/collections/cases/items/{ids[4]}", headers={**bearer("admin"), "If-Match": etag}
        )
        assert gone.status_code == 204, gone.text
        assert_counted(engine)
        with engine.begin() as conn:
            for interval in (None, "week", "month"):
                query = heatmap.HeatmapQuery(13, start=date(2026, 1, 1), end=date(2026, 12, 31))
                counted = (
                    heatmap.frames(conn, query, interval)
                    if interval
                    else heatmap.heatmap(conn, query)
                )
                assert counted == scanned(engine, query, interval)


def test_a_mixed_run_of_statements_keeps_the_counts(scratch: tuple[str, Engine]) -> None:
    _, engine = scratch
    with engine.begin() as conn:
        conn.execute(
            text("""
            INSERT INTO cases (adcode, geom, category_code, source, status, reported_at)
            SELECT :a, ST_SetSRID(ST_MakePoint(121.60 + (i % 17) * 0.004, 31.78 + (i % 11) * 0.003),
                                  4490),
                   (ARRAY['E0101', 'E0201', 'E0503'])[1 + i % 3], 'public', 'reported',
                   TIMESTAMPTZ '2026-01-01 00:00+08' + i * INTERVAL '7 hours'
            FROM generate_series(1, 600) AS i
        """),
            {"a": DEMO},
        )
    assert_counted(engine)
    statements = [
        "UPDATE cases SET geom = ST_Translate(geom, 0.003, 0) WHERE id % 5 = 0",
        "UPDATE cases SET category_code = 'E0102' WHERE id % 7 = 0",
        "UPDATE cases SET reported_at = reported_at + INTERVAL '20 days' WHERE id % 4 = 0",
        "UPDATE cases SET status = 'registered' WHERE id % 2 = 0",  # no key moves: nets to nothing
        "DELETE FROM cases WHERE id % 9 = 0",
        "UPDATE cases SET geom = ST_Translate(geom, 0.001, 0), "
        "reported_at = reported_at - INTERVAL '1 hour' WHERE id % 3 = 1",
    ]
    for statement in statements:
        with engine.begin() as conn:
            conn.execute(text(statement))
        assert_counted(engine)
    with engine.connect() as conn:
        empty = conn.execute(
            text(
                "SELECT (SELECT count(*) FROM case_cell_days WHERE n = 0) "
                "+ (SELECT count(*) FROM case_cell_months WHERE n = 0)"
            )
        ).scalar_one()
    assert empty == 0
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE cases CASCADE"))
    with engine.connect() as conn:
        left = conn.execute(
            text(
                "SELECT (SELECT count(*) FROM case_cell_days) + (SELECT count(*) FROM case_cell_months)"
            )
        ).scalar_one()
    assert left == 0


def _insert_one(conn: Connection, code: str) -> None:
    conn.execute(
        text("""
        INSERT INTO cases (adcode, geom, category_code, source, status, reported_at)
        VALUES (:a, ST_SetSRID(ST_MakePoint(121.657, 31.808), 4490), :code, 'public', 'reported',
                TIMESTAMPTZ '2026-06-01 10:00+08')
    """),
        {"a": DEMO, "code": code},
    )


def test_two_transactions_writing_one_cell_lose_no_count(scratch: tuple[str, Engine]) -> None:
    _, engine = scratch
    with engine.begin() as conn:
        _insert_one(conn, "E0101")
    first = engine.connect()
    first.begin()
    _insert_one(first, "E0101")
    first.execute(text("DELETE FROM cases WHERE id = (SELECT min(id) FROM cases)"))
    errors: list[BaseException] = []

    def second_writer() -> None:
        try:
            with engine.begin() as conn:  # waits on the first's rows of the same cell
                _insert_one(conn, "E0101")
                _insert_one(conn, "E0201")
        except BaseException as exc:  # reported by the test below
            errors.append(exc)

    second = threading.Thread(target=second_writer)
    second.start()
    second.join(timeout=1.0)
    assert second.is_alive()  # blocked by the first transaction's count rows
    first.commit()
    first.close()
    second.join(timeout=30)
    assert not second.is_alive() and not errors, errors
    assert_counted(engine)
    with engine.connect() as conn:
        total = conn.execute(text("SELECT sum(n) FROM case_cell_days")).scalar_one()
    assert total == 3


def test_a_bulk_import_is_counted(scratch: tuple[str, Engine], tmp_path: Path) -> None:
    url, engine = scratch
    (lon, lat), d = DEMO_CENTRE, 0.02
    rows = year_of_cases(80, 2026, (lon - d, lat - d, lon + d, lat + d))
    path = write_gbk_csv(tmp_path / "cases.csv", rows)
    done = citygrid(
        "import", "cases", str(path), "--county", DEMO, env={"CITYGRID_DATABASE_URL": url}
    )
    assert done.returncode == 0, done.stderr
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM cases")).scalar_one() == 80
    assert_counted(engine)


def test_a_countys_bins_are_sized_at_its_own_latitude(world: Counties) -> None:
    """Not at the middle of every county the deployment holds: a county's heatmap is the same
    whichever others share its database."""
    with world.engine.connect() as conn:
        latitude = dict(
            conn.execute(text("SELECT adcode, ST_Y(centre) FROM counties")).tuples().all()
        )
    # a zoom at which the two counties' latitudes (31.8° and 26.2°) give bins of different sizes
    zoom = next(
        z / 100
        for z in range(800, 1600)
        if bin_metres(z / 100, latitude[DEMO]) != bin_metres(z / 100, latitude[SANYUAN])
    )
    for adcode, scope in ((DEMO, "a"), (SANYUAN, "b")):
        name = f"leader-{scope}"
        query = heatmap.HeatmapQuery(zoom, viewer=viewer(name, world.accounts[name]))
        with world.engine.begin() as conn:
            answer = json.loads(heatmap.heatmap(conn, query))
        assert answer["cell_m"] == bin_metres(zoom, latitude[adcode]), adcode
