"""County boundaries: read from any vector file GDAL reads, in any CRS, checked, and converted
to CGCS2000 (from GCJ-02 where the coordinates were traced on Amap or Tencent maps)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from shapely.geometry import MultiPolygon, Polygon, shape
from shapely.geometry.base import BaseGeometry

from gis.gcj02 import geometry_to_wgs84
from gis.zones import CGCS2000
from layers.engine import filein
from layers.errors import CitygridError, DataFileError

GCJ02 = "gcj02"
# Datums whose longitude/latitude differ from CGCS2000 by centimetres: read as stored.
_SAME_AS_STORAGE = ("China Geodetic Coordinate System 2000", "World Geodetic System 1984")


@dataclass(frozen=True)
class County:
    """A county-level division: its code, name and boundary in CGCS2000."""

    adcode: str
    name: str
    boundary: MultiPolygon


def _bad(path: str, reason_en: str, reason_zh: str) -> DataFileError:
    return DataFileError(
        f"The boundary file {path} is not usable: {reason_en}.",
        f"边界文件 {path} 无法使用：{reason_zh}。",
    )


def read_boundary(text: str, source: str, gcj02: bool) -> MultiPolygon:
    """Parse a GeoJSON (Feature, FeatureCollection or geometry) boundary into CGCS2000."""
    try:
        doc = json.loads(text)
        if doc.get("type") == "FeatureCollection":
            geoms = [shape(f["geometry"]) for f in doc["features"]]
            geom = shapely.union_all(geoms)
        elif doc.get("type") == "Feature":
            geom = shape(doc["geometry"])
        else:
            geom = shape(doc)
    except (ValueError, KeyError, TypeError, AttributeError, shapely.errors.GEOSException) as exc:
        raise _bad(source, f"not valid GeoJSON ({exc})", f"不是有效的 GeoJSON（{exc}）") from exc
    if not isinstance(geom, Polygon | MultiPolygon) or geom.is_empty:
        raise _bad(source, "it holds no polygon", "其中没有面要素")
    if not geom.is_valid:
        raise _bad(
            source,
            f"the polygon is invalid ({shapely.is_valid_reason(geom)})",
            f"面要素无效（{shapely.is_valid_reason(geom)}）",
        )
    _require_china(geom, source)
    if gcj02:
        geom = shapely.make_valid(geometry_to_wgs84(geom))
    return geom if isinstance(geom, MultiPolygon) else MultiPolygon([geom])


def _require_china(geom: BaseGeometry, source: str) -> None:
    minx, miny, maxx, maxy = geom.bounds
    if not (73 <= minx <= maxx <= 136 and 3 <= miny <= maxy <= 54):
        raise _bad(
            source,
            "its coordinates are not longitude/latitude in China",
            "坐标不是中国范围内的经纬度",
        )


def load_county(path: Path | str, adcode: str, name: str, gcj02: bool) -> County:
    """Read a county boundary file, failing with one clear sentence when it is unusable."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _bad(str(path), f"it cannot be read ({exc})", f"无法读取（{exc}）") from exc
    return County(adcode, name, read_boundary(text, str(path), gcj02))


@dataclass(frozen=True)
class BoundaryFile:
    """A boundary read from a file: in CGCS2000, with what the file was read as."""

    boundary: MultiPolygon
    crs_label: str  # e.g. "EPSG:4548", "GCJ-02", "EPSG:4326"
    features: int
    # True when the file's coordinates were taken as WGS84/CGCS2000 longitude/latitude: those
    # are the files that may in truth be GCJ-02 (traced on Amap) without saying so.
    said_lonlat: bool


def _source_crs(declared: str | None, from_file: str | None, source: str) -> CRS | None:
    """The CRS to read the file in: the one given, else the file's own, else None (unknown)."""
    value = declared if declared is not None else from_file
    if value is None:
        return None
    try:
        return CRS.from_user_input(value)
    except CRSError:
        raise _bad(
            source,
            f"the coordinate system {value} is not known (use e.g. --crs EPSG:4548 or --crs gcj02)",
            f"无法识别坐标系 {value}（可用 --crs EPSG:4548 或 --crs gcj02 指定）",
        ) from None


