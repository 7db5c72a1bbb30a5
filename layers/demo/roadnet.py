"""The demo city's road network: the streets and main roads of `streets.py` cut at every crossing
into edges between junctions, in metres of the county's Gauss-Krüger zone, with shortest paths.

A few hundred edges: Dijkstra over a binary heap answers a path in well under a millisecond."""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import LineString, MultiLineString

from layers.demo.streets import StreetPlan

XY = tuple[float, float]
SNAP_M = 0.5  # crossings closer than this are one junction


@dataclass
class RoadNet:
    """Junctions (`nodes`, metres) and the roads between them (both ways, lengths in metres)."""

    nodes: npt.NDArray[np.float64]
    edges: list[tuple[int, int, float]]
    _next: list[list[tuple[int, float]]] = field(init=False, repr=False)
    _paths: dict[tuple[int, int], list[int]] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._next = [[] for _ in range(len(self.nodes))]
        for a, b, length in self.edges:
            self._next[a].append((b, length))
            self._next[b].append((a, length))

    @classmethod
    def from_lines(cls, lines: Sequence[LineString]) -> RoadNet:
        """The network of `lines`, cut where they cross or touch."""
        noded = shapely.unary_union(MultiLineString(list(lines)))
        parts = list(getattr(noded, "geoms", [noded]))
        index: dict[tuple[int, int], int] = {}
        coords: list[XY] = []

        def node(xy: XY) -> int:
            key = (round(xy[0] / SNAP_M), round(xy[1] / SNAP_M))
            if key not in index:
                index[key] = len(coords)
                coords.append(xy)
            return index[key]

        edges: dict[tuple[int, int], float] = {}
        for part in parts:
            points = list(part.coords)
            for start, end in itertools.pairwise(points):
                a, b = node(start), node(end)
                if a != b:
                    key = (min(a, b), max(a, b))
                    edges[key] = min(edges.get(key, math.inf), math.dist(start, end))
        return cls(np.array(coords, dtype=float), [(a, b, d) for (a, b), d in edges.items()])

    def nearest(self, x: float, y: float) -> int:
        """The junction nearest to (x, y)."""
        return int(np.argmin(np.hypot(self.nodes[:, 0] - x, self.nodes[:, 1] - y)))

    def shortest_path(self, source: int, target: int) -> list[int]:
        """The junctions of a shortest path from `source` to `target` (both included);
        ValueError when no road joins them."""
        if (source, target) not in self._paths:
            self._paths[source, target] = self._dijkstra(source, target)
        return self._paths[source, target]

    def _dijkstra(self, source: int, target: int) -> list[int]:
        best = {source: 0.0}
        came: dict[int, int] = {}
        queue = [(0.0, source)]
        while queue:
            dist, at = heapq.heappop(queue)
            if at == target:
                path = [at]
                while path[-1] != source:
                    path.append(came[path[-1]])
                return path[::-1]
            if dist > best[at]:
                continue
            for nxt, length in self._next[at]:
                if dist + length < best.get(nxt, math.inf):
                    best[nxt] = dist + length
                    came[nxt] = at
                    heapq.heappush(queue, (dist + length, nxt))
        raise ValueError(f"no road from junction {source} to junction {target}")

    def route(self, start: XY, end: XY) -> list[XY]:
        """The way from `start` to `end`: to the nearest junction, along the roads, then off."""
        path = self.shortest_path(self.nearest(*start), self.nearest(*end))
        way = [start, *(tuple(self.nodes[n]) for n in path), end]
        return [p for i, p in enumerate(way) if i == 0 or math.dist(p, way[i - 1]) > 0]

    def components(self) -> int:
        """How many separate pieces the network has (1: every junction reaches every other)."""
        seen: set[int] = set()
        pieces = 0
        for first in range(len(self.nodes)):
            if first in seen:
                continue
            pieces += 1
            stack = [first]
            seen.add(first)
            while stack:
                for nxt, _ in self._next[stack.pop()]:
                    if nxt not in seen:
                        seen.add(nxt)
                        stack.append(nxt)
        return pieces


def road_net(plan: StreetPlan) -> RoadNet:
    """The network of the demo city's streets and main roads."""
    return RoadNet.from_lines([LineString([s.start, s.end]) for s in plan.streets])
