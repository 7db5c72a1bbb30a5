"""Statistics for leaders: heatmaps of cases aggregated in the database."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from api.auth import ViewerDep, current_viewer
from api.deps import BBoxDep, ConnectionDep
from layers import heatmap

router = APIRouter(
    prefix="/stats", tags=["statistics 统计"], dependencies=[Depends(current_viewer)]
)


@router.get("/heatmap", summary="Case heatmap bins / 案件热力图", response_class=Response)
def case_heatmap(
    conn: ConnectionDep,
    viewer: ViewerDep,
    bbox: BBoxDep,
    zoom: Annotated[float, Query(ge=0, le=22, description="map zoom the bins are sized for")],
    from_: Annotated[date | None, Query(alias="from", description="first day, YYYY-MM-DD")] = None,
    to: Annotated[date | None, Query(description="last day (included), YYYY-MM-DD")] = None,
    category: Annotated[
        str | None, Query(description="codes (E0101) or classes (E01), comma separated")
    ] = None,
) -> Response:
    """Cases counted per square bin of about 16 screen pixels (250 m × 2^k in the Gauss-Krüger
    zone): `bins` holds [longitude, latitude, weight] per bin, heaviest first."""
    query = heatmap.HeatmapQuery(zoom, bbox, from_, to, heatmap.parse_categories(category), viewer)
    return Response(heatmap.heatmap(conn, query), media_type="application/json")
