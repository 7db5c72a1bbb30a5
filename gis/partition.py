"""Partition a polygon into compact cells: weighted k-means seeds, clipped Voronoi, reading order."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import MultiPoint, MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

Points = npt.NDArray[np.float64]


def kmeans(points: Points, k: int, rng: np.random.Generator, iterations: int = 25) -> Points:
    """Lloyd's k-means centres of `points` (n × 2); dense areas get more, smaller clusters."""
    if k < 1 or len(points) < k:
        raise ValueError(f"cannot make {k} clusters from {len(points)} points")
    centres = points[rng.choice(len(points), size=k, replace=False)].copy()
    for _ in range(iterations):
        labels = _nearest(points, centres)
        for j in range(k):
            members = points[labels == j]
            if len(members):
                centres[j] = members.mean(axis=0)
    return centres


def _nearest(points: Points, centres: Points) -> npt.NDArray[np.int64]:
    d2 = ((points[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
    return d2.argmin(axis=1)


def polygonal(geom: BaseGeometry) -> MultiPolygon:
    """The polygonal part of a geometry as a MultiPolygon (lines and points of a clip dropped)."""
    parts = [g for g in shapely.get_parts(geom) if isinstance(g, Polygon) and not g.is_empty]
    nested = [p for g in shapely.get_parts(geom) if isinstance(g, MultiPolygon) for p in g.geoms]
    return MultiPolygon(parts + nested)


def voronoi_cells(
    region: BaseGeometry, seeds: Points, grid_size: float | None = None
) -> list[MultiPolygon]:
    """Voronoi cells of `seeds` clipped to `region`, in seed order, snapped to `grid_size`.

    The cells tile the region: they share edges exactly, so a coverage check finds no gap and
    no overlap beyond the snapping grid.
    """
    cells = shapely.voronoi_polygons(MultiPoint(seeds), extend_to=region, ordered=True)
    parts = np.asarray(shapely.get_parts(cells), dtype=object)
    clipped = shapely.intersection(parts, region, grid_size=grid_size)
    return [polygonal(c) for c in clipped]


def reading_order(
    geoms: npt.ArrayLike, row_height: float | None = None, top: float | None = None
) -> npt.NDArray[np.int64]:
    """Indices that order geometries north→south in rows, west→east inside a row.

    Rows are `row_height` tall counted down from `top` (default: the northernmost geometry).
    """
    arr = np.asarray(geoms, dtype=object)
    points = shapely.point_on_surface(arr)
    x, y = shapely.get_x(points), shapely.get_y(points)
    if row_height is None:
        row_height = float(np.sqrt(np.median(shapely.area(arr)))) or 1.0
    rows = np.floor(((y.max() if top is None else top) - y) / row_height)
    return np.lexsort((x, rows))
