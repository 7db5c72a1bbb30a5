"""The leaders' dashboard and its weekly animation in a real headless Chromium on the demo city:
the heatmap and the choropleth draw from the API, a filter change redraws them, nothing errs; and
on two counties, the departments' ranking equals the API's and links the month's bulletin."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from layers.cases.codes import seed_case_categories
from layers.store import db
from tests.accounts import bearer, browser_context, ensure_account
from tests.counties import DEMO, SANYUAN, two_counties
from tests.support import ARTIFACTS, assert_policy_kept, live_server, wait_for, watch

READY = "window.CityGrid && CityGrid.leaderReady && CityGrid.idle()"


@pytest.fixture(scope="module", autouse=True)
def leader_account(database_url: str, demo: dict[str, int]) -> None:
    ensure_account(database_url, "leader", "leader")


@pytest.fixture(scope="module")
def base(database_url: str, demo: dict[str, int]) -> Iterator[str]:
    """One server on the demo city for the tests that only read it."""
    with live_server(database_url) as url:
        yield url


def drawn(page: Any) -> dict[str, Any]:
    return dict(
        page.evaluate(
            """() => ({
                heat: CityGrid.layers.heat._latlngs.length,
                total: CityGrid.heatTotal,
                grids: CityGrid.layers.choropleth.getLayers().length,
                fills: new Set(CityGrid.layers.choropleth.getLayers().map(l => l.options.fillColor)).size,
                worst: document.querySelectorAll('.cg-worst tr[data-code]').length,
                lines: document.querySelectorAll('.cg-trend-line').length,
                round: CityGrid.dashboardRound
            })"""
        )
    )


def overdue_in(engine: Engine) -> int:
    """Open cases past their deadline, by SQL of the test's own."""
    with engine.connect() as conn:
        found: int = conn.execute(
            text(
                "SELECT count(*) FROM cases "
                "WHERE status NOT IN ('closed', 'rejected') AND deadline < now()"
            )
        ).scalar_one()
    return found


def registered_per_unit(engine: Engine, column: str, page: Any) -> dict[str, int]:
    """Cases on components registered in the page's period, per unit of the component, by SQL
    of the test's own (the components as they are now: the demo's never change)."""
    period = {
        "start": page.input_value("input[name=from]"),
        "end": page.input_value("input[name=to]"),
    }
    with engine.connect() as conn:
        found = conn.execute(
            text(f"""
            SELECT m.{column}, count(*) FROM cases AS c
            JOIN components AS m ON m.component_code = c.component_code AND m.adcode = c.adcode
            WHERE CAST(c.registered_at AT TIME ZONE 'Asia/Shanghai' AS date)
                  BETWEEN CAST(:start AS date) AND CAST(:end AS date)
            GROUP BY m.{column}
        """),
            period,
        )
        return {str(unit): int(n) for unit, n in found if unit is not None}


