"""Coordinate reference systems of the API (OGC API - Features Part 2) and their axis order.

Data are stored in CGCS2000 (EPSG:4490). CRS84 is longitude/latitude; EPSG:4490 and EPSG:4326
are latitude/longitude and the Gauss-Krüger zones EPSG:4534-4554 northing/easting, as their EPSG
definitions say, so coordinates are flipped for them on the way out and on the way in.
CGCS2000 and WGS84 differ by centimetres here: CRS84 output is the stored coordinates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pyproj import Transformer

from layers.errors import BadQuery
from layers.registry import STORAGE_SRID

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG_PREFIX = "http://www.opengis.net/def/crs/EPSG/0/"
GK_ZONES = range(4534, 4555)
WEB_MERCATOR = 3857
SUPPORTED_EPSG = (STORAGE_SRID, 4326, WEB_MERCATOR, *GK_ZONES)
MERCATOR_HALF = 20037508.342789244
# northing 0-10,000 km and easting 0-1,000 km (false easting 500 km): every place of China in
# its zone with room to spare; far beyond it the projection has no inverse
GK_DOMAIN = (0.0, 0.0, 10_000_000.0, 1_000_000.0)


@dataclass(frozen=True)
class Crs:
    """A CRS the API speaks: its URI, the SRID the database uses, and whether axes are flipped."""

    uri: str
    srid: int
    flip: bool
    geographic: bool

    @property
    def domain(self) -> tuple[float, float, float, float]:
        """Where coordinates in this CRS make sense (min, min, max, max in its axis order)."""
        if self.geographic or self.uri == CRS84:
            lon_lat = (-180.0, -90.0, 180.0, 90.0)
            return (-90.0, -180.0, 90.0, 180.0) if self.flip else lon_lat
        if self.srid == WEB_MERCATOR:
            return (-MERCATOR_HALF, -MERCATOR_HALF, MERCATOR_HALF, MERCATOR_HALF)
        return GK_DOMAIN

    def contains(self, bounds: tuple[float, float, float, float]) -> bool:
        """Whether a box (min, min, max, max in this CRS's axis order) lies inside its domain."""
        a0, b0, a1, b1 = self.domain
        minx, miny, maxx, maxy = bounds
        return minx >= a0 and miny >= b0 and maxx <= a1 and maxy <= b1

    @property
    def header(self) -> str:
        """The value of a Content-Crs header."""
        return f"<{self.uri}>"


STORAGE = Crs(CRS84, STORAGE_SRID, flip=False, geographic=True)


def epsg_uri(code: int) -> str:
    """The OGC URI of an EPSG code."""
    return f"{EPSG_PREFIX}{code}"


def supported_uris() -> list[str]:
    """Every CRS URI the API accepts, CRS84 first."""
    return [CRS84, *(epsg_uri(code) for code in SUPPORTED_EPSG)]


def uri_pattern() -> str:
    """A regular expression (for the API's schema) matching every CRS name parse_crs accepts."""
    codes = "|".join(str(code) for code in SUPPORTED_EPSG)
    crs84 = re.escape(CRS84)
    return rf"^\s*({crs84}|CRS84|OGC:CRS84|({re.escape(EPSG_PREFIX)}|EPSG:)({codes}))\s*$"


def parse_crs(value: str | None, parameter: str = "crs") -> Crs:
    """The CRS named by a URI (or `EPSG:nnnn`), refusing any the API does not serve."""
    value = value.strip() if value is not None else None
    if value is None or value in (CRS84, "CRS84", "OGC:CRS84"):
        return STORAGE
    match = re.fullmatch(r"(?:http://www\.opengis\.net/def/crs/EPSG/0/|EPSG:)(\d+)", value.strip())
    code = int(match.group(1)) if match else None
    if code not in SUPPORTED_EPSG:
        raise BadQuery(
            f"{parameter}={value} is not supported; use one of: CRS84, EPSG:4490, EPSG:4326, EPSG:3857, "
            "EPSG:4534 to EPSG:4554 (as http://www.opengis.net/def/crs/EPSG/0/<code>).",
            f"不支持的坐标系 {parameter}={value}；可用 CRS84、EPSG:4490、EPSG:4326、EPSG:3857、EPSG:4534 至 EPSG:4554。",
        )
    assert code is not None
    return Crs(
        epsg_uri(code), code, flip=code != WEB_MERCATOR, geographic=code in (STORAGE_SRID, 4326)
    )


def geometry_out(column: str, crs: Crs) -> str:
    """SQL turning a stored geometry into `crs`, axes in the CRS's order."""
    expr = column if crs.srid == STORAGE_SRID else f"ST_Transform({column}, {crs.srid})"
    return f"ST_FlipCoordinates({expr})" if crs.flip else expr


def geometry_in(expr: str, crs: Crs) -> str:
    """SQL turning a geometry given in `crs` (axes in its order, SRID unset) into storage."""
    if crs.flip:
        expr = f"ST_FlipCoordinates({expr})"
    expr = f"ST_SetSRID({expr}, {crs.srid})"
    return expr if crs.srid == STORAGE_SRID else f"ST_Transform({expr}, {STORAGE_SRID})"


def decimals(crs: Crs) -> int:
    """Coordinate decimals worth sending: about a centimetre."""
    return 7 if crs.geographic or crs.uri == CRS84 else 2


def parse_content_crs(value: str | None) -> Crs:
    """The CRS a Content-Crs header names (`<uri>`, or the bare URI QGIS sends)."""
    if value is None or not value.strip():
        return STORAGE
    return parse_crs(value.strip().removeprefix("<").removesuffix(">"), "Content-Crs")


@lru_cache(maxsize=32)
def _to_storage(srid: int) -> Transformer:
    return Transformer.from_crs(srid, STORAGE_SRID, always_xy=True)


def _is_position(node: Any) -> bool:
    return (
        isinstance(node, list)
        and len(node) >= 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in node)
    )


def positions_to_storage(coordinates: Any, crs: Crs) -> Any:
    """GeoJSON coordinates given in `crs` (its axis order) as storage longitude/latitude.

    Anything that is not nested positions is returned as given, for the geometry check to name."""
    if _is_position(coordinates):
        x, y = (coordinates[1], coordinates[0]) if crs.flip else (coordinates[0], coordinates[1])
        if crs.srid != STORAGE_SRID and not crs.geographic:
            x, y = _to_storage(crs.srid).transform(x, y)
        return [x, y, *coordinates[2:]]
    if isinstance(coordinates, list):
        return [positions_to_storage(c, crs) for c in coordinates]
    return coordinates
