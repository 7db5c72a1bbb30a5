"""The bulletins (通报) as files: the monthly case bulletin and the quarterly dust bulletin."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from api.auth import current_viewer
from api.deps import ConnectionDep, CountyViewerDep, statement_kind
from api.openapi import answers
from layers.engine.access import Viewer, require_role
from layers.registry import Role
from layers.reports import dust, fonts, monthly, output, periods
from layers.reports.document import Document
from layers.reports.fonts import CjkFont

router = APIRouter(
    prefix="/reports",
    tags=["bulletins 通报"],
    dependencies=[Depends(current_viewer), Depends(statement_kind("statistics"))],
)
Format = Annotated[
    str,
    Query(
        alias="format",
        pattern=f"^({'|'.join(output.MEDIA_TYPES)})$",
        description="docx (Word) | pdf",
    ),
]
# the shapes periods.py accepts (years 2000–2100), stated so that clients see them
MONTH_PATTERN = r"^(20[0-9]{2}|2100)-(0[1-9]|1[0-2])$"
QUARTER_PATTERN = r"^(20[0-9]{2}|2100)-Q[1-4]$"


def _answer(document: Document, fmt: str, fallback: str, font: CjkFont) -> Response:
    return Response(
        output.render(document, fmt, font),
        media_type=output.MEDIA_TYPES[fmt],
        headers={"Content-Disposition": output.disposition(document, fmt, fallback)},
    )


def _allowed(viewer: Viewer) -> None:
    require_role(viewer, Role.LEADER, Role.DISPATCHER)


@router.get(
    "/monthly",
    summary="Monthly bulletin / 数字城管月度通报",
    response_class=Response,
    responses=answers(*output.MEDIA_TYPES.values()),
)
def monthly_bulletin(
    request: Request,
    conn: ConnectionDep,
    viewer: CountyViewerDep,
    month: Annotated[str, Query(pattern=MONTH_PATTERN, description="the month, YYYY-MM")],
    format_: Format = "docx",
) -> Response:
    """The month's bulletin of one county (`county=` for an account holding several): key
    figures against the previous month, the department ranking with scores and grades, the
    worst grids, a map and a trend chart, the overdue and supervised cases, and a summary."""
    _allowed(viewer)
    period = periods.month(month)
    fmt = output.check_format(format_)
    font = fonts.find(request.app.state.reports.font)
    document = monthly.build(conn, viewer, period, font, request.app.state.weights.get())
    return _answer(document, fmt, f"monthly-{period.key}", font)


@router.get(
    "/dust",
    summary="Quarterly dust-control bulletin / 扬尘治理督查通报",
    response_class=Response,
    responses=answers(*output.MEDIA_TYPES.values()),
)
def dust_bulletin(
    request: Request,
    conn: ConnectionDep,
    viewer: CountyViewerDep,
    quarter: Annotated[str, Query(pattern=QUARTER_PATTERN, description="the quarter, YYYY-Qn")],
    format_: Format = "docx",
) -> Response:
    """The quarter's dust-control bulletin of one county: sites inspected, inspections,
    problems and work orders issued, rectified and overdue, by site type and by street, the
    sites with most problems and a chart."""
    _allowed(viewer)
    period = periods.quarter(quarter)
    fmt = output.check_format(format_)
    font = fonts.find(request.app.state.reports.font)
    document = dust.build(conn, viewer, period, font)
    return _answer(document, fmt, f"dust-{period.key}", font)
