"""Where people are in the demo city: town centres, main streets, and the countryside.

Everything is in metres of one Gauss-Krüger zone. Demo features and cases are drawn from this
model, so they cluster in towns and along the roads between them instead of spreading evenly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import LineString, Point
from shapely.geometry.base import BaseGeometry

from gis.partition import kmeans

Points = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Town:
    """A town seat: where a street grid's people and shops concentrate."""

    name: str
    x: float
    y: float
    radius_m: float
    weight: float


@dataclass(frozen=True)
class Mix:
    """Shares of a sample drawn from town cores, main streets and the countryside."""

    cores: float
    streets: float
    rural: float


class Population:
    """A sampler of locations inside `region` following the people of the demo city."""

    def __init__(self, region: BaseGeometry, towns: list[Town]) -> None:
        self.region = region
        self.towns = towns
        shapely.prepare(region)
        seat = towns[0]
        self.streets = [LineString([(seat.x, seat.y), (t.x, t.y)]) for t in towns[1:]]
        minx, miny, maxx, maxy = region.bounds
        self._bounds = (minx, miny, maxx, maxy)

    def sample(self, rng: np.random.Generator, n: int, mix: Mix) -> Points:
        """`n` points inside the region drawn from the mix of cores, streets and countryside."""
        out = np.empty((0, 2))
        while len(out) < n:
            batch = max(1024, int((n - len(out)) * 1.3))
            cand = self._draw(rng, batch, mix)
            inside = shapely.contains_xy(self.region, cand[:, 0], cand[:, 1])
            out = np.vstack([out, cand[inside]])
        return out[:n]

    def _draw(self, rng: np.random.Generator, n: int, mix: Mix) -> Points:
        shares = np.array([mix.cores, mix.streets, mix.rural], dtype=float)
        counts = rng.multinomial(n, shares / shares.sum())
        return np.vstack(
            [
                self._cores(rng, counts[0]),
                self._along_streets(rng, counts[1]),
                self._uniform(rng, counts[2]),
            ]
        )

    def _cores(self, rng: np.random.Generator, n: int) -> Points:
        weights = np.array([t.weight for t in self.towns])
        which = rng.choice(len(self.towns), size=n, p=weights / weights.sum())
        centre = np.array([[t.x, t.y] for t in self.towns])[which]
        radius = np.array([t.radius_m for t in self.towns])[which]
        return centre + rng.normal(size=(n, 2)) * radius[:, None] / 2.0

    def _along_streets(self, rng: np.random.Generator, n: int) -> Points:
        which = rng.integers(0, len(self.streets), size=n)
        along = rng.random(n)
        lines = np.asarray(self.streets, dtype=object)[which]
        pts = shapely.line_interpolate_point(lines, along, normalized=True)
        xy = np.column_stack([shapely.get_x(pts), shapely.get_y(pts)]).reshape(-1, 2)
        return xy + rng.normal(scale=120.0, size=(n, 2))

    def _uniform(self, rng: np.random.Generator, n: int) -> Points:
        minx, miny, maxx, maxy = self._bounds
        return np.column_stack([rng.uniform(minx, maxx, n), rng.uniform(miny, maxy, n)])


def place_towns(
    region: BaseGeometry, seat: Point, names: list[str], rng: np.random.Generator
) -> list[Town]:
    """Put the county seat at `seat` and the other towns spread evenly over the region."""
    minx, miny, maxx, maxy = region.bounds
    cand = np.column_stack([rng.uniform(minx, maxx, 40000), rng.uniform(miny, maxy, 40000)])
    cand = cand[shapely.contains_xy(region, cand[:, 0], cand[:, 1])]
    centres = kmeans(cand, len(names), rng)
    nearest_seat = int(np.argmin(np.hypot(centres[:, 0] - seat.x, centres[:, 1] - seat.y)))
    others = [c for i, c in enumerate(centres) if i != nearest_seat]
    others.sort(key=lambda c: (-c[1], c[0]))
    towns = [Town(names[0], seat.x, seat.y, radius_m=3500.0, weight=0.42)]
    towns += [
        Town(name, float(c[0]), float(c[1]), radius_m=1500.0, weight=0.58 / len(others))
        for name, c in zip(names[1:], others, strict=True)
    ]
    return towns
