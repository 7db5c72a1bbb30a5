"""Live tracking: positions from phones and forwarding platforms, latest positions, tracks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api import metrics
from api.auth import ViewerDep, current_viewer
from api.deps import ConnectionDep, CountyViewerDep, statement_kind
from api.openapi import answers
from api.settings import TrackingSettings
from layers.errors import BadQuery, PayloadTooLarge
from layers.registry import VEHICLE_KINDS
from layers.store.tables import ALARM_KINDS
from layers.tracking import alarms, checks, phones, reading
from layers.tracking.jt808.messages import CHINA
from layers.tracking.store import Fix

GEOJSON = "application/geo+json"
ALARM_PATTERN = "^(" + "|".join(ALARM_KINDS) + ")$"
KIND_PATTERN = "^(" + "|".join([*(c.value for c in VEHICLE_KINDS), reading.PERSON]) + ")$"
router = APIRouter(
    prefix="/tracking",
    tags=["tracking 车辆与人员定位"],
    dependencies=[Depends(current_viewer), Depends(statement_kind("read"))],
)


class Report(BaseModel):
    """One position: where, when, and for a forwarding platform, whose."""

    model_config = ConfigDict(extra="forbid")

    lon: float = Field(ge=-180, le=180, description="longitude, CGCS2000/WGS84 degrees")
    lat: float = Field(ge=-90, le=90, description="latitude")
    time: datetime = Field(description="when it was fixed, with its offset (ISO 8601)")
    speed: float = Field(default=0.0, ge=0, le=400, description="km/h")
    heading: int = Field(default=0, ge=0, le=359, description="degrees from north")
    altitude: int = Field(default=0, ge=-500, le=9000, description="metres")
    terminal: str | None = Field(
        default=None,
        pattern="^[1-9][0-9]{0,19}$",
        description="a vehicle's terminal number (forwarding platforms only)",
    )


class Batch(BaseModel):
    """Positions reported together."""

    model_config = ConfigDict(extra="forbid")

    positions: list[Report] = Field(min_length=1)


def _settings(request: Request) -> TrackingSettings:
    settings: TrackingSettings = request.app.state.tracking
    return settings


TrackingDep = Annotated[TrackingSettings, Depends(_settings)]


@router.post("/positions", summary="Report positions / 上报位置", status_code=200)
def post_positions(
    conn: ConnectionDep, viewer: ViewerDep, settings: TrackingDep, batch: Batch
) -> dict[str, int]:
    """An inspector's phone reports its own positions; an admin or dispatcher account (a
    forwarding platform) reports vehicles' positions by terminal number. All or nothing."""
    if len(batch.positions) > settings.position_batch_max:
        raise PayloadTooLarge(
            f"At most {settings.position_batch_max} positions per request.",
            f"每次最多上报 {settings.position_batch_max} 个位置。",
            code="batch_too_large",
        )
    limits = checks.Limits(settings.position_retention_days, settings.position_future_s)
    now = datetime.now(UTC)
    for number, item in enumerate(batch.positions, start=1):
        if item.time.tzinfo is None:
            raise BadQuery(
                f"Position {number}: the time needs its offset (e.g. +08:00).",
                f"第 {number} 个位置：时间须带时区（如 +08:00）。",
                code="time_without_offset",
            )
        wrong = checks.problem(Fix(0, item.time, item.lon, item.lat), now, limits)
        if wrong is not None:
            wrong.message_en = f"Position {number}: {wrong.message_en}"
            wrong.message_zh = f"第 {number} 个位置：{wrong.message_zh}"
            raise wrong
    fixes = phones.fixes(conn, viewer, [_as_tuple(r) for r in batch.positions])
    stored = phones.store(conn, fixes)
    opened = alarms.evaluate_fixes(conn, fixes, settings.alarm_rules())
    conn.commit()
    metrics.positions("http", "received", len(fixes))
    metrics.positions("http", "acknowledged", stored)
    for kind, n in opened.items():
        metrics.alarms(kind, n)
    return {"stored": stored}


