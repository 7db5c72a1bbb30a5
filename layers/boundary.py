"""County boundaries: read from GeoJSON, checked, converted from GCJ-02 where needed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import shapely
from shapely.geometry import MultiPolygon, Polygon, shape

from gis.gcj02 import geometry_to_wgs84
from layers.errors import DataFileError


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
    minx, miny, maxx, maxy = geom.bounds
    if not (73 <= minx <= maxx <= 136 and 3 <= miny <= maxy <= 54):
        raise _bad(
            source,
            "its coordinates are not longitude/latitude in China",
            "坐标不是中国范围内的经纬度",
        )
    if gcj02:
        geom = shapely.make_valid(geometry_to_wgs84(geom))
    return geom if isinstance(geom, MultiPolygon) else MultiPolygon([geom])


def load_county(path: Path | str, adcode: str, name: str, gcj02: bool) -> County:
    """Read a county boundary file, failing with one clear sentence when it is unusable."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _bad(str(path), f"it cannot be read ({exc})", f"无法读取（{exc}）") from exc
    return County(adcode, name, read_boundary(text, str(path), gcj02))
