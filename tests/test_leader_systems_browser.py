"""The leaders' dashboard in a real headless Chromium on two counties: the monthly fume exceedance
rate of the twelve months up to the newest reading, and the merchants per rating per street, as
worked out by hand for each county's leader."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import text

from layers.cases.codes import seed_case_categories
from layers.engine import placing
from layers.engine.access import Viewer
from layers.fume import readings
from layers.registry import MERCHANTS, RESTAURANTS, Role
from layers.store import db
from tests.accounts import browser_context, ensure_account
from tests.counties import DEMO, SANYUAN, CountyRows, two_counties
from tests.databases import fresh_database
from tests.support import ARTIFACTS, assert_policy_kept, live_server, wait_for, watch

READY = "window.CityGrid && CityGrid.leaderReady && CityGrid.systemsReady && CityGrid.idle()"
# per county: (China-time reading time, mg/m³); over 2.0 exceeds the national limit
READINGS = {
    DEMO: (
        ("2024-05-10T12:00", 3.0),  # before the twelve months up to the newest reading
        ("2025-01-10T12:00", 3.0),
        ("2025-01-10T13:00", 1.0),
        ("2025-03-02T12:00", 3.0),
        ("2025-03-02T13:00", 1.0),
        ("2025-03-03T12:00", 1.0),
        ("2025-03-03T13:00", 1.0),
        ("2025-06-30T23:30", 1.0),  # the newest: the twelve months are 2024-07 to 2025-06
    ),
    SANYUAN: (("2025-02-01T00:10", 2.5), ("2025-04-05T12:00", 2.5), ("2025-04-05T13:00", 0.5)),
}
# by hand: the months of the trend with readings and their exceedance rate; the others are empty
TREND = {
    DEMO: ("2024-07", "2025-06", {"2025-01": 0.5, "2025-03": 0.25, "2025-06": 0.0}),
    SANYUAN: ("2024-05", "2025-04", {"2025-02": 1.0, "2025-04": 0.5}),
}
# merchants besides tests/counties.py's green 测试商户: (x, y, failed inspections) per county
SHOPS = {DEMO: ((-1100.0, 200.0, 2), (300.0, 300.0, 1)), SANYUAN: ()}
RATINGS = {DEMO: (1, 1, 1), SANYUAN: (0, 0, 1)}  # red, yellow, green on the county's one street


def _fill(conn: Any, rows: CountyRows) -> None:
    lon, lat = rows.lonlat(-1100.0, 0.0)
    conn.execute(
        text("""INSERT INTO restaurants (adcode, geom, name, purifier_type, device_id)
                VALUES (:a, ST_SetSRID(ST_MakePoint(:lon, :lat), 4490), '测试饭店',
                        'electrostatic', :device)"""),
        {"a": rows.adcode, "lon": lon, "lat": lat, "device": f"DEV-{rows.adcode}"},
    )
    posted = [
        readings.Reading(f"DEV-{rows.adcode}", datetime.fromisoformat(f"{t}:00+08:00"), c, True)
        for t, c in READINGS[rows.adcode]
    ]
    readings.store(conn, Viewer("tests", Role.ADMIN, counties=(rows.adcode,)), posted)
    for n, (x, y, failed) in enumerate(SHOPS[rows.adcode]):
        lon, lat = rows.lonlat(x, y)
        shop = conn.execute(
            text("""INSERT INTO merchants (adcode, geom, name)
                    VALUES (:a, ST_SetSRID(ST_MakePoint(:lon, :lat), 4490), :name) RETURNING id"""),
            {"a": rows.adcode, "lon": lon, "lat": lat, "name": f"商户{n}"},
        ).scalar_one()
        for _ in range(failed):
            conn.execute(
                text("""INSERT INTO merchant_inspections
                        (merchant_id, adcode, inspected_on, inspector, result)
                        VALUES (:m, :a, CAST(now() AT TIME ZONE 'Asia/Shanghai' AS date),
                                '测试员', 'fail')"""),
                {"m": shop, "a": rows.adcode},
            )


@pytest.fixture(scope="module")
def server(pg_server: Any) -> Iterator[tuple[str, dict[str, CountyRows]]]:
    databases = fresh_database(pg_server, "leader_systems")
    url = next(databases)
    engine = db.make_engine(pg_server.as_owner(url))
    try:
        with engine.begin() as conn:
            seed_case_categories(conn)
            demo, second = two_counties(conn)
            for rows in (demo, second):
                _fill(conn, rows)
            placing.place_unplaced(conn, RESTAURANTS)
            placing.place_unplaced(conn, MERCHANTS)
        ensure_account(engine, "leader-a", "leader", counties=(DEMO,))
        ensure_account(engine, "leader-city", "leader", counties=(DEMO, SANYUAN))
        with live_server(url) as base:
            yield base, {DEMO: demo, SANYUAN: second}
    finally:
        engine.dispose()
        next(databases, None)


def _months(first: str, last: str) -> list[str]:
    year, month = int(first[:4]), int(first[5:])
    out = []
    while f"{year:04d}-{month:02d}" <= last:
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


@pytest.mark.parametrize(
    ("account", "county", "asked"),
    [("leader-a", DEMO, None), ("leader-city", SANYUAN, SANYUAN)],
)
def test_the_dashboard_shows_the_fume_trend_and_the_ratings_per_street(
    browser: Any,
    server: tuple[str, dict[str, CountyRows]],
    account: str,
    county: str,
    asked: str | None,
) -> None:
    base, rows = server
    page = browser_context(
        browser, base, account, viewport={"width": 1366, "height": 900}, locale="zh-CN"
    ).new_page()
    seen = watch(page)
    page.goto(f"{base}/maps/leader" + (f"?county={asked}" if asked else ""), wait_until="load")
    wait_for(page, READY, timeout=60_000)
    first, last, rates = TREND[county]
    months = _months(first, last)
    assert len(months) == 12
    assert page.evaluate("CityGrid.fumeTrend") == [[m, rates.get(m)] for m in months]
    chart = page.locator(".cg-systems svg.cg-fume-chart")
    assert chart.count() == 1 and chart.is_visible()
    drawn = page.evaluate(
        "[...document.querySelectorAll('.cg-fume-point')].map(c => c.dataset.month)"
    )
    assert drawn == sorted(rates)
    assert page.locator(".cg-fume-line").count() >= 1
    assert page.get_attribute(".cg-fume-csv", "href") == (
        f"/stats/fume?format=csv&by=month&from={first}-01&to={last}-30&county={county}"
    )  # both last months have 30 days
    street = rows[county].street
    name = f"{county}测试{street[-6:]}"
    assert page.evaluate("CityGrid.ratingRows") == [
        [name, *RATINGS[county]],
        ["合计", *RATINGS[county]],
    ]
    table = page.locator(".cg-ratings")
    assert table.is_visible()
    cells = page.evaluate(
        f"""[...document.querySelectorAll('.cg-ratings tr[data-code="{street}"] td')]
            .map(td => td.textContent)"""
    )
    assert cells[:5] == [name, *map(str, RATINGS[county]), str(sum(RATINGS[county]))]
    assert page.locator(f'.cg-ratings tr[data-code="{street}"] .cg-rating-bar i').count() == sum(
        1 for n in RATINGS[county] if n
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator(".cg-systems").screenshot(path=str(ARTIFACTS / f"leader-systems-{account}.png"))
    page.screenshot(path=str(ARTIFACTS / f"leader-systems-page-{account}.png"))
    page.close()
    assert seen.blocked == [] and seen.page_errors == [] and seen.console_errors == [], seen
    assert_policy_kept(seen)
