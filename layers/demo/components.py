"""The demo city's component census (部件普查): a small inventory where people are, with IDs of
GB/T 30428.2 in the demo county, for every component subclass the catalogue holds."""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np

from layers.demo.features import SHOP_STREETS, DemoContext, Row

STATUSES = (("intact", 0.9), ("damaged", 0.07), ("lost", 0.02), ("abandoned", 0.01))


def components(ctx: DemoContext, subclasses: list[str], adcode: str, n: int = 2000) -> list[Row]:
    """`n` components of the given subclass codes, surveyed the year before the demo year."""
    if not subclasses:
        return []
    points = ctx.points(n, SHOP_STREETS)
    kinds = ctx.rng.choice(np.asarray(subclasses, dtype=object), size=n)
    statuses = ctx.rng.choice([s for s, _ in STATUSES], size=n, p=[p for _, p in STATUSES])
    surveyed = date(ctx.year - 1, 6, 1)
    serials: dict[str, int] = {}
    rows: list[Row] = []
    for geom, kind, status in zip(points, kinds, statuses, strict=True):
        serials[kind] = serials.get(kind, 0) + 1
        row: dict[str, Any] = {
            "geom": geom,
            "component_code": f"{adcode}{kind[1:5]}{serials[kind]:06d}",
            "subclass_code": kind,
            "status": str(status),
            "first_surveyed_on": surveyed,
            "data_source": "census",
            "accuracy": "1m",
            "valid_from": surveyed,
        }
        rows.append(row)
    return rows
