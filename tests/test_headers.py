"""Security headers: a Content-Security-Policy whose nonce is on every inline block of the page it
came with, no framing, no sniffing, referrers kept in the site, and nothing personal stored."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import COOKIE
from api.security import tile_sources, with_nonce
from api.settings import DatabaseSettings, WebmapSettings
from tests.accounts import TEST_AUTH, bearer, token_for
from tests.support import JPEG
from tests.world import World, point, tile_index
from webmap.basemaps import resolve_basemap

FIXED = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}
PAGES = [
    "/maps/overview",
    "/maps/planner",
    "/maps/inspector",
    "/maps/leader",
    "/maps/command",
    "/login",
    "/docs",
]


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    app = create_app(DatabaseSettings(database_url=world.url), auth_settings=TEST_AUTH)
    with TestClient(app, follow_redirects=False) as c:
        c.cookies.set(COOKIE, token_for("admin", timedelta(hours=1)))
        yield c


def policy(answer: Any) -> dict[str, str]:
    """The CSP header as directive → sources."""
    rules = {}
    for part in answer.headers["content-security-policy"].split(";"):
        name, _, sources = part.strip().partition(" ")
        rules[name] = sources
    return rules


def assert_fixed_headers(answer: Any) -> None:
    for name, value in FIXED.items():
        assert answer.headers.get(name) == value, (answer.url, name)
    assert policy(answer)["frame-ancestors"] == "'none'"


@pytest.mark.parametrize("path", PAGES)
def test_pages_run_only_their_own_scripts(client: TestClient, path: str) -> None:
    first, second = client.get(path), client.get(path)
    assert first.status_code == 200, first.text
    assert_fixed_headers(first)
    assert first.headers["cache-control"] == "no-store"
    rules = policy(first)
    nonce = re.fullmatch(r"'self' 'nonce-([A-Za-z0-9_-]{20,})'", rules["script-src"])
    assert nonce, rules["script-src"]
    assert rules["style-src"] == f"'self' 'nonce-{nonce.group(1)}'"
    assert "unsafe" not in rules["script-src"] + rules["style-src"] + rules["default-src"]
    assert rules["object-src"] == "'none'" and rules["base-uri"] == "'none'"
    tags = re.findall(r"<(?:script|style)\b[^>]*>", first.text)
    assert tags and all(f'nonce="{nonce.group(1)}"' in tag for tag in tags), tags
    assert policy(second)["script-src"] != rules["script-src"]  # a new nonce for each response


def test_personal_answers_are_not_stored(client: TestClient, world: World) -> None:
    signed_in = {
        "/collections/cases/items": bearer("inspector"),
        "/auth/me": bearer("inspector"),
        "/collections/billboards/export?format=csv": bearer("admin"),
        "/grids/stats": bearer("leader"),
    }
    for path, headers in signed_in.items():
        answer = client.get(path, headers=headers)
        assert answer.status_code == 200, (path, answer.text)
        assert answer.headers["cache-control"] == "no-store", path
        assert_fixed_headers(answer)
    refused = client.get("/collections/nowhere/items", headers=bearer("admin"))
    assert refused.status_code == 404 and refused.headers["cache-control"] == "no-store"
    assert_fixed_headers(refused)


def test_case_photos_are_not_stored(client: TestClient) -> None:
    feature = {
        "type": "Feature",
        "geometry": point(1, -20),
        "properties": {"category_code": "E0102", "description": "照片缓存测试"},
    }
    made = client.post(
        "/cases",
        data={"feature": json.dumps(feature, ensure_ascii=False)},
        files={"photo": ("现场.jpg", io.BytesIO(JPEG), "image/jpeg")},
        headers=bearer("inspector"),
    )
    assert made.status_code == 201, made.text
    case_id = made.json()["id"]
    listed = client.get(f"/cases/{case_id}/photos", headers=bearer("inspector")).json()
    photo = client.get(f"/cases/{case_id}/photos/{listed[0]['id']}", headers=bearer("inspector"))
    assert photo.status_code == 200 and photo.content == JPEG
    assert photo.headers["cache-control"] == "no-store"
    assert_fixed_headers(photo)


def test_tiles_are_asked_again_each_time(client: TestClient, world: World) -> None:
    lon, lat = point(1)["coordinates"]
    x, y = tile_index(lon, lat, 15)
    tile = client.get(
        f"/collections/cases/tiles/WebMercatorQuad/15/{x}/{y}", headers=bearer("admin")
    )
    assert tile.status_code == 200
    # The bytes depend on who asks; the browser keeps them under the URL alone, so it must come
    # back with whoever is signed in now (304 only for identical bytes: the ETag is their digest).
    assert tile.headers["cache-control"] == "private, no-cache"
    assert_fixed_headers(tile)


def test_static_assets_stay_cacheable(client: TestClient) -> None:
    asset = client.get("/static/citygrid/citygrid.js")
    assert asset.status_code == 200 and "cache-control" not in asset.headers
    assert asset.headers["etag"] and asset.headers["x-content-type-options"] == "nosniff"


def test_tile_servers_may_serve_images(world: World) -> None:
    assert tile_sources(resolve_basemap("amap").tile_urls) == ["https://*.is.autonavi.com"]
    assert tile_sources(resolve_basemap("tianditu", "key").tile_urls) == [
        "http://*.tianditu.gov.cn"
    ]
    local = resolve_basemap("local", tile_url="http://10.0.0.5:8080/{z}/{x}/{y}.png")
    assert tile_sources(local.tile_urls) == ["http://10.0.0.5:8080"]
    assert tile_sources(resolve_basemap("none").tile_urls) == []
    app = create_app(
        DatabaseSettings(database_url=world.url),
        webmap=WebmapSettings(basemap="amap"),
        auth_settings=TEST_AUTH,
    )
    with TestClient(app) as c:
        images = policy(c.get("/login"))["img-src"].split()
    assert images == ["'self'", "data:", "blob:", "https://*.is.autonavi.com"]


def test_the_nonce_goes_on_tags_only() -> None:
    html = (
        "<html><head><style>p {}</style>\n<SCRIPT src='/a.js'></SCRIPT></head><body>\n"
        "<script>var s = '<script>' + \"<style>\";</script><p>&lt;script&gt;</p></body></html>"
    )
    marked = with_nonce(html, "N0nce")
    assert marked == (
        '<html><head><style nonce="N0nce">p {}</style>\n<SCRIPT nonce="N0nce" src=\'/a.js\'>'
        "</SCRIPT></head><body>\n"
        '<script nonce="N0nce">var s = \'<script>\' + "<style>";</script><p>&lt;script&gt;</p>'
        "</body></html>"
    )
