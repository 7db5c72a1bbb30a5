"""The overview page in a real headless Chromium, offline, with and without a base map."""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import httpx
import pyproj
import pytest
import shapely
from sqlalchemy import Engine, text

from gis.gcj02 import gcj02_to_wgs84, wgs84_to_gcj02
from layers.cases.codes import seed_case_categories
from layers.store import db
from tests.accounts import bearer, browser_context, ensure_account
from tests.counties import two_counties
from tests.support import ARTIFACTS, PageWatch, assert_policy_kept, live_server, wait_for, watch

EXPECTED = {  # GeoJSON features drawn in the opening view (the whole county)
    "grids_street": 7,
    "grids_community": 66,
    "grids_section": 349,
    "illegal_buildings": 420,
    "parking_lots": 300,
    "dust_sites": 226,
    "billboards": 1844,
    "cases": 1000,
    "component_lines": 12,  # the demo's railings where the main roads meet the towns
    "component_areas": 40,  # and its green spaces beside junctions
    "residential_compounds": 53,  # the reports' other systems (layers/demo/systems.py)
    "stations": 8,
    "bike_parking_lines": 483,
    # 123 construction sites, 4 disposal yards, a no-go zone, 2 strict streets, 2 route corridors
    "geofences": 132,
    "road_segments": 318,  # the streets split at their junctions, the main roads by kilometre
}
CLUSTERED = {  # points by the hundred: counted cells from their tiles over the whole county
    "garbage_points": 160,
    "cameras": 158,  # two at each of the 79 street crossings, each drawn with its sector
    "bike_parking_points": 520,
    "restaurants": 300,  # under online fume monitoring; the 6,500 merchants come as tiles too
}
GEOJSON_DRAWN = (
    "Object.fromEntries(Object.entries(CityGrid.layers).filter(([k, l]) => l.getLayers)"
    ".map(([k, l]) => [k, l.getLayers().length]))"
)
OUTSIDE_TILES = (  # features of the GeoJSON layers (the tiled layers draw in .leaflet-tile)
    "[...document.querySelectorAll('path.leaflet-interactive')]"
    ".filter(p => !p.closest('.leaflet-tile')).length"
)
AMAP_HOST = ".is.autonavi.com"


@pytest.fixture(scope="module", autouse=True)
def admin_account(database_url: str) -> None:
    ensure_account(database_url, "admin", "admin")


def open_overview(browser: Any, base: str, shot: str) -> tuple[Any, PageWatch, dict[str, int]]:
    context = browser_context(
        browser, base, "admin", viewport={"width": 1280, "height": 860}, locale="zh-CN"
    )
    page = context.new_page()
    seen = watch(page)
    page.goto(f"{base}/maps/overview", wait_until="load")
    wait_for(
        page,
        "window.CityGrid && Object.keys(CityGrid.layers).length >= 9 && CityGrid.idle()"
        " && CityGrid.layers.cases.loaded > 0",
        timeout=60_000,
    )
    page.wait_for_timeout(500)
    wait_for(page, "CityGrid.layers.components.inView().clusters.length > 0")
    wait_for(page, "CityGrid.layers.merchants.inView().clusters.length > 0")
    for key in CLUSTERED:
        wait_for(page, f"CityGrid.layers.{key}_clusters.inView().clusters.length > 0")
    counts = page.evaluate(GEOJSON_DRAWN)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / shot))
    return page, seen, counts


def check_drawn(page: Any, counts: dict[str, int]) -> None:
    for key, expected in EXPECTED.items():
        assert counts[key] == expected, key
    assert counts["county"] == 1
    for key, expected in CLUSTERED.items():  # zoomed out: no single point, every row counted
        assert counts[key] == 0, key
        clusters = page.evaluate(f"CityGrid.layers.{key}_clusters.inView().clusters")
        assert sum(c["count"] for c in clusters) == expected, key
    assert page.evaluate(OUTSIDE_TILES) == sum(EXPECTED.values())
    # `void`: Playwright would serialise the returned layer, and with it the whole map (seconds)
    page.evaluate("void CityGrid.layers.dust_sites.getLayers()[0].openPopup()")
    popup = page.locator(".leaflet-popup-content").inner_text()
    assert "项目名称" in popup and "现场类型" in popup
    assert page.locator(".cg-legend").inner_text().count("\n") >= 9
    assert "街道网格" in page.locator(".leaflet-control-layers").inner_text()
    assert page.get_attribute(".leaflet-control-zoom-in", "title") == "放大"
    assert page.get_attribute(".leaflet-control-zoom-fullscreen", "title") == "全屏显示"
    assert page.get_attribute(".leaflet-control-locate a", "title") == "定位到我的位置"
    assert "测量" in page.get_attribute(".leaflet-control-measure-toggle", "title")
    assert page.locator(".leaflet-control-scale-line").count() == 1
    account = page.locator(".cg-account")
    assert "admin（系统管理员）" in account.inner_text() and "退出" in account.inner_text()


