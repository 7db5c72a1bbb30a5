"""Grid geometry edits in metres: unit cells, split, merge, redraw with neighbours adjusted.

Each function returns new geometries or raises EditRefused; whether the resulting set still
tiles its parent is for gis.topology to judge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from gis.partition import polygonal, reading_order


class EditRefused(Exception):
    """An edit that cannot be made as asked, with a machine code and messages in both languages."""

    def __init__(self, code: str, message_en: str, message_zh: str) -> None:
        super().__init__(message_en)
        self.code = code
        self.message_en = message_en
        self.message_zh = message_zh


@dataclass(frozen=True)
class UnitPlan:
    """Regular unit cells: nominal area, and the share of it below which a clipped cell is merged."""

    nominal_area_m2: float = 10_000.0
    sliver_ratio: float = 0.3


def _pieces(geoms: npt.ArrayLike) -> list[MultiPolygon]:
    return [polygonal(g) for g in np.asarray(geoms, dtype=object)]


def unit_cells(parent: BaseGeometry, plan: UnitPlan = UnitPlan()) -> list[MultiPolygon]:
    """Square cells of the nominal area clipped to `parent`, small edge pieces merged, in reading order."""
    if plan.nominal_area_m2 <= 0 or not 0 <= plan.sliver_ratio < 1:
        raise EditRefused(
            "bad_unit_plan",
            "the nominal area must be positive and the sliver ratio between 0 and 1",
            "标称面积必须为正，碎片比例须在 0 到 1 之间",
        )
    side = float(np.sqrt(plan.nominal_area_m2))
    minx, miny, maxx, maxy = parent.bounds
    xs, ys = np.meshgrid(np.arange(minx, maxx, side), np.arange(miny, maxy, side))
    boxes = shapely.box(xs.ravel(), ys.ravel(), xs.ravel() + side, ys.ravel() + side)
    shapely.prepare(parent)
    boxes = boxes[shapely.intersects(parent, boxes)]
    inner = shapely.contains_properly(parent, boxes)
    clipped = shapely.intersection(boxes[~inner], parent)
    shapely.destroy_prepared(parent)
    parts = [p for g in clipped for p in shapely.get_parts(polygonal(g)) if p.area > 0]
    cells = np.concatenate([boxes[inner], np.asarray(parts, dtype=object)])
    top = miny + side * xs.shape[0]  # rows of the order are the rows of the cell lattice
    return _absorb_small(cells, plan.nominal_area_m2 * plan.sliver_ratio, side, top)


def _absorb_small(
    cells: npt.NDArray[np.object_], limit: float, row_height: float, top: float
) -> list[MultiPolygon]:
    """Merge every cell under `limit` into the neighbour it shares the longest edge with."""
    areas = shapely.area(cells)
    small = np.flatnonzero(areas < limit)
    big = np.flatnonzero(areas >= limit)
    if not big.size:
        return [MultiPolygon([p for c in cells for p in shapely.get_parts(c)])]
    tree = shapely.STRtree(cells[big])
    owner = {}
    for i in small:
        near = tree.query(cells[i], predicate="intersects")
        if near.size:
            shared = shapely.length(shapely.intersection(cells[i], cells[big[near]]))
            owner[i] = int(big[near[int(np.argmax(shared))]])
        else:  # an islet: it joins the nearest cell
            owner[i] = int(big[tree.nearest(cells[i])])
    groups: dict[int, list[BaseGeometry]] = {int(b): [cells[b]] for b in big}
    for i, b in owner.items():
        groups[b].append(cells[i])
    merged = [shapely.union_all(g) if len(g) > 1 else g[0] for g in groups.values()]
    out = _pieces(merged)
    return [out[i] for i in reading_order(out, row_height, top)]


def _as_line(line: BaseGeometry) -> BaseGeometry:
    if line.geom_type not in {"LineString", "MultiLineString"} or line.is_empty:
        raise EditRefused(
            "split_needs_line", "a split needs a drawn line", "拆分网格需要绘制一条线"
        )
    return line


def split(grid: BaseGeometry, line: BaseGeometry) -> list[MultiPolygon]:
    """The pieces a drawn line cuts a grid into, in reading order (at least two)."""
    cut = _split(grid, _as_line(line))
    pieces = [MultiPolygon([p]) for p in cut]
    if len(pieces) < 2:
        raise EditRefused(
            "split_line_does_not_cross",
            "the line must cross the grid from one edge to another",
            "拆分线必须从网格的一条边穿越到另一条边",
        )
    return [pieces[i] for i in reading_order(pieces)]


def _split(grid: BaseGeometry, line: BaseGeometry) -> list[Polygon]:
    """Polygons of `grid` cut by `line`: node the boundary with the line and polygonize."""
    boundary = shapely.union_all([grid.boundary, line])
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(boundary)))
    return [f for f in faces if grid.contains(shapely.point_on_surface(f))]


def merge(grids: list[BaseGeometry]) -> MultiPolygon:
    """Adjacent grids as one; refused when they do not share an edge."""
    if len(grids) < 2:
        raise EditRefused(
            "merge_needs_two", "select at least two grids to merge", "至少选择两个网格才能合并"
        )
    merged = shapely.union_all(grids)
    if not isinstance(merged, Polygon):
        raise EditRefused(
            "merge_not_adjacent",
            "the grids to merge must share an edge",
            "要合并的网格必须有公共边",
        )
    return MultiPolygon([merged])


def redraw(
    old: BaseGeometry,
    drawn: BaseGeometry,
    siblings: list[BaseGeometry],
    parent: BaseGeometry,
    snap_m: float,
) -> tuple[MultiPolygon, list[MultiPolygon]]:
    """A grid's new boundary and its siblings adjusted so the set still tiles the parent.

    The drawn boundary is snapped to siblings' and the parent's vertices within `snap_m`, clipped
    to the parent; siblings lose what the grid takes and gain, piece by piece, what it gives up
    (each piece to the sibling it shares the longest edge with).
    """
    reference = shapely.union_all([parent.boundary, *[s.boundary for s in siblings]])
    new = shapely.make_valid(shapely.snap(drawn, reference, snap_m))
    new = polygonal(shapely.intersection(new, parent))
    if new.is_empty:
        raise EditRefused(
            "redraw_outside_parent",
            "the new boundary does not overlap the parent grid",
            "新边界与上级网格没有重叠",
        )
    adjusted = [polygonal(shapely.difference(s, new)) for s in siblings]
    crumbs = [p for a in adjusted for p in a.geoms if p.area < snap_m * snap_m]
    adjusted = [MultiPolygon([p for p in a.geoms if p.area >= snap_m * snap_m]) for a in adjusted]
    if crumbs:
        new = polygonal(shapely.union_all([new, *crumbs]))
    gains: list[list[BaseGeometry]] = [[] for _ in siblings]
    for piece in shapely.get_parts(polygonal(shapely.difference(old, new))):
        shared = [
            shapely.length(shapely.intersection(piece.boundary, a.boundary)) for a in adjusted
        ]
        if shared and max(shared) > 0:  # a piece no sibling touches is left as a gap for the check
            gains[int(np.argmax(shared))].append(piece)
    out = [
        polygonal(shapely.union_all([a, *g])) if g else a
        for a, g in zip(adjusted, gains, strict=True)
    ]
    for sibling, result in zip(siblings, out, strict=True):
        if result.is_empty and not sibling.is_empty:
            raise EditRefused(
                "redraw_swallows_grid",
                "the new boundary would swallow a neighbouring grid whole: merge them instead",
                "新边界会完全吞并相邻网格，请改用合并",
            )
    return new, out