def _label(crs: CRS) -> str:
    epsg = crs.to_epsg(min_confidence=70)
    return f"EPSG:{epsg}" if epsg else crs.name


def _polygons(geometries: list[BaseGeometry | None], source: str) -> list[BaseGeometry]:
    """The polygon geometries of the file, each valid, or an error naming the first bad one."""
    found = []
    for number, geom in enumerate(geometries, start=1):
        if geom is None or geom.is_empty:
            continue
        if not isinstance(geom, Polygon | MultiPolygon):
            raise _bad(
                source,
                f"it holds no polygon: feature {number} is a {geom.geom_type}",
                f"其中没有面要素：第 {number} 个要素是 {geom.geom_type}",
            )
        if not geom.is_valid:
            reason = shapely.is_valid_reason(geom)
            raise _bad(
                source,
                f"feature {number}: the polygon is invalid ({reason})",
                f"第 {number} 个要素的面无效（{reason}）",
            )
        found.append(geom)
    if not found:
        raise _bad(source, "it holds no polygon", "其中没有面要素")
    return found


def _to_storage(geom: BaseGeometry, crs: CRS) -> BaseGeometry:
    transformer = Transformer.from_crs(crs, CGCS2000, always_xy=True)

    def on_coords(xy: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        x, y = transformer.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geom, on_coords)


def read_boundary_file(path: Path | str, crs: str | None = None) -> BoundaryFile:
    """Read a boundary from any vector file GDAL reads (GeoJSON, Shapefile, GeoPackage, KML, …):
    every polygon feature unioned, in the file's CRS unless `crs` names one (`gcj02` for
    coordinates traced on Amap/Tencent maps), converted to CGCS2000 and checked."""
    source = str(path)
    if not Path(path).is_file():
        raise _bad(source, "it cannot be read (no such file)", "无法读取（文件不存在）")
    try:
        data = filein.read(Path(path), filein.FileLimits())
    except CitygridError as exc:
        raise _bad(source, exc.message_en.rstrip("."), exc.message_zh.rstrip("。")) from None
    gcj02 = crs is not None and crs.strip().lower().replace("-", "") == GCJ02
    declared = None if gcj02 else crs
    geom = shapely.union_all(_polygons(data.geometries, source))
    source_crs = None if gcj02 else _source_crs(declared, data.crs, source)
    if source_crs is not None and not (
        source_crs.is_geographic
        and source_crs.datum is not None
        and source_crs.datum.name in _SAME_AS_STORAGE
    ):
        geom = _to_storage(geom, source_crs)
    minx, _, maxx, _ = geom.bounds
    if source_crs is None and not (-180 <= minx <= maxx <= 180):
        raise _bad(
            source,
            "it names no coordinate system and its coordinates are not longitude/latitude "
            "(give one, e.g. --crs EPSG:4548 for metres of Gauss-Krüger zone CM 117°E)",
            "文件未声明坐标系，且坐标不是经纬度（请指定，例如高斯-克吕格 117°E 带用 --crs EPSG:4548）",
        )
    _require_china(geom, source)
    if gcj02:
        geom = shapely.make_valid(geometry_to_wgs84(geom))
    geom = shapely.make_valid(geom)
    polygons = [g for g in getattr(geom, "geoms", [geom]) if isinstance(g, Polygon | MultiPolygon)]
    merged = shapely.union_all(polygons)
    boundary = merged if isinstance(merged, MultiPolygon) else MultiPolygon([merged])
    label = "GCJ-02" if gcj02 else (_label(source_crs) if source_crs else "EPSG:4490")
    said_lonlat = not gcj02 and (source_crs is None or source_crs.is_geographic)
    features = sum(1 for g in data.geometries if g is not None and not g.is_empty)
    return BoundaryFile(boundary, label, features, said_lonlat)