def test_the_dashboard_draws_and_redraws_on_a_filter(
    browser: Any, base: str, engine: Engine
) -> None:
    page = browser_context(
        browser, base, "leader", viewport={"width": 1366, "height": 900}, locale="zh-CN"
    ).new_page()
    seen = watch(page)
    page.goto(f"{base}/maps/leader", wait_until="load")
    wait_for(page, READY, timeout=60_000)
    page.wait_for_timeout(300)
    first = drawn(page)
    assert first["heat"] > 50 and first["total"] > 10_000
    assert first["grids"] == 349 and first["fills"] >= 4  # every section, coloured by class
    assert first["worst"] == 10 and first["lines"] >= 3
    assert page.locator("canvas.leaflet-heatmap-layer").count() == 1
    assert "件" in page.locator(".cg-overdue-count").inner_text()
    assert page.evaluate("CityGrid.overdueCount") == overdue_in(engine)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "leader-dashboard.png"))
    for by, column in (("maintainer", "maintainer_unit"), ("owner", "owner_unit")):
        if by == "owner":
            before = page.evaluate("CityGrid.unitsRound")
            page.select_option(".cg-dashboard select[name=unit_by]", "owner")
            wait_for(page, f"CityGrid.unitsRound > {before}")
        shown = {unit: n for unit, n in page.evaluate("CityGrid.unitRows")}
        expected = registered_per_unit(engine, column, page)
        assert len(expected) >= 3, expected  # the demo raises cases on components
        assert len(shown) == min(10, len(shown) + sum(1 for u in expected if u not in shown))
        wrong = {u: (n, expected.get(u, 0)) for u, n in shown.items() if expected.get(u, 0) != n}
        assert not wrong, (by, wrong)
        assert min(shown.values()) >= max(
            (n for u, n in expected.items() if u not in shown), default=0
        )

    with engine.connect() as conn:
        classes = conn.execute(
            text("SELECT kind, code, name FROM case_category_classes ORDER BY kind DESC, code")
        ).all()
    kinds = {"event": ("E", "事件"), "component": ("C", "部件")}
    listed = page.evaluate(
        "[...document.querySelectorAll('.cg-dashboard select[name=category] option')]"
        ".map(o => [o.value, o.textContent])"
    )
    assert listed[0] == ["", "全部类别"]
    assert listed[1:] == [
        [kinds[kind][0] + code, f"{kinds[kind][1]}·{name}"] for kind, code, name in classes
    ]
    assert ["C07", "部件·扩展部件"] in listed  # a local class of the catalogue
    round_before = page.evaluate("CityGrid.dashboardRound")
    page.select_option(".cg-dashboard select[name=category]", "C01")
    wait_for(page, f"CityGrid.dashboardRound > {round_before} && CityGrid.idle()")
    asked = [u for u in seen.requested if "/stats/" in u and "category=C01" in u]
    assert {u.split("?")[0].rsplit("/stats/", 1)[1] for u in asked} >= {
        "heatmap",
        "choropleth",
        "trend",
        "overdue",
    }, asked
    first["round"] = page.evaluate("CityGrid.dashboardRound")
    page.select_option(".cg-dashboard select[name=category]", "E01")
    wait_for(page, f"CityGrid.dashboardRound > {first['round']} && CityGrid.idle()")
    page.wait_for_timeout(300)
    filtered = drawn(page)
    assert 0 < filtered["total"] < first["total"] and filtered["grids"] == 349
    page.select_option(".cg-dashboard select[name=measure]", "per_km2")
    wait_for(page, "CityGrid.idle()")
    header = page.locator(".cg-worst tr").first.inner_text()
    assert "每平方公里案件数" in header
    csv = page.get_attribute(".cg-csv", "href")
    assert csv is not None and "format=csv" in csv and "category=E01" in csv
    page.screenshot(path=str(ARTIFACTS / "leader-dashboard-filtered.png"))
    before = page.evaluate("CityGrid.dashboardRound")
    street = page.locator(".cg-dashboard select[name=street] option").nth(1).get_attribute("value")
    page.select_option(".cg-dashboard select[name=street]", street)
    wait_for(page, f"CityGrid.dashboardRound > {before} && CityGrid.idle()")
    page.wait_for_timeout(300)
    one_street = drawn(page)
    assert 0 < one_street["grids"] < 349 and one_street["total"] < filtered["total"]
    page.close()
    assert seen.blocked == [] and seen.page_errors == [] and seen.console_errors == [], seen
    assert_policy_kept(seen)


def test_the_weekly_heatmap_plays_from_the_api(browser: Any, base: str) -> None:
    page = browser_context(
        browser, base, "leader", viewport={"width": 1280, "height": 860}, locale="zh-CN"
    ).new_page()
    seen = watch(page)
    page.goto(f"{base}/maps/leader/timeline", wait_until="load")
    wait_for(page, "window.CityGrid && CityGrid.timelineReady", timeout=60_000)
    assert page.evaluate("CityGrid.timelineFrames") in (52, 53)
    assert page.locator(".leaflet-control-timecontrol").count() >= 1
    label = page.locator(".timecontrol-date").first.inner_text()
    assert "起一周" in label
    page.click(".timecontrol-forward")
    page.wait_for_timeout(500)
    assert page.locator(".timecontrol-date").first.inner_text() != label
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "leader-timeline.png"))
    page.close()
    assert seen.blocked == [] and seen.page_errors == [] and seen.console_errors == [], seen
    assert_policy_kept(seen)


