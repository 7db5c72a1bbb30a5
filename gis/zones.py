"""3-degree Gauss-Krüger zones of CGCS2000 (EPSG:4534-4554) and projections into them."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.typing as npt
import shapely
from pyproj import Transformer
from shapely.geometry.base import BaseGeometry

CGCS2000 = 4490
FIRST_ZONE_EPSG = 4534  # CGCS2000 / 3-degree Gauss-Kruger CM 75E
LAST_ZONE_EPSG = 4554  # CM 135E
FIRST_CM = 75


def zone_epsg(lon: float | npt.ArrayLike) -> npt.NDArray[np.int64]:
    """EPSG code of the 3-degree GK zone whose central meridian is nearest to `lon`."""
    cm_index = np.rint((np.asarray(lon, dtype=float) - FIRST_CM) / 3.0).astype(np.int64)
    return FIRST_ZONE_EPSG + np.clip(cm_index, 0, LAST_ZONE_EPSG - FIRST_ZONE_EPSG)


def central_meridian(epsg: int) -> int:
    """Central meridian in degrees east of a GK zone."""
    if not FIRST_ZONE_EPSG <= epsg <= LAST_ZONE_EPSG:
        raise ValueError(f"EPSG:{epsg} is not a CGCS2000 3-degree Gauss-Kruger zone")
    return FIRST_CM + 3 * (epsg - FIRST_ZONE_EPSG)


def geometry_zone(geoms: BaseGeometry | npt.ArrayLike) -> npt.NDArray[np.int64]:
    """The GK zone of each geometry, chosen by its centroid."""
    centroids = shapely.centroid(np.asarray(geoms, dtype=object))
    return zone_epsg(shapely.get_x(centroids))


@lru_cache(maxsize=64)
def _transformer(src: int, dst: int) -> Transformer:
    return Transformer.from_crs(src, dst, always_xy=True)


def reproject(geoms: BaseGeometry | npt.ArrayLike, src: int, dst: int) -> npt.NDArray[np.object_]:
    """Geometries reprojected from EPSG `src` to EPSG `dst` (x = easting / longitude)."""
    transformer = _transformer(src, dst)

    def on_coords(xy: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        x, y = transformer.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(np.asarray(geoms, dtype=object), on_coords)


def to_gk(geoms: BaseGeometry | npt.ArrayLike, epsg: int) -> npt.NDArray[np.object_]:
    """CGCS2000 geometries in metres of GK zone `epsg`."""
    return reproject(geoms, CGCS2000, epsg)


def from_gk(geoms: BaseGeometry | npt.ArrayLike, epsg: int) -> npt.NDArray[np.object_]:
    """Geometries in metres of GK zone `epsg` back to CGCS2000 degrees."""
    return reproject(geoms, epsg, CGCS2000)


def area_m2(
    geoms: BaseGeometry | npt.ArrayLike, epsg: int | None = None
) -> npt.NDArray[np.float64]:
    """Area in square metres of CGCS2000 geometries, each in its own GK zone unless `epsg` is given."""
    arr = np.atleast_1d(np.asarray(geoms, dtype=object))
    zones = np.full(len(arr), epsg) if epsg is not None else geometry_zone(arr)
    out = np.zeros(len(arr))
    for zone in np.unique(zones):
        mask = zones == zone
        out[mask] = shapely.area(to_gk(arr[mask], int(zone)))
    return out
