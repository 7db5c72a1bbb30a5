"""Presence and coverage statistics: inspectors' time on duty and streets passed, sanitation
vehicles' swept road segments, per day, as JSON or CSV."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from api.auth import current_viewer
from api.deps import ConnectionDep, CountyViewerDep, Day, statement_kind
from api.openapi import answers
from api.routes.tracking import TrackingDep
from layers.engine.statcsv import table_csv
from layers.errors import BadQuery
from layers.tracking import coverage

JSON, CSV = "application/json", "text/csv"
router = APIRouter(
    prefix="/stats",
    tags=["statistics 统计"],
    dependencies=[Depends(current_viewer), Depends(statement_kind("statistics"))],
)
FromParam = Annotated[Day | None, Query(alias="from", description="first day, YYYY-MM-DD")]
ToParam = Annotated[Day | None, Query(description="last day (included), YYYY-MM-DD")]
FormatParam = Annotated[str, Query(alias="format", pattern="^(json|csv)$")]
DayParam = Annotated[Day | None, Query(alias="date", description="one day, YYYY-MM-DD")]


def asked_period(
    viewer: CountyViewerDep,
    settings: TrackingDep,
    day: DayParam = None,
    from_: FromParam = None,
    to: ToParam = None,
) -> coverage.Period:
    """The period asked for (`date`, or `from` and `to`), for the viewer, under the settings."""
    if day is not None and from_ is None and to is None:
        return coverage.Period(day, day, viewer, settings.coverage_rules())
    if day is None and from_ is not None and to is not None:
        return coverage.Period(from_, to, viewer, settings.coverage_rules())
    raise BadQuery(
        "Give either date, or both from and to.",
        "请给出日期（date），或同时给出开始日期（from）和结束日期（to）。",
        code="period_required",
    )


PeriodDep = Annotated[coverage.Period, Depends(asked_period)]


def _answer(
    name: str,
    found: list[dict[str, Any]],
    period: coverage.Period,
    format_: str,
    columns: Sequence[tuple[str, str]],
) -> Response:
    first, last = period.first, period.last
    if format_ == "csv":
        return Response(
            table_csv(columns, found),
            media_type=f"{CSV}; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}-{first}-{last}.csv"'},
        )
    body = {"from": first.isoformat(), "to": last.isoformat(), "rows": found}
    return Response(json.dumps(body, ensure_ascii=False), media_type=JSON)


@router.get(
    "/presence",
    summary="Inspectors' presence / 监督员在岗与巡查覆盖",
    response_class=Response,
    responses=answers(JSON, CSV),
)
def presence(conn: ConnectionDep, period: PeriodDep, format_: FormatParam = "json") -> Response:
    """Per inspector and day (China time): positions, minutes on duty inside the patrol area
    (the grids held that day), the length of the area's road segments and the share passed. An
    inspector reads their own rows; handling units none."""
    return _answer(
        "presence", coverage.presence(conn, period), period, format_, coverage.PRESENCE_COLUMNS
    )


@router.get(
    "/sweeping",
    summary="Sweeping coverage / 环卫车辆清扫覆盖率",
    response_class=Response,
    responses=answers(JSON, CSV),
)
def sweeping(conn: ConnectionDep, period: PeriodDep, format_: FormatParam = "json") -> Response:
    """Per sanitation vehicle with road segments and per day: positions, the length of its
    segments and the share its track passed at sweeping speed. An inspector reads the segments
    in their patrol area; handling units none."""
    return _answer(
        "sweeping", coverage.sweeping(conn, period), period, format_, coverage.SWEEPING_COLUMNS
    )
