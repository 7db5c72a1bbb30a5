"""Coverage checks of child grids against their parent, in metres."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry.base import BaseGeometry


@dataclass(frozen=True)
class CoverageSummary:
    """Areas (m²) by which a set of children fails to tile its parent exactly."""

    children: int
    invalid: int
    gap_m2: float
    overlap_m2: float
    outside_m2: float

    def ok(self, tolerance_m2: float) -> bool:
        """True when every discrepancy is within `tolerance_m2` and all children are valid."""
        return (
            self.invalid == 0 and max(self.gap_m2, self.overlap_m2, self.outside_m2) <= tolerance_m2
        )


def summarize_coverage(
    parent: BaseGeometry, children: npt.ArrayLike, grid_size: float | None = None
) -> CoverageSummary:
    """Measure gaps, overlaps and spill-over of `children` over `parent` (projected, metres)."""
    kids = np.asarray(children, dtype=object)
    valid = shapely.is_valid(kids)
    union = shapely.union_all(kids[valid], grid_size=grid_size)
    return CoverageSummary(
        children=len(kids),
        invalid=int((~valid).sum()),
        gap_m2=float(shapely.area(shapely.difference(parent, union, grid_size=grid_size))),
        overlap_m2=max(0.0, float(shapely.area(kids[valid]).sum() - shapely.area(union))),
        outside_m2=float(shapely.area(shapely.difference(union, parent, grid_size=grid_size))),
    )
