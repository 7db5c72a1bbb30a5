"""The live feed of the command map as server-sent events: a snapshot of the latest positions and
recent alarms the viewer may read, then only what changes (see `layers/tracking/live.py`)."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import Engine

from api.auth import ViewerDep, current_viewer, optional_viewer
from api.deps import CountyParam, EngineDep, statement_kind
from api.settings import TrackingSettings
from layers.engine.access import Viewer
from layers.errors import CitygridError, Forbidden
from layers.places import counties
from layers.registry import Role
from layers.tracking import live, reading
from layers.tracking.jt808.messages import CHINA

EVENT_STREAM = "text/event-stream"
RETRY_MS = 3000  # how soon a browser's EventSource reconnects after the stream ends
READY_WAIT_S = 5.0
T = TypeVar("T")
router = APIRouter(
    prefix="/tracking",
    tags=["tracking 车辆与人员定位"],
    dependencies=[Depends(current_viewer), Depends(statement_kind("read"))],
)


def live_viewer(engine: EngineDep, viewer: ViewerDep, county: CountyParam = None) -> Viewer:
    """The viewer, limited to `county=`, with a connection held only for that check (the
    stream itself borrows one per read, never for its lifetime)."""
    if viewer.role is Role.HANDLER:
        raise Forbidden(
            "Handling units do not read vehicle positions.", "处置单位无权查看车辆位置。"
        )
    with engine.connect() as conn:
        return counties.narrow(conn, viewer, counties.parse_codes(county))


def _feed(request: Request) -> live.TrackingFeed:
    feed: live.TrackingFeed = request.app.state.tracking_feed
    return feed


def _event(name: str, data: bytes) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + data + b"\n\n"


async def _read(engine: Engine, work: Callable[..., T], *args: Any) -> T:
    """Run `work(conn, *args)` on a pooled connection, off the event loop."""

    def run() -> T:
        with engine.connect() as conn:
            return work(conn, *args)

    return await asyncio.to_thread(run)


async def _signed_in(request: Request) -> bool:
    """Whether the stream's credentials still hold (a session ended or expired: no)."""
    try:
        return await optional_viewer(request) is not None
    except CitygridError:
        return False


async def _snapshot(
    engine: Engine, viewer: Viewer, states: reading.States, settings: TrackingSettings
) -> tuple[bytes, set[int]]:
    """The events a stream starts with (and sends again after a resync), and the trackers shown."""
    since = datetime.now(UTC) - timedelta(hours=settings.live_alarm_hours)
    first = await _read(engine, live.snapshot, viewer, states, since, settings.alarms_max)
    hello = {"offline_minutes": settings.offline_minutes, "now": _now()}
    body = b'{"positions":' + first.positions + b',"alarms":' + first.alarms + b"}"
    events = f"retry: {RETRY_MS}\n".encode() + _event("hello", _json(hello))
    return events + _event("snapshot", body), first.trackers


async def _update(
    engine: Engine,
    viewer: Viewer,
    states: reading.States,
    changes: live.Changes,
    shown: set[int],
) -> tuple[bytes, set[int]]:
    """The events of what changed that the viewer may read, and the trackers shown now."""
    found = await _read(engine, live.update, viewer, states, changes, shown)
    events = b""
    if found.positions is not None:
        events += _event("positions", found.positions)
    if found.gone:
        events += _event("gone", _json({"ids": sorted(found.gone)}))
    if found.alarms is not None:
        events += _event("alarms", found.alarms)
    return events, found.shown


async def _stream(
    request: Request,
    engine: Engine,
    viewer: Viewer,
    settings: TrackingSettings,
    subscription: live.Subscription,
) -> AsyncIterator[bytes]:
    feed = _feed(request)
    states = reading.States(settings.offline_minutes, settings.moving_kmh)
    try:
        await feed.until_ready(READY_WAIT_S)
        resync = True
        checked = time.monotonic()
        while not subscription.closed:
            if resync:
                events, shown = await _snapshot(engine, viewer, states, settings)
                yield events
            changed = await subscription.wait(settings.live_heartbeat_s)
            resync = False
            if subscription.closed:
                return
            # the session is checked every heartbeat, also while the fleet keeps moving
            if not changed or time.monotonic() - checked >= settings.live_heartbeat_s:
                checked = time.monotonic()
                if await request.is_disconnected() or not await _signed_in(request):
                    return
            if not changed:
                yield b": keep-alive\n\n"
                continue
            await asyncio.sleep(settings.live_interval_s)  # gather what else changes meanwhile
            if subscription.closed or await request.is_disconnected():
                return
            changes = subscription.take()
            resync = changes.resync
            if changes and not resync:
                events, shown = await _update(engine, viewer, states, changes, shown)
                if events:
                    yield events
    finally:
        feed.unsubscribe(subscription)


def _now() -> str:
    return datetime.now(CHINA).isoformat(timespec="seconds")


def _json(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


@router.get(
    "/live",
    summary="Live positions and alarms / 实时位置与报警推送",
    response_class=StreamingResponse,
    responses={200: {"content": {EVENT_STREAM: {}}, "description": "server-sent events"}},
)
async def live_feed(
    request: Request,
    engine: EngineDep,
    viewer: Annotated[Viewer, Depends(live_viewer)],
) -> StreamingResponse:
    """Server-sent events: `hello` (the offline limit, the server's time), `snapshot` (the
    latest positions of the trackers the viewer may read and the alarms of the last
    `CITYGRID_LIVE_ALARM_HOURS`), then `positions` (changed trackers), `alarms` (opened or ended)
    and `gone` (trackers that left the viewer's scope) as they are committed; a comment every
    `CITYGRID_LIVE_HEARTBEAT_S` while nothing changes."""
    settings: TrackingSettings = request.app.state.tracking
    subscription = _feed(request).subscribe(viewer.username)
    return StreamingResponse(
        _stream(request, engine, viewer, settings, subscription),
        media_type=EVENT_STREAM,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def end_streams_on_exit(feed: live.TrackingFeed) -> None:
    """uvicorn finishes every open response before it stops, and a live stream never finishes by
    itself: a stop signal ends the streams first, then does what it did before."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(sig)

        def handler(signum: int, frame: FrameType | None, previous: Any = previous) -> None:
            feed.close_streams()
            if callable(previous):
                previous(signum, frame)

        try:
            signal.signal(sig, handler)
        except ValueError:  # not the main thread (a test client): no server signals to hear
            return
