"""Statistics for leaders: heatmaps and indicators of cases, computed by the database."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from api.auth import current_viewer
from api.deps import (
    CODE_PATTERN,
    LEVEL_PATTERN,
    BBoxDep,
    Categories,
    CategoryClass,
    ConnectionDep,
    CountyViewerDep,
    Day,
    Subclass,
    statement_kind,
)
from api.openapi import answers
from layers.cases import casestats, evaluation, heatmap, indicators
from layers.cases.codes import parse_categories
from layers.engine.access import require_role
from layers.fume import stats as fume_stats
from layers.places import counties
from layers.registry import Role

JSON, GEOJSON, CSV = "application/json", "application/geo+json", "text/csv"
Within = Annotated[
    str | None,
    Query(pattern=CODE_PATTERN, description="only the cases inside this current grid (a street)"),
]
router = APIRouter(
    prefix="/stats",
    tags=["statistics 统计"],
    dependencies=[Depends(current_viewer), Depends(statement_kind("statistics"))],
)


@router.get(
    "/heatmap",
    summary="Case heatmap bins / 案件热力图",
    response_class=Response,
    responses=answers(JSON),
)
def case_heatmap(
    conn: ConnectionDep,
    viewer: CountyViewerDep,
    bbox: BBoxDep,
    zoom: Annotated[float, Query(ge=0, le=22, description="map zoom the bins are sized for")],
    from_: Annotated[Day | None, Query(alias="from", description="first day, YYYY-MM-DD")] = None,
    to: Annotated[Day | None, Query(description="last day (included), YYYY-MM-DD")] = None,
    category: Categories = None,
    class_: CategoryClass = None,
    subclass: Subclass = None,
    within: Within = None,
) -> Response:
    """Cases counted per square bin of about 16 screen pixels (250 m × 2^k in the Gauss-Krüger
    zone): `bins` holds [longitude, latitude, weight] per bin, heaviest first."""
    query = heatmap.HeatmapQuery(
        zoom, bbox, from_, to, parse_categories(category, class_, subclass), viewer, within
    )
    return Response(heatmap.heatmap(conn, query), media_type=JSON)


@router.get(
    "/indicators",
    summary="Case indicators / 案件考核指标",
    response_class=Response,
    responses=answers(JSON, CSV),
)
def case_indicators(
    conn: ConnectionDep,
    viewer: CountyViewerDep,
    from_: Annotated[Day, Query(alias="from", description="first day, YYYY-MM-DD")],
    to: Annotated[Day, Query(description="last day (included), YYYY-MM-DD")],
    by: Annotated[
        str,
        Query(
            pattern="^(section|community|street|category|unit|owner|maintainer|month|week)$",
            description="section | community | street | category | unit 处置单位 | "
            "owner 部件权属单位 | maintainer 部件养护单位 | month | week",
        ),
    ] = "street",
    category: Categories = None,
    class_: CategoryClass = None,
    subclass: Subclass = None,
    format_: Annotated[str, Query(alias="format", pattern="^(json|csv)$")] = "json",
    within: Within = None,
) -> Response:
    """立案数, 结案数, 应结案数, 结案率, 按期结案率, 超期数 and average handling hours per group,
    as JSON or as CSV with Chinese headers. `rows` are the figures of every county asked for
    (`county=`, default every county of the account) together; the JSON's `counties` holds each
    county's own rows beside them (`adcode`, `name`, `rows`)."""
    query = indicators.IndicatorQuery(
        from_, to, by, parse_categories(category, class_, subclass), viewer, within
    )
    found = indicators.rows(conn, query)
    if format_ == "csv":
        name = f"indicators-{by}-{from_}-{to}.csv"
        return Response(
            indicators.as_csv(found),
            media_type=f"{CSV}; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    each = [
        {
            "adcode": c.adcode,
            "name": c.name,
            "rows": indicators.rows(conn, replace(query, viewer=v)),
        }
        for c, v in counties.each(conn, viewer)
    ]
    body = {"from": from_.isoformat(), "to": to.isoformat(), "by": by, "rows": found}
    body["counties"] = each
    return Response(json.dumps(body, ensure_ascii=False), media_type=JSON)


