"""Statistics of the reports' other systems on two counties, against values worked out by hand:
sorting-point progress per compound with the county totals, merchants per rating per community
and street grid, as JSON and CSV, for every role; and the nightly refresh of aged ratings."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, text

from api.app import create_app
from api.settings import DatabaseSettings
from layers.cases.codes import seed_case_categories
from layers.engine import placing
from layers.registry import MERCHANTS
from layers.store import db
from tests.accounts import TEST_AUTH, bearer
from tests.counties import (
    DEMO,
    SANYUAN,
    SCOPED_NAMES,
    CountyRows,
    ensure_scoped_accounts,
    scoped_account,
    two_counties,
)
from tests.databases import fresh_database
from tests.support import citygrid

CHINA = ZoneInfo("Asia/Shanghai")
STATUSES = ("planned", "building", "built", "connected", "in_service")
# compounds besides tests/counties.py's 测试小区 (no point of its own): (name, x, y) in metres
# from the county's centre; 西苑 in the first community (an inspector's patrol), 东苑 the second
COMPOUNDS = {"西苑小区": (-1100.0, -600.0), "东苑小区": (400.0, 0.0)}
# each compound's points: (kind, build status)
POINTS = {
    "西苑小区": (
        ("sorting_point", "in_service"),
        ("sorting_point", "in_service"),
        ("sorting_room", "connected"),
        ("sorting_point", "building"),
    ),
    "东苑小区": (("sorting_point", "planned"), ("transfer", "in_service")),
}
# by hand, per county: counts per status (planned … in service), points, in service, connected
EXPECTED_SORTING = {
    "西苑小区": ((0, 1, 0, 1, 2), 4, 0.5, 0.75),
    "东苑小区": ((1, 0, 0, 0, 1), 2, 0.5, 0.5),
    "测试小区": ((0, 0, 0, 0, 0), 0, None, None),
    # tests/counties.py's 测试投放点 (a planned sorting room) is linked to no compound
    "未关联小区的投放点": ((1, 0, 0, 0, 0), 1, 0.0, 0.0),
}
COUNTY_TOTAL = ((2, 1, 0, 1, 3), 7, 0.4286, 0.5714)
# merchants besides tests/counties.py's 测试商户 (green, x -580: first community, second section):
# (name, x, y, failed inspections): two failed checks make red, one yellow, none green
MERCHANTS_AT = (
    ("一号商户", -1100.0, 200.0, 2),  # first community, first section
    ("二号商户", -300.0, -200.0, 1),  # first community, second section
    ("三号商户", 300.0, 300.0, 2),  # second community, first section
    ("四号商户", 1000.0, -300.0, 0),  # second community, second section
)
# by hand: (red, yellow, green) per grid, by the grid's place in tests/counties.py's county
EXPECTED_RATINGS = {
    "community": {"communities[0]": (1, 1, 1), "communities[1]": (1, 0, 1)},
    "street": {"street": (2, 1, 2)},
    "section": {
        "sections[0]": (1, 0, 0),
        "sections[1]": (0, 1, 1),
        "sections[2]": (1, 0, 0),
        "sections[3]": (0, 0, 1),
    },
}
INSPECTOR_GRIDS = {"communities[0]", "street", "sections[0]", "sections[1]"}


@dataclass
class World:
    """Two counties with their compounds, points and merchants, by county."""

    url: str
    engine: Engine
    rows: dict[str, CountyRows]
    compounds: dict[tuple[str, str], int]


def _insert(
    conn: Connection, rows: CountyRows, table: str, x: float, y: float, **values: Any
) -> int:
    lon, lat = rows.lonlat(x, y)
    names = ", ".join(values)
    holders = ", ".join(f":{n}" for n in values)
    geom = "ST_SetSRID(ST_MakePoint(:lon, :lat), 4490)"
    if table == "residential_compounds":  # a 40 m square around the point
        geom = f"ST_Multi(ST_Expand({geom}, 0.0002))"
    return int(
        conn.execute(
            text(
                f'INSERT INTO "{table}" (adcode, geom, {names}) '
                f"VALUES (:adcode, {geom}, {holders}) RETURNING id"
            ),
            {"adcode": rows.adcode, "lon": lon, "lat": lat, **values},
        ).scalar_one()
    )


def _fill(conn: Connection, rows: CountyRows) -> dict[str, int]:
    compounds = {}
    for name, (x, y) in COMPOUNDS.items():
        compounds[name] = _insert(conn, rows, "residential_compounds", x, y, name=name)
        for n, (kind, status) in enumerate(POINTS[name]):
            _insert(
                conn,
                rows,
                "garbage_points",
                x + 5 * n,
                y,
                name=f"{name}{n + 1}号点",
                kind=kind,
                build_status=status,
                compound_id=compounds[name],
            )
    today = datetime.now(CHINA).date()
    for name, x, y, failed in MERCHANTS_AT:
        shop = _insert(conn, rows, "merchants", x, y, name=name)
        for k in range(failed):
            conn.execute(
                text("""INSERT INTO merchant_inspections
                        (merchant_id, adcode, inspected_on, inspector, result)
                        VALUES (:m, :a, :on, '测试员', 'fail')"""),
                {"m": shop, "a": rows.adcode, "on": today - timedelta(days=k)},
            )
    return compounds


@pytest.fixture(scope="module")
def world(pg_server: Any) -> Iterator[World]:
    databases = fresh_database(pg_server, "system_stats")
    url = next(databases)
    engine = db.make_engine(pg_server.as_owner(url))
    compounds: dict[tuple[str, str], int] = {}
    with engine.begin() as conn:
        seed_case_categories(conn)
        demo, second = two_counties(conn)
        for rows in (demo, second):
            for name, fid in _fill(conn, rows).items():
                compounds[(rows.adcode, name)] = fid
            compounds[(rows.adcode, "测试小区")] = rows.ids["residential_compounds"][0]
        placing.place_unplaced(conn, MERCHANTS)
    rows = {DEMO: demo, SANYUAN: second}
    ensure_scoped_accounts(engine, rows)
    yield World(url, engine, rows, compounds)
    engine.dispose()
    next(databases, None)


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    app = create_app(DatabaseSettings(database_url=world.url), auth_settings=TEST_AUTH)
    with TestClient(app, follow_redirects=False) as c:
        yield c


def held(name: str, world: World) -> tuple[str, ...]:
    return scoped_account(name, world.rows).counties or (DEMO, SANYUAN)


def get(client: TestClient, path: str, name: str, **params: Any) -> Any:
    answer = client.get(path, params=params, headers=bearer(name))
    assert answer.status_code == 200, (name, answer.text)
    return answer


# --- sorting-point progress per compound ----------------------------------------------------


def _figures(row: dict[str, Any]) -> tuple[Any, ...]:
    return (
        tuple(row[s] for s in STATUSES),
        row["points"],
        row["in_service_rate"],
        row["connected_rate"],
    )


def expected_sorting(world: World, name: str) -> list[tuple[Any, ...]]:
    """(level, adcode, compound, figures) in the answer's order, by hand: an inspector reads the
    compounds and points of its patrol community (西苑, 测试小区 and the unlinked point)."""
    inspector = scoped_account(name, world.rows).role == "inspector"
    shown = ["测试小区", "西苑小区"] if inspector else ["测试小区", "西苑小区", "东苑小区"]  # by id
    counties = sorted(held(name, world))
    out: list[tuple[Any, ...]] = []
    for adcode in counties:
        for compound in shown:
            out.append(("compound", adcode, compound, EXPECTED_SORTING[compound]))
        out.append(
            ("compound", adcode, "未关联小区的投放点", EXPECTED_SORTING["未关联小区的投放点"])
        )
        total = COUNTY_TOTAL
        if inspector:  # without 东苑's two points
            total = ((1, 1, 0, 1, 2), 5, 0.4, 0.6)
        out.append(("county", adcode, "合计", total))
    if len(counties) > 1:
        one = out[-1][3]
        both = (tuple(2 * n for n in one[0]), 2 * one[1], one[2], one[3])
        out.append(("all", None, "总计", both))
    return out


@pytest.mark.parametrize("name", SCOPED_NAMES)
def test_sorting_progress_per_compound_for_every_role(
    client: TestClient, world: World, name: str
) -> None:
    found = get(client, "/stats/sorting", name).json()["rows"]
    assert [(r["level"], r["adcode"], r["compound"], _figures(r)) for r in found] == (
        expected_sorting(world, name)
    )
    for row in found:
        if row["level"] == "compound" and row["compound"] != "未关联小区的投放点":
            assert row["compound_id"] == world.compounds[(row["adcode"], row["compound"])]
        else:
            assert row["compound_id"] is None
        if row["level"] != "all":
            assert row["county"] == {DEMO: "启东市", SANYUAN: "三元区"}[row["adcode"]]


def test_sorting_progress_by_kind_by_county_as_csv_and_bad_parameters(
    client: TestClient, world: World
) -> None:
    rooms = get(client, "/stats/sorting", "leader-city", kind="sorting_room", county=SANYUAN)
    figures = {r["compound"]: (r["points"], r["connected"]) for r in rooms.json()["rows"]}
    assert figures == {
        "西苑小区": (1, 1),
        "东苑小区": (0, 0),
        "测试小区": (0, 0),
        "未关联小区的投放点": (1, 0),
        "合计": (2, 1),
    }
    sheet = get(client, "/stats/sorting", "leader-a", format="csv")
    assert sheet.headers["content-type"].startswith("text/csv")
    assert 'filename="sorting-all.csv"' in sheet.headers["content-disposition"]
    table = list(csv.reader(io.StringIO(sheet.text.lstrip("\ufeff"))))
    assert table[0] == [
        "县级行政区代码",
        "县级行政区",
        "小区编号",
        "小区名称",
        "规划",
        "在建",
        "已建成",
        "水电已接通",
        "投用",
        "投放点总数",
        "投用率",
        "水电接通率",
    ]
    west = world.compounds[(DEMO, "西苑小区")]
    assert [DEMO, "启东市", str(west), "西苑小区", "0", "1", "0", "1", "2", "4", "0.5", "0.75"] in (
        table
    )
    assert table[-1] == [
        DEMO,
        "启东市",
        "",
        "合计",
        "2",
        "1",
        "0",
        "1",
        "3",
        "7",
        "0.4286",
        "0.5714",
    ]
    assert [r[3] for r in table[1:]] == [
        "测试小区",
        "西苑小区",
        "东苑小区",
        "未关联小区的投放点",
        "合计",
    ]
    assert table[1][3:] == ["测试小区", "0", "0", "0", "0", "0", "0", "", ""]
    for params, status, code in (
        ({"kind": "bin"}, 400, "unknown_kind"),
        ({"format": "xlsx"}, 400, "invalid_request"),
        ({"county": SANYUAN}, 403, "outside_county"),
        ({"county": "999999"}, 404, "unknown_county"),
    ):
        bad = client.get("/stats/sorting", params=params, headers=bearer("leader-a"))
        assert bad.status_code == status, (params, bad.text)
        assert bad.json()["code"] and bad.json()["message"]
        if code:
            assert bad.json()["code"] == code
    assert client.get("/stats/sorting").status_code == 401


# --- merchants per rating per grid ------------------------------------------------------------


def grid_code(rows: CountyRows, where: str) -> str:
    """A grid code of tests/counties.py's county by its place: `street`, `communities[1]` …"""
    name, _, index = where.partition("[")
    value = getattr(rows, name)
    return str(value[int(index[:-1])] if index else value)


