"""Topology check of ~120,000 unit grids cut from the demo city's communities.

Every current community grid of the project database is cut into square unit cells
(`gis.gridops.unit_cells`), and the cells are checked as the section grids of their community
(`gis.topology.check_children`). A community has only three digits for its sections: cells past
the 999th get unique codes that do not extend the community's, so code problems are expected and
counted apart from the geometric ones, which must be zero. A gap and an overlap are then planted
in one community to show they are found.

Needs the database with the demo city (`.venv/bin/citygrid db up`, `.venv/bin/citygrid demo load`).
Run: .venv/bin/python bench/grid_check.py [--nominal-area-m2 14000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from dataclasses import dataclass

from shapely import affinity
from shapely.geometry.base import BaseGeometry
from sqlalchemy import text

from api.settings import DatabaseSettings
from gis.gridops import UnitPlan, unit_cells
from gis.topology import KINDS, CheckOptions, Report, check_children
from layers.grids.grids import load_family
from layers.store import db

GEOMETRY_KINDS = ("invalid", "gap", "overlap", "outside", "sliver")
CODE_KINDS = tuple(k for k in KINDS if k not in GEOMETRY_KINDS)
CHILD_LEVEL = "section"


@dataclass(frozen=True)
class Community:
    """A community grid (metres) and the unit cells cut from it, with their codes."""

    code: str
    parent: BaseGeometry
    cells: list[BaseGeometry]
    codes: list[str]


def cell_codes(community: str, n: int) -> list[str]:
    """Section codes 001-999 under the community, then unique 15-digit codes outside its range."""
    return [
        f"{community[:12]}{i:03d}" if i < 1000 else f"{community[:6]}{i:09d}"
        for i in range(1, n + 1)
    ]


def load_parents() -> list[tuple[str, BaseGeometry]]:
    """Code and polygon (metres of its Gauss-Krüger zone) of every current community grid."""
    engine = db.make_engine(DatabaseSettings().url())
    try:
        with engine.connect() as conn:
            codes = conn.execute(
                text(
                    "SELECT code FROM grids WHERE level = 'community' AND valid_to IS NULL ORDER BY code"
                )
            ).scalars()
            return [(code, load_family(conn, code).parent) for code in list(codes)]
    finally:
        engine.dispose()


def generate(parents: list[tuple[str, BaseGeometry]], plan: UnitPlan) -> list[Community]:
    """Unit cells of every community, with their codes."""
    out = []
    for code, parent in parents:
        cells = unit_cells(parent, plan)
        out.append(Community(code, parent, list(cells), cell_codes(code, len(cells))))
    return out


def check_all(communities: list[Community], options: CheckOptions) -> list[Report]:
    """The topology report of every community's unit cells."""
    return [
        check_children(c.parent, c.code, CHILD_LEVEL, c.cells, c.codes, options)
        for c in communities
    ]


def plant_defects(c: Community, side: float) -> Community:
    """The community with one deep interior cell removed (a gap) and another moved 1 m east (an overlap)."""
    deep = [i for i, cell in enumerate(c.cells) if c.parent.contains(cell.buffer(side))]
    if len(deep) < 2:
        raise SystemExit(f"community {c.code} has too few interior cells to plant defects in")
    removed = deep[0]
    moved = next(i for i in deep[1:] if c.cells[i].distance(c.cells[removed]) > 2 * side)
    cells = list(c.cells)
    cells[moved] = affinity.translate(cells[moved], xoff=1.0)
    keep = [i for i in range(len(cells)) if i != removed]
    return Community(c.code, c.parent, [cells[i] for i in keep], [c.codes[i] for i in keep])


def main() -> None:
    """Generate, check, plant defects, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--nominal-area-m2",
        type=float,
        default=14_000.0,
        help="unit cell area (default: ~120,000 cells in the demo county)",
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="timed check runs, best and median reported"
    )
    args = parser.parse_args()
    plan, options = UnitPlan(args.nominal_area_m2, 0.3), CheckOptions()

    parents = load_parents()
    started = time.perf_counter()
    communities = generate(parents, plan)
    generation = time.perf_counter() - started
    timings = []
    for _ in range(max(args.repeat, 1)):
        started = time.perf_counter()
        reports = check_all(communities, options)
        timings.append(time.perf_counter() - started)
    counts: Counter[str] = Counter(dict.fromkeys(KINDS, 0))
    for report in reports:
        counts.update(report.counts())

    victim = max(communities, key=lambda c: len(c.cells))
    planted = check_all([plant_defects(victim, args.nominal_area_m2**0.5)], options)[0]

    cells = sum(len(c.cells) for c in communities)
    overflow = sum(max(len(c.cells) - 999, 0) for c in communities)
    rows = [
        ("communities", f"{len(communities)}"),
        ("unit grids", f"{cells:,} (nominal {args.nominal_area_m2:,.0f} m²)"),
        ("generation", f"{generation:.2f} s"),
        ("check best", f"{min(timings):.2f} s ({cells / min(timings):,.0f} grids/s)"),
        ("check median", f"{statistics.median(timings):.2f} s of {len(timings)} runs"),
    ]
    rows += [(kind, f"{counts[kind]:,}") for kind in (*GEOMETRY_KINDS, *CODE_KINDS)]
    rows.append(("(cells past 999)", f"{overflow:,} expected code_parent_mismatch"))
    for label, value in rows:
        print(f"{label:<22} {value}")
    found = {k: v for k, v in planted.counts().items() if k in GEOMETRY_KINDS and v}
    print(f"\nplanted in {victim.code} (1 cell removed, 1 moved 1 m): {found or 'nothing found'}")
    for problem in planted.problems:
        if problem.kind in GEOMETRY_KINDS:
            print(f"  {problem.kind:<8} {problem.message_en}")
    clean = not any(counts[kind] for kind in GEOMETRY_KINDS)
    raise SystemExit(0 if clean and found == {"gap": 2, "overlap": 1} else 1)


if __name__ == "__main__":
    main()
