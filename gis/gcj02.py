"""GCJ-02 (the offset datum of Amap/Tencent maps) ⇄ WGS84/CGCS2000, vectorised with numpy.

The forward transform is the published GCJ-02 formula; the inverse has no closed form and is
found by fixed-point iteration, which converges to well under a centimetre inside China.
Outside China's rough extent GCJ-02 applies no offset.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry.base import BaseGeometry

Array = npt.NDArray[np.float64]

_A = 6378245.0
_EE = 0.00669342162296594323
_CHINA_LON = (72.004, 137.8347)
_CHINA_LAT = (0.8293, 55.8271)


def _in_china(lon: Array, lat: Array) -> npt.NDArray[np.bool_]:
    return (
        (lon >= _CHINA_LON[0])
        & (lon <= _CHINA_LON[1])
        & (lat >= _CHINA_LAT[0])
        & (lat <= _CHINA_LAT[1])
    )


def _offset(lon: Array, lat: Array) -> tuple[Array, Array]:
    """The GCJ-02 offset in degrees at a WGS84 position."""
    x, y = lon - 105.0, lat - 35.0
    periodic = (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    dlat += periodic
    dlat += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    dlat += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    dlon += periodic
    dlon += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    dlon += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    rad_lat = np.radians(lat)
    magic = 1.0 - _EE * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * np.cos(rad_lat) * np.pi)
    inside = _in_china(lon, lat)
    return np.where(inside, dlon, 0.0), np.where(inside, dlat, 0.0)


def wgs84_to_gcj02(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[Array, Array]:
    """Shift WGS84 (or CGCS2000) longitudes/latitudes to GCJ-02."""
    lon_a, lat_a = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    dlon, dlat = _offset(lon_a, lat_a)
    return lon_a + dlon, lat_a + dlat


def gcj02_to_wgs84(
    lon: npt.ArrayLike, lat: npt.ArrayLike, tolerance_deg: float = 1e-10, max_iter: int = 30
) -> tuple[Array, Array]:
    """Shift GCJ-02 longitudes/latitudes back to WGS84 by fixed-point iteration."""
    g_lon, g_lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    w_lon, w_lat = g_lon.copy(), g_lat.copy()
    for _ in range(max_iter):
        f_lon, f_lat = wgs84_to_gcj02(w_lon, w_lat)
        e_lon, e_lat = f_lon - g_lon, f_lat - g_lat
        w_lon, w_lat = w_lon - e_lon, w_lat - e_lat
        if np.all(np.abs(e_lon) < tolerance_deg) and np.all(np.abs(e_lat) < tolerance_deg):
            break
    return w_lon, w_lat


def _apply(geom: BaseGeometry, func: object) -> BaseGeometry:
    def on_coords(xy: Array) -> Array:
        lon, lat = func(xy[:, 0], xy[:, 1])  # type: ignore[operator]
        return np.column_stack([lon, lat])

    return shapely.transform(geom, on_coords)


def geometry_to_wgs84(geom: BaseGeometry) -> BaseGeometry:
    """A GCJ-02 geometry (or array of them) shifted to WGS84/CGCS2000."""
    return _apply(geom, gcj02_to_wgs84)


def geometry_to_gcj02(geom: BaseGeometry) -> BaseGeometry:
    """A WGS84/CGCS2000 geometry (or array of them) shifted to GCJ-02."""
    return _apply(geom, wgs84_to_gcj02)
