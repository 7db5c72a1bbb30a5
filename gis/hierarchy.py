"""Checks of a whole grid hierarchy (streets, communities, sections of one county) in metres.

Pure: rows come with their geometry in the county's Gauss-Krüger zone; the county's official
boundary is the streets' parent. Row checks (level, code scheme, parent, duplicates, shape) and
family checks (each parent tiled by its children: gaps, overlaps, spill-over, slivers) are all
run, so that one refusal lists every mistake of a file.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from gis.topology import (
    CHILD_LEVEL,
    CODE_LAYOUT,
    CODE_PATTERN,
    CheckOptions,
    Problem,
    Report,
    check_children,
)

LEVELS = ("street", "community", "section")
COUNTY_TAIL = "0" * 9
FAMILY_KINDS = ("gap", "overlap", "outside", "sliver")
POLYGONAL = ("Polygon", "MultiPolygon")

KIND_LABELS = {
    "invalid": "几何无效",
    "unknown_level": "层级无法识别",
    "malformed_code": "编码格式错误",
    "code_county_mismatch": "编码不属于本县",
    "level_code_mismatch": "层级与编码不符",
    "duplicate_code": "编码重复",
    "missing_parent": "缺少上级网格",
    "code_parent_mismatch": "编码与上级不符",
    "gap": "空隙",
    "overlap": "重叠",
    "outside": "超出上级",
    "sliver": "碎片",
    "county_gap": "未覆盖县界",
    "outside_county": "超出县界",
}
"""Problem kinds of a hierarchy, in the order reports list them, with the label users read."""


@dataclass(frozen=True)
class GridRow:
    """One grid of a file: where it came from, what it says, its shape in metres (None if none)."""

    row: int
    source: int  # index of the file it came from
    level: str | None
    code: str | None
    parent_code: str | None
    geom: BaseGeometry | None
    raw_level: str | None = None


@dataclass(frozen=True)
class Finding:
    """One mistake: its kind, messages, where (metres of the zone), the rows and codes concerned."""

    kind: str
    message_en: str
    message_zh: str
    point: tuple[float, float] | None
    rows: tuple[int, ...] = ()
    codes: tuple[str, ...] = ()
    parent_code: str | None = None
    area_m2: float | None = None
    sources: tuple[int, ...] = ()


def code_level(code: str) -> str | None:
    """The level a 15-digit code's layout stands for (None for the county's own code)."""
    street, community, section = code[6:9], code[9:12], code[12:]
    if street == "000":
        return None
    if community == "000":
        return "street" if section == "000" else None
    return "community" if section == "000" else "section"


def _where(geom: BaseGeometry | None) -> tuple[float, float] | None:
    if geom is None or geom.is_empty:
        return None
    spot = _spot(geom)
    return spot if spot is not None and all(math.isfinite(v) for v in spot) else None


def _spot(geom: BaseGeometry) -> tuple[float, float] | None:
    if not geom.is_valid:
        reason = shapely.is_valid_reason(geom)
        if "[" in reason:
            try:
                x, y = reason[reason.index("[") + 1 : reason.index("]")].split()[:2]
                return float(x), float(y)
            except ValueError:
                pass
        x0, y0 = shapely.get_coordinates(geom)[0]
        return float(x0), float(y0)
    point = shapely.point_on_surface(geom)
    return float(point.x), float(point.y)


def _row_finding(row: GridRow, kind: str, en: str, zh: str) -> Finding:
    return Finding(
        kind,
        en,
        zh,
        _where(row.geom),
        (row.row,),
        (row.code,) if row.code else (),
        row.parent_code,
        sources=(row.source,),
    )


def _shape_findings(row: GridRow) -> list[Finding]:
    geom = row.geom
    if geom is None or geom.is_empty or geom.geom_type not in POLYGONAL:
        if geom is None or geom.is_empty:
            en, zh = f"row {row.row} has no geometry", f"第 {row.row} 行没有几何"
        else:
            kind = geom.geom_type
            en, zh = (
                f"row {row.row} is a {kind}; grids are polygons",
                f"第 {row.row} 行是 {kind}，网格必须是面",
            )
        return [_row_finding(row, "invalid", en, zh)]
    if not geom.is_valid:
        reason = shapely.is_valid_reason(geom).split("[")[0]
        return [
            _row_finding(
                row,
                "invalid",
                f"grid {row.code} has an invalid geometry: {reason}",
                f"网格 {row.code} 的几何无效：{reason}",
            )
        ]
    return []


def _code_findings(row: GridRow, adcode: str) -> list[Finding]:
    if row.level is None:
        shown = row.raw_level or ""
        return [
            _row_finding(
                row,
                "unknown_level",
                f"level {shown!r} is none of 街道/社区/单元 (street/community/section)",
                f"层级 {shown!r} 无法识别，应为 街道/社区/单元（street/community/section）",
            )
        ]
    code = row.code
    if code is None or not CODE_PATTERN.fullmatch(code):
        return [
            _row_finding(
                row,
                "malformed_code",
                f"grid code {code!r} is not 15 digits",
                f"网格编码 {code!r} 不是 15 位数字",
            )
        ]
    if code[:6] != adcode:
        return [
            _row_finding(
                row,
                "code_county_mismatch",
                f"grid code {code} does not start with the county's code {adcode}",
                f"网格编码 {code} 不以本县代码 {adcode} 开头",
            )
        ]
    if code_level(code) != row.level:
        return [
            _row_finding(
                row,
                "level_code_mismatch",
                f"grid code {code} is not laid out as a {row.level} grid's code",
                f"网格编码 {code} 不符合{KIND_LEVEL_ZH[row.level]}编码规则",
            )
        ]
    return []


KIND_LEVEL_ZH = {"street": "街道网格", "community": "社区网格", "section": "单元网格"}


def _parent_findings(row: GridRow, by_code: dict[str, GridRow], adcode: str) -> list[Finding]:
    assert row.code is not None and row.level is not None
    parent = row.parent_code
    if row.level == "street":
        if parent not in (None, adcode + COUNTY_TAIL):
            return [
                _row_finding(
                    row,
                    "code_parent_mismatch",
                    f"street grid {row.code} names {parent} as its parent, not the county",
                    f"街道网格 {row.code} 的上级编码 {parent} 不是本县",
                )
            ]
        return []
    if parent is None or parent not in by_code:
        what = "no parent code" if parent is None else f"parent {parent}, which the file lacks"
        what_zh = "没有上级编码" if parent is None else f"上级编码 {parent} 在文件中不存在"
        return [
            _row_finding(
                row,
                "missing_parent",
                f"grid {row.code} has {what}",
                f"网格 {row.code} {what_zh}",
            )
        ]
    shared = CODE_LAYOUT[row.level][0]
    if (
        CHILD_LEVEL.get(by_code[parent].level or "") != row.level
        or row.code[:shared] != parent[:shared]
    ):
        return [
            _row_finding(
                row,
                "code_parent_mismatch",
                f"grid code {row.code} does not extend its parent's code {parent} as a {row.level} grid",
                f"网格编码 {row.code} 与上级网格编码 {parent} 不匹配（{KIND_LEVEL_ZH[row.level]}）",
            )
        ]
    return []


def row_findings(
    rows: list[GridRow], adcode: str
) -> tuple[list[Finding], dict[str, GridRow], list[GridRow]]:
    """Mistakes of single rows, the rows usable as parents (by code) and those placed under a
    parent of the level above."""
    found: list[Finding] = []
    by_code: dict[str, list[GridRow]] = defaultdict(list)
    for row in rows:
        found += _shape_findings(row)
        problems = _code_findings(row, adcode)
        found += problems
        if not problems and row.code is not None:
            by_code[row.code].append(row)
    for code, same in by_code.items():
        if len(same) > 1:
            found.append(
                Finding(
                    "duplicate_code",
                    f"grid code {code} is used by {len(same)} rows",
                    f"网格编码 {code} 重复使用了 {len(same)} 次",
                    _where(same[1].geom),
                    tuple(r.row for r in same),
                    (code,),
                    sources=tuple(r.source for r in same),
                )
            )
    unique = {code: same[0] for code, same in by_code.items()}
    placed = []
    for row in unique.values():
        problems = _parent_findings(row, unique, adcode)
        found += problems
        if not problems:
            placed.append(row)
    return found, unique, placed


def tolerate_boundary(report: Report, boundary: BaseGeometry, tolerance_m: float) -> Report:
    """The report of a county's streets without the gaps and spill-over that stay within
    `tolerance_m` of its official boundary: two sources of one boundary never agree exactly."""
    if tolerance_m <= 0:
        return report
    band = shapely.buffer(shapely.boundary(boundary), tolerance_m)
    shapely.prepare(band)
    kept = tuple(
        p
        for p in report.problems
        if p.kind not in ("gap", "outside") or not shapely.within(p.geom, band)
    )
    return Report(report.parent_code, report.children, kept)


def _family(
    parent: BaseGeometry,
    parent_code: str,
    kids: list[GridRow],
    options: CheckOptions,
    county: bool,
) -> list[Finding]:
    codes = [k.code or "" for k in kids]
    level = kids[0].level or "section"
    geoms = np.asarray([k.geom for k in kids], dtype=object)
    report = check_children(parent, parent_code, level, geoms, codes, options)
    if county:
        report = tolerate_boundary(report, parent, options.boundary_tolerance_m)
    rows_of = {k.code: k for k in kids}
    return [
        _family_finding(p, parent_code, rows_of, county, options)
        for p in report.problems
        if p.kind in FAMILY_KINDS
    ]


def _family_finding(
    p: Problem,
    parent_code: str,
    rows_of: dict[str | None, GridRow],
    county: bool,
    options: CheckOptions,
) -> Finding:
    kind, en, zh = p.kind, p.message_en, p.message_zh
    tolerance = options.boundary_tolerance_m
    if county and kind == "gap":
        kind = "county_gap"
        area = p.area_m2 or 0.0
        en = f"{area:,.0f} m² of the county's official boundary is covered by no street grid (beyond the {tolerance:,.0f} m tolerance)"
        zh = f"县界内有 {area:,.0f} ㎡ 未被任何街道网格覆盖（超出 {tolerance:,.0f} 米容差）"
    elif kind == "gap":
        area = p.area_m2 or 0.0
        en = f"a gap of {area:,.2f} m² in {parent_code} that none of its grids covers"
        zh = f"上级网格 {parent_code} 内有 {area:,.2f} ㎡ 的空隙未被任何下级网格覆盖"
    elif county and kind == "outside":
        kind = "outside_county"
        area = p.area_m2 or 0.0
        en = f"grid {p.codes[0]} extends {area:,.0f} m² beyond the county's official boundary (more than {tolerance:,.0f} m)"
        zh = f"网格 {p.codes[0]} 超出县界 {area:,.0f} ㎡（超出 {tolerance:,.0f} 米容差）"
    rows = [rows_of[c] for c in p.codes if c in rows_of]
    return Finding(
        kind,
        en,
        zh,
        p.location if not p.geom.is_empty else None,
        tuple(r.row for r in rows),
        p.codes,
        parent_code,
        p.area_m2,
        tuple(r.source for r in rows),
    )


def check_hierarchy(
    rows: list[GridRow], adcode: str, boundary: BaseGeometry, options: CheckOptions
) -> list[Finding]:
    """Every mistake of a county's grid hierarchy: rows first, then each family top-down."""
    found, by_code, placed = row_findings(rows, adcode)
    children: dict[str, list[GridRow]] = defaultdict(list)
    county_code = adcode + COUNTY_TAIL
    for row in placed:
        if row.geom is None or row.geom.is_empty or row.geom.geom_type not in POLYGONAL:
            continue  # reported as a row mistake
        children[county_code if row.level == "street" else str(row.parent_code)].append(row)
    if not children.get(county_code):
        found.append(
            Finding(
                "missing_parent",
                "the file holds no street grid",
                "文件中没有街道网格",
                _where(boundary),
            )
        )
    for parent_code, kids in children.items():
        parent = boundary if parent_code == county_code else by_code[parent_code].geom
        if parent is None or not parent.is_valid:
            continue  # reported as a row mistake already
        found += _family(parent, parent_code, kids, options, parent_code == county_code)
    order = list(KIND_LABELS)
    found.sort(key=lambda f: (order.index(f.kind), f.rows or (0,)))
    return found


def same_shape(a: BaseGeometry, b: BaseGeometry, tolerance_m: float) -> bool:
    """Whether two shapes (metres) differ by no more than `tolerance_m` anywhere."""
    return bool(np.asarray(shapely.hausdorff_distance(a, b)) <= tolerance_m)
