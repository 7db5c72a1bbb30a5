"""The fleets of 启东's reports in the demo city: 464 muck trucks (渣土车) of the county's haulage
companies with their 核准证 and night-time windows, 57 sanitation vehicles (智慧环卫) of the
towns' sanitation depots, 5 kitchen-waste trucks (餐厨) and the bureau's enforcement cars.

Each vehicle is kept at its company's yard or depot, a point near a town centre in metres of the
county's Gauss-Krüger zone; terminal numbers are the 11-digit numbers their JT/T 808 terminals
report. The module draws from its own generator, so the other demo rows stay as they were.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np
from shapely.geometry import Point

from gis.zones import from_gk
from layers.demo.names import NameBook
from layers.demo.population import Population, Town

Row = dict[str, Any]

SEED_SALT = 21  # this module's generator: the demo's seed and this salt
MUCK_TRUCKS = 464
MUCK_COMPANIES = 12
SANITATION = 57
KITCHEN_WASTE = 5
ENFORCEMENT = 12
PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # I and O are not used on plates
MUCK_WINDOWS = "20:00-24:00,00:00-06:00"  # muck haulage at night only
SANITATION_WINDOWS = "04:30-21:00"
KITCHEN_WINDOWS = "13:30-16:30,20:00-23:00"
YARD_DISTANCE_M = (600.0, 1800.0)  # yards and depots lie outside the town centres


def _yard(rng: np.random.Generator, town: Town, epsg: int) -> Any:
    """A point at the edge of a town, where a company keeps its vehicles."""
    angle = rng.uniform(0, 2 * np.pi)
    distance = min(rng.uniform(*YARD_DISTANCE_M), town.radius_m * 1.5)
    xy = (town.x + distance * np.cos(angle), town.y + distance * np.sin(angle))
    return from_gk([Point(xy)], epsg)[0]


def _plates(rng: np.random.Generator, count: int) -> list[str]:
    """Distinct 南通 plates (苏F): a letter and four digits."""
    plates: dict[str, None] = {}  # drawn order, without repeats
    while len(plates) < count:
        letter = PLATE_LETTERS[rng.integers(len(PLATE_LETTERS))]
        plates[f"苏F{letter}{rng.integers(0, 10_000):04d}"] = None
    return list(plates)


def fleet(population: Population, epsg: int, year: int, seed: int) -> list[Row]:
    """The rows of the `vehicles` layer."""
    rng = np.random.default_rng([seed, SEED_SALT])
    names = NameBook(rng)
    towns = population.towns
    total = MUCK_TRUCKS + SANITATION + KITCHEN_WASTE + ENFORCEMENT
    plates = iter(_plates(rng, total))
    terminals = iter(rng.choice(np.arange(10**7, 10**8), size=total, replace=False))
    rows: list[Row] = []

    def vehicle(kind: str, company: str, yard: Any, windows: str, **more: Any) -> None:
        rows.append(
            {
                "geom": yard,
                "plate": next(plates),
                "company": company,
                "kind": kind,
                "terminal_phone": f"145{int(next(terminals))}",
                "time_windows": windows,
                "permit_no": None,
                "permit_from": None,
                "permit_to": None,
                "route": None,
                **more,
            }
        )

    # haulage companies: most of the trucks with the seat's few large ones
    shares = rng.dirichlet(np.full(MUCK_COMPANIES, 1.5))
    counts = np.floor(shares * MUCK_TRUCKS).astype(int)
    counts[: MUCK_TRUCKS - counts.sum()] += 1
    for number, trucks in enumerate(counts):
        town = towns[0] if number < MUCK_COMPANIES // 2 else towns[rng.integers(len(towns))]
        company = f"启东市{names.place_or_town(town.name)}渣土运输有限公司"
        yard = _yard(rng, town, epsg)
        for _ in range(int(trucks)):
            issued = date(year, 1, 1) + timedelta(days=int(rng.integers(0, 300)))
            vehicle(
                "muck",
                company,
                yard,
                MUCK_WINDOWS,
                permit_no=f"启渣准字〔{year}〕第{rng.integers(1, 9999):04d}号",
                permit_from=issued,
                permit_to=issued + timedelta(days=int(rng.choice([90, 180, 365]))),
                route="按核准路线经主干道至消纳场",
            )
    # sanitation: every town's depot, the seat's with most
    depots = {town.name: _yard(rng, town, epsg) for town in towns}
    weights = np.array([t.weight for t in towns], dtype=float)
    for index in rng.choice(len(towns), size=SANITATION, p=weights / weights.sum()):
        town = towns[int(index)]
        vehicle("sanitation", f"{town.name}环卫所", depots[town.name], SANITATION_WINDOWS)
    plant = _yard(rng, towns[0], epsg)
    for _ in range(KITCHEN_WASTE):
        vehicle("kitchen_waste", "启东市餐厨废弃物处置中心", plant, KITCHEN_WINDOWS)
    bureau = _yard(rng, towns[0], epsg)
    for _ in range(ENFORCEMENT):
        vehicle("enforcement", "启东市城市管理局", bureau, "00:00-24:00")
    return rows
