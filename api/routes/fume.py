"""Online fume monitoring: readings posted by monitoring platforms, read as a collection, and
exchanged as CSV files."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine

from api.auth import current_viewer
from api.deps import (
    ConnectionDep,
    CountyViewerDep,
    DatetimeDep,
    EngineDep,
    read_upload,
    require_media_type,
    statement_kind,
)
from api.openapi import answers
from api.routes.transfer import exported_file
from layers.engine.access import Viewer
from layers.engine.importing import ImportRefused
from layers.errors import PayloadTooLarge
from layers.fume import readings, transfer

GEOJSON = "application/geo+json"
MAX_BATCH = 5_000  # a day of hourly readings of 200 restaurants in one request
router = APIRouter(
    tags=["fume 油烟在线监控"],
    dependencies=[Depends(current_viewer), Depends(statement_kind("read"))],
)


class PostedReading(BaseModel):
    """One reading of a monitoring device."""

    model_config = ConfigDict(extra="forbid")

    device: str = Field(min_length=1, max_length=32, description="the monitoring device ID")
    time: datetime = Field(description="the hour measured, with its offset (ISO 8601)")
    concentration: float = Field(description="油烟浓度, mg/m³")
    purifier_on: bool = Field(description="whether the purifier was running")


class ReadingBatch(BaseModel):
    """Readings posted together: stored all or none."""

    model_config = ConfigDict(extra="forbid")

    readings: list[PostedReading] = Field(min_length=1)


ExceededParam = Annotated[
    bool | None, Query(description="only readings over (or within) the limit")
]
RestaurantParam = Annotated[int | None, Query(ge=1, le=2**63 - 1, description="a restaurant's id")]
CSV = "text/csv"


@router.post("/fume/readings", summary="Post fume readings / 上报油烟监测数据")
def post_readings(
    conn: ConnectionDep, viewer: CountyViewerDep, batch: ReadingBatch
) -> dict[str, int]:
    """A monitoring platform (an admin or dispatcher account) posts its devices' readings; each
    is marked exceeded against its county's limit (GB 18483: 2.0 mg/m³ unless the county set
    its own). A reading already stored for the device and time is kept; `stored` counts new ones."""
    if len(batch.readings) > MAX_BATCH:
        raise PayloadTooLarge(
            f"At most {MAX_BATCH} readings per request.",
            f"每次最多上报 {MAX_BATCH} 条监测数据。",
            code="batch_too_large",
        )
    posted = [
        readings.Reading(r.device, r.time, r.concentration, r.purifier_on) for r in batch.readings
    ]
    readings.check(posted, datetime.now(UTC))
    stored = readings.store(conn, viewer, posted)
    conn.commit()
    return {"received": len(posted), "stored": stored}


@router.get(
    "/collections/fume_readings/items",
    summary="Fume readings / 油烟监测数据",
    response_class=Response,
    responses=answers(GEOJSON),
)
def reading_items(
    conn: ConnectionDep,
    viewer: CountyViewerDep,
    when: DatetimeDep,
    exceeded: ExceededParam = None,
    restaurant: RestaurantParam = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Response:
    """The readings of the restaurants the account reads, newest first, each at its restaurant;
    `datetime` an instant or an interval (a day is a China-time day)."""
    query = readings.ReadingsQuery(
        viewer,
        when.start if when else None,
        when.end if when else None,
        exceeded,
        restaurant,
        limit,
        offset,
    )
    body, _ = readings.items(conn, query)
    return Response(body, media_type=GEOJSON)


def _export(engine: Engine, query: readings.ReadingsQuery, path: Path) -> None:
    with engine.connect() as conn, path.open("wb") as out:
        transfer.export(conn, query, out)


@router.get(
    "/fume/readings/export",
    summary="Export fume readings as CSV / 导出油烟监测数据",
    dependencies=[Depends(statement_kind("export"))],
    response_class=Response,
    responses=answers(CSV),
)
async def export_readings(
    engine: EngineDep,
    viewer: CountyViewerDep,
    when: DatetimeDep,
    exceeded: ExceededParam = None,
    restaurant: RestaurantParam = None,
) -> Response:
    """Every reading the items would give for the same filters and rights, oldest first, as one
    CSV file with Chinese headers (UTF-8 with a byte-order mark); it imports back as it is."""
    query = readings.ReadingsQuery(
        viewer, when.start if when else None, when.end if when else None, exceeded, restaurant
    )
    return await exported_file(
        "fume_readings.csv", f"{CSV}; charset=utf-8", lambda path: _export(engine, query, path)
    )


def _import(engine: Engine, viewer: Viewer, data: bytes, dry_run: bool) -> dict[str, object]:
    parsed = transfer.parse(data, datetime.now(UTC))
    with engine.connect() as conn:
        return transfer.import_readings(conn, viewer, parsed, dry_run).document()


def csv_body(request: Request) -> None:
    """A readings file comes as CSV (or application/octet-stream)."""
    require_media_type(request, (CSV, "application/octet-stream"), "the file", "文件")


@router.post(
    "/fume/readings/import",
    summary="Import fume readings from CSV / 导入油烟监测数据",
    dependencies=[Depends(csv_body), Depends(statement_kind("import"))],
    response_class=Response,
    responses={**answers("application/json"), **answers(CSV, status=400)},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                media: {"schema": {"type": "string", "format": "binary"}}
                for media in (CSV, "application/octet-stream")
            },
        }
    },
)
async def import_readings(
    request: Request,
    engine: EngineDep,
    viewer: CountyViewerDep,
    dry_run: Annotated[bool, Query(alias="dry-run")] = False,
    report: Annotated[str, Query(pattern="^(json|csv)$", description="how bad rows are listed")] = (
        "json"
    ),
) -> Response:
    """A monitoring platform's CSV file (columns 设备编号 device_id, 监测时间 time — ISO 8601, China
    time when it has no offset —, 油烟浓度 concentration in mg/m³, 净化器运行 purifier_on 是/否;
    other columns, such as an export's, are left aside): every row checked; all stored in one
    transaction, or none, with each bad row's number, field and reason. A reading already stored
    for the device and time is kept (counted `unchanged`); each new one is marked against its
    county's limit."""
    readings.require_platform(viewer)
    data = await read_upload(request, request.app.state.editing.max_upload_bytes)
    try:
        done = await run_in_threadpool(_import, engine, viewer, data, dry_run)
    except ImportRefused as refused:
        if report == "csv":
            return Response(
                refused.report.errors_csv(), status_code=400, media_type=f"{CSV}; charset=utf-8"
            )
        raise
    return Response(json.dumps(done, ensure_ascii=False), media_type="application/json")