def expected_ratings(world: World, name: str, by: str) -> dict[str | None, tuple[int, ...]]:
    inspector = scoped_account(name, world.rows).role == "inspector"
    out: dict[str | None, tuple[int, ...]] = {}
    for adcode in held(name, world):
        for where, counts in EXPECTED_RATINGS[by].items():
            if inspector and where not in INSPECTOR_GRIDS:
                continue
            if inspector and by == "street":
                counts = (1, 1, 1)  # the first community's merchants alone
            out[grid_code(world.rows[adcode], where)] = counts
    totals = [sum(c[k] for c in out.values()) for k in range(3)]
    out[None] = tuple(totals)
    return out


@pytest.mark.parametrize("by", ["community", "street", "section"])
@pytest.mark.parametrize("name", SCOPED_NAMES)
def test_merchants_per_rating_per_grid_for_every_role(
    client: TestClient, world: World, name: str, by: str
) -> None:
    found = get(client, "/stats/merchants", name, by=by).json()["rows"]
    assert {r["key"]: (r["red"], r["yellow"], r["green"]) for r in found} == (
        expected_ratings(world, name, by)
    )
    assert found[-1]["total"] and found[-1]["label"] == "合计"
    for row in found:
        assert row["merchants"] == row["red"] + row["yellow"] + row["green"] + row["unrated"]
        assert row["unrated"] == 0
        if not row["total"]:
            assert row["label"] == f"{row['key'][:6]}测试{row['key'][-6:]}"  # the grid's name