def test_the_overdue_count_shown_is_the_databases_above_two_thousand(
    browser: Any, pg_server: Any, scratch_url: str
) -> None:
    engine = db.make_engine(pg_server.as_owner(scratch_url))
    try:
        with engine.begin() as conn:
            seed_case_categories(conn)
            conn.execute(
                text("""
                INSERT INTO cases (adcode, geom, category_code, source, status, reported_at,
                                   registered_at, dispatched_at, deadline, unit)
                SELECT '320681', ST_SetSRID(ST_MakePoint(121.657 + n * 1e-6, 31.808), 4490),
                       'E0101', 'inspector', 'dispatched', t, t, t, t + interval '4 hours',
                       '测试中队'
                FROM generate_series(1, 2345) AS n,
                     LATERAL (SELECT now() - interval '30 days' + n * interval '1 minute') AS s(t)
            """)
            )
        ensure_account(engine, "leader", "leader")
        expected = overdue_in(engine)
        assert expected > 2_000
        with live_server(scratch_url) as base:
            page = browser_context(
                browser, base, "leader", viewport={"width": 1366, "height": 900}, locale="zh-CN"
            ).new_page()
            seen = watch(page)
            page.goto(f"{base}/maps/leader", wait_until="load")
            wait_for(page, READY, timeout=60_000)
            shown = page.locator(".cg-overdue-count").inner_text()
            assert shown.replace(",", "") == f"（{expected} 件）"
            assert page.evaluate("CityGrid.overdueCount") == expected
            assert page.locator(".cg-overdue li").count() == 10
            page.close()
        assert seen.page_errors == [], seen.page_errors
    finally:
        engine.dispose()


RANKED = "CityGrid.rankingRound > {n} && CityGrid.idle()"
# units of the two counties besides tests/counties.py's (whose three March cases none handled):
# (adcode, unit, deadline, handled)
MARCH_UNITS = (
    (DEMO, "二中队", "2026-03-10 17:30", "2026-03-09 10:00"),  # on time: A
    (DEMO, "三中队", "2026-03-12 09:00", "2026-03-12 15:00"),  # late: D
    (SANYUAN, "三元区二中队", "2026-03-11 17:30", "2026-03-11 09:00"),  # on time: A
)


@pytest.fixture
def two_county_server(scratch_owner: Engine, scratch_url: str) -> Iterator[tuple[str, Any]]:
    """A server on both counties of tests/counties.py, a few more units' March cases, and leaders
    of one county, of both, and an admin."""
    with scratch_owner.begin() as conn:
        seed_case_categories(conn)
        demo, second = two_counties(conn)
        for adcode, unit, deadline, handled in MARCH_UNITS:
            rows = demo if adcode == DEMO else second
            lon, lat = rows.lonlat(0, 0)
            conn.execute(
                text("""
                INSERT INTO cases (adcode, geom, category_code, source, status, reported_at,
                                   registered_at, dispatched_at, handled_at, deadline, unit)
                VALUES (:adcode, ST_SetSRID(ST_MakePoint(:lon, :lat), 4490), 'E0101',
                        'inspector', 'handled', :at, :at, :at, :handled, :deadline, :unit)
            """),
                {"adcode": adcode, "lon": lon, "lat": lat, "unit": unit}
                | {"at": "2026-03-02 09:00+08", "handled": f"{handled}+08"}
                | {"deadline": f"{deadline}+08"},
            )
    for name, role, held in (
        ("leader-a", "leader", (DEMO,)),
        ("leader-b", "leader", (SANYUAN,)),
        ("leader-city", "leader", (DEMO, SANYUAN)),
        ("admin-x", "admin", None),
    ):
        ensure_account(scratch_owner, name, role, counties=held)
    with live_server(scratch_url) as url:
        yield url, scratch_owner


def _set_period(page: Any, start: str, end: str) -> None:
    """Choose a period in the dashboard's filters and wait for the ranking to be redrawn."""
    before = page.evaluate("CityGrid.rankingRound")
    page.evaluate(
        """([start, end]) => {
            const box = document.querySelector('.cg-leader');
            box.querySelector('input[name=from]').value = start;
            box.querySelector('input[name=to]').value = end;
            box.querySelector('input[name=to]').dispatchEvent(new Event('change'));
        }""",
        [start, end],
    )
    wait_for(page, RANKED.format(n=before))


