"""The inspector's map on a phone-sized screen in a real headless Chromium: sign in through the
login page, see only the patrol area, report a case with a photo at a tapped point, find it in
the API, check a fed-back case and verify a caller's report on site; a report outside the area
shows the API's refusal and saves nothing."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from api.settings import DatabaseSettings
from layers.registry import CASES
from tests.accounts import TEST_AUTH, TEST_PASSWORD, bearer, browser_context
from tests.support import ARTIFACTS, JPEG, assert_policy_kept, live_server, wait_for, watch
from tests.world import EAST_UNIT, World, point
from webmap.inspector import COMPONENT_PROBLEMS
from webmap.layers import COMPONENT_STATUS

PHONE = {"width": 390, "height": 844}
LAYER_KEYS = {  # the layers the patrol map draws (not yet the reports' other systems)
    "illegal_buildings": "illegal_buildings",
    "billboards": "billboards",
    "dust_sites": "dust_sites",
    "parking_lots": "parking_lots",
    "cases": "open_cases",
}


@pytest.fixture(scope="module")
def base(world: World) -> Iterator[str]:
    """One live server on the module's world for every test here (each start costs seconds)."""
    with live_server(world.url) as url:
        yield url


def drawn_ids(page: Any) -> dict[str, list[int]]:
    """The ids each GeoJSON layer drew (tiled layers report through `inView`)."""
    return dict(
        page.evaluate(
            "Object.fromEntries(Object.entries(CityGrid.layers).filter(([k, l]) => l.getLayers)"
            ".map(([k, l]) => [k, l.getLayers().map(f => f.feature && f.feature.id)]))"
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


def sign_in(page: Any, base: str) -> None:
    """Sign in as the inspector on the login page shown, and land on the phone map."""
    page.fill("#username", "inspector")
    page.fill("#password", TEST_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/maps/inspector")


def fill_report(page: Any, description: str) -> None:
    page.wait_for_selector(".cg-sheet.cg-open select[name=category_code]")
    page.select_option("select[name=category_code]", "E0102")
    page.fill("textarea[name=description]", description)
    page.set_input_files(
        "input[name=photo]", {"name": "现场.jpg", "mimeType": "image/jpeg", "buffer": JPEG}
    )
    page.click(".cg-submit")


def test_an_inspector_reports_a_case_from_the_phone_map(
    browser: Any, world: World, base: str
) -> None:
    context = browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="zh-CN"
    )
    page = context.new_page()
    seen = watch(page)
    page.goto(f"{base}/maps/inspector", wait_until="load")
    assert page.url.startswith(f"{base}/login?next=/maps/inspector")
    sign_in(page, base)
    wait_for(
        page,
        "window.CityGrid && CityGrid.inspectorReady && CityGrid.idle()"
        " && CityGrid.layers.open_cases.loaded > 0 && CityGrid.layers.dust_sites.loaded > 0",
        timeout=60_000,
    )
    assert "width=device-width" in page.content()
    assert "我的巡查区域" in page.locator(".cg-title").inner_text()
    ids = drawn_ids(page)
    for layer, key in LAYER_KEYS.items():
        assert ids[key] == [world.west[layer]], layer
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "inspector-phone.png"))

    page.evaluate(
        "void CityGrid.layers.dust_sites.getLayers()[0].openPopup()"
    )  # the dust site's popup offers the field forms
    assert page.locator(".cg-actions .cg-record").count() == 1
    assert page.locator(".cg-close-order").count() == 1
    page.evaluate("void CityGrid.layers.patrol_area._map.closePopup()")
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

    called_in = httpx.post(  # a caller's report in the area awaits 核实 by the inspector
        f"{base}/cases",
        json={
            "type": "Feature",
            "geometry": point(1, 80),
            "properties": {
                "category_code": "E0102",
                "source": "public",
                "description": "市民举报",
            },
        },
        headers=bearer("dispatcher"),
    )
    assert called_in.status_code == 201, called_in.text
    page.evaluate("CityGrid.layers.open_cases.refresh()")
    page.wait_for_selector(".cg-checks:has-text('待核实（1）')")
    page.click(".cg-checks")
    assert "核实时限" in page.locator(".cg-check-list").inner_text()
    page.click(".cg-check-list .cg-confirm")
    page.wait_for_selector(".cg-toast.cg-shown:has-text('核实属实')", timeout=30_000)
    confirmed = httpx.get(
        f"{base}/collections/cases/items/{called_in.json()['id']}", headers=bearer("inspector")
    ).json()
    assert confirmed["properties"]["status"] == "reported"
    assert confirmed["properties"]["confirmed_at"]

    with world.engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM cases")).scalar_one()
    east_case = httpx.get(
        f"{base}/collections/cases/items/{world.east['cases']}", headers=bearer("admin")
    ).json()["geometry"]["coordinates"]
    page.evaluate(
        "([lon, lat]) => void CityGrid.layers.patrol_area._map.setView([lat, lon], 17, {animate: false})",
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
    browser: Any, world: World, base: str
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
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    seen = watch(page)
    page.goto(f"{base}/login?next=/maps/inspector", wait_until="load")
    sign_in(page, base)
    wait_for(
        page,
        "window.CityGrid && CityGrid.inspectorReady && CityGrid.idle()"
        " && CityGrid.layers.dust_sites.loaded > 0",
        timeout=60_000,
    )
    page.clock.set_fixed_time(datetime.combine(phone_day, time(10), UTC))
    page.evaluate("void CityGrid.layers.dust_sites.getLayers()[0].openPopup()")
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


STATUSES = ("intact", "damaged", "lost", "abandoned")
# the routing of cases to a component's maintainer (branch of the case workflow) stores these
SERVER_TAKES_COMPONENTS = any(f.name == "component_code" for f in CASES.fields)


@pytest.fixture(scope="module")
def components(world: World) -> dict[str, list[dict[str, Any]]]:
    """Eight components along the west community (the patrol area), four in the east."""
    app = create_app(DatabaseSettings(database_url=world.url), auth_settings=TEST_AUTH)
    made: dict[str, list[dict[str, Any]]] = {"west": [], "east": []}
    with TestClient(app) as client:
        for side, community, offsets in (
            ("west", 1, [-175.0 + 50 * i for i in range(8)]),
            ("east", 2, [-75.0 + 50 * i for i in range(4)]),
        ):
            for n, dx in enumerate(offsets):
                feature = {
                    "type": "Feature",
                    "geometry": point(community, dx),
                    "properties": {
                        "subclass_code": "C0101",
                        "status": STATUSES[n % len(STATUSES)],
                        "owner_unit": "测试单位",
                        "maintainer_unit": EAST_UNIT,
                    },
                }
                answer = client.post(
                    "/collections/components/items", json=feature, headers=bearer("admin")
                )
                assert answer.status_code == 201, answer.text
                made[side].append(
                    client.get(answer.headers["location"], headers=bearer("admin")).json()
                )
    return made


def in_view(page: Any) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = page.evaluate(
        "CityGrid.layers.nearby_components.inView()"
    )
    return found


def show(page: Any, lon: float, lat: float, zoom: int) -> None:
    """Move the map and wait for its tiles."""
    page.evaluate(
        "([lon, lat, z]) => void CityGrid.layers.patrol_area._map.setView([lat, lon], z, {animate: false})",
        [lon, lat, zoom],
    )
    page.wait_for_timeout(300)
    wait_for(page, "CityGrid.idle()")


def feature_sent(body: bytes) -> dict[str, Any]:
    """The `feature` part of a multipart form."""
    found = re.search(rb'name="feature"\r\n\r\n(.*?)\r\n--', body, re.S)
    assert found, body[:300]
    sent: dict[str, Any] = json.loads(found.group(1))
    return sent


def test_nearby_components_come_in_tiles_and_a_tapped_one_gets_a_case(
    browser: Any, world: World, base: str, components: dict[str, list[dict[str, Any]]]
) -> None:
    with world.engine.connect() as conn:
        subclass = conn.execute(
            text("SELECT minor_name FROM case_categories WHERE code = 'C0101'")
        ).scalar_one()
        cases_before = conn.execute(text("SELECT count(*) FROM cases")).scalar_one()
    west = components["west"]
    tiles: list[str] = []
    posted: list[bytes] = []
    context = browser_context(
        browser, base, "inspector", viewport=PHONE, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    seen = watch(page)

    def record(route: Any) -> None:
        if route.request.method == "POST":
            posted.append(route.request.post_data_buffer)
        route.fallback()

    page.route("**/cases", record)
    page.on(
        "request",
        lambda r: tiles.append(r.url) if "/components/tiles/WebMercatorQuad/" in r.url else None,
    )
    page.goto(f"{base}/maps/inspector", wait_until="load")
    wait_for(page, "window.CityGrid && CityGrid.inspectorReady && CityGrid.idle()", 60_000)
    assert "附近部件" in page.locator(".cg-legend").inner_text()

    centre = world_lonlat(west)
    show(page, *centre, 12)  # below the cluster zoom: counted clusters
    clusters = in_view(page)["clusters"]
    assert clusters and in_view(page)["points"] == []
    assert max(c["count"] for c in clusters) > 1
    # the patrol area's components only (the east is in view too, but not the inspector's)
    assert sum(c["count"] for c in clusters) == len(west)
    labels = page.locator("text.cg-cluster-count").all_text_contents()
    assert {str(c["count"]) for c in clusters} <= set(labels)
    assert any("/components/tiles/WebMercatorQuad/12/" in url for url in tiles)
    page.screenshot(path=str(ARTIFACTS / "inspector-component-clusters.png"))

    show(page, *centre, 17)  # single components, coloured by status
    points = in_view(page)["points"]
    assert sorted(p["id"] for p in points) == sorted(c["id"] for c in west)
    for p in points:
        assert p["fill"] == COMPONENT_STATUS.colors[p["properties"]["status"]]
    assert any("/components/tiles/WebMercatorQuad/17/" in url for url in tiles)

    tapped = west[4]  # 25 m east of the centre
    lon, lat = tapped["geometry"]["coordinates"]
    tap_at(page, lon, lat)
    page.wait_for_selector(".leaflet-popup .cg-report-component")
    popup = page.locator(".leaflet-popup-content").inner_text()
    code = tapped["properties"]["component_code"]
    for shown in ("部件标识码", code, "小类名称", subclass, "状态", "权属单位", "测试单位"):
        assert shown in popup, (shown, popup)
    assert "养护单位" in popup and EAST_UNIT in popup
    status = tapped["properties"]["status"]
    assert COMPONENT_STATUS.labels[status] in popup
    page.screenshot(path=str(ARTIFACTS / "inspector-component-popup.png"))

    page.click(".cg-report-component")
    page.wait_for_selector(".cg-sheet.cg-open select[name=problem]")
    category = page.locator("select[name=category_code]")
    assert category.input_value() == "C0101" and category.is_disabled()
    assert page.locator("input[name=component_code]").input_value() == code
    offered = page.locator("select[name=problem] option").all_inner_texts()
    assert offered[1:] == list(COMPONENT_PROBLEMS.values())
    page.click(".cg-submit")  # no problem chosen yet: the form says so, nothing is sent
    page.wait_for_selector(".cg-form-error:has-text('问题类型')")
    assert posted == []
    page.select_option("select[name=problem]", "displaced")
    page.fill("textarea[name=description]", "井盖移位，高出路面")
    page.click(".cg-submit")
    wait_for(page, "CityGrid.idle()")
    assert len(posted) == 1
    sent = feature_sent(posted[0])
    assert sent["geometry"]["coordinates"] == pytest.approx([lon, lat], abs=2e-6)
    assert sent["properties"] == {
        "category_code": "C0101",
        "description": "井盖移位，高出路面",
        "component_code": code,
        "problem": "displaced",
    }
    if SERVER_TAKES_COMPONENTS:
        page.wait_for_selector(".cg-toast.cg-shown:has-text('案件已上报')", timeout=30_000)
        case_id = page.evaluate("CityGrid.lastReported")
        case = httpx.get(
            f"{base}/collections/cases/items/{case_id}", headers=bearer("inspector")
        ).json()["properties"]
        assert case["component_code"] == code and case["category_code"] == "C0101"
        assert case["problem"] == "displaced"
    else:  # the server does not take them yet: its refusal is shown, nothing is saved
        page.wait_for_selector(".cg-form-error:has-text('未保存')", timeout=30_000)
        with world.engine.connect() as conn:
            after = conn.execute(text("SELECT count(*) FROM cases")).scalar_one()
        assert after == cases_before
    page.close()
    assert seen.blocked == [] and seen.page_errors == [], (seen.blocked, seen.page_errors)
    assert_policy_kept(seen)
    unexpected = [m for m in seen.console_errors if "422" not in m and "400" not in m]
    assert unexpected == [], unexpected


def world_lonlat(features: list[dict[str, Any]]) -> tuple[float, float]:
    """The middle of some points."""
    lons = [f["geometry"]["coordinates"][0] for f in features]
    lats = [f["geometry"]["coordinates"][1] for f in features]
    return (min(lons) + max(lons)) / 2, (min(lats) + max(lats)) / 2