def test_merchant_ratings_by_county_as_csv_and_bad_parameters(
    client: TestClient, world: World
) -> None:
    one = get(client, "/stats/merchants", "admin", by="street", county=SANYUAN).json()
    assert [(r["key"], r["red"], r["yellow"], r["green"]) for r in one["rows"]] == [
        (world.rows[SANYUAN].street, 2, 1, 2),
        (None, 2, 1, 2),
    ]
    sheet = get(client, "/stats/merchants", "leader-b", format="csv")
    assert 'filename="merchants-community.csv"' in sheet.headers["content-disposition"]
    table = list(csv.reader(io.StringIO(sheet.text.lstrip("\ufeff"))))
    first, second = world.rows[SANYUAN].communities
    assert table == [
        ["网格编码", "网格名称", "红色", "黄色", "绿色", "未评级", "商户总数"],
        [first, f"{SANYUAN}测试{first[-6:]}", "1", "1", "1", "0", "3"],
        [second, f"{SANYUAN}测试{second[-6:]}", "1", "0", "1", "0", "2"],
        ["", "合计", "2", "1", "2", "0", "5"],
    ]
    for params, status in (({"by": "district"}, 400), ({"county": DEMO}, 403)):
        bad = client.get("/stats/merchants", params=params, headers=bearer("leader-b"))
        assert bad.status_code == status, (params, bad.text)
        assert bad.json()["code"] and bad.json()["message"]


