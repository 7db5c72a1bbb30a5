"""Pages link only local assets; every asset is vendored with its licence and served by the app."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import folium
import pytest
from branca.colormap import LinearColormap
from fastapi.testclient import TestClient
from folium import plugins

from api.app import create_app
from api.settings import DatabaseSettings, WebmapSettings
from tests.accounts import TEST_AUTH, sign_in
from webmap.assets import OfflineAssetError, manifest
from webmap.base import new_page
from webmap.basemaps import BaseMap, resolve_basemap
from webmap.pages import PAGES

VENDOR = Path(__file__).resolve().parents[1] / "webmap" / "static" / "vendor"
URL = re.compile(r"(?:https?:)?//[^\s\"'<>()\\]+")
BASEMAPS = {
    "none": {},
    "amap": {},
    "osm": {},
    "tianditu": {"tianditu_key": "0123456789abcdef"},
    "local": {"tile_url": "http://10.1.2.3:8080/tiles/{z}/{x}/{y}.png"},
}


def remote_urls(html: str, basemap: BaseMap) -> list[str]:
    """Every absolute URL in the HTML that is not one of the configured tile templates."""
    html = html.replace("\\u0026", "&").replace("\\/", "/")
    return [
        u
        for u in URL.findall(html)
        if not any(
            u.startswith(t.split("{", 1)[0].rstrip("/")) or t.startswith(u)
            for t in basemap.tile_urls
        )
    ]


@pytest.fixture(scope="module", params=list(BASEMAPS))
def client(
    request: pytest.FixtureRequest, database_url: str, demo: dict[str, int]
) -> Iterator[tuple[TestClient, BaseMap]]:
    webmap = WebmapSettings(basemap=request.param, **BASEMAPS[request.param])
    app = create_app(DatabaseSettings(database_url=database_url), webmap, auth_settings=TEST_AUTH)
    with TestClient(app) as c:
        yield sign_in(c, database_url), app.state.basemap


@pytest.mark.parametrize("page", list(PAGES))
def test_pages_refer_to_no_other_host_but_the_tiles(
    client: tuple[TestClient, BaseMap], page: str
) -> None:
    c, basemap = client
    response = c.get(PAGES[page][0])
    assert response.status_code == 200
    assert remote_urls(response.text, basemap) == []
    for tile in basemap.tile_urls:
        assert tile.split("{", 1)[0][:30] in response.text.replace("\\u0026", "&")
    scripts = re.findall(r'<script src="([^"]+)"', response.text) + re.findall(
        r'href="([^"]+\.css)"', response.text
    )
    assert scripts and all(s.startswith("/static/") for s in scripts)
    for src in scripts:
        assert c.get(src).status_code == 200, src


def test_api_docs_are_served_locally(client: tuple[TestClient, BaseMap]) -> None:
    c, _ = client
    html = c.get("/docs").text
    assert "swagger-ui-bundle.js" in html and remote_urls(html, resolve_basemap("none")) == []
    for src in re.findall(r'(?:src|href)="(/static/[^"]+)"', html):
        assert c.get(src).status_code == 200, src


def test_page_embeds_no_bulk_data(client: tuple[TestClient, BaseMap]) -> None:
    c, _ = client
    html = c.get("/maps/overview").text
    assert len(html) < 60_000 and '"FeatureCollection"' not in html


def test_components_come_as_tiles_not_features(client: tuple[TestClient, BaseMap]) -> None:
    """Tens of thousands of components: the overview and the inspector's map draw them from
    vector tiles (VectorGrid served locally), never from pages of GeoJSON features."""
    c, _ = client
    for path in ("/maps/overview", "/maps/inspector"):
        html = c.get(path).text
        assert "CityGrid.tiledPoints(" in html, path
        assert "/collections/components/tiles/WebMercatorQuad/{z}/{x}/{y}" in html, path
        assert "/collections/components/items" not in html, path
        assert "/static/vendor/leaflet.vectorgrid@1.3.0/" in html, path


def test_every_vendored_asset_exists_with_its_licence() -> None:
    data = json.loads((VENDOR / "manifest.json").read_text())
    for url, path in data["assets"].items():
        assert (VENDOR.parent / path).is_file(), url
    for spec, info in data["packages"].items():
        assert info["license"], spec
        assert (VENDOR / info["folder"] / "LICENSE").is_file() or spec.startswith("folium@"), spec
    notes = (VENDOR / "ASSETS.md").read_text()
    assert all(spec.split(":")[0] in notes for spec in data["packages"])


def test_no_vendored_stylesheet_loads_from_another_host() -> None:
    for css in VENDOR.rglob("*.css"):
        assert not re.search(r"url\(\s*['\"]?(https?:)?//", css.read_text(errors="replace")), css


def test_every_plugin_the_pages_use_renders_offline() -> None:
    page = new_page("插件", resolve_basemap("none"))
    plugins.Draw(export=False).add_to(page.map)
    plugins.HeatMap([[31.8, 121.6, 1.0]]).add_to(page.map)
    plugins.MarkerCluster().add_to(page.map)
    plugins.Realtime(
        folium.JsCode("function (ok) { ok({type: 'FeatureCollection', features: []}); }"),
        start=False,
    ).add_to(page.map)
    plugins.VectorGridProtobuf(
        "/collections/grids/tiles/WebMercatorQuad/{z}/{x}/{y}", "网格"
    ).add_to(page.map)
    LinearColormap(["#ffffb2", "#bd0026"], vmin=0, vmax=100, caption="案件密度").add_to(page.map)
    html = page.render()
    assert "/static/vendor/d3@3.5.5/d3.min.js" in html  # branca adds d3 inside ColorMap.render()
    assert "/static/vendor/leaflet.vectorgrid@1.3.0/" in html and "@latest" not in html
    assert remote_urls(html, resolve_basemap("none")) == []
    timeline = new_page("时间", resolve_basemap("none"))
    plugins.HeatMapWithTime([[[31.8, 121.6]]], index=["2023-01-02"]).add_to(timeline.map)
    assert "leaflet.timedimension" in timeline.render()


def test_a_plugin_without_local_copy_is_refused_at_render_time() -> None:
    page = new_page("未收录插件", resolve_basemap("none"))
    plugins.TimestampedGeoJson({"type": "FeatureCollection", "features": []}).add_to(page.map)
    with pytest.raises(OfflineAssetError, match="has no local copy"):
        page.render()


def test_manifest_pins_versions() -> None:
    for url, path in manifest().items():
        assert "@latest" not in path and re.search(r"@\d+\.\d+", path), (url, path)


def test_basemap_settings_need_what_they_name() -> None:
    with pytest.raises(ValueError, match="TIANDITU_KEY"):
        WebmapSettings(basemap="tianditu")
    with pytest.raises(ValueError, match="TILE_URL"):
        WebmapSettings(basemap="local", tile_url="http://tiles.local/no-placeholders.png")
