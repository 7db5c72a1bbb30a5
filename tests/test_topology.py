"""Grid topology checks and grid geometry edits, pure (metres), with planted defects and random edits."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import MultiPolygon, box

from gis import gridops
from gis.topology import CheckOptions, Report, check_children

PARENT_CODE = "320681100001000"
SIDE = 100.0
PARENT = box(0, 0, 10 * SIDE, 10 * SIDE)


def cells() -> list[shapely.Geometry]:
    return [
        box(i * SIDE, j * SIDE, (i + 1) * SIDE, (j + 1) * SIDE)
        for j in range(10)
        for i in range(10)
    ]


def codes(n: int) -> list[str]:
    return [f"{PARENT_CODE[:12]}{k + 1:03d}" for k in range(n)]


def check(children: list[shapely.Geometry], names: list[str] | None = None) -> Report:
    return check_children(PARENT, PARENT_CODE, "section", children, names or codes(len(children)))


def only(report: Report, kind: str) -> list:
    assert {p.kind for p in report.problems} == {kind}, report.counts()
    return [p for p in report.problems if p.kind == kind]


def test_a_regular_tiling_is_clean() -> None:
    report = check(cells())
    assert report.ok and report.children == 100 and set(report.counts().values()) == {0}


def test_a_gap_of_one_square_metre_is_found_where_it_is() -> None:
    kids = cells()
    hole = box(250, 250, 251, 251)
    kids[22] = kids[22].difference(hole)
    (gap,) = only(check(kids), "gap")
    assert gap.area_m2 == pytest.approx(1.0)
    assert hole.buffer(1e-6).contains(shapely.Point(gap.location))


def test_an_overlap_of_one_square_metre_is_found_with_both_codes() -> None:
    kids = cells()
    bump = box(300, 350, 301, 351)  # cell 32 is [200,300]×[300,400]; its east neighbour is 33
    kids[32] = kids[32].union(bump)
    (overlap,) = only(check(kids), "overlap")
    names = codes(100)
    assert overlap.area_m2 == pytest.approx(1.0)
    assert set(overlap.codes) == {names[32], names[33]}
    assert bump.buffer(1e-6).contains(shapely.Point(overlap.location))


def test_a_child_two_metres_outside_its_parent_is_found() -> None:
    kids = cells()
    spill = box(1000, 500, 1002, 600)  # cell 59 is [900,1000]×[500,600] on the east edge
    kids[59] = kids[59].union(spill)
    (outside,) = only(check(kids), "outside")
    assert outside.codes == (codes(100)[59],)
    assert outside.area_m2 == pytest.approx(200.0)
    assert spill.buffer(1e-6).contains(shapely.Point(outside.location))


def test_a_duplicate_code_is_found_on_both_grids() -> None:
    names = codes(100)
    names[7] = names[3]
    report = check(cells(), names)
    dups = only(report, "duplicate_code")
    assert len(dups) == 2 and {p.codes for p in dups} == {(names[3],)}
    spots = {
        shapely.Point(p.location).within(cells()[i]) for p, i in zip(dups, (3, 7), strict=True)
    }
    assert spots == {True}


def test_malformed_and_mismatched_codes_invalid_shapes_and_slivers() -> None:
    kids = cells()
    names = codes(100)
    names[0] = "32068110000100A"
    names[1] = "320681100002005"  # another community's prefix
    names[2] = "320681100001000"  # the parent's own code
    kids[3] = shapely.Polygon([(300, 0), (400, 100), (400, 0), (300, 100), (300, 0)])  # bow-tie
    kids[4], kids[5] = kids[4].union(box(500, 0, 595, 100)), box(595, 0, 600, 100)  # 500 m² sliver
    report = check(kids, names)
    counts = report.counts()
    assert counts["malformed_code"] == 1 and counts["code_parent_mismatch"] == 2
    assert counts["invalid"] == 1 and counts["sliver"] == 0  # 500 m² is not under 100 m²
    assert (
        check_children(
            PARENT, PARENT_CODE, "section", kids, names, CheckOptions(sliver_m2=1000)
        ).counts()["sliver"]
        == 1
    )
    (invalid,) = [p for p in report.problems if p.kind == "invalid"]
    assert "Self-intersection" in invalid.message_en and invalid.location == pytest.approx(
        (350, 50)
    )


def test_rounding_slivers_along_shared_edges_are_not_defects() -> None:
    kids = cells()
    kids[0] = box(0, 0, SIDE + 1e-4, SIDE)  # 0.1 mm over 100 m: 0.01 m², 0.1 mm wide
    assert check(kids).ok


def test_unit_cells_tile_the_parent_in_reading_order() -> None:
    parent = shapely.Point(0, 0).buffer(700, quad_segs=32)
    plan = gridops.UnitPlan(nominal_area_m2=10_000, sliver_ratio=0.3)
    made = gridops.unit_cells(parent, plan)
    report = check_children(parent, PARENT_CODE, "section", made, codes(len(made)))
    assert report.ok, report.counts()
    areas = shapely.area(np.asarray(made, dtype=object))
    assert areas.min() >= 3_000 and areas.max() <= 13_000 + 1e-6
    first, second, last = (shapely.point_on_surface(made[i]) for i in (0, 1, -1))
    assert first.y > last.y and second.x > first.x  # north→south, then west→east


def test_split_merge_and_their_refusals() -> None:
    kids = cells()
    halves = gridops.split(kids[0], shapely.LineString([(50, -10), (50, 110)]))
    assert [h.area for h in halves] == pytest.approx([5000, 5000])
    with pytest.raises(gridops.EditRefused) as missed:
        gridops.split(kids[0], shapely.LineString([(50, -10), (50, 50)]))
    assert missed.value.code == "split_line_does_not_cross"
    assert gridops.merge([kids[0], kids[1]]).area == pytest.approx(20_000)
    with pytest.raises(gridops.EditRefused) as apart:
        gridops.merge([kids[0], kids[2]])
    assert apart.value.code == "merge_not_adjacent"


def test_redraw_moves_the_shared_edge_of_the_neighbours() -> None:
    kids = cells()
    drawn = box(100, 100, 230, 200)  # cell 11 reaches 30 m into cell 12
    new, adjusted = gridops.redraw(kids[11], drawn, kids[:11] + kids[12:], PARENT, snap_m=2.0)
    result = [*adjusted[:11], new, *adjusted[11:]]
    assert check(result).ok
    assert new.area == pytest.approx(13_000) and adjusted[11].area == pytest.approx(7_000)


@st.composite
def edits(draw: st.DrawFn) -> tuple[str, tuple[float, ...], int]:
    kind = draw(st.sampled_from(["split", "merge", "redraw"]))
    numbers = tuple(draw(st.floats(-0.3, 1.3, allow_nan=False)) for _ in range(4))
    return kind, numbers, draw(st.integers(0, 10**6))


def apply(kids: list[MultiPolygon], edit: tuple[str, tuple[float, ...], int]) -> list:
    kind, (a, b, c, d), pick = edit
    i = pick % len(kids)
    x0, y0, x1, y1 = kids[i].bounds
    w, h = x1 - x0, y1 - y0
    if kind == "split":
        line = shapely.LineString([(x0 + a * w, y0 - h), (x0 + b * w, y1 + h)])
        return kids[:i] + gridops.split(kids[i], line) + kids[i + 1 :]
    if kind == "merge":
        tree = shapely.STRtree(kids)
        near = [j for j in tree.query(kids[i], predicate="touches") if j != i]
        j = int(near[pick % len(near)]) if near else (i + 1) % len(kids)
        merged = gridops.merge([kids[i], kids[j]])
        return [merged] + [k for n, k in enumerate(kids) if n not in (i, j)]
    drawn = box(x0 + (a - 0.5) * w, y0 + (b - 0.5) * h, x1 + (c - 0.5) * w, y1 + (d - 0.5) * h)
    others = kids[:i] + kids[i + 1 :]
    new, adjusted = gridops.redraw(kids[i], drawn, others, PARENT, snap_m=2.0)
    return [new, *adjusted]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(edits(), min_size=1, max_size=4))
def test_random_edits_keep_the_tiling_or_are_refused_or_reported(plan: list) -> None:
    kids: list = [MultiPolygon([c]) for c in cells()]
    for edit in plan:
        try:
            changed = apply(kids, edit)
        except gridops.EditRefused as refusal:
            assert refusal.code and refusal.message_zh
            continue
        report = check(changed)
        geometric = {k: v for k, v in report.counts().items() if k in ("gap", "overlap", "outside")}
        area = sum(shapely.area(np.asarray(changed, dtype=object)))
        if report.ok:
            assert area == pytest.approx(PARENT.area, rel=1e-9)
            kids = changed
        else:  # what the database layer refuses: the report must say why
            assert (
                any(geometric.values()) or report.counts()["sliver"] or report.counts()["invalid"]
            )