@router.get(
    "/evaluation",
    summary="Evaluation of regions, departments and posts / 综合评价",
    response_class=Response,
    responses=answers(JSON, CSV),
)
def case_evaluation(
    request: Request,
    conn: ConnectionDep,
    viewer: CountyViewerDep,
    object_: Annotated[
        str,
        Query(
            alias="object",
            description="region 区域 | department 处置部门 | "
            "post 岗位（监督员、派遣员、值班长、受理员）",
        ),
    ],
    from_: Annotated[Day, Query(alias="from", description="first day, YYYY-MM-DD")],
    to: Annotated[Day, Query(description="last day (included), YYYY-MM-DD")],
    level: Annotated[
        str, Query(pattern=LEVEL_PATTERN, description="regions: street | community | section")
    ] = "street",
    format_: Annotated[str, Query(alias="format", pattern="^(json|csv)$")] = "json",
) -> Response:
    """The evaluation of GB/T 30428.4 for leaders and the command centre: per region (grid of
    `level`), handling unit or post holder, its counts and rates, `score` (weighted per county)
    and `grade` (A–E); a rate is null when nothing was due. Rows are per county (`adcode`) for
    every county asked for (`county=`, default every county of the account)."""
    require_role(viewer, Role.LEADER, Role.DISPATCHER)
    query = evaluation.EvaluationQuery(object_, from_, to, viewer, level)
    evaluation.check(query)
    state = request.app.state
    weights = state.weights.get()
    found = [
        row
        for _, limited in counties.each(conn, viewer)
        for row in evaluation.rows(
            conn, replace(query, viewer=limited), weights, state.step_limits, state.calendars
        )
    ]
    if format_ == "csv":
        name = f"evaluation-{object_}-{from_}-{to}.csv"
        return Response(
            evaluation.as_csv(object_, found),
            media_type=f"{CSV}; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    body = {"from": from_.isoformat(), "to": to.isoformat(), "object": object_, "rows": found}
    return Response(json.dumps(body, ensure_ascii=False, default=str), media_type=JSON)


@router.get(
    "/heatmap/frames",
    summary="Heatmap per week or month / 热力图时间序列",
    response_class=Response,
    responses=answers(JSON),
)
def case_heatmap_frames(
    conn: ConnectionDep,
    viewer: CountyViewerDep,
    bbox: BBoxDep,
    zoom: Annotated[float, Query(ge=0, le=22)],
    interval: Annotated[str, Query(pattern="^(week|month)$")] = "week",
    from_: Annotated[Day | None, Query(alias="from")] = None,
    to: Annotated[Day | None, Query()] = None,
    category: Categories = None,
    class_: CategoryClass = None,
    subclass: Subclass = None,
    within: Within = None,
) -> Response:
    """The heatmap's bins for each week or month of the period, in order (for an animation)."""
    query = heatmap.HeatmapQuery(
        zoom, bbox, from_, to, parse_categories(category, class_, subclass), viewer, within
    )
    return Response(heatmap.frames(conn, query, interval), media_type=JSON)


@router.get(
    "/choropleth",
    summary="Cases per grid / 网格案件分布",
    response_class=Response,
    responses=answers(GEOJSON),
)
def case_choropleth(
    conn: ConnectionDep,
    viewer: CountyViewerDep,
    from_: Annotated[Day, Query(alias="from")],
    to: Annotated[Day, Query()],
    level: Annotated[
        str, Query(pattern=LEVEL_PATTERN, description="street | community | section")
    ] = ("section"),
    category: Categories = None,
    class_: CategoryClass = None,
    subclass: Subclass = None,
    within: Within = None,
) -> Response:
    """The grids valid on the last day with the cases reported in them (total and per km²) and
    their indicators for the period, as `/stats/indicators?by=` the level gives them."""
    body = casestats.choropleth(
        conn, level, from_, to, parse_categories(category, class_, subclass), viewer, within
    )
    return Response(body, media_type=GEOJSON)


@router.get("/trend", summary="Cases per week or month by class / 案件趋势")
def case_trend(
    conn: ConnectionDep,
    viewer: CountyViewerDep,
    from_: Annotated[Day, Query(alias="from")],
    to: Annotated[Day, Query()],
    interval: Annotated[str, Query(pattern="^(week|month)$")] = "week",
    category: Categories = None,
    class_: CategoryClass = None,
    subclass: Subclass = None,
    within: Within = None,
) -> list[dict[str, Any]]:
    """Cases reported per period and class (大类), for a trend chart."""
    return casestats.trend(
        conn, interval, from_, to, parse_categories(category, class_, subclass), viewer, within
    )


@router.get("/overdue", summary="Cases open past their deadline / 超期未结案件")
def overdue_cases(
    conn: ConnectionDep,
    viewer: CountyViewerDep,
    category: Categories = None,
    class_: CategoryClass = None,
    subclass: Subclass = None,
    within: Within = None,
    top: Annotated[int, Query(ge=0, le=100, description="how many of them to list")] = 10,
) -> dict[str, Any]:
    """`count`: every case not yet closed whose deadline has passed (no cap); `cases`: the `top`
    of them, longest overdue first."""
    return casestats.overdue(
        conn, parse_categories(category, class_, subclass), viewer, within, top
    )


@router.get(
    "/fume",
    summary="Fume exceedance rates / 油烟超标率",
    response_class=Response,
    responses=answers(JSON, CSV),
)
def fume_exceedance(
    conn: ConnectionDep,
    viewer: CountyViewerDep,
    from_: Annotated[Day, Query(alias="from", description="first day, YYYY-MM-DD")],
    to: Annotated[Day, Query(description="last day (included), YYYY-MM-DD")],
    by: Annotated[
        str,
        Query(
            pattern="^(restaurant|grid|month)$",
            description="restaurant 餐饮单位 | grid 街道网格 | month 月份",
        ),
    ] = "restaurant",
    format_: Annotated[str, Query(alias="format", pattern="^(json|csv)$")] = "json",
) -> Response:
    """Readings, exceedances and the exceedance rate per restaurant, street grid or month (China
    time) of the restaurants the account reads, the last row (合计) the totals; as JSON or CSV."""
    found = fume_stats.rows(conn, fume_stats.FumeQuery(from_, to, by, viewer))
    if format_ == "csv":
        name = f"fume-{by}-{from_}-{to}.csv"
        return Response(
            fume_stats.as_csv(found),
            media_type=f"{CSV}; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    body = {"from": from_.isoformat(), "to": to.isoformat(), "by": by, "rows": found}
    return Response(json.dumps(body, ensure_ascii=False), media_type=JSON)