def check_measure(page: Any) -> None:
    """The measure control: three clicks give a length along them and the area they enclose."""
    page.evaluate("void CityGrid.layers.county._map.closePopup()")
    page.wait_for_selector(".leaflet-popup", state="detached")
    page.click(".leaflet-control-measure-toggle")
    box = page.locator(".leaflet-container").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    for dx, dy in ((0, 0), (120, 0), (120, 90)):
        page.mouse.click(x + dx, y + dy)
        page.wait_for_timeout(350)  # apart, not a double click
    corners = page.evaluate(
        f"[[{x}, {y}], [{x + 120}, {y}], [{x + 120}, {y + 90}]].map(p => {{"
        " const m = CityGrid.layers.county._map, r = m.getContainer().getBoundingClientRect();"
        " const ll = m.containerPointToLatLng([p[0] - r.left, p[1] - r.top]);"
        " return [ll.lng, ll.lat]; })"
    )
    zone = pyproj.Transformer.from_crs(4490, 4549, always_xy=True)
    planar = [zone.transform(lon, lat) for lon, lat in corners]
    length = sum(math.dist(a, b) for a, b in itertools.pairwise(planar))
    area = shapely.Polygon(planar).area
    measured = page.evaluate(
        "CityGrid.measure(" + json.dumps(corners) + ".map(c => L.latLng(c[1], c[0])))"
    )
    assert measured["length"] == pytest.approx(length, rel=0.005)
    assert measured["area"] == pytest.approx(area, rel=0.01)
    shown = page.locator(".leaflet-control-measure-interaction").inner_text()
    assert "距离" in shown and "面积" in shown and "公顷" in shown, shown
    page.click(".leaflet-control-measure-interaction a.finish")
    page.click(".leaflet-control-measure-interaction a.cancel")
    assert page.locator(".leaflet-control-measure-interaction").is_hidden()


def merchants_in(engine: Engine, bbox: list[str]) -> int:
    """门前三包 merchants inside a bbox, by SQL of the test's own."""
    with engine.connect() as conn:
        found: int = conn.execute(
            text(
                "SELECT count(*) FROM merchants WHERE geom && ST_MakeEnvelope(:w, :s, :e, :n, 4490)"
            ),
            dict(zip("wsen", map(float, bbox), strict=True)),
        ).scalar_one()
    return found


def rows_in(engine: Engine, table: str, bbox: list[str]) -> int:
    """Rows of a layer of the reports' systems inside a bbox, by SQL of the test's own."""
    assert table in CLUSTERED
    with engine.connect() as conn:
        found: int = conn.execute(
            text(
                f"SELECT count(*) FROM {table} WHERE geom && ST_MakeEnvelope(:w, :s, :e, :n, 4490)"
            ),
            dict(zip("wsen", map(float, bbox), strict=True)),
        ).scalar_one()
    return found


def components_in(engine: Engine, bbox: list[str]) -> int:
    """Current components inside a bbox, by SQL of the test's own."""
    with engine.connect() as conn:
        found: int = conn.execute(
            text(
                "SELECT count(*) FROM components WHERE valid_to IS NULL AND geom && "
                "ST_MakeEnvelope(:w, :s, :e, :n, 4490)"
            ),
            dict(zip("wsen", map(float, bbox), strict=True)),
        ).scalar_one()
    return found


