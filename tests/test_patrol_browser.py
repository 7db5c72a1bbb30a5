"""The reports' other systems on the inspector's patrol map, on a phone in a real headless
Chromium: the layers inside the patrol area (and nothing outside it), toggled in the collapsed
layer control; a fume check on a restaurant, a failed 门前三包 inspection that turns the
merchant's marker to the colour of its new rating, and a case reported on a garbage point."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from api.settings import DatabaseSettings
from layers.merchants.cards import REPORT_CATEGORIES
from layers.registry import LAYERS
from tests.accounts import TEST_AUTH, bearer, browser_context, ensure_account
from tests.support import ARTIFACTS, assert_policy_kept, live_server, wait_for, watch
from tests.world import World, point
from webmap.inspector import GARBAGE_POINT_CATEGORIES
from webmap.layers import MERCHANT_RATING

PHONE = {"width": 390, "height": 844}
SHOWN = ("merchants", "garbage_points", "restaurants", "stations")  # open on the first view
HIDDEN = ("cameras", "bike_parking_points", "bike_parking_lines")  # one tap away
DRAWN = (
    "Object.fromEntries(Object.entries(CityGrid.layers).filter(([k, l]) => l.getLayers)"
    ".map(([k, l]) => [k, l._map ? l.getLayers().map(f => f.feature && f.feature.id) : null]))"
)


@pytest.fixture(scope="module")
def restaurants(world: World) -> dict[str, int]:
    """A restaurant under fume monitoring in the west (patrolled) and in the east."""
    app = create_app(DatabaseSettings(database_url=world.url), auth_settings=TEST_AUTH)
    made = {}
    with TestClient(app) as client:
        for side, community in (("west", 1), ("east", 2)):
            feature = {
                "type": "Feature",
                "geometry": point(community, 40),
                "properties": {
                    "name": f"{side}饭店",
                    "purifier_type": "electrostatic",
                    "device_id": f"DEV-{side}",
                },
            }
            answer = client.post(
                "/collections/restaurants/items", json=feature, headers=bearer("admin")
            )
            assert answer.status_code == 201, answer.text
            made[side] = int(answer.headers["location"].rsplit("/", 1)[1])
    ensure_account(world.url, "leader", "leader")
    return made


def drawn(page: Any) -> dict[str, list[int] | None]:
    """The ids each GeoJSON layer on the map drew (None: the layer is switched off)."""
    return dict(page.evaluate(DRAWN))


def show(page: Any, geometry: dict[str, Any], zoom: int = 17) -> None:
    lon, lat = geometry["coordinates"]
    page.evaluate(
        "([lon, lat, z]) => void CityGrid.layers.patrol_area._map.setView([lat, lon], z,"
        " {animate: false})",
        [lon, lat, zoom],
    )
    page.wait_for_timeout(400)
    wait_for(page, "CityGrid.idle()")


def toggle(page: Any, title: str) -> None:
    """Tick or untick a layer in the open layer control."""
    box = page.locator(".leaflet-control-layers-overlays label", has_text=title).locator("input")
    checked = box.is_checked()
    box.dispatch_event("click")
    wait_for(
        page,
        "[...document.querySelectorAll('.leaflet-control-layers-overlays label')]"
        f".some(l => l.textContent.includes({json.dumps(title)})"
        f" && l.querySelector('input').checked !== {json.dumps(checked)})",
    )


def open_popup(page: Any, key: str, fid: int) -> None:
    page.evaluate(
        f"void CityGrid.layers.{key}.getLayers().find(l => l.feature.id === {fid}).openPopup()"
    )


def fill_color(page: Any, key: str, fid: int) -> str:
    return str(
        page.evaluate(
            f"CityGrid.layers.{key}.getLayers().find(l => l.feature.id === {fid}).options.fillColor"
        )
    )


def one(world: World, sql: str, **params: Any) -> Any:
    with world.engine.connect() as conn:
        return conn.execute(text(sql), params).one()


def test_field_work_on_the_reports_systems_from_the_phone(
    browser: Any, world: World, restaurants: dict[str, int]
) -> None:
    west = world.west | {"restaurants": restaurants["west"]}
    with live_server(world.url, CITYGRID_BASEMAP="none") as base:
        context = browser_context(
            browser, base, "inspector", viewport=PHONE, is_mobile=True, has_touch=True
        )
        page = context.new_page()
        seen = watch(page)
        page.goto(f"{base}/maps/inspector", wait_until="load")
        wait_for(
            page,
            "window.CityGrid && CityGrid.inspectorReady && CityGrid.idle()"
            " && CityGrid.layers.open_cases.loaded > 0",
            timeout=60_000,
        )
        control = page.locator(".leaflet-control-layers")
        assert "leaflet-control-layers-expanded" not in (control.get_attribute("class") or "")
        merchant = west["merchants"]
        geometry = httpx.get(
            f"{base}/collections/merchants/items/{merchant}", headers=bearer("admin")
        ).json()["geometry"]
        show(page, geometry, 13)  # zoomed out: counted cells from the tiles, no single point
        ids = drawn(page)
        assert all(ids[key] == [] for key in ("merchants", "garbage_points", "restaurants"))
        wait_for(page, "CityGrid.layers.merchants_clusters.inView().clusters.length > 0")
        cells = page.evaluate("CityGrid.layers.merchants_clusters.inView().clusters")
        assert sum(c["count"] for c in cells) == 1  # the east merchant is not the inspector's

        show(page, geometry)
        ids = drawn(page)
        for key in SHOWN:
            assert ids[key] == [west[key]], key
        for key in HIDDEN:
            assert ids[key] is None, key  # off until asked for
        page.dispatch_event(".leaflet-control-layers-toggle", "click")  # a tap: the list opens
        page.wait_for_selector(".leaflet-control-layers-expanded")
        for key in HIDDEN:
            toggle(page, _title(key))
        toggle(page, "门前三包商户")
        wait_for(page, "CityGrid.idle()")
        ids = drawn(page)
        for key in HIDDEN:
            assert ids[key] == [west[key]], key
        assert ids["merchants"] is None
        assert page.locator("path.cg-sector").count() == 1  # the west camera's sector
        toggle(page, "门前三包商户")
        wait_for(page, "CityGrid.idle() && CityGrid.layers.merchants.loaded === 1")
        page.evaluate("void CityGrid.layers.patrol_area._map.closePopup()")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "patrol-systems.png"))

        # a fume check on the restaurant
        open_popup(page, "restaurants", west["restaurants"])
        page.click(".cg-fume-check")
        page.fill("input[name=cleaned_on]", "2026-11-01")
        page.select_option("select[name=purifier_running]", "false")
        page.fill("textarea[name=problems]", "净化器未开启")
        page.click(".cg-submit")
        page.wait_for_selector(".cg-toast.cg-shown:has-text('油烟检查记录已保存')", timeout=30_000)
        check = one(
            world,
            "SELECT restaurant_id, inspector, purifier_running, problems FROM fume_checks",
        )
        assert tuple(check) == (west["restaurants"], "inspector", False, "净化器未开启")
        cleaned = one(
            world, "SELECT cleaned_on FROM restaurants WHERE id = :id", id=west["restaurants"]
        )
        assert str(cleaned[0]) == "2026-11-01"

        # a failed 门前三包 inspection: the rating rule turns the merchant yellow
        colors = MERCHANT_RATING.colors
        assert one(world, "SELECT rating FROM merchants WHERE id = :id", id=merchant)[0] == "green"
        assert fill_color(page, "merchants", merchant) == colors["green"]
        page.wait_for_selector(".leaflet-popup", state="detached")
        open_popup(page, "merchants", merchant)
        page.click(".cg-merchant-inspect")
        page.select_option("select[name=result]", "fail")
        page.fill("textarea[name=problems]", "店外堆放杂物")
        page.click(".cg-submit")
        page.wait_for_selector(".cg-toast.cg-shown:has-text('门前三包检查已保存')", timeout=30_000)
        wait_for(page, "CityGrid.idle() && CityGrid.layers.merchants.loaded === 1")
        assert one(world, "SELECT rating FROM merchants WHERE id = :id", id=merchant)[0] == "yellow"
        wait_for(
            page,
            "CityGrid.layers.merchants.getLayers()[0].options.fillColor === "
            + json.dumps(colors["yellow"]),
        )

        # a case on the garbage point, at its point, linked to it
        page.wait_for_selector(".leaflet-popup", state="detached")
        open_popup(page, "garbage_points", west["garbage_points"])
        page.click(".cg-garbage-case")
        page.wait_for_selector(".cg-sheet.cg-open select[name=category_code]")
        offered = page.eval_on_selector_all(
            "select[name=category_code] option", "os => os.map(o => o.value).filter(Boolean)"
        )
        assert offered == list(GARBAGE_POINT_CATEGORIES)
        assert "测试投放点" in page.locator(".cg-linked").inner_text()
        page.select_option("select[name=category_code]", "E0108")
        page.fill("textarea[name=description]", "投放点垃圾满溢")
        page.click(".cg-submit")
        page.wait_for_selector(".cg-toast.cg-shown:has-text('案件已上报')", timeout=30_000)
        case_id = page.evaluate("CityGrid.lastReported")
        case = one(
            world,
            "SELECT c.garbage_point_id, c.category_code, c.source,"
            " ST_Distance(c.geom::geography, g.geom::geography) < 0.5 AS at_point FROM cases AS c"
            " JOIN garbage_points AS g ON g.id = :g WHERE c.id = :id",
            id=case_id,
            g=west["garbage_points"],
        )
        assert tuple(case) == (west["garbage_points"], "E0108", "inspector", True)
        wait_for(page, "CityGrid.idle()")
        shown = page.evaluate(
            f"CityGrid.layers.open_cases.getLayers().find(l => l.feature.id === {case_id})"
            ".feature.properties.garbage_point"
        )
        assert shown == "测试投放点"  # the case's popup names the point

        # a case on the merchant offers the frontage short list
        open_popup(page, "merchants", merchant)
        page.click(".cg-merchant-case")
        offered = page.eval_on_selector_all(
            "select[name=category_code] option", "os => os.map(o => o.value).filter(Boolean)"
        )
        assert sorted(offered) == sorted(REPORT_CATEGORIES)  # grouped by their class
        page.click(".cg-cancel")
        page.close()
    assert seen.blocked == [] and seen.page_errors == [], (seen.blocked, seen.page_errors)
    assert seen.console_errors == [], seen.console_errors
    assert_policy_kept(seen)


def _title(key: str) -> str:
    return LAYERS[key].title_zh


def test_who_may_do_the_field_work_and_where(world: World, restaurants: dict[str, int]) -> None:
    """Only an inspector, only inside their area: refusals change nothing."""
    app = create_app(DatabaseSettings(database_url=world.url), auth_settings=TEST_AUTH)

    def post(name: str, layer: str, properties: dict[str, Any]) -> Any:
        body = {"type": "Feature", "geometry": None, "properties": properties}
        return client.post(f"/collections/{layer}/items", json=body, headers=bearer(name))

    def inspection(merchant: int) -> dict[str, Any]:
        return {"merchant_id": merchant, "inspected_on": "2026-11-20", "inspector": "甲"}

    with TestClient(app, follow_redirects=False) as client:
        for name in ("leader", "planner", "handler", "dispatcher"):
            page = client.get("/maps/inspector", headers=bearer(name))
            assert page.status_code == 403, (name, page.status_code)
        before = one(
            world,
            "SELECT (SELECT count(*) FROM merchant_inspections),"
            " (SELECT count(*) FROM fume_checks), (SELECT count(*) FROM cases)",
        )
        east_fail = inspection(world.east["merchants"]) | {"result": "fail"}
        assert post("inspector", "merchant_inspections", east_fail).status_code in (403, 404)
        for name in ("leader", "planner", "handler"):
            west_fail = inspection(world.west["merchants"]) | {"result": "fail"}
            assert post(name, "merchant_inspections", west_fail).status_code == 403, name
            check = {"restaurant_id": restaurants["west"], "checked_on": "2026-11-20"}
            assert post(name, "fume_checks", check | {"inspector": "甲"}).status_code == 403
        east_check = {"restaurant_id": restaurants["east"], "checked_on": "2026-11-20"}
        assert post("inspector", "fume_checks", east_check | {"inspector": "甲"}).status_code in (
            403,
            404,
        )
        on_east = {
            "type": "Feature",
            "geometry": point(2),
            "properties": {
                "category_code": "E0108",
                "garbage_point_id": world.east["garbage_points"],
            },
        }
        refused = client.post("/cases", json=on_east, headers=bearer("inspector"))
        assert refused.status_code == 403, refused.text
        after = one(
            world,
            "SELECT (SELECT count(*) FROM merchant_inspections),"
            " (SELECT count(*) FROM fume_checks), (SELECT count(*) FROM cases)",
        )
        assert tuple(after) == tuple(before)
        rating = one(
            world, "SELECT rating FROM merchants WHERE id = :id", id=world.east["merchants"]
        )
        assert rating[0] == "green"
