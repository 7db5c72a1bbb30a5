"""The leaders' dashboard and its weekly animation in a real headless Chromium on the demo city:
the heatmap and the choropleth draw from the API, a filter change redraws them, nothing errs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text

from layers.cases.codes import seed_case_categories
from layers.store import db
from tests.accounts import browser_context, ensure_account
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