def check_components(page: Any, engine: Engine) -> None:
    """The components come as vector tiles: counted clusters over the county, points when
    zoomed in, their popup naming the subclass."""
    view = page.evaluate("CityGrid.viewBBox(CityGrid.layers.county._map)")
    clusters = page.evaluate("CityGrid.layers.components.inView().clusters")
    assert sum(c["count"] for c in clusters) == components_in(engine, view) > 1000
    assert max(c["count"] for c in clusters) > 1
    merchants = page.evaluate("CityGrid.layers.merchants.inView().clusters")
    assert sum(c["count"] for c in merchants) == merchants_in(engine, view) > 1000
    labels = page.locator("text.cg-cluster-count").all_text_contents()
    assert {str(c["count"]) for c in clusters} <= set(labels)
    first = clusters[0]["lonlat"]
    page.evaluate(
        "([lon, lat]) => void CityGrid.layers.county._map.setView([lat, lon], 17, {animate: false})",
        first,
    )
    page.wait_for_timeout(300)
    wait_for(page, "CityGrid.idle()")
    points = page.evaluate("CityGrid.layers.components.inView().points")
    view = page.evaluate("CityGrid.viewBBox(CityGrid.layers.county._map)")
    assert 0 < len(points) == components_in(engine, view)
    drawn = page.evaluate(GEOJSON_DRAWN)  # zoomed in: the clustered layers' single points
    assert {k: drawn[k] for k in CLUSTERED} == {k: rows_in(engine, k, view) for k in CLUSTERED}
    assert sum(drawn[k] for k in CLUSTERED) > 0
    assert all(
        page.evaluate(f"CityGrid.layers.{key}_clusters.inView().clusters.length") == 0
        for key in CLUSTERED
    )
    x, y = page.evaluate(
        "([lon, lat]) => { const m = CityGrid.layers.county._map;"
        " const p = m.latLngToContainerPoint([lat, lon]);"
        " const r = m.getContainer().getBoundingClientRect(); return [r.left + p.x, r.top + p.y]; }",
        points[0]["lonlat"],
    )
    # the merchants' points lie over the components along the same streets
    page.evaluate("void CityGrid.layers.county._map.removeLayer(CityGrid.layers.merchants)")
    page.mouse.click(x, y)
    page.wait_for_selector(".leaflet-popup-content:has-text('小类名称')")
    with engine.connect() as conn:
        name = conn.execute(
            text("SELECT minor_name FROM case_categories WHERE code = :c"),
            {"c": points[0]["properties"]["subclass_code"]},
        ).scalar_one()
    assert name in page.locator(".leaflet-popup-content").inner_text()
    page.evaluate("void CityGrid.layers.county._map.closePopup()")


def test_overview_without_tiles(
    browser: Any, database_url: str, demo: dict[str, int], engine: Engine
) -> None:
    with live_server(database_url, CITYGRID_BASEMAP="none") as base:
        page, seen, counts = open_overview(browser, base, "overview-no-tiles.png")
        check_drawn(page, counts)
        check_components(page, engine)
        assert all("/collections/components/items" not in url for url in seen.requested)
        assert any("/components/tiles/WebMercatorQuad/" in url for url in seen.requested)
        page.evaluate(
            "void CityGrid.layers.county._map.fitBounds(CityGrid.layers.county.getBounds())"
        )
        wait_for(page, "CityGrid.idle()")
        check_measure(page)
        assert page.locator("img.leaflet-tile").count() == 0
        page.mouse.wheel(0, -600)  # zoom in: layers reload for the new view
        wait_for(page, "CityGrid.idle()")
        page.close()
    assert seen.blocked == [], seen.blocked
    assert seen.console_errors == [] and seen.page_errors == [], (
        seen.console_errors,
        seen.page_errors,
    )
    assert_policy_kept(seen)


