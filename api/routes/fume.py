"""Online fume monitoring: readings posted by monitoring platforms, and read as a collection."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from api.auth import current_viewer
from api.deps import ConnectionDep, CountyViewerDep, DatetimeDep, statement_kind
from api.openapi import answers
from layers.errors import PayloadTooLarge
from layers.fume import readings

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
    exceeded: Annotated[
        bool | None, Query(description="only readings over (or within) the limit")
    ] = None,
    restaurant: Annotated[
        int | None, Query(ge=1, le=2**63 - 1, description="a restaurant's id")
    ] = None,
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
