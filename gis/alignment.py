"""Whether a boundary said to be WGS84/CGCS2000 lines up with the data better once read as GCJ-02."""

from __future__ import annotations

from dataclasses import dataclass

import shapely
from shapely.geometry.base import BaseGeometry

from gis.gcj02 import geometry_to_wgs84
from gis.zones import geometry_zone, to_gk

# Two honest sources of one county differ by metres to tens of metres; GCJ-02's offset is
# hundreds of metres. A reading that moves the boundary this much closer is not a coincidence.
GAIN_M = 100.0


@dataclass(frozen=True)
class Alignment:
    """How far a boundary sits from the data already stored, as read and if it were GCJ-02."""

    offset_m: float  # centroid to centroid, as the file says
    offset_if_gcj02_m: float  # the same after converting the file from GCJ-02
    outside_m2: float  # area of the data lying outside the boundary, as the file says
    outside_if_gcj02_m2: float
    zone_epsg: int

    @property
    def looks_gcj02(self) -> bool:
        """The file lines up clearly better with the data when read as GCJ-02."""
        return (
            self.offset_m - self.offset_if_gcj02_m >= GAIN_M
            and self.outside_if_gcj02_m2 < self.outside_m2
        )


def compare(boundary: BaseGeometry, reference: BaseGeometry) -> Alignment:
    """Offsets (in metres of the reference's Gauss-Krüger zone) of `boundary` from `reference`,
    both in lon/lat, as given and with `boundary` converted from GCJ-02."""
    epsg = int(geometry_zone([reference])[0])
    shifted = shapely.make_valid(geometry_to_wgs84(boundary))
    ref, plain, moved = to_gk([reference, boundary, shifted], epsg)
    centre = shapely.centroid(ref)
    return Alignment(
        float(shapely.distance(centre, shapely.centroid(plain))),
        float(shapely.distance(centre, shapely.centroid(moved))),
        float(shapely.area(shapely.difference(ref, plain))),
        float(shapely.area(shapely.difference(ref, moved))),
        epsg,
    )
