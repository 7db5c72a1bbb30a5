"""The planner's map in a real headless Chromium: split by drawing a line, an overlapping grid refused."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from shapely.geometry import MultiPolygon, box
from sqlalchemy import text

from layers.places import counties
from layers.store import db
from tests.accounts import bearer, browser_context, ensure_account
from tests.databases import fresh_database
from tests.street import COMMUNITIES, SIDE, STREET, family_box, insert_grid, lonlat, section
from tests.support import ARTIFACTS, assert_policy_kept, live_server, wait_for, watch


@pytest.fixture(scope="module")
def planner_db(pg_server: Any) -> Iterator[str]:
    databases = fresh_database(pg_server, "planner")
    url = next(databases)
    engine = db.make_engine(url)
    x0, y0 = family_box(0, 0)
    street = box(x0, y0, x0 + 4 * SIDE, y0 + 3 * SIDE)
    with engine.begin() as conn:
        insert_grid(conn, "street", STREET, None, street, "2020-01-01")
        # the test county is this one street: its official boundary is the streets' parent
        counties.set_boundary(conn, "320681", MultiPolygon([lonlat(street)]))
        insert_grid(
            conn,
            "community",
            COMMUNITIES[1],
            STREET,
            box(x0, y0, x0 + 4 * SIDE, y0 + 3 * SIDE),
            "2020-01-01",
        )
        for k in range(12):
            i, j = k % 4, 2 - k // 4
            cell = box(x0 + i * SIDE, y0 + j * SIDE, x0 + (i + 1) * SIDE, y0 + (j + 1) * SIDE)
            insert_grid(conn, "section", section(1, k + 1), COMMUNITIES[1], cell, "2020-01-01")
        conn.execute(text("SELECT 1"))
    engine.dispose()
    yield url
    next(databases, None)


def screen_box(page: Any, code: str) -> dict[str, float]:
    """The on-screen pixel box of a section grid."""
    return page.evaluate(
        """code => {
            const layer = CityGrid.layers.grids_section.getLayers().find(l => l.feature.properties.code === code);
            const map = layer._map, b = layer.getBounds(), r = map.getContainer().getBoundingClientRect();
            const nw = map.latLngToContainerPoint(b.getNorthWest()), se = map.latLngToContainerPoint(b.getSouthEast());
            return {left: r.left + nw.x, top: r.top + nw.y, right: r.left + se.x, bottom: r.top + se.y};
        }""",
        code,
    )


def click(page: Any, x: float, y: float) -> None:
    """A deliberate click, as a person makes it: Leaflet.Draw drops clicks that follow too fast."""
    page.mouse.move(x, y, steps=4)
    page.mouse.down()
    page.wait_for_timeout(60)
    page.mouse.up()
    page.wait_for_timeout(350)


def test_split_by_a_drawn_line_and_refuse_an_overlapping_grid(
    browser: Any, planner_db: str
) -> None:
    with live_server(planner_db) as base:
        ensure_account(planner_db, "planner", "planner")
        page = browser_context(
            browser, base, "planner", viewport={"width": 1280, "height": 860}, locale="zh-CN"
        ).new_page()
        seen = watch(page)
        page.goto(f"{base}/maps/planner", wait_until="load")
        wait_for(
            page,
            "window.CityGrid && CityGrid.plannerReady && CityGrid.idle()"
            " && CityGrid.layers.grids_section.getLayers().length === 12",
            timeout=60_000,
        )
        page.wait_for_selector(".cg-problem-count:text('未发现问题')")
        target = screen_box(page, section(1, 6))
        x = (target["left"] + target["right"]) / 2
        page.click(".leaflet-draw-draw-polyline")
        click(page, x, target["top"] - 15)
        click(page, x, target["bottom"] + 15)
        page.click(".leaflet-draw-actions a:text('完成')")
        page.wait_for_selector(
            ".cg-planner-message.cg-info:has-text('拆分网格成功')", timeout=30_000
        )
        wait_for(
            page,
            "CityGrid.idle() && CityGrid.layers.grids_section.getLayers().length === 13",
            timeout=30_000,
        )
        page.wait_for_selector(".cg-problem-count:text('未发现问题')")
        message = page.locator(".cg-planner-message").inner_text()
        assert section(1, 13) in message and section(1, 14) in message and section(1, 6) in message
        grids = httpx.get(
            f"{base}/grids?parent={COMMUNITIES[1]}", headers=bearer("planner")
        ).json()["features"]
        codes = {g["properties"]["code"] for g in grids}
        assert {section(1, 13), section(1, 14)} <= codes and section(1, 6) not in codes
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "planner-after-split.png"))

        inside = screen_box(page, section(1, 7))
        w, h = inside["right"] - inside["left"], inside["bottom"] - inside["top"]
        corners = [(0.3, 0.3), (0.7, 0.3), (0.7, 0.7), (0.3, 0.7), (0.3, 0.3)]
        page.click(".leaflet-draw-draw-polygon")
        for fx, fy in corners:
            click(page, inside["left"] + fx * w, inside["top"] + fy * h)
        page.wait_for_selector(".cg-planner-message.cg-error", timeout=30_000)
        refusal = page.locator(".cg-planner-message").inner_text()
        assert "新增网格未保存" in refusal and "重叠" in refusal
        wait_for(page, "CityGrid.idle()")
        assert "当前问题" in page.locator(".cg-problem-count").inner_text()
        assert "重叠" in page.locator(".cg-problems").inner_text()
        page.screenshot(path=str(ARTIFACTS / "planner-overlap-refused.png"))
        after = httpx.get(
            f"{base}/grids?parent={COMMUNITIES[1]}", headers=bearer("planner")
        ).json()["features"]
        assert len(after) == 13  # nothing was saved
        page.close()
    assert seen.blocked == [] and seen.page_errors == [], (seen.blocked, seen.page_errors)
    assert_policy_kept(seen)
    unexpected = [m for m in seen.console_errors if "409" not in m]
    assert unexpected == [], unexpected