# --- the nightly refresh of aged ratings -------------------------------------------------------


def _age_cases(conn: Connection, ids: list[int], days: int) -> None:
    """Move cases' report back in time without a write near the merchant: as time passing does."""
    triggers = ("rate_merchants_1", "rate_merchants_2")  # the update triggers re-rating merchants
    for name in triggers:
        conn.execute(text(f"ALTER TABLE cases DISABLE TRIGGER {name}"))
    conn.execute(
        text("UPDATE cases SET reported_at = now() - make_interval(days => :d) WHERE id = ANY(:i)"),
        {"d": days, "i": ids},
    )
    for name in triggers:
        conn.execute(text(f"ALTER TABLE cases ENABLE TRIGGER {name}"))


def test_the_nightly_rerate_changes_a_rating_whose_cases_left_the_window(
    scratch_owner: Engine, scratch_url: str, tmp_path: Path
) -> None:
    rating = "SELECT rating FROM merchants WHERE name = '五号商户'"
    aged = (
        "SELECT count(*) FROM merchants "
        "WHERE rating IS DISTINCT FROM citygrid_merchant_rating(id, geom, adcode)"
    )
    with scratch_owner.begin() as conn:
        seed_case_categories(conn)
        demo, _ = two_counties(conn)
        _insert(conn, demo, "merchants", 1200.0, 800.0, name="五号商户")
        lon, lat = demo.lonlat(1205.0, 800.0)  # 5 m from the shop
        cases = [
            int(
                conn.execute(
                    text("""INSERT INTO cases (adcode, geom, category_code, source, status,
                                               reported_at, registered_at)
                            VALUES (:a, ST_SetSRID(ST_MakePoint(:lon, :lat), 4490), 'E0502',
                                    'inspector', 'registered', now() - interval '89 days',
                                    now() - interval '89 days') RETURNING id"""),
                    {"a": DEMO, "lon": lon, "lat": lat},
                ).scalar_one()
            )
            for _ in range(2)
        ]
        assert conn.execute(text(rating)).scalar_one() == "yellow"  # two cases in the window
        _age_cases(conn, cases, 91)
        assert conn.execute(text(rating)).scalar_one() == "yellow"  # stale: nothing rewrote it
        assert conn.execute(text(aged)).scalar_one() == 1
    env = {"CITYGRID_DATABASE_URL": scratch_url, "COLUMNS": "200"}
    done = citygrid("merchants", "rerate", env=env)
    assert done.returncode == 0, done.stderr
    assert "1 merchant ratings changed" in done.stdout + done.stderr
    with scratch_owner.connect() as conn:
        assert conn.execute(text(rating)).scalar_one() == "green"
        assert conn.execute(text(aged)).scalar_one() == 0
    again = citygrid("merchants", "rerate", env=env)
    assert again.returncode == 0 and "0 merchant ratings changed" in again.stdout + again.stderr


