"""The command map (大指挥) in a real headless Chromium over two counties: the fleet and the
inspectors drawn from the live stream, a position posted during the test moving its marker, an
alarm appearing in the list with its Chinese label, a filter hiding a kind, a company filter, a
track played back; each role that may see the page reads its counties only, the others are
refused; nothing leaves 127.0.0.1 and nothing errs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from layers.store import db
from tests.accounts import TEST_PASSWORD, bearer, browser_context
from tests.counties import DEMO, SANYUAN, CountyRows
from tests.databases import PgServer, fresh_database
from tests.fleet import at, build_fleet, community_point, report, report_everyone
from tests.support import ARTIFACTS, assert_policy_kept, live_server, wait_for, watch

ENV = {"CITYGRID_LIVE_INTERVAL_S": "0.2", "CITYGRID_LIVE_HEARTBEAT_S": "2"}
READY = "window.CityGrid && CityGrid.commandReady && CityGrid.live.snapshots >= 1"
UNKNOWN_TERMINAL = "13399990002"
TRUCK = "13311110001"  # the demo county's muck truck


@dataclass
class Fleet:
    """The server, the database as its owner, the counties' rows and the trackers' ids."""

    base: str
    engine: Engine
    rows: dict[str, CountyRows]
    trackers: dict[str, int]


@pytest.fixture(scope="module")
def fleet(pg_server: PgServer) -> Iterator[Fleet]:
    databases = fresh_database(pg_server, "command")
    url = next(databases)
    engine = db.make_engine(pg_server.as_owner(url))
    try:
        rows = build_fleet(engine)
        with live_server(url, **ENV) as base:
            yield Fleet(base, engine, rows, report_everyone(base, engine, rows))
    finally:
        engine.dispose()
        next(databases, None)


def _open(browser: Any, fleet: Fleet, who: str, path: str = "/maps/command") -> tuple[Any, Any]:
    page = browser_context(
        browser,
        fleet.base,
        who,
        viewport={"width": 1366, "height": 900},
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
    ).new_page()
    seen = watch(page)
    page.goto(f"{fleet.base}{path}", wait_until="load")
    return page, seen


def _shown(page: Any) -> dict[str, Any]:
    return dict(
        page.evaluate(
            """() => ({
                trackers: Object.keys(CityGrid.live.trackers).map(Number),
                adcodes: [...new Set(Object.values(CityGrid.live.trackers)
                    .map(t => t.feature.properties.adcode))].sort(),
                vehicles: CityGrid.layers.vehicles.getLayers().length,
                people: document.querySelectorAll('.leaflet-marker-icon.cg-person').length,
                circles: document.querySelectorAll('path.leaflet-interactive').length
            })"""
        )
    )


def test_the_dispatcher_watches_the_fleet_live(browser: Any, fleet: Fleet) -> None:
    page, seen = _open(browser, fleet, "dispatcher-a")
    wait_for(page, READY)
    shown = _shown(page)
    assert sorted(shown["trackers"]) == sorted(
        fleet.trackers[k] for k in ("13311110001", "13311110002", "inspector-a")
    )
    assert shown["adcodes"] == [DEMO] and shown["vehicles"] == 2 and shown["people"] == 1
    assert "实时" in page.locator(".cg-live-state").inner_text()
    legend = page.locator(".cg-legend").inner_text()
    assert all(word in legend for word in ("行驶中", "停止", "离线", "巡查员"))

    # a position posted now moves the truck's marker
    truck = fleet.trackers[TRUCK]
    with fleet.engine.connect() as conn:
        lon, lat = community_point(conn, fleet.rows[DEMO], 0)
    report(fleet.base, "admin", [at((lon + 0.0005, lat), 0.05, 30.0, terminal=TRUCK)])
    wait_for(
        page,
        f"Math.abs(CityGrid.live.trackers['{truck}'].marker.getLatLng().lng - {lon + 0.0005})"
        " < 1e-6",
    )

    # an alarm appears as it is raised: in the list, as a marker and as a toast
    report(fleet.base, "admin", [at((lon, lat), 0.02, 12.0, terminal=UNKNOWN_TERMINAL)])
    wait_for(page, "document.querySelectorAll('.cg-alarm-list li.cg-alarm-open').length >= 1")
    assert "未登记车辆" in page.locator(".cg-alarm-list li").first.inner_text()
    assert "新报警：未登记车辆" in page.locator(".cg-command-toast").inner_text()
    assert page.evaluate("CityGrid.layers.alarms.getLayers().length") == 1
    wait_for(page, "CityGrid.layers.vehicles.getLayers().length === 3")  # the unknown terminal

    # filters: a kind, then a company
    page.uncheck(".cg-command input[name=kind][value=muck]")
    assert page.evaluate("CityGrid.layers.vehicles.getLayers().length") == 2
    page.check(".cg-command input[name=kind][value=muck]")
    page.uncheck(".cg-command input[name=kind][value=inspector]")
    assert page.locator(".leaflet-marker-icon.cg-person").count() == 0
    page.check(".cg-command input[name=kind][value=inspector]")
    companies = page.evaluate(
        "[...document.querySelectorAll('.cg-command select[name=company] option')].map(o => o.value)"
    )
    assert companies == ["", "启东渣土运输公司", "启东环卫公司"]
    page.select_option(".cg-command select[name=company]", "启东环卫公司")
    assert page.evaluate("CityGrid.layers.vehicles.getLayers().length") == 1
    assert page.evaluate("CityGrid.layers.alarms.getLayers().length") == 0
    page.select_option(".cg-command select[name=company]", "")
    assert page.evaluate("CityGrid.layers.vehicles.getLayers().length") == 3

    # playback of the truck's two positions
    page.select_option(".cg-command select[name=tracker]", str(truck))
    page.select_option(".cg-command select[name=speed]", "300")
    page.click(".cg-command .cg-play-load")
    wait_for(page, "CityGrid.playback.loaded >= 1")
    assert page.locator("path.cg-track-line").count() == 1
    assert page.evaluate("CityGrid.playback.points.length") == 2
    wait_for(page, "CityGrid.playback.done", timeout=15_000)
    assert "回放结束" in page.locator(".cg-play-status").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "command-map.png"))
    page.close()
    assert seen.blocked == [] and seen.page_errors == [] and seen.console_errors == [], seen
    assert_policy_kept(seen)


def _readable(fleet: Fleet, who: str, county: str) -> list[int]:
    """The trackers `who` reads in `county`, as the API answers them."""
    answer = httpx.get(
        f"{fleet.base}/tracking/vehicles?county={county}", headers=bearer(who), timeout=30
    )
    assert answer.status_code == 200, answer.text
    return sorted(int(f["id"]) for f in answer.json()["features"])


@pytest.mark.parametrize(
    ("who", "first"), [("leader-city", DEMO), ("admin", DEMO), ("dispatcher-b", SANYUAN)]
)
def test_each_role_that_may_watch_sees_the_county_it_chose(
    browser: Any, fleet: Fleet, who: str, first: str
) -> None:
    page, seen = _open(browser, fleet, who)
    wait_for(page, READY)
    shown = _shown(page)
    assert shown["adcodes"] == [first] and shown["people"] == 1
    assert sorted(shown["trackers"]) == _readable(fleet, who, first)
    if first == DEMO:  # holds both: the county picker switches the page and its stream
        page.click(f".cg-counties a[data-county='{SANYUAN}']")
        page.wait_for_load_state("load")
        wait_for(page, READY)
        switched = _shown(page)
        assert switched["adcodes"] == [SANYUAN] and switched["people"] == 1
        assert sorted(switched["trackers"]) == _readable(fleet, who, SANYUAN)
    page.close()
    assert seen.blocked == [] and seen.page_errors == [] and seen.console_errors == [], seen
    assert_policy_kept(seen)


@pytest.mark.parametrize("who", ["planner-a", "inspector-a", "handler-a"])
def test_roles_the_page_is_not_for_are_refused(browser: Any, fleet: Fleet, who: str) -> None:
    page, _ = _open(browser, fleet, who)
    assert "无权访问此页面" in page.locator("h1").inner_text()
    assert "指挥中心派遣员" in page.locator("p").first.inner_text()
    page.close()


def test_a_visitor_is_sent_to_sign_in(fleet: Fleet) -> None:
    answer = httpx.get(f"{fleet.base}/maps/command", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/login?next=/maps/command"


def test_a_dispatcher_signing_in_lands_on_the_command_map(fleet: Fleet) -> None:
    answer = httpx.post(
        f"{fleet.base}/login",
        data={"username": "dispatcher-a", "password": TEST_PASSWORD},
        headers={"Origin": fleet.base},
        follow_redirects=False,
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/maps/command"