def _api_ranking(base: str, account: str, start: str, end: str, county: str) -> list[list[Any]]:
    """The departments' evaluation as the API answers it, best score first (none last), by name."""
    answer = httpx.get(
        f"{base}/stats/evaluation",
        params={"object": "department", "from": start, "to": end, "county": county},
        headers=bearer(account),
    )
    assert answer.status_code == 200, answer.text
    rows = answer.json()["rows"]
    assert {r["adcode"] for r in rows} == {county}
    rows.sort(key=lambda r: (-(r["score"] if r["score"] is not None else -1), r["key"]))
    return [[r["key"], r["score"], r["grade"]] for r in rows]


@pytest.mark.parametrize(
    ("account", "county", "asked"),
    [
        ("leader-a", DEMO, None),
        ("leader-b", SANYUAN, None),
        ("leader-city", SANYUAN, SANYUAN),
        ("leader-city", DEMO, DEMO),
        ("admin-x", SANYUAN, SANYUAN),
    ],
)
def test_the_dashboard_ranks_the_departments_and_links_the_months_bulletin(
    browser: Any,
    two_county_server: tuple[str, Engine],
    account: str,
    county: str,
    asked: str | None,
) -> None:
    base, _ = two_county_server
    page = browser_context(
        browser, base, account, viewport={"width": 1366, "height": 900}, locale="zh-CN"
    ).new_page()
    seen = watch(page)
    page.goto(f"{base}/maps/leader" + (f"?county={asked}" if asked else ""), wait_until="load")
    wait_for(page, READY, timeout=60_000)
    _set_period(page, "2026-03-01", "2026-03-31")
    shown = page.evaluate("CityGrid.rankingRows")
    expected = _api_ranking(base, account, "2026-03-01", "2026-03-31", county)
    assert shown == expected and len(shown) >= 2
    units = {
        DEMO: {"启东测试中队", "二中队", "三中队"},
        SANYUAN: {"三元区测试中队", "三元区二中队"},
    }
    assert {key for key, _, _ in shown} == units[county]
    table = page.evaluate(
        """[...document.querySelectorAll('.cg-ranking tr[data-unit]')].map(tr =>
            [...tr.querySelectorAll('td')].map(td => td.textContent))"""
    )
    assert [row[1] for row in table] == [key for key, _, _ in expected]
    assert [row[0] for row in table] == [str(n) for n in range(1, len(table) + 1)]
    assert [row[2] for row in table] == [f"{score:.2f}" for _, score, _ in expected]
    assert [row[3] for row in table] == [grade for _, _, grade in expected]
    first = expected[0][2]
    assert (
        first == "A"
        and page.evaluate(
            f"getComputedStyle(document.querySelector('.cg-ranking .cg-grade-{first}'))"
            ".backgroundColor"
        )
        == "rgb(30, 132, 73)"
    )
    links = {
        fmt: page.get_attribute(f".cg-bulletin .cg-bulletin-{fmt}", "href")
        for fmt in ("docx", "pdf")
    }
    assert links == {
        fmt: f"/reports/monthly?month=2026-03&format={fmt}&county={county}"
        for fmt in ("docx", "pdf")
    }
    assert "下载通报 Word" in page.locator(".cg-bulletin").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator(".cg-leader").screenshot(path=str(ARTIFACTS / f"leader-ranking-{account}.png"))
    # a period across months: the last full month it ends with
    _set_period(page, "2026-01-15", "2026-03-20")
    assert page.get_attribute(".cg-bulletin-pdf", "href") == (
        f"/reports/monthly?month=2026-02&format=pdf&county={county}"
    )
    assert page.evaluate("CityGrid.rankingRows") == _api_ranking(
        base, account, "2026-01-15", "2026-03-20", county
    )
    # a period with nothing due: no row, a sentence
    _set_period(page, "2025-01-01", "2025-01-31")
    assert page.evaluate("CityGrid.rankingRows") == []
    assert "本期无应处置案件" in page.locator(".cg-ranking").inner_text()
    page.close()
    assert seen.blocked == [] and seen.page_errors == [] and seen.console_errors == [], seen
    assert_policy_kept(seen)
