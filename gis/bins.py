"""Heatmap bin sizes: metres on the ground for a map zoom, on a ladder of 250 m times 2^k."""

from __future__ import annotations

import math

BASE_CELL_M = 250.0  # the cell every binned row stores (see migration 0010)
EQUATOR_M_PER_PX = 156_543.033_928  # Web Mercator, 256-pixel tiles, zoom 0
MIN_BIN_M = BASE_CELL_M / 8  # 31.25 m: finer bins would only show single points
MAX_BIN_M = BASE_CELL_M * 256  # 64 km


def metres_per_pixel(zoom: float, latitude: float) -> float:
    """Ground size of a screen pixel at a Web Mercator zoom and latitude."""
    return EQUATOR_M_PER_PX * math.cos(math.radians(latitude)) / 2**zoom


def bin_metres(zoom: float, latitude: float, pixels: float = 16.0) -> float:
    """The bin for about `pixels` screen pixels: 250 m × 2^k, between 31.25 m and 64 km."""
    wanted = metres_per_pixel(zoom, latitude) * pixels
    k = round(math.log2(max(wanted, 1e-9) / BASE_CELL_M))
    return min(max(BASE_CELL_M * 2.0**k, MIN_BIN_M), MAX_BIN_M)


def cells_per_bin(bin_m: float) -> int | None:
    """How many base cells make one bin side (None when a bin is smaller than a base cell)."""
    ratio = bin_m / BASE_CELL_M
    return int(ratio) if ratio >= 1 else None