def test_service_install_schedules_the_rerate_every_night(tmp_path: Path) -> None:
    config = tmp_path / "citygrid.toml"
    config.write_text(f'state_dir = "{tmp_path}"\n', encoding="utf-8")
    root = tmp_path / "root"
    done = citygrid("service", "install", "--config", str(config), "--prefix", str(root))
    assert done.returncode == 0, done.stderr
    units = root / "etc/systemd/system"
    service = (units / "citygrid-merchants-rerate.service").read_text(encoding="utf-8")
    command = next(x for x in service.splitlines() if x.startswith("ExecStart="))
    assert command.split("=", 1)[1].split()[1:] == ["merchants", "rerate"]
    assert "Type=oneshot" in service and f"CITYGRID_CONFIG={config}" in service
    timer = (units / "citygrid-merchants-rerate.timer").read_text(encoding="utf-8")
    assert "OnCalendar=*-*-* 02:00:00" in timer and "Persistent=true" in timer
    assert "WantedBy=timers.target" in timer


# --- fume exceedance: a restaurant standing in no grid -------------------------------------------


def test_fume_readings_of_a_restaurant_in_no_grid_form_their_own_street_row(
    client: TestClient, world: World
) -> None:
    rows = world.rows[SANYUAN]
    lon, lat = rows.lonlat(3000.0, 2500.0)  # inside the county, beyond its one street's grids
    with world.engine.begin() as conn:
        conn.execute(
            text("""INSERT INTO restaurants (adcode, geom, name, purifier_type, device_id)
                    VALUES (:a, ST_SetSRID(ST_MakePoint(:lon, :lat), 4490), '郊外饭店',
                            'electrostatic', 'DEV-OUT')"""),
            {"a": SANYUAN, "lon": lon, "lat": lat},
        )
    body = {
        "readings": [
            {"device": "DEV-OUT", "time": t, "concentration": c, "purifier_on": True}
            for t, c in (("2025-05-01T12:00:00+08:00", 3.0), ("2025-05-01T13:00:00+08:00", 1.0))
        ]
    }
    posted = client.post("/fume/readings", json=body, headers=bearer("dispatcher-b"))
    assert posted.status_code == 200 and posted.json()["stored"] == 2, posted.text
    answer = get(
        client, "/stats/fume", "leader-b", by="grid", **{"from": "2025-05-01"}, to="2025-05-31"
    )
    assert [
        (r["key"], r["label"], r["readings"], r["exceeded"]) for r in answer.json()["rows"]
    ] == [
        (None, "未落入网格", 2, 1),
        (None, "合计", 2, 1),
    ]
    sheet = get(
        client,
        "/stats/fume",
        "leader-b",
        by="grid",
        format="csv",
        **{"from": "2025-05-01"},
        to="2025-05-31",
    )
    assert list(csv.reader(io.StringIO(sheet.text.lstrip("\ufeff"))))[1:] == [
        ["", "未落入网格", "2", "1", "0.5"],
        ["", "合计", "2", "1", "0.5"],
    ]
