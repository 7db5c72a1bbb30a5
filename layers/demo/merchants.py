"""The demo's 门前三包 merchants: 6,500 shops along the town centres' streets, each answering for
the pavement in front of it, and a season of frontage inspections.

Their ratings are not drawn: the database computes them by the rule (README, "门前三包
merchants") from the demo's cases and these inspections. The demo's cases lie in its own year,
before the rule's 90-day window, so the inspections — dated in the 90 days before the load — give
the colours: most shops pass every check, about one in eight fails one (yellow), a few fail two
or more (red). Drawn from this module's own generator, so the rest of the demo stays as it was.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import shapely

from gis.zones import from_gk
from layers.demo.names import NameBook
from layers.demo.population import Population
from layers.demo.streets import street_plan
from layers.demo.systems import Generated, _central_stretches, _offset

Row = dict[str, Any]

SEED_SALT = 1818  # this module's generator: the demo's seed and this salt
MERCHANTS = 6_500
SHOPFRONT_OFFSET_M = 12.0  # from the street's centre line to the shop fronts
# how many of a shop's checks fail, by share of shops: 0 → green, 1 → yellow, 2+ → red
FAILED_CHECKS = ([0, 1, 2, 3], [0.85, 0.12, 0.02, 0.01])
CHECKS = (2, 4)  # inspections per shop in the 90 days before the load, at least and at most
WINDOW_DAYS = 85  # inside the rule's 90 days
INSPECTORS_PER_TOWN = 4
PROBLEMS = ["店外经营", "门前乱堆物", "门前垃圾未清扫", "占道摆放落地广告", "占道经营"]


def merchants(
    population: Population, epsg: int, adcode: str, year: int, seed: int, today: date | None = None
) -> dict[str, list[Row]]:
    """The merchants and their inspections, by layer id."""
    rng = np.random.default_rng([seed, SEED_SALT])
    names = NameBook(rng)
    g = Generated(rng, names, population, street_plan(population), epsg, year, adcode)
    stretches = _central_stretches(g)
    total = sum(line.length for _, line in stretches) * 2  # both sides of every street
    step = total / MERCHANTS
    spots = [
        (street, line, float(at), side)
        for street, line in stretches
        for side in (-1.0, 1.0)
        for at in np.arange(step / 2, line.length, step)
    ][:MERCHANTS]
    rows: list[Row] = []
    xy = []
    numbers: dict[tuple[str, str], int] = {}
    for n, (street, line, at, side) in enumerate(spots, start=1):
        key = (street.town, street.name)
        numbers[key] = numbers.get(key, 0) + 1
        number = numbers[key] * 2 - (1 if side < 0 else 0)  # odd numbers on one side
        width = float(rng.integers(4, 21))
        xy.append(_offset(line, at, side, SHOPFRONT_OFFSET_M))
        rows.append(
            {
                "id": n,
                "name": names.shop(),
                "address": f"{street.town}{street.name}{number}号",
                "frontage": f"{street.name}{number}号门前至人行道外沿",
                "frontage_m": width,
                "contact": names.person(),
                "contact_phone": names.mobile(),
            }
        )
    for row, geom in zip(rows, from_gk(shapely.points(np.asarray(xy)), epsg), strict=True):
        row["geom"] = geom
    return {"merchants": rows, "merchant_inspections": inspections(rng, names, rows, today)}


def inspections(
    rng: np.random.Generator, names: NameBook, shops: list[Row], today: date | None
) -> list[Row]:
    """Two to four checks of each shop in the weeks before `today`, so many of them failed."""
    today = today or datetime.now(ZoneInfo("Asia/Shanghai")).date()
    inspectors = [names.person() for _ in range(INSPECTORS_PER_TOWN * 7)]
    failing = rng.choice(FAILED_CHECKS[0], size=len(shops), p=FAILED_CHECKS[1])
    rows: list[Row] = []
    for shop, failed in zip(shops, failing, strict=True):
        count = max(int(rng.integers(CHECKS[0], CHECKS[1] + 1)), int(failed))
        days = np.sort(rng.choice(WINDOW_DAYS, size=count, replace=False))
        failed_at = set(rng.choice(count, size=int(failed), replace=False).tolist())
        for i, day in enumerate(days):
            fail = i in failed_at
            rows.append(
                {
                    "merchant_id": shop["id"],
                    "inspected_on": today - timedelta(days=int(day) + 1),
                    "inspector": str(rng.choice(inspectors)),
                    "result": "fail" if fail else "pass",
                    "problems": str(rng.choice(PROBLEMS)) if fail else None,
                }
            )
    return rows
