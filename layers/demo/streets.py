"""The demo city's street network: a small grid of named streets through every town centre and
the main roads from the county seat to the other towns, with the junctions of the town streets.

Straight segments in metres of the county's Gauss-Krüger zone, derived from the towns alone (no
randomness), so the same towns always give the same streets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely

from layers.demo.population import Population, Town

# Street names by town (the seat first): pairs of an east-west 路 and a north-south 街 from the
# centre outwards.
STREET_NAMES = (
    ("人民", "和平", "长江", "江海", "民乐", "紫薇", "公园", "建设", "文峰", "南苑"),
    ("鹤城", "吕四", "新港", "渔港", "海城", "环镇"),
    ("王鲍", "惠丰", "永和", "同心", "富民", "鲍东"),
    ("北新", "兴垦", "光明", "胜利", "团结", "新华"),
    ("南阳", "聚南", "向阳", "春晖", "百花", "阳光"),
    ("近海", "东海", "滨海", "海滨", "金沙", "望海"),
    ("寅阳", "圆陀", "天汾", "银洲", "红星", "寅兴"),
)
SEAT_GRID = (5, 700.0)  # streets per direction and their spacing (m) in the county seat
TOWN_GRID = (3, 550.0)


@dataclass(frozen=True)
class Street:
    """A straight street or road segment (metres) with its name."""

    name: str
    start: tuple[float, float]
    end: tuple[float, float]
    main_road: bool
    town: str

    @property
    def length(self) -> float:
        """Length in metres."""
        return math.dist(self.start, self.end)


@dataclass(frozen=True)
class Junction:
    """Where two town streets cross."""

    x: float
    y: float
    streets: tuple[str, str]
    town: str


@dataclass(frozen=True)
class StreetPlan:
    """The streets, main roads and junctions of the demo city."""

    streets: list[Street]
    junctions: list[Junction]

    def town_streets(self) -> list[Street]:
        """Streets inside the towns."""
        return [s for s in self.streets if not s.main_road]

    def main_roads(self) -> list[Street]:
        """Roads between the county seat and the towns."""
        return [s for s in self.streets if s.main_road]

    def lines(self) -> npt.NDArray[np.object_]:
        """Every street as a shapely LineString (metres)."""
        return shapely.linestrings([[s.start, s.end] for s in self.streets])


def _town_grid(town: Town, index: int) -> tuple[list[Street], list[Junction]]:
    count, spacing = SEAT_GRID if index == 0 else TOWN_GRID
    names = STREET_NAMES[index % len(STREET_NAMES)]
    angle = math.radians(((index * 7) % 11) - 5)  # towns are not aligned with the meridian
    along = np.array([math.cos(angle), math.sin(angle)])
    across = np.array([-along[1], along[0]])
    half = town.radius_m * 0.9
    offsets = (np.arange(count) - (count - 1) / 2) * spacing
    order = np.argsort(np.abs(offsets), kind="stable")  # named from the centre outwards
    centre = np.array([town.x, town.y])
    streets: list[Street] = []
    lines: dict[str, list[tuple[str, np.ndarray, np.ndarray]]] = {"ew": [], "ns": []}
    for rank, k in enumerate(order):
        for n, (kind, direction, normal, suffix) in enumerate(
            (("ew", along, across, "路"), ("ns", across, along, "街"))
        ):
            mid = centre + normal * offsets[k]
            a, b = mid - direction * half, mid + direction * half
            name = f"{names[(2 * rank + n) % len(names)]}{suffix}"
            streets.append(Street(name, (a[0], a[1]), (b[0], b[1]), False, town.name))
            lines[kind].append((name, mid, direction))
    junctions = []
    for ew_name, ew_mid, _ in lines["ew"]:
        for ns_name, ns_mid, _ in lines["ns"]:
            # the crossing of two perpendicular lines through ew_mid (along) and ns_mid (across)
            t = float(np.dot(ns_mid - ew_mid, along))
            x, y = ew_mid + along * t
            junctions.append(Junction(float(x), float(y), (ew_name, ns_name), town.name))
    return streets, junctions


def street_plan(population: Population) -> StreetPlan:
    """Town street grids and the main roads of `population`'s towns."""
    streets: list[Street] = []
    junctions: list[Junction] = []
    for i, town in enumerate(population.towns):
        s, j = _town_grid(town, i)
        streets += s
        junctions += j
    seat = population.towns[0]
    for town in population.towns[1:]:
        name = f"{seat.name[0]}{town.name[0]}公路"
        streets.append(Street(name, (seat.x, seat.y), (town.x, town.y), True, town.name))
    return StreetPlan(streets, junctions)
