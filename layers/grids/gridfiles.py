"""Grid sets handed over as files (read by `layers.engine.filein`) or as GeoJSON in a request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from layers.engine import filein
from layers.engine.filein import FileLimits, refuse

CODE_NAMES = ("code", "网格编码", "grid_code", "wgbm")
NAME_NAMES = ("name", "网格名称", "grid_name", "wgmc")

Drawn = list[tuple[BaseGeometry, str | None, str | None]]


def _pick(fields: list[str], wanted: tuple[str, ...]) -> int | None:
    lowered = [f.lower() for f in fields]
    for name in wanted:
        if name in lowered:
            return lowered.index(name)
    return None


def _text_column(values: Any, i: int) -> str | None:
    value = values[i]
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return str(value).strip() or None


def read_grid_file(
    data: bytes, filename: str, crs: str | None, limits: FileLimits
) -> Callable[[int], Drawn]:
    """Grids of an uploaded file, as a function giving them in metres of a GK zone."""
    with filein.opened(data, filename, limits) as path:
        source = filein.read(path, limits)
    fields = source.columns
    columns = source.values
    code_i, name_i = _pick(fields, CODE_NAMES), _pick(fields, NAME_NAMES)
    rows = [
        (
            geom,
            None if code_i is None else _text_column(columns[code_i], n),
            None if name_i is None else _text_column(columns[name_i], n),
        )
        for n, geom in enumerate(source.geometries)
    ]
    return in_zone(rows, crs or source.crs)


def _source_crs(given: str | None) -> CRS:
    if not given:
        raise refuse(
            "upload_no_crs",
            "The file does not say its coordinate system: give crs (e.g. EPSG:4490 or EPSG:4549).",
            "文件未声明坐标系：请指定 crs（例如 EPSG:4490 或 EPSG:4549）。",
        )
    try:
        return CRS.from_user_input(given)
    except CRSError:
        raise refuse(
            "unknown_crs", f"Unknown coordinate system {given!r}.", f"无法识别的坐标系 {given!r}。"
        ) from None


def in_zone(rows: Drawn, crs: str | None) -> Callable[[int], Drawn]:
    """Rows in a source CRS as a function giving them in metres of GK zone `epsg`."""
    source = _source_crs(crs)
    for n, (geom, _, _) in enumerate(rows, start=1):
        if geom is None or geom.geom_type not in {"Polygon", "MultiPolygon"}:
            kind = "no geometry" if geom is None else geom.geom_type
            raise refuse(
                "geometry_wrong_type",
                f"Feature {n} is {kind}; grids are polygons.",
                f"第 {n} 个要素是 {kind}，网格必须是面。",
            )

    def to_zone(epsg: int) -> Drawn:
        transformer = Transformer.from_crs(source, epsg, always_xy=True)

        def on_coords(xy: Any) -> Any:
            x, y = transformer.transform(xy[:, 0], xy[:, 1])
            return np.column_stack([x, y])

        geoms = shapely.transform(np.asarray([g for g, _, _ in rows], dtype=object), on_coords)
        return [(g, c, n) for g, (_, c, n) in zip(geoms, rows, strict=True)]

    return to_zone


def from_feature_collection(doc: Any) -> Callable[[int], Drawn]:
    """Grids of a GeoJSON FeatureCollection in longitude/latitude (CGCS2000 or WGS84)."""
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise refuse(
            "body_not_feature_collection",
            "features must be a GeoJSON FeatureCollection.",
            "features 必须是 GeoJSON FeatureCollection。",
        )
    rows: Drawn = []
    for n, feature in enumerate(doc.get("features") or [], start=1):
        props = (feature or {}).get("properties") or {}
        try:
            geom = shape(feature["geometry"])
        except Exception:  # shapely raises several types on malformed GeoJSON
            raise refuse(
                "geometry_malformed",
                f"Feature {n} has no usable geometry.",
                f"第 {n} 个要素的几何无法使用。",
            ) from None
        code = props.get("code")
        name = props.get("name")
        rows.append(
            (geom, str(code) if code is not None else None, str(name) if name is not None else None)
        )
    return in_zone(rows, "EPSG:4490")


def drawn_geometry(doc: Any, kinds: set[str]) -> BaseGeometry:
    """A drawn GeoJSON geometry (longitude/latitude) of one of `kinds`, or a clear refusal."""
    kind = doc.get("type") if isinstance(doc, dict) else None
    if not isinstance(kind, str) or kind not in kinds:
        raise refuse(
            "geometry_wrong_type",
            f"Expected a GeoJSON {' or '.join(sorted(kinds))}, got {kind!r}.",
            f"需要 GeoJSON {' 或 '.join(sorted(kinds))} 几何，收到的是 {kind!r}。",
        )
    try:
        geom = shape(doc)
    except Exception:  # shapely raises several types on malformed GeoJSON
        raise refuse(
            "geometry_malformed", "The geometry is malformed.", "几何格式不正确。"
        ) from None
    coords = shapely.get_coordinates(geom)
    if (
        geom.is_empty
        or not np.isfinite(coords).all()
        or not ((np.abs(coords[:, 0]) <= 180).all() and (np.abs(coords[:, 1]) <= 90).all())
    ):
        raise refuse(
            "geometry_malformed",
            "The geometry must be longitude/latitude in degrees.",
            "几何坐标必须是以度为单位的经纬度。",
        )
    return geom
