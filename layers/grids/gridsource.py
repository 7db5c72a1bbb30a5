"""A county's grid hierarchy as handed over in files: columns recognised, levels read, shapes
brought from the file's CRS (a Gauss-Krüger zone, CGCS2000, WGS84 or GCJ-02) into metres.

Headings are recognised in Chinese and English (层级/level, 网格编码/code, 上级编码/parent_code,
网格名称/name, 责任人, 责任单位, 联系电话); `--map COLUMN=FIELD` names a bureau's own columns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from shapely.geometry.base import BaseGeometry

from gis.gcj02 import gcj02_to_wgs84, wgs84_to_gcj02
from gis.hierarchy import GridRow, code_level
from gis.zones import CGCS2000, FIRST_ZONE_EPSG, LAST_ZONE_EPSG, central_meridian
from layers.engine.filein import SourceData, refuse
from layers.errors import BadQuery

FIELDS = (
    "level",
    "code",
    "parent_code",
    "name",
    "responsible_person",
    "responsible_unit",
    "phone",
)
HEADINGS: dict[str, tuple[str, ...]] = {
    "level": ("level", "层级", "网格层级", "级别", "grid_level", "jb"),
    "code": ("code", "网格编码", "grid_code", "编码", "wgbm"),
    "parent_code": ("parent_code", "上级编码", "上级网格编码", "parent", "parent_cd", "sjbm"),
    "name": ("name", "网格名称", "grid_name", "名称", "wgmc"),
    "responsible_person": ("responsible_person", "责任人", "resp_name", "zrr"),
    "responsible_unit": ("responsible_unit", "责任单位", "resp_unit", "zrdw"),
    "phone": ("phone", "联系电话", "电话", "tel"),
}
LEVEL_WORDS = {
    "street": ("街道", "街道网格", "镇", "乡镇", "street", "1"),
    "community": ("社区", "社区网格", "村", "村居", "community", "2"),
    "section": ("单元", "单元网格", "片区", "片区网格", "网格", "section", "unit", "3"),
}
GCJ02 = ("gcj02", "gcj-02")
# CGCS2000 3-degree Gauss-Krüger zones with the zone number before the easting (zones 25-45)
FIRST_NUMBERED_ZONE, LAST_NUMBERED_ZONE = 4513, 4533


@dataclass(frozen=True)
class Place:
    """Where a file's coordinates come from, and how to speak of a point in them."""

    crs: CRS | None  # None: GCJ-02 longitude/latitude
    label_en: str
    label_zh: str

    def to_zone(self, geoms: list[BaseGeometry | None], epsg: int) -> list[BaseGeometry | None]:
        """The shapes in metres of GK zone `epsg`."""
        present = [i for i, g in enumerate(geoms) if g is not None]
        arr = np.asarray([geoms[i] for i in present], dtype=object)
        if self.crs is None:
            arr = shapely.transform(
                arr, lambda xy: np.column_stack(gcj02_to_wgs84(xy[:, 0], xy[:, 1]))
            )
            source: CRS = CRS.from_epsg(CGCS2000)
        else:
            source = self.crs
        move = Transformer.from_crs(source, epsg, always_xy=True)
        moved = shapely.transform(
            arr, lambda xy: np.column_stack(move.transform(xy[:, 0], xy[:, 1]))
        )
        out: list[BaseGeometry | None] = [None] * len(geoms)
        for i, g in zip(present, moved, strict=True):
            out[i] = g
        return out

    def describe(self, lon: float, lat: float) -> tuple[str, str, float, float]:
        """A CGCS2000 point in the file's coordinates: (English, Chinese, x, y)."""
        if self.crs is None:
            gx, gy = wgs84_to_gcj02(lon, lat)
            x, y = float(gx), float(gy)
        else:
            x, y = Transformer.from_crs(CGCS2000, self.crs, always_xy=True).transform(lon, lat)
        if self.crs is not None and self.crs.is_projected:
            text = f"x={x:,.1f} y={y:,.1f}"
        else:
            text = f"lon {x:.6f}, lat {y:.6f}"
        return f"{self.label_en} {text}", f"{self.label_zh}{text}", float(x), float(y)


def _zone_words(code: int) -> tuple[str, str] | None:
    if FIRST_ZONE_EPSG <= code <= LAST_ZONE_EPSG:
        cm = central_meridian(code)
        return f"3° zone, CM {cm}°E", f"3° 带，中央经线 {cm}°E"
    if FIRST_NUMBERED_ZONE <= code <= LAST_NUMBERED_ZONE:
        number = 25 + code - FIRST_NUMBERED_ZONE
        cm = 75 + 3 * (code - FIRST_NUMBERED_ZONE)
        return (
            f"3° zone {number}, CM {cm}°E, zone number in the easting",
            f"3° 带第 {number} 带，中央经线 {cm}°E，横坐标带带号",
        )
    return None