def test_overview_on_amap_draws_in_gcj02(
    browser: Any, database_url: str, demo: dict[str, int]
) -> None:
    with live_server(database_url, CITYGRID_BASEMAP="amap") as base:
        feature = httpx.get(
            f"{base}/collections/billboards/items/1", headers=bearer("admin")
        ).json()
        page, seen, counts = open_overview(browser, base, "overview-amap-tiles-blocked.png")
        check_drawn(page, counts)
        lon, lat = feature["geometry"]["coordinates"]
        drawn = page.evaluate(
            "(() => { const m = CityGrid.layers.billboards.getLayers().find(l => l.feature.id === 1);"
            " const p = m.getLatLng(); return [p.lng, p.lat]; })()"
        )
        g_lon, g_lat = wgs84_to_gcj02([lon], [lat])
        assert drawn == pytest.approx([g_lon[0], g_lat[0]], abs=1e-7)
        assert abs(drawn[0] - lon) > 0.003  # hundreds of metres away from the CGCS2000 position
        back = page.evaluate(
            f"CityGrid.toApi({{type: 'Point', coordinates: [{drawn[0]}, {drawn[1]}]}}).coordinates"
        )
        assert back == pytest.approx([lon, lat], abs=1e-7)
        w_lon, w_lat = gcj02_to_wgs84([drawn[0]], [drawn[1]])
        assert back == pytest.approx([w_lon[0], w_lat[0]], abs=1e-8)
        page.close()
    assert seen.blocked and all(AMAP_HOST in url for url in seen.blocked), seen.blocked[:5]
    assert seen.page_errors == [], seen.page_errors
    tile_failures = [m for m in seen.console_errors if "net::ERR_FAILED" in m]
    assert [m for m in seen.console_errors if m not in tile_failures] == []
    assert_policy_kept(seen)  # the tiles were stopped at the border, not by the policy


def test_api_docs_work_offline(browser: Any, database_url: str, demo: dict[str, int]) -> None:
    with live_server(database_url) as base:
        context = browser_context(browser, base, "admin", locale="zh-CN")
        page = context.new_page()
        seen = watch(page)
        page.goto(f"{base}/docs", wait_until="networkidle")
        page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)
        assert page.locator(".swagger-ui .opblock").count() >= 10
        page.screenshot(path=str(ARTIFACTS / "api-docs.png"))
        page.close()
    assert seen.blocked == [] and seen.page_errors == [], (seen.blocked, seen.page_errors)
    assert_policy_kept(seen)


def test_a_city_account_switches_county_with_the_picker(
    browser: Any, pg_server: Any, scratch_url: str
) -> None:
    """Two counties in one deployment: the overview opens on the first, its title and outline
    from its row; the picker's link to the other changes the title, the outline and the rows."""
    engine = db.make_engine(pg_server.as_owner(scratch_url))
    with engine.begin() as conn:
        seed_case_categories(conn)
        first, second = two_counties(conn)
        names = dict(conn.execute(text("SELECT adcode, name FROM counties")).all())
    ensure_account(engine, "city-leader", "leader", counties=(first.adcode, second.adcode))
    engine.dispose()
    drawn = (
        "[CityGrid.layers.county.getLayers().map(l => l.feature.properties.adcode),"
        " CityGrid.layers.billboards.getLayers().map(l => l.feature.id).sort()]"
    )
    ready = (
        "window.CityGrid && CityGrid.layers.county && CityGrid.layers.county.loaded > 0"
        " && CityGrid.layers.billboards && CityGrid.layers.billboards.loaded > 0 && CityGrid.idle()"
    )
    with live_server(scratch_url, CITYGRID_BASEMAP="none") as base:
        context = browser_context(
            browser, base, "city-leader", viewport={"width": 1280, "height": 860}, locale="zh-CN"
        )
        page = context.new_page()
        seen = watch(page)
        page.goto(f"{base}/maps/overview", wait_until="load")
        wait_for(page, ready, timeout=60_000)
        assert page.locator(".cg-title").inner_text().startswith(f"{names[first.adcode]}城市管理")
        assert page.evaluate(drawn) == [[first.adcode], first.ids["billboards"]]
        page.click(f".cg-counties a[data-county='{second.adcode}']")
        page.wait_for_url(f"**/maps/overview?county={second.adcode}")
        wait_for(page, ready, timeout=60_000)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "overview-second-county.png"))
        title = page.locator(".cg-title").inner_text()
        assert title.startswith(f"{names[second.adcode]}城市管理综合概览"), title
        assert page.evaluate(drawn) == [[second.adcode], second.ids["billboards"]]
        page.close()
    assert seen.blocked == [] and seen.page_errors == [], (seen.blocked, seen.page_errors)
    assert seen.console_errors == [], seen.console_errors
    assert_policy_kept(seen)