def _as_tuple(r: Report) -> phones.Posted:
    return phones.Posted(r.terminal, r.time, r.lon, r.lat, r.speed, r.heading, r.altitude)


@router.get(
    "/vehicles",
    summary="Latest positions / 车辆与人员最新位置",
    response_class=Response,
    responses=answers(GEOJSON),
)
def vehicles(
    conn: ConnectionDep,
    viewer: CountyViewerDep,
    settings: TrackingDep,
    plate: Annotated[str | None, Query(min_length=1, max_length=20)] = None,
    kind: Annotated[str | None, Query(pattern=KIND_PATTERN)] = None,
) -> Response:
    """Every vehicle's and inspector's latest position: moving, stopped or offline; terminals
    not in the vehicle registry are included with `registered` false."""
    states = reading.States(settings.offline_minutes)
    body = reading.latest(conn, viewer, states, plate, kind)
    return Response(body, media_type=GEOJSON)


@router.get(
    "/vehicles/{tracker}/track",
    summary="A vehicle's or person's track / 轨迹",
    response_class=Response,
    responses=answers(GEOJSON),
)
def vehicle_track(
    conn: ConnectionDep,
    viewer: CountyViewerDep,
    settings: TrackingDep,
    tracker: int,
    from_: Annotated[datetime | None, Query(alias="from", description="start (ISO 8601)")] = None,
    to: Annotated[datetime | None, Query(description="end (ISO 8601)")] = None,
    f: Annotated[
        Literal["line", "points"], Query(description="one line or one point each")
    ] = "line",
) -> Response:
    """Every stored position between `from` and `to` (default: the last 24 hours)."""
    end = _aware(to) if to is not None else datetime.now(UTC)
    start = _aware(from_) if from_ is not None else end - timedelta(days=1)
    if start > end:
        raise BadQuery("`from` is after `to`.", "起始时间晚于结束时间。", code="invalid_period")
    if end - start > timedelta(days=settings.track_max_days):
        raise BadQuery(
            f"A track covers at most {settings.track_max_days} days.",
            f"一次查询的轨迹不能超过 {settings.track_max_days} 天。",
            code="period_too_long",
        )
    if tracker < 1 or tracker > 2**63 - 1:
        raise reading.not_found(tracker)
    body = reading.track(conn, viewer, tracker, start, end, points=f == "points")
    return Response(body, media_type=GEOJSON)


def _aware(moment: datetime) -> datetime:
    """A time without offset is China time, as the bureau's people write it."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=CHINA)


@router.get(
    "/alarms",
    summary="Vehicle alarms / 车辆报警",
    response_class=Response,
    responses=answers(GEOJSON),
)
def vehicle_alarms(
    conn: ConnectionDep,
    viewer: CountyViewerDep,
    settings: TrackingDep,
    vehicle: Annotated[
        int | None, Query(ge=1, le=2**63 - 1, description="a tracker's id (/tracking/vehicles)")
    ] = None,
    kind: Annotated[str | None, Query(pattern=ALARM_PATTERN)] = None,
    from_: Annotated[datetime | None, Query(alias="from", description="start (ISO 8601)")] = None,
    to: Annotated[datetime | None, Query(description="end (ISO 8601)")] = None,
) -> Response:
    """Alarms overlapping `from`–`to`, newest first: where each started, its kind, vehicle,
    plate, time and duration (open alarms: so far), and the case a dwell raised."""
    start = _aware(from_) if from_ is not None else None
    end = _aware(to) if to is not None else None
    if start is not None and end is not None and start > end:
        raise BadQuery("`from` is after `to`.", "起始时间晚于结束时间。", code="invalid_period")
    query = reading.AlarmQuery(vehicle, kind, start, end, settings.alarms_max)
    return Response(reading.alarms(conn, viewer, query), media_type=GEOJSON)
