"""The inspector's map on a phone-sized screen in a real headless Chromium: sign in through the
login page, see only the patrol area, report a case with a photo at a tapped point, find it in
the API; a report outside the area shows the API's refusal and saves nothing."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import httpx
from sqlalchemy import text

from tests.accounts import TEST_PASSWORD, bearer
from tests.support import ARTIFACTS, JPEG, assert_policy_kept, live_server, wait_for, watch
from tests.world import SPATIAL, World

PHONE = {"width": 390, "height": 844}
LAYER_KEYS = {
    "illegal_buildings": "illegal_buildings",
    "billboards": "billboards",
    "dust_sites": "dust_sites",
    "parking_lots": "parking_lots",
    "cases": "open_cases",
}


def drawn_ids(page: Any) -> dict[str, list[int]]:
    return dict(
        page.evaluate(
            "Object.fromEntries(Object.entries(CityGrid.layers).map("
            "([k, l]) => [k, l.getLayers().map(f => f.feature && f.feature.id)]))"
        )
    )


def tap_at(page: Any, lon: float, lat: float) -> None:
    """Tap the map where a longitude/latitude is shown."""
    x, y = page.evaluate(
        "([lon, lat]) => { const m = CityGrid.layers.patrol_area._map;"
        " const p = m.latLngToContainerPoint([lat, lon]);"
        " const r = m.getContainer().getBoundingClientRect(); return [r.left + p.x, r.top + p.y]; }",
        [lon, lat],
    )
    page.touchscreen.tap(x, y)


def fill_report(page: Any, description: str) -> None:
    page.wait_for_selector(".cg-sheet.cg-open select[name=category_code]")
    page.select_option("select[name=category_code]", "E0102")
    page.fill("textarea[name=description]", description)
    page.set_input_files(
        "input[name=photo]", {"name": "现场.jpg", "mimeType": "image/jpeg", "buffer": JPEG}
    )
    page.click(".cg-submit")


def test_an_inspector_reports_a_case_from_the_phone_map(browser: Any, world: World) -> None:
    with live_server(world.url) as base:
        context = browser.new_context(
            viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="zh-CN"
        )
        page = context.new_page()
        seen = watch(page)
        page.goto(f"{base}/maps/inspector", wait_until="load")
        assert page.url.startswith(f"{base}/login?next=/maps/inspector")
        page.fill("#username", "inspector")
        page.fill("#password", TEST_PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/maps/inspector")
        wait_for(
            page,
            "window.CityGrid && CityGrid.inspectorReady && CityGrid.idle()"
            " && CityGrid.layers.open_cases.loaded > 0 && CityGrid.layers.dust_sites.loaded > 0",
            timeout=60_000,
        )
        assert "width=device-width" in page.content()
        assert "我的巡查区域" in page.locator(".cg-title").inner_text()
        ids = drawn_ids(page)
        for layer in SPATIAL:
            assert ids[LAYER_KEYS[layer]] == [world.west[layer]], layer
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "inspector-phone.png"))

        page.evaluate(
            "CityGrid.layers.dust_sites.getLayers()[0].openPopup()"
        )  # the dust site's popup offers the field forms
        assert page.locator(".cg-actions .cg-record").count() == 1
        assert page.locator(".cg-close-order").count() == 1
        page.evaluate("CityGrid.layers.patrol_area._map.closePopup()")
        page.wait_for_selector(".leaflet-popup", state="detached")  # it fades out first

        west_case = httpx.get(
            f"{base}/collections/cases/items/{world.west['cases']}", headers=bearer("admin")
        ).json()["geometry"]["coordinates"]
        page.click(".cg-report")
        page.wait_for_selector(".cg-toast.cg-shown:has-text('请在地图上点击案件位置')")
        tap_at(page, west_case[0] + 0.0005, west_case[1] + 0.0003)
        fill_report(page, "手机上报：人行道暴露垃圾")
        page.wait_for_selector(".cg-toast.cg-shown:has-text('案件已上报')", timeout=30_000)
        case_id = page.evaluate("CityGrid.lastReported")
        wait_for(page, "CityGrid.idle() && CityGrid.layers.open_cases.loaded === 2")
        page.screenshot(path=str(ARTIFACTS / "inspector-reported.png"))

        case = httpx.get(
            f"{base}/collections/cases/items/{case_id}", headers=bearer("inspector")
        ).json()
        assert case["properties"]["description"] == "手机上报：人行道暴露垃圾"
        assert case["properties"]["source"] == "inspector"
        assert abs(case["geometry"]["coordinates"][0] - (west_case[0] + 0.0005)) < 2e-5
        photos = httpx.get(f"{base}/cases/{case_id}/photos", headers=bearer("inspector")).json()
        assert len(photos) == 1 and photos[0]["uploaded_by"] == "inspector"

        with world.engine.begin() as conn:  # the unit fed the old case back: it awaits the check
            conn.execute(
                text("UPDATE cases SET status = 'feedback' WHERE id = :id"),
                {"id": world.west["cases"]},
            )
        page.evaluate("CityGrid.layers.open_cases.refresh()")
        page.wait_for_selector(".cg-checks:has-text('待核查（1）')")
        page.click(".cg-checks")
        page.click(".cg-check-list .cg-pass")
        page.wait_for_selector(".cg-toast.cg-shown:has-text('核查通过')", timeout=30_000)
        checked = httpx.get(
            f"{base}/collections/cases/items/{world.west['cases']}", headers=bearer("inspector")
        ).json()
        assert checked["properties"]["status"] == "verified"

        with world.engine.connect() as conn:
            before = conn.execute(text("SELECT count(*) FROM cases")).scalar_one()
        east_case = httpx.get(
            f"{base}/collections/cases/items/{world.east['cases']}", headers=bearer("admin")
        ).json()["geometry"]["coordinates"]
        page.evaluate(
            "([lon, lat]) => CityGrid.layers.patrol_area._map.setView([lat, lon], 17, {animate: false})",
            east_case,
        )
        page.click(".cg-report")
        tap_at(page, *east_case)
        fill_report(page, "区域外")
        page.wait_for_selector(".cg-form-error:has-text('不在您负责的巡查网格内')", timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "inspector-refused.png"))
        with world.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM cases")).scalar_one() == before
        page.close()
    assert seen.blocked == [] and seen.page_errors == [], (seen.blocked, seen.page_errors)
    assert_policy_kept(seen)  # the login page and the map page
    unexpected = [m for m in seen.console_errors if "403" not in m]
    assert unexpected == [], unexpected


def test_the_server_decides_whether_a_work_order_was_rectified_on_time(
    browser: Any, world: World
) -> None:
    with world.engine.connect() as conn:
        deadline, today = conn.execute(
            text(
                "SELECT w.deadline, (now() AT TIME ZONE 'Asia/Shanghai')::date FROM work_orders AS w "
                "WHERE w.id = :id"
            ),
            {"id": world.west["work_orders"]},
        ).one()
    # the phone's clock says the other side of the deadline: it must not decide
    phone_day = deadline + timedelta(days=3) if today <= deadline else deadline - timedelta(days=3)
    with live_server(world.url) as base:
        context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
        page = context.new_page()
        seen = watch(page)
        page.goto(f"{base}/login?next=/maps/inspector", wait_until="load")
        page.fill("#username", "inspector")
        page.fill("#password", TEST_PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/maps/inspector")
        wait_for(
            page,
            "window.CityGrid && CityGrid.inspectorReady && CityGrid.idle()"
            " && CityGrid.layers.dust_sites.loaded > 0",
            timeout=60_000,
        )
        page.clock.set_fixed_time(datetime.combine(phone_day, time(10), UTC))
        page.evaluate("CityGrid.layers.dust_sites.getLayers()[0].openPopup()")
        page.click(".cg-close-order")
        page.wait_for_selector(".cg-toast.cg-shown:has-text('已整改完成')", timeout=30_000)
        page.close()
    with world.engine.connect() as conn:
        result, rectified_on = conn.execute(
            text("SELECT result, rectified_on FROM work_orders WHERE id = :id"),
            {"id": world.west["work_orders"]},
        ).one()
    assert rectified_on == today
    assert result == ("on_time" if today <= deadline else "late")
    assert seen.page_errors == [] and seen.blocked == [], (seen.page_errors, seen.blocked)