def place_of(given: str | None, file_crs: str | None, geoms: list[BaseGeometry | None]) -> Place:
    """The CRS of a file: the one given, else the file's own (.prj), else degrees if they are."""
    name = given or file_crs
    if name is not None and name.strip().lower() in GCJ02:
        return Place(None, "GCJ-02 (Amap/Tencent)", "GCJ-02（高德/腾讯）")
    if name is None:
        present = [g for g in geoms if g is not None]
        x0, y0, x1, y1 = shapely.total_bounds(present) if present else (0, 0, 0, 0)
        if not (-180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
            raise refuse(
                "upload_no_crs",
                "The file does not say its coordinate system and is not in degrees: give its "
                "CRS (e.g. EPSG:4548).",
                "文件未声明坐标系，且坐标不是经纬度：请指定坐标系（例如 EPSG:4548）。",
            )
        name = f"EPSG:{CGCS2000}"
    try:
        crs = CRS.from_user_input(name)
    except CRSError:
        raise refuse(
            "unknown_crs", f"Unknown coordinate system {name!r}.", f"无法识别的坐标系 {name!r}。"
        ) from None
    code = crs.to_epsg()
    label = f"EPSG:{code}" if code else crs.name
    zone = _zone_words(code) if code else None
    if zone is not None:
        return Place(crs, f"{label} ({zone[0]})", f"{label}（{zone[1]}）")
    return Place(crs, f"{label} ({crs.name})", f"{label}（{crs.name}）")


def column_map(columns: list[str], values: list[Any], explicit: dict[str, str]) -> dict[str, int]:
    """Field → column index: the explicit mapping first, then the common headings of columns
    holding something (a KML's empty Name column does not hide its 网格名称)."""
    bad = sorted(set(explicit.values()) - set(FIELDS))
    if bad:
        raise BadQuery(
            f"--map names {', '.join(bad)}; grid fields are {', '.join(FIELDS)}.",
            f"字段对应中的 {'、'.join(bad)} 不是网格字段（可用：{'、'.join(FIELDS)}）。",
        )
    out: dict[str, int] = {}
    for column, target in explicit.items():
        if column in columns:
            out[target] = columns.index(column)
    lowered = [c.strip().lower() for c in columns]
    for name in FIELDS:
        if name in out:
            continue
        for heading in HEADINGS[name]:
            at = lowered.index(heading) if heading in lowered else None
            if at is not None and at not in out.values() and _filled(values[at]):
                out[name] = at
                break
    if "code" not in out:
        raise refuse(
            "import_missing_columns",
            f"The file has no grid code column (looked for {', '.join(HEADINGS['code'])}; "
            "name yours with --map COLUMN=code).",
            f"文件中没有网格编码列（可识别的列名：{'、'.join(HEADINGS['code'])}；"
            "可用 --map 列名=code 指定）。",
        )
    return out


def _filled(column: Any) -> bool:
    return any(text_value(v) is not None for v in column)


def text_value(value: Any) -> str | None:
    """A cell as text (whole numbers without a decimal point), None when blank."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    return text or None


def level_of(value: str | None) -> str | None:
    """The level a cell names (街道/社区/单元, street/community/section, 1/2/3), or None."""
    if value is None:
        return None
    word = value.strip().lower()
    return next((level for level, words in LEVEL_WORDS.items() if word in words), None)


@dataclass(frozen=True)
class ReadRows:
    """Rows of every file, their attributes by code, and where each file's coordinates are."""

    rows: list[GridRow]
    attributes: list[dict[str, str | None]]
    places: list[Place]
    names: list[str]


def read_rows(
    sources: list[tuple[str, SourceData]], crs: str | None, explicit: dict[str, str], epsg: int
) -> ReadRows:
    """Every file's grids as rows (numbered from 1 in each file), shapes in metres of `epsg`."""
    if explicit and not any(set(explicit) & set(s.columns) for _, s in sources):
        raise BadQuery(
            f"--map names columns ({', '.join(explicit)}) no file has.",
            f"字段对应中的列（{'、'.join(explicit)}）不在任何文件中。",
        )
    rows: list[GridRow] = []
    attributes: list[dict[str, str | None]] = []
    places = []
    for index, (_, source) in enumerate(sources):
        at = column_map(source.columns, source.values, explicit)
        place = place_of(crs, source.crs, source.geometries)
        places.append(place)
        shapes = place.to_zone(source.geometries, epsg)
        for n in range(len(source)):
            cells = {f: text_value(source.values[i][n]) for f, i in at.items()}
            raw_level = cells.get("level")
            code = cells.get("code")
            level = level_of(raw_level) if "level" in at else _level_from_code(code)
            rows.append(
                GridRow(n + 1, index, level, code, cells.get("parent_code"), shapes[n], raw_level)
            )
            attributes.append(cells)
    return ReadRows(rows, attributes, places, [name for name, _ in sources])


def _level_from_code(code: str | None) -> str | None:
    if code is None or len(code) != 15 or not code.isdigit():
        return "section"  # the code's own check names the mistake
    return code_level(code) or "section"
