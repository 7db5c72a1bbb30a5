"""Statistics of the bureau's other systems: sorting-point progress per compound and merchants
per rating per grid, computed by the database, as JSON or CSV with Chinese headers."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from api.auth import current_viewer
from api.deps import ConnectionDep, CountyViewerDep, statement_kind
from api.openapi import answers
from layers.merchants import stats as merchant_stats
from layers.sorting import stats as sorting_stats

JSON, CSV = "application/json", "text/csv"
Format = Annotated[str, Query(alias="format", pattern="^(json|csv)$")]
router = APIRouter(
    prefix="/stats",
    tags=["statistics 统计"],
    dependencies=[Depends(current_viewer), Depends(statement_kind("statistics"))],
)


def _answer(body: dict[str, Any], csv_text: str | None, name: str) -> Response:
    """The rows as JSON, or as a CSV attachment named `name` when `csv_text` is given."""
    if csv_text is not None:
        return Response(
            csv_text,
            media_type=f"{CSV}; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return Response(json.dumps(body, ensure_ascii=False), media_type=JSON)


@router.get(
    "/sorting",
    summary="Sorting-point progress per compound / 垃圾分类投放点建设进度",
    response_class=Response,
    responses=answers(JSON, CSV),
)
def sorting_progress(
    conn: ConnectionDep,
    viewer: CountyViewerDep,
    kind: Annotated[
        str | None,
        Query(description="sorting_point 分类投放点 | sorting_room 分类房 | transfer 中转站"),
    ] = None,
    format_: Format = "json",
) -> Response:
    """Per residential compound the garbage points the account reads, counted per build status
    (规划, 在建, 已建成, 水电已接通, 投用), their number, the share in service and the share with
    water and power connected (connected or in service); then each county's total line and, over
    several counties, the total of all."""
    found = sorting_stats.rows(conn, sorting_stats.SortingQuery(kind, viewer))
    text = sorting_stats.as_csv(found) if format_ == "csv" else None
    return _answer({"kind": kind, "rows": found}, text, f"sorting-{kind or 'all'}.csv")


@router.get(
    "/merchants",
    summary="Merchants per rating per grid / 门前三包商户三色评级分布",
    response_class=Response,
    responses=answers(JSON, CSV),
)
def merchant_ratings(
    conn: ConnectionDep,
    viewer: CountyViewerDep,
    by: Annotated[
        str,
        Query(description="community 社区网格 | street 街道网格 | section 单元网格"),
    ] = "community",
    format_: Format = "json",
) -> Response:
    """Red, yellow and green merchants (and those without a rating) per grid of the level, among
    those the account reads; the last row (合计) the totals."""
    found = merchant_stats.rows(conn, merchant_stats.RatingQuery(by, viewer))
    text = merchant_stats.as_csv(found) if format_ == "csv" else None
    return _answer({"by": by, "rows": found}, text, f"merchants-{by}.csv")
