"""The demo city's three grid levels: streets, communities and sections that tile the county."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import MultiPolygon
from shapely.geometry.base import BaseGeometry

from gis.partition import kmeans, reading_order, voronoi_cells
from layers.demo.names import NameBook
from layers.demo.population import Mix, Population, Town

SNAP_M = None
STREET_CODE_START = 100  # 100-199: towns (镇) in the 15-digit scheme
POPULATION_MIX = Mix(cores=0.55, streets=0.25, rural=0.20)


@dataclass(frozen=True)
class Grid:
    """One grid of the demo, geometry in metres of the demo's Gauss-Krüger zone."""

    level: str
    code: str
    name: str
    parent_code: str | None
    responsible_person: str
    responsible_unit: str
    phone: str
    geom: MultiPolygon
    valid_from: date


def allocate(total: int, weights: npt.ArrayLike, minimum: int) -> npt.NDArray[np.int64]:
    """Split `total` in proportion to `weights` (largest remainder), at least `minimum` each."""
    w = np.asarray(weights, dtype=float)
    spare = total - minimum * len(w)
    if spare < 0:
        raise ValueError(f"{total} cannot give {minimum} to each of {len(w)} parts")
    share = spare * w / w.sum()
    counts = np.floor(share).astype(np.int64)
    remainder_order = np.argsort(-(share - counts), kind="stable")
    counts[remainder_order[: spare - counts.sum()]] += 1
    return counts + minimum


def _split(
    region: BaseGeometry, points: npt.NDArray[np.float64], k: int, rng: np.random.Generator
) -> list[MultiPolygon]:
    """Cut `region` into `k` compact non-empty cells, smaller where `points` are dense."""
    # Half the sample spread evenly keeps country cells compact instead of wedges along roads.
    points = np.vstack([points, _uniform_in(region, max(len(points), k * 20), rng)])
    for _ in range(10):
        cells = voronoi_cells(region, kmeans(points, k, rng), SNAP_M)
        if all(not c.is_empty for c in cells):
            return [cells[i] for i in reading_order(cells)]
    raise RuntimeError("could not partition a grid into non-empty cells")


def _inside(points: npt.NDArray[np.float64], geom: BaseGeometry) -> npt.NDArray[np.float64]:
    return points[shapely.contains_xy(geom, points[:, 0], points[:, 1])]


@dataclass
class GridPlan:
    """How many grids of each level the demo builds."""

    communities: int = 66
    sections: int = 349
    sample_points: int = 60000


def build_grids(
    region: BaseGeometry,
    towns: list[Town],
    population: Population,
    rng: np.random.Generator,
    names: NameBook,
    adcode: str,
    valid_from: date,
    plan: GridPlan | None = None,
) -> list[Grid]:
    """Streets from the towns, communities and sections by population, coded and staffed."""
    plan = plan or GridPlan()
    people = population.sample(rng, plan.sample_points, POPULATION_MIX)
    seeds = np.array([[t.x, t.y] for t in towns])
    street_cells = voronoi_cells(region, seeds, SNAP_M)
    order = reading_order(street_cells)
    grids: list[Grid] = []
    street_people = [_inside(people, street_cells[i]) for i in order]
    community_counts = allocate(plan.communities, [len(p) for p in street_people], minimum=3)
    communities: list[tuple[Grid, npt.NDArray[np.float64], bool]] = []
    for s, (i, pts, n_comm) in enumerate(zip(order, street_people, community_counts, strict=True)):
        town = towns[int(i)]
        street_code = f"{adcode}{STREET_CODE_START + s:03d}000000"
        grids.append(
            Grid(
                "street",
                street_code,
                town.name,
                None,
                names.person(),
                f"启东市{town.name}人民政府",
                names.phone(),
                street_cells[int(i)],
                valid_from,
            )
        )
        for c, cell in enumerate(_split(street_cells[int(i)], pts, int(n_comm), rng), start=1):
            cell_pts = _inside(pts, cell)
            urban = len(cell_pts) / max(cell.area, 1.0) > len(people) / region.area
            place = names.place()
            name = f"{town.name}{place}社区" if urban else f"{town.name}{place}村"
            unit = f"{place}社区居委会" if urban else f"{place}村村民委员会"
            code = f"{street_code[:9]}{c:03d}000"
            grid = Grid(
                "community",
                code,
                name,
                street_code,
                names.person(),
                unit,
                names.phone(),
                cell,
                valid_from,
            )
            communities.append((grid, cell_pts, urban))
    grids += [g for g, _, _ in communities]
    section_counts = allocate(plan.sections, [len(p) for _, p, _ in communities], minimum=2)
    for (community, pts, _), n_sec in zip(communities, section_counts, strict=True):
        enough = len(pts) >= n_sec * 4
        sample = pts if enough else _uniform_in(community.geom, n_sec * 40, rng)
        for n, cell in enumerate(_split(community.geom, sample, int(n_sec), rng), start=1):
            grids.append(
                Grid(
                    "section",
                    f"{community.code[:12]}{n:03d}",
                    f"{community.name}第{n}网格",
                    community.code,
                    names.person(),
                    community.responsible_unit,
                    names.mobile(),
                    cell,
                    valid_from,
                )
            )
    return grids


def _uniform_in(geom: BaseGeometry, n: int, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    minx, miny, maxx, maxy = geom.bounds
    out = np.empty((0, 2))
    while len(out) < n:
        cand = np.column_stack([rng.uniform(minx, maxx, n * 2), rng.uniform(miny, maxy, n * 2)])
        out = np.vstack([out, _inside(cand, geom)])
    return out[:n]
