"""Mapbox vector tiles built by PostGIS (ST_AsMVT) on the WebMercatorQuad tile matrix set.

Polygons are simplified to the tile's pixel size, large point layers are aggregated into counted
cells below a zoom declared in the registry, and every tile is capped in features, so no tile of
the demo city reaches 500 KB. Tiles are cached per process under the versions of the layer and of
every table the viewer's read limit depends on (the patrol area's grids and assignments), which
every write bumps in the database (`layer_versions`), and under the limit's own key (its kind and
bound values, from `layers.engine.access`), so a cache never serves a changed layer nor one viewer's tile
to a viewer who may read other rows.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, text

from layers.engine.access import ReadLimit, Viewer, read_limit
from layers.errors import BadQuery
from layers.registry import STORAGE_SRID, Layer
from layers.store.versions import VersionWatcher, is_current

EXTENT = 4096
BUFFER = 64
MAX_ZOOM = 22
FEATURE_CAP = 20_000
CLUSTER_PIXELS = 64  # aggregated points: one cell per 64×64 px of the 4096 tile grid
WORLD_M = 40_075_016.685578488


@dataclass(frozen=True)
class Tile:
    """An MVT tile and the tag that names its content."""

    data: bytes
    etag: str


def check_tile(z: int, x: int, y: int) -> None:
    """Refuse tile indices outside WebMercatorQuad."""
    if not 0 <= z <= MAX_ZOOM or not (0 <= x < 2**z and 0 <= y < 2**z):
        raise BadQuery(
            f"Tile {z}/{x}/{y} is outside WebMercatorQuad (zoom 0-{MAX_ZOOM}, x and y below 2^zoom).",
            f"瓦片 {z}/{x}/{y} 超出 WebMercatorQuad 范围（级别 0-{MAX_ZOOM}，x、y 小于 2^级别）。",
            code="tile_outside_matrix",
        )


def check_tiled(layer: Layer) -> None:
    """Refuse a layer without geometry, which has no tiles."""
    if layer.geometry is None:
        raise BadQuery(
            f"{layer.id} has no geometry, so no tiles.",
            f"图层 {layer.title_zh} 没有几何，不提供瓦片。",
        )


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _attributes(layer: Layer) -> str:
    return "".join(f", t.{_q(name)}" for name in layer.popup_fields)


def tile_sql(layer: Layer, z: int, limit: ReadLimit) -> tuple[str, dict[str, Any]]:
    """SQL returning one bytea, the layer's tile z/x/y (parameters :z, :x, :y), and its other
    values, holding only the rows `limit` lets through."""
    table = _q(layer.id)
    pixel = WORLD_M / 2**z / EXTENT
    params: dict[str, Any] = dict(limit.params)
    where = f"t.geom && ST_Transform(ST_TileEnvelope(:z, :x, :y, margin => {BUFFER / EXTENT}), {STORAGE_SRID})"
    where += f" AND {limit.sql}"
    if layer.versioned is not None:  # a map shows what is in force today
        where += f" AND {is_current(layer, 't')}"
    if layer.cluster_below_zoom is not None and z < layer.cluster_below_zoom:
        # Snap in degrees (cheap: no per-point projection) on one grid per zoom, so neighbouring
        # tiles agree on every cell; a cell is CLUSTER_PIXELS wide (a little taller off the equator).
        cell_deg = pixel * CLUSTER_PIXELS / 111319.49
        return (
            f"""
            WITH cells AS MATERIALIZED (
                SELECT ST_SnapToGrid(t.geom, {cell_deg}) AS centre, count(*) AS count
                FROM {table} AS t WHERE {where}
                GROUP BY 1
            ), mvt AS (
                SELECT ST_AsMVTGeom(ST_Transform(centre, 3857), ST_TileEnvelope(:z, :x, :y), {EXTENT}, {BUFFER}, true) AS geom,
                       count
                FROM cells
            )
            SELECT ST_AsMVT(mvt.*, '{layer.id}', {EXTENT}, 'geom') FROM mvt WHERE geom IS NOT NULL
        """,
            params,
        )
    geometry = "ST_Transform(t.geom, 3857)"
    if layer.geometry is not None and not layer.geometry.is_point:  # lines and areas
        geometry = f"ST_SimplifyPreserveTopology({geometry}, {pixel})"
    return (
        f"""
        WITH mvt AS (
            SELECT ST_AsMVTGeom({geometry}, ST_TileEnvelope(:z, :x, :y), {EXTENT}, {BUFFER}, true) AS geom,
                   t.id{_attributes(layer)}
            FROM {table} AS t WHERE {where}
            ORDER BY t.id
            LIMIT {FEATURE_CAP}
        )
        SELECT ST_AsMVT(mvt.*, '{layer.id}', {EXTENT}, 'geom', 'id') FROM mvt WHERE geom IS NOT NULL
    """,
        params,
    )


def layer_versions(conn: Connection, names: tuple[str, ...]) -> tuple[int, ...]:
    """The versions of the named layers (or other versioned tables), in order: each changes with
    every write to it."""
    found = conn.execute(
        text("SELECT layer, version FROM layer_versions WHERE layer = ANY(:names)"),
        {"names": list(names)},
    ).all()
    rows: dict[str, int] = {str(layer): int(version) for layer, version in found}
    return tuple(rows.get(name, 0) for name in names)


def tile_key(
    layer: Layer, limit: ReadLimit, versions: tuple[int, ...], z: int, x: int, y: int
) -> tuple[Any, ...]:
    """The cache key of a tile: the layer, the read limit's key, the versions it was read at."""
    return (layer.id, limit.key, versions, z, x, y)


