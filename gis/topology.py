"""Topology checks of the child grids of one parent, in metres: does the set tile its parent?

Pure and vectorised: overlaps come from an STRtree query with prepared predicates, spill-over
from one prepared parent, gaps from the parent minus the union of the children. Problems below
`min_area_m2` are rounding noise of the projection, not defects.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry.base import BaseGeometry

CODE_PATTERN = re.compile(r"[0-9]{15}")

# child level -> (digits shared with the parent's code, digits of its own, trailing zeros)
CODE_LAYOUT: dict[str, tuple[int, int, int]] = {
    "street": (6, 3, 6),
    "community": (9, 3, 3),
    "section": (12, 3, 0),
}
CHILD_LEVEL = {"county": "street", "street": "community", "community": "section"}

KIND_LABELS = {
    "invalid": "几何无效",
    "gap": "空隙",
    "overlap": "重叠",
    "outside": "超出上级",
    "sliver": "碎片",
    "malformed_code": "编码格式错误",
    "duplicate_code": "编码重复",
    "code_parent_mismatch": "编码与上级不符",
}
"""Problem kinds, in the order reports list them, with the label users read."""
KINDS = tuple(KIND_LABELS)


@dataclass(frozen=True)
class CheckOptions:
    """Thresholds of a check, in square metres."""

    sliver_m2: float = 100.0
    min_area_m2: float = 0.01
    min_width_m: float = 0.01
    boundary_tolerance_m: float = 0.0  # how far streets may miss a county's official boundary

    def significant(self, geoms: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        """Which discrepancies are defects: large enough, and wider than a rounding sliver."""
        area, perimeter = shapely.area(geoms), shapely.length(geoms)
        width = np.divide(2 * area, perimeter, out=np.zeros_like(area), where=perimeter > 0)
        return (area >= self.min_area_m2) & (width >= self.min_width_m)


@dataclass(frozen=True)
class Problem:
    """One defect: what it is, where (a geometry in metres), which grids, how large."""

    kind: str
    message_en: str
    message_zh: str
    geom: BaseGeometry
    codes: tuple[str, ...] = ()
    area_m2: float | None = None

    @property
    def location(self) -> tuple[float, float]:
        """A point on the problem, for a marker or a message."""
        point = shapely.point_on_surface(self.geom)
        return float(point.x), float(point.y)


@dataclass(frozen=True)
class Report:
    """The outcome of checking the children of one parent."""

    parent_code: str
    children: int
    problems: tuple[Problem, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """True when the children tile the parent with no defect."""
        return not self.problems

    def counts(self) -> dict[str, int]:
        """Number of problems of every kind (zeros included)."""
        found = Counter(p.kind for p in self.problems)
        return {kind: found.get(kind, 0) for kind in KINDS}

    def area(self, kind: str) -> float:
        """Total area (m²) of the problems of one kind."""
        return sum(p.area_m2 or 0.0 for p in self.problems if p.kind == kind)


def _reason_point(reason: str, fallback: BaseGeometry) -> BaseGeometry:
    match = re.search(r"\[([-0-9.eE+]+) ([-0-9.eE+]+)\]", reason)
    if match:
        return shapely.Point(float(match.group(1)), float(match.group(2)))
    return shapely.point_on_surface(fallback) if not fallback.is_empty else fallback


def _invalid(kids: npt.NDArray[np.object_], codes: list[str]) -> list[Problem]:
    bad = np.flatnonzero(~shapely.is_valid(kids) | shapely.is_empty(kids))
    out = []
    for i in bad:
        reason = "empty geometry" if kids[i].is_empty else shapely.is_valid_reason(kids[i])
        out.append(
            Problem(
                "invalid",
                f"grid {codes[i]} has an invalid geometry: {reason}",
                f"网格 {codes[i]} 的几何无效：{reason}",
                _reason_point(reason, kids[i]),
                (codes[i],),
            )
        )
    return out


def _slivers(
    kids: npt.NDArray[np.object_], idx: npt.NDArray[np.int64], codes: list[str], limit: float
) -> list[Problem]:
    areas = shapely.area(kids[idx])
    return [
        Problem(
            "sliver",
            f"grid {codes[i]} measures {a:,.1f} m², below the {limit:,.0f} m² a grid needs",
            f"网格 {codes[i]} 面积仅 {a:,.1f} ㎡，小于最小面积 {limit:,.0f} ㎡（碎片）",
            kids[i],
            (codes[i],),
            float(a),
        )
        for i, a in zip(idx, areas, strict=True)
        if a < limit
    ]


def _overlaps(
    kids: npt.NDArray[np.object_],
    idx: npt.NDArray[np.int64],
    codes: list[str],
    flagged: npt.NDArray[np.int64],
    options: CheckOptions,
) -> list[Problem]:
    good = kids[idx]
    tree = shapely.STRtree(good)
    near = tree.query(good[flagged], predicate="intersects")
    pairs = np.hstack(
        [np.vstack([flagged[near[0]], near[1]]), tree.query(good, predicate="contains")]
    )
    pairs = np.unique(np.sort(pairs[:, pairs[0] != pairs[1]], axis=0), axis=1)
    if not pairs.size:
        return []
    shared = shapely.intersection(good[pairs[0]], good[pairs[1]])
    areas = shapely.area(shared)
    real = options.significant(shared)
    out = []
    for a, b, geom, area, keep in zip(pairs[0], pairs[1], shared, areas, real, strict=True):
        if not keep:
            continue
        ca, cb = codes[idx[a]], codes[idx[b]]
        out.append(
            Problem(
                "overlap",
                f"grids {ca} and {cb} overlap by {area:,.2f} m²",
                f"网格 {ca} 与 {cb} 重叠 {area:,.2f} ㎡",
                geom,
                (ca, cb),
                float(area),
            )
        )
    return out


def _outside(
    parent: BaseGeometry,
    kids: npt.NDArray[np.object_],
    idx: npt.NDArray[np.int64],
    codes: list[str],
    options: CheckOptions,
) -> list[Problem]:
    shapely.prepare(parent)
    spill = idx[~shapely.covers(parent, kids[idx])]
    if not spill.size:
        return []
    parts = shapely.difference(kids[spill], parent)
    real = options.significant(parts)
    out = []
    for i, geom, area, keep in zip(spill, parts, shapely.area(parts), real, strict=True):
        if keep:
            out.append(
                Problem(
                    "outside",
                    f"grid {codes[i]} extends {area:,.2f} m² beyond its parent",
                    f"网格 {codes[i]} 超出上级网格 {area:,.2f} ㎡",
                    geom,
                    (codes[i],),
                    float(area),
                )
            )
    return out


def _union(good: npt.NDArray[np.object_], noded: bool) -> BaseGeometry:
    if not len(good):
        return shapely.Polygon()
    if noded:  # an exactly noded coverage unions an order of magnitude faster
        try:
            return shapely.coverage_union_all(good)
        except shapely.errors.GEOSException:
            pass
    return shapely.union_all(good)


def _gaps(
    parent: BaseGeometry, good: npt.NDArray[np.object_], noded: bool, options: CheckOptions
) -> list[Problem]:
    holes = shapely.get_parts(shapely.difference(parent, _union(good, noded)))
    real = options.significant(holes)
    out = []
    for geom, area, keep in zip(holes, shapely.area(holes), real, strict=True):
        if keep:
            x, y = shapely.point_on_surface(geom).coords[0]
            out.append(
                Problem(
                    "gap",
                    f"a gap of {area:,.2f} m² no grid covers, near ({x:,.1f}, {y:,.1f})",
                    f"存在 {area:,.2f} ㎡ 的空隙未被任何网格覆盖，位置约在（{x:,.1f}, {y:,.1f}）",
                    geom,
                    (),
                    float(area),
                )
            )
    return out


def code_problems(
    parent_code: str, child_level: str, kids: npt.NDArray[np.object_], codes: list[str]
) -> list[Problem]:
    """Malformed codes, duplicates, and codes that do not extend their parent's code."""
    shared, own, zeros = CODE_LAYOUT[child_level]
    out = []
    counts = Counter(codes)
    for i, code in enumerate(codes):
        where = kids[i]
        if not CODE_PATTERN.fullmatch(code):
            out.append(
                Problem(
                    "malformed_code",
                    f"grid code {code!r} is not 15 digits",
                    f"网格编码 {code!r} 不是 15 位数字",
                    where,
                    (code,),
                )
            )
            continue
        if counts[code] > 1:
            out.append(
                Problem(
                    "duplicate_code",
                    f"grid code {code} is used {counts[code]} times",
                    f"网格编码 {code} 重复使用了 {counts[code]} 次",
                    where,
                    (code,),
                )
            )
        mine = code[shared : shared + own]
        if (
            code[:shared] != parent_code[:shared]
            or mine == "0" * own
            or code[shared + own :] != "0" * zeros
        ):
            out.append(
                Problem(
                    "code_parent_mismatch",
                    f"grid code {code} does not extend its parent's code {parent_code} as a {child_level} grid",
                    f"网格编码 {code} 与上级网格编码 {parent_code} 不匹配（{child_level} 级）",
                    where,
                    (code,),
                )
            )
    return out


def check_children(
    parent: BaseGeometry,
    parent_code: str,
    child_level: str,
    children: npt.ArrayLike,
    codes: list[str],
    options: CheckOptions = CheckOptions(),
) -> Report:
    """Every defect of `children` (metres) as a tiling of `parent`, with their codes."""
    kids = np.asarray(children, dtype=object).reshape(-1)
    problems = _invalid(kids, codes)
    idx = np.flatnonzero(shapely.is_valid(kids) & ~shapely.is_empty(kids))
    # Edges the coverage validator flags are cheap to find; only their grids need areas measured.
    flagged = np.flatnonzero(~shapely.is_empty(shapely.coverage_invalid_edges(kids[idx])))
    problems += _overlaps(kids, idx, codes, flagged, options)
    problems += _outside(parent, kids, idx, codes, options)
    problems += _gaps(parent, kids[idx], not flagged.size, options)
    problems += _slivers(kids, idx, codes, options.sliver_m2)
    problems += code_problems(parent_code, child_level, kids, codes)
    return Report(parent_code, len(kids), tuple(problems))
