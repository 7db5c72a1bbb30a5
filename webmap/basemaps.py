"""Base maps Chinese users actually use, and what the data must do to sit on them."""

from __future__ import annotations

from dataclasses import dataclass

import folium

# A transparent 1×1 PNG: a tile that fails to load shows the plain background, not a broken image.
BLANK_TILE = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
TIANDITU = "http://t{s}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={{z}}&TILEROW={{y}}&TILECOL={{x}}&tk={key}"
AMAP = "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}"
OSM = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"


@dataclass(frozen=True)
class Tiles:
    """One tile layer of a base map."""

    url: str
    name: str
    attribution: str
    subdomains: str = "abc"
    overlay: bool = False


@dataclass(frozen=True)
class BaseMap:
    """The chosen base map: its tile layers and the datum its tiles are drawn in."""

    kind: str
    tiles: tuple[Tiles, ...] = ()
    gcj02: bool = False

    @property
    def tile_urls(self) -> tuple[str, ...]:
        """The URL templates a page may contain."""
        return tuple(t.url for t in self.tiles)

    def add_to(self, m: folium.Map) -> None:
        """Add the tile layers to a map (none for the offline base map)."""
        for t in self.tiles:
            folium.TileLayer(
                tiles=t.url,
                attr=t.attribution,
                name=t.name,
                subdomains=t.subdomains,
                overlay=t.overlay,
                control=not t.overlay,
                max_zoom=18,
                errorTileUrl=BLANK_TILE,
            ).add_to(m)


def resolve_basemap(
    kind: str,
    tianditu_key: str | None = None,
    tile_url: str | None = None,
    tile_attribution: str = "本地瓦片",
) -> BaseMap:
    """The base map for a setting value (validated by the settings class)."""
    if kind == "tianditu":
        key = tianditu_key or ""
        return BaseMap(
            kind,
            (
                Tiles(
                    TIANDITU.format(s="{s}", layer="vec", key=key),
                    "天地图矢量",
                    "天地图",
                    "01234567",
                ),
                Tiles(
                    TIANDITU.format(s="{s}", layer="cva", key=key),
                    "天地图注记",
                    "天地图",
                    "01234567",
                    overlay=True,
                ),
            ),
        )
    if kind == "amap":
        return BaseMap(kind, (Tiles(AMAP, "高德地图", "高德地图", "1234"),), gcj02=True)
    if kind == "osm":
        return BaseMap(kind, (Tiles(OSM, "OpenStreetMap", "© OpenStreetMap 贡献者"),))
    if kind == "local":
        assert tile_url is not None
        return BaseMap(kind, (Tiles(tile_url, "本地底图", tile_attribution),))
    return BaseMap("none")