class TileCache:
    """A bounded in-process LRU of tiles, keyed by layer version so writes invalidate it."""

    def __init__(
        self, max_bytes: int = 64 * 1024 * 1024, on_lookup: Callable[[bool], None] | None = None
    ) -> None:
        self.max_bytes = max_bytes
        self.on_lookup = on_lookup  # told whether each lookup was a hit (for the metrics)
        self._tiles: OrderedDict[tuple[Any, ...], Tile] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """How many tiles are kept."""
        with self._lock:
            return len(self._tiles)

    def get(self, key: tuple[Any, ...]) -> Tile | None:
        """A cached tile, marked as recently used."""
        with self._lock:
            tile = self._tiles.get(key)
            if tile is not None:
                self._tiles.move_to_end(key)
        if self.on_lookup is not None:
            self.on_lookup(tile is not None)
        return tile

    def put(self, key: tuple[Any, ...], tile: Tile) -> None:
        """Remember a tile, dropping the least recently used ones beyond the size bound."""
        with self._lock:
            if key in self._tiles:
                return
            self._tiles[key] = tile
            self._bytes += len(tile.data)
            while self._bytes > self.max_bytes and self._tiles:
                _, old = self._tiles.popitem(last=False)
                self._bytes -= len(old.data)


def fetch_tile(
    conn: Connection,
    layer: Layer,
    z: int,
    x: int,
    y: int,
    cache: TileCache | None = None,
    versions: tuple[int, ...] | None = None,
    viewer: Viewer | None = None,
) -> Tile:
    """The tile z/x/y of `layer` as `viewer` may see it, from the cache when neither the layer
    nor what limits the viewer has changed since. `versions` are those of `versioned_by`."""
    check_tile(z, x, y)
    limit = read_limit(layer, viewer)
    if versions is None:  # read before the tile: a write in between only makes it newer
        versions = layer_versions(conn, versioned_by(layer, limit))
    key = tile_key(layer, limit, versions, z, x, y)
    if cache is not None and (hit := cache.get(key)) is not None:
        return hit
    sql, params = tile_sql(layer, z, limit)
    data = bytes(conn.execute(text(sql), params | {"z": z, "x": x, "y": y}).scalar_one() or b"")
    digest = hashlib.blake2b(data, digest_size=8).hexdigest()
    tile = Tile(data, f'"{layer.id}-{versions[0]}-{digest}"')
    if cache is not None:
        cache.put(key, tile)
    return tile


def versioned_by(layer: Layer, limit: ReadLimit) -> tuple[str, ...]:
    """The versioned tables a tile of `layer` under `limit` is read from, the layer first."""
    return (layer.id, *(t for t in limit.tables if t != layer.id))


def _vouched(
    layer: Layer, limit: ReadLimit, versions: VersionWatcher | None
) -> tuple[int, ...] | None:
    """The versions a tile depends on, when the listener vouches for every one of them."""
    if versions is None:
        return None
    current = [versions.current(name) for name in versioned_by(layer, limit)]
    if any(v is None for v in current):
        return None
    return tuple(v for v in current if v is not None)


def cached_tile(
    layer: Layer,
    z: int,
    x: int,
    y: int,
    cache: TileCache,
    versions: VersionWatcher | None,
    viewer: Viewer | None = None,
) -> Tile | None:
    """The tile from the cache, without touching the database, when the listener vouches for
    every version it depends on; None when the database must be asked (`built_tile`)."""
    check_tile(z, x, y)
    limit = read_limit(layer, viewer)
    known = _vouched(layer, limit, versions)
    return None if known is None else cache.get(tile_key(layer, limit, known, z, x, y))


def built_tile(
    engine: Engine,
    layer: Layer,
    z: int,
    x: int,
    y: int,
    cache: TileCache,
    versions: VersionWatcher | None,
    viewer: Viewer | None = None,
) -> Tile:
    """The tile through `fetch_tile`, on a connection of its own, when `cached_tile` had none."""
    known = _vouched(layer, read_limit(layer, viewer), versions)
    with engine.connect() as conn:
        return fetch_tile(conn, layer, z, x, y, cache, known, viewer)
