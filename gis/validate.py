"""Checks a submitted geometry (a GeoJSON object, or a shape read from a file) before anything is
written, naming the problem and where.

Pure: the caller gives the expected geometry type, the county (CGCS2000) and the limits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from gis.zones import geometry_zone, to_gk

POLYGONAL = {"Polygon", "MultiPolygon"}
LINEAR = {"LineString", "MultiLineString"}
# The GeoJSON types a layer of each declared type takes: a single part is promoted to a multi
ACCEPTS = {
    "Point": ("Point",),
    "MultiPoint": ("Point", "MultiPoint"),
    "LineString": ("LineString",),
    "MultiLineString": ("LineString", "MultiLineString"),
    "MultiPolygon": ("Polygon", "MultiPolygon"),
}
_TYPE_IDS = {
    "Point": 0,
    "LineString": 1,
    "Polygon": 3,
    "MultiPoint": 4,
    "MultiLineString": 5,
    "MultiPolygon": 6,
}


@dataclass(frozen=True)
class GeometryProblem(Exception):
    """What is wrong with a geometry: a machine code, a message in English and Chinese, and where."""

    code: str
    message_en: str
    message_zh: str
    location: tuple[float, float] | None = None

    def __str__(self) -> str:
        return self.message_en


@dataclass(frozen=True)
class Limits:
    """What a submitted geometry must respect."""

    max_vertices: int = 10_000
    county_tolerance_m: float = 200.0


def _positions(coords: Any, depth: int) -> list[Any]:
    """Flatten nested coordinate arrays down to positions."""
    if depth == 0:
        return [coords]
    if not isinstance(coords, list):
        raise GeometryProblem(
            "geometry_malformed",
            "coordinates must be nested arrays of numbers",
            "坐标必须是嵌套的数值数组",
        )
    return [p for c in coords for p in _positions(c, depth - 1)]


DEPTH = {
    "Point": 0,
    "MultiPoint": 1,
    "LineString": 1,
    "MultiLineString": 2,
    "Polygon": 2,
    "MultiPolygon": 3,
}


def _check_numbers(doc: dict[str, Any]) -> list[tuple[float, float]]:
    kind = doc.get("type")
    if kind not in DEPTH or "coordinates" not in doc:
        raise GeometryProblem(
            "geometry_malformed",
            f"not a GeoJSON geometry (type {kind!r})",
            f"不是有效的 GeoJSON 几何（类型 {kind!r}）",
        )
    out = []
    for p in _positions(doc["coordinates"], DEPTH[kind]):
        if (
            not isinstance(p, list)
            or len(p) < 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in p)
        ):
            raise GeometryProblem(
                "geometry_malformed", f"position {p!r} is not [x, y]", f"坐标 {p!r} 不是 [x, y]"
            )
        if not all(math.isfinite(v) for v in p):
            raise GeometryProblem(
                "geometry_not_finite",
                f"position {p!r} holds NaN or Infinity",
                f"坐标 {p!r} 含有 NaN 或无穷大",
            )
        out.append((float(p[0]), float(p[1])))
    return out


def _check_rings(doc: dict[str, Any]) -> None:
    polygons = [doc["coordinates"]] if doc["type"] == "Polygon" else doc["coordinates"]
    for polygon in polygons:
        if not polygon:
            raise GeometryProblem("geometry_too_few_points", "a polygon has no ring", "面没有环")
        for ring in polygon:
            where = (float(ring[0][0]), float(ring[0][1])) if ring else None
            if len(ring) < 4:
                raise GeometryProblem(
                    "geometry_too_few_points",
                    f"a ring has {len(ring)} positions, at least 4 are needed",
                    f"环只有 {len(ring)} 个点，至少需要 4 个",
                    where,
                )
            if ring[0][:2] != ring[-1][:2]:
                raise GeometryProblem(
                    "geometry_ring_not_closed",
                    f"a ring starting at {ring[0][:2]} does not end where it starts",
                    f"起点为 {ring[0][:2]} 的环首尾不闭合",
                    where,
                )


def _check_lines(doc: dict[str, Any]) -> None:
    lines = [doc["coordinates"]] if doc["type"] == "LineString" else doc["coordinates"]
    for line in lines:
        if len(line) < 2:
            where = (float(line[0][0]), float(line[0][1])) if line else None
            raise GeometryProblem(
                "geometry_too_few_points",
                f"a line has {len(line)} positions, at least 2 are needed",
                f"线只有 {len(line)} 个点，至少需要 2 个",
                where,
            )


def accepted_type_ids(expected: str) -> list[int]:
    """Shapely type ids of the geometries a layer of type `expected` takes (before promotion)."""
    return [_TYPE_IDS[kind] for kind in ACCEPTS.get(expected, ())]


def promote(geom: BaseGeometry, expected: str) -> BaseGeometry:
    """A single part as the multi type a layer stores (Polygon → MultiPolygon …), else as is."""
    if expected.startswith("Multi") and geom.geom_type == expected.removeprefix("Multi"):
        multi: BaseGeometry = getattr(shapely, expected)([geom])
        return multi
    return geom


def _check_place(geom: BaseGeometry, county: BaseGeometry, limits: Limits) -> None:
    if geom.within(county):
        return
    spot = shapely.get_coordinates(geom)[0]
    where = (float(spot[0]), float(spot[1]))
    swapped = shapely.transform(geom, lambda xy: xy[:, ::-1])
    if not geom.intersects(county) and swapped.intersects(county):
        raise GeometryProblem(
            "geometry_axis_swapped",
            f"the geometry lies outside the county, at ({spot[0]:.6f}, {spot[1]:.6f}); latitude and longitude look swapped: "
            "GeoJSON wants [longitude, latitude]",
            f"几何位于辖区之外（{spot[0]:.6f}, {spot[1]:.6f}），疑似经纬度颠倒：GeoJSON 坐标顺序应为 [经度, 纬度]",
            where,
        )
    minx, miny, maxx, maxy = geom.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise GeometryProblem(
            "geometry_outside_county",
            "the coordinates are not longitude/latitude in degrees",
            "坐标不是以度为单位的经纬度",
            where,
        )
    epsg = int(geometry_zone([county])[0])
    county_m, geom_m = to_gk([county, geom], epsg)
    if shapely.difference(geom_m, county_m.buffer(limits.county_tolerance_m)).is_empty:
        return
    distance = float(
        shapely.distance(county_m, shapely.points(shapely.get_coordinates(geom_m))).max()
    )
    raise GeometryProblem(
        "geometry_outside_county",
        f"the geometry lies outside the county by {distance:,.0f} m (tolerance {limits.county_tolerance_m:,.0f} m), "
        f"near ({spot[0]:.6f}, {spot[1]:.6f})",
        f"几何超出辖区 {distance:,.0f} 米（容差 {limits.county_tolerance_m:,.0f} 米），位置约在（{spot[0]:.6f}, {spot[1]:.6f}）",
        where,
    )


def validate_geometry(
    doc: Any, expected: str, county: BaseGeometry | None, limits: Limits = Limits()
) -> BaseGeometry:
    """A valid geometry of the `expected` type (a layer's GeoJSON type) inside the county, or a problem."""
    if not isinstance(doc, dict):
        raise GeometryProblem(
            "geometry_missing", "the feature has no geometry object", "要素缺少几何对象"
        )
    positions = _check_numbers(doc)
    _check_size_and_type(len(positions), doc["type"], expected, limits)
    if doc["type"] in POLYGONAL:
        _check_rings(doc)
    if doc["type"] in LINEAR:
        _check_lines(doc)
    try:
        geom = shape(doc)
    except (ValueError, TypeError, shapely.errors.GEOSException) as exc:
        raise GeometryProblem(
            "geometry_malformed", f"not a usable geometry ({exc})", f"几何无法使用（{exc}）"
        ) from exc
    return check_shape(geom, expected, county, limits)


def check_shape(
    geom: BaseGeometry | None, expected: str, county: BaseGeometry | None, limits: Limits = Limits()
) -> BaseGeometry:
    """The checks of `validate_geometry` on a shapely geometry (as read from a file): the same
    codes, the same border tolerance and axis-swap detection."""
    if geom is None or geom.is_empty:
        raise GeometryProblem("geometry_missing", "the geometry is empty", "几何为空")
    coords = shapely.get_coordinates(geom)
    bad = coords[~np.isfinite(coords).all(axis=1)]
    if len(bad):
        p = [float(v) for v in bad[0]]
        raise GeometryProblem(
            "geometry_not_finite",
            f"position {p!r} holds NaN or Infinity",
            f"坐标 {p!r} 含有 NaN 或无穷大",
        )
    _check_size_and_type(len(coords), geom.geom_type, expected, limits)
    if not geom.is_valid:
        reason = shapely.is_valid_reason(geom)
        where = _reason_location(reason)
        raise GeometryProblem(
            "geometry_invalid", f"the geometry is invalid: {reason}", f"几何无效：{reason}", where
        )
    if geom.geom_type in LINEAR and not geom.is_simple:
        raise GeometryProblem(
            "geometry_not_simple",
            "the line crosses itself",
            "线自相交",
            _crossing(geom),
        )
    geom = promote(geom, expected)
    if county is not None:
        _check_place(geom, county, limits)
    return geom


def _check_size_and_type(vertices: int, kind: str, expected: str, limits: Limits) -> None:
    if vertices > limits.max_vertices:
        raise GeometryProblem(
            "geometry_too_many_vertices",
            f"the geometry has {vertices:,} vertices, the limit is {limits.max_vertices:,}",
            f"几何有 {vertices:,} 个节点，超过上限 {limits.max_vertices:,}",
        )
    if kind not in ACCEPTS.get(expected, ()):
        raise GeometryProblem(
            "geometry_wrong_type",
            f"this layer takes {expected}, not {kind}",
            f"该图层需要 {expected} 几何，而不是 {kind}",
        )


def _crossing(geom: BaseGeometry) -> tuple[float, float] | None:
    """Where a line that is not simple first meets itself (a node its noding adds)."""
    given = {tuple(p) for p in shapely.get_coordinates(geom).tolist()}
    noded = shapely.get_coordinates(shapely.node(geom)).tolist()
    extra = [p for p in noded if tuple(p) not in given]
    spot = extra[0] if extra else noded[0]
    return float(spot[0]), float(spot[1])


def _reason_location(reason: str) -> tuple[float, float] | None:
    if "[" not in reason:
        return None
    try:
        x, y = reason[reason.index("[") + 1 : reason.index("]")].split()[:2]
        return float(x), float(y)
    except ValueError:
        return None
