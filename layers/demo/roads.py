"""The demo city's road segments (道路路段): every town street of `layers.demo.streets` split at its
junctions, every main road in pieces of at most a kilometre, each swept by a sanitation vehicle of
its town's depot (the seat's depot where a town has none), taken in turn.

No randomness: the same towns and fleet give the same segments and assignments.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

from shapely.geometry import LineString

from gis.zones import from_gk
from layers.demo.population import Population
from layers.demo.streets import Junction, Street, street_plan

Row = dict[str, Any]

MAIN_ROAD_PIECE_M = 1000.0
DEPOT_SUFFIX = "环卫所"  # a sanitation vehicle's company: the town's name and this


def _cuts(street: Street, junctions: Sequence[Junction]) -> list[float]:
    """Where along the street (0 to 1) it is cut: its ends and the junctions on it."""
    (x0, y0), (x1, y1) = street.start, street.end
    dx, dy = x1 - x0, y1 - y0
    squared = dx * dx + dy * dy
    along = [
        ((j.x - x0) * dx + (j.y - y0) * dy) / squared
        for j in junctions
        if j.town == street.town and street.name in j.streets
    ]
    if street.main_road:
        pieces = max(1, math.ceil(street.length / MAIN_ROAD_PIECE_M))
        along = [n / pieces for n in range(1, pieces)]
    return sorted({0.0, 1.0, *(t for t in along if 0.0 < t < 1.0)})


def _pieces(street: Street, junctions: Sequence[Junction]) -> list[LineString]:
    (x0, y0), (x1, y1) = street.start, street.end
    cuts = _cuts(street, junctions)
    return [
        LineString(
            [(x0 + a * (x1 - x0), y0 + a * (y1 - y0)), (x0 + b * (x1 - x0), y0 + b * (y1 - y0))]
        )
        for a, b in pairwise(cuts)
    ]


def _class(street: Street, seat: str) -> str:
    if street.main_road:
        return "trunk"
    return "secondary" if street.town == seat else "branch"


def road_segments(population: Population, epsg: int, vehicles: Sequence[Row]) -> list[Row]:
    """The rows of the `road_segments` layer; `vehicles` are the demo's vehicle rows with ids."""
    plan = street_plan(population)
    seat = population.towns[0].name
    depots: dict[str, list[Row]] = defaultdict(list)
    for vehicle in vehicles:
        if vehicle["kind"] == "sanitation":
            depots[str(vehicle["company"]).removesuffix(DEPOT_SUFFIX)].append(vehicle)
    turns: dict[str, int] = defaultdict(int)
    rows: list[Row] = []
    shapes: list[LineString] = []
    for street in plan.streets:
        town = street.town if depots.get(street.town) else seat
        for number, piece in enumerate(_pieces(street, plan.junctions), start=1):
            sweepers = depots.get(town, [])
            sweeper = sweepers[turns[town] % len(sweepers)] if sweepers else None
            turns[town] += 1
            prefix = "" if street.main_road or street.town == seat else street.town
            rows.append(
                {
                    "name": f"{prefix}{street.name}第{number}段",
                    "road": street.name,
                    "road_class": _class(street, seat),
                    "sweeper_vehicle_id": None if sweeper is None else sweeper["id"],
                    "sweeping_unit": None if sweeper is None else sweeper["company"],
                }
            )
            shapes.append(piece)
    for row, geom in zip(rows, from_gk(shapes, epsg), strict=True):
        row["geom"] = geom
    return rows
