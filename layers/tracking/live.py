"""The live feed of the command map: which trackers and alarms changed, told to every open stream
of this process, and what each stream's viewer may read of them.

How changes reach a stream: the triggers of migration 0033 NOTIFY `citygrid_tracking` with the
ids each statement changed (`p:` trackers, `a:` alarms). One listener connection per API process
hears them and hands the ids to its open streams; each stream gathers them for
`CITYGRID_LIVE_INTERVAL_S` and then reads only those rows, with its viewer's scope in the SQL
(`l.id = ANY(:ids)`, primary-key lookups). Why not a poll of `latest_positions` per stream: a
poll reads the changed rows by a time or sequence column, and a row written by a transaction
that started before another but commits after it is skipped once the reader has moved past it;
NOTIFY is delivered at commit, in commit order, so nothing is missed and no column or index is
added to the fleet's hottest table. Cost: 1,000 vehicles reporting every 10 s are ~100 changed
rows a second; each open map reads its share once a second (one query of ~100 indexed rows),
so ten maps cost ten small queries a second, and the writers pay one `pg_notify` per statement.
When the listener reconnects (a notification may have been lost meanwhile), every stream sends
its whole snapshot again.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
from sqlalchemy import Connection
from sqlalchemy.engine import URL

from layers.engine.access import Viewer
from layers.errors import TooManyStreams
from layers.tracking import reading

CHANNEL = "citygrid_tracking"
log = logging.getLogger("citygrid.tracking")


@dataclass
class Changes:
    """What changed since a stream last looked: tracker and alarm ids, or everything (resync)."""

    trackers: set[int] = field(default_factory=set)
    alarms: set[int] = field(default_factory=set)
    resync: bool = False

    def __bool__(self) -> bool:
        return self.resync or bool(self.trackers) or bool(self.alarms)


class Subscription:
    """One open stream's share of the feed: changes pile up here until the stream takes them."""

    def __init__(self, viewer_key: str, loop: asyncio.AbstractEventLoop) -> None:
        self.viewer_key = viewer_key
        self._loop = loop
        self._changes = Changes()
        self._wake = asyncio.Event()
        self.closed = False  # the server is stopping: the stream ends

    def _add(self, tag: str, ids: list[int]) -> None:  # in the stream's event loop
        if tag == "close":
            self.closed = True
        elif tag == "p":
            self._changes.trackers.update(ids)
        elif tag == "a":
            self._changes.alarms.update(ids)
        else:
            self._changes.resync = True
        self._wake.set()

    def notify(self, tag: str, ids: list[int]) -> None:
        """Hand over changed ids from the listener's thread."""
        self._loop.call_soon_threadsafe(self._add, tag, ids)

    async def wait(self, timeout: float) -> bool:
        """Wait until something changed or `timeout` passed; whether something changed."""
        try:
            await asyncio.wait_for(self._wake.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def take(self) -> Changes:
        """The changes gathered so far, forgotten here."""
        taken, self._changes = self._changes, Changes()
        self._wake.clear()
        return taken


class TrackingFeed:
    """Listens for tracking changes (a thread, started with the first stream) and fans them out
    to the open streams, at most `max_streams` in the process and `max_per_viewer` per account."""

    def __init__(
        self,
        url: URL,
        application_name: str = "citygrid",
        max_streams: int = 200,
        max_per_viewer: int = 5,
    ) -> None:
        self._dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._application_name = application_name
        self.max_streams = max_streams
        self.max_per_viewer = max_per_viewer
        self._subscriptions: set[Subscription] = set()
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closing = False

    def subscribe(self, viewer_key: str) -> Subscription:
        """A new stream's subscription (the listener started when it is the first); refused
        beyond the limits."""
        with self._lock:
            per_viewer = Counter(s.viewer_key for s in self._subscriptions)
            if len(self._subscriptions) >= self.max_streams:
                raise TooManyStreams(
                    f"This server already serves {self.max_streams} live maps; try again later.",
                    f"服务器已在推送 {self.max_streams} 个实时地图，请稍后再试。",
                )
            if per_viewer[viewer_key] >= self.max_per_viewer:
                raise TooManyStreams(
                    f"At most {self.max_per_viewer} live maps per account are open at once; "
                    "close one first.",
                    f"每个账号最多同时打开 {self.max_per_viewer} 个实时地图，请先关闭其中一个。",
                )
            subscription = Subscription(viewer_key, asyncio.get_running_loop())
            subscription.closed = self._closing
            self._subscriptions.add(subscription)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="tracking-feed", daemon=True)
                self._thread.start()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Forget a stream that ended."""
        with self._lock:
            self._subscriptions.discard(subscription)

    async def until_ready(self, timeout: float) -> bool:
        """Wait (up to `timeout`) until the listener is connected."""
        return await asyncio.to_thread(self._ready.wait, timeout)

    def close_streams(self) -> None:
        """End every open stream, and those opened from now on (the server is stopping)."""
        self._closing = True
        self._fan_out("close", [])

    def stop(self) -> None:
        """Stop listening."""
        self._stop.set()
        self._ready.clear()

    def _fan_out(self, tag: str, ids: list[int]) -> None:
        with self._lock:
            subscriptions = list(self._subscriptions)
        for subscription in subscriptions:
            subscription.notify(tag, ids)

    def _run(self) -> None:
        connected_before = False
        while not self._stop.is_set():
            try:
                with psycopg.connect(
                    self._dsn,
                    autocommit=True,
                    connect_timeout=5,
                    application_name=self._application_name,
                ) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    if connected_before:  # changes may have been missed while away
                        self._fan_out("resync", [])
                    connected_before = True
                    self._ready.set()
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=1.0):
                            tag, _, ids = note.payload.partition(":")
                            self._fan_out(tag, [int(i) for i in ids.split(",") if i])
            except (psycopg.Error, ValueError):
                log.warning("tracking feed lost its connection; listening again")
                self._ready.clear()
                self._stop.wait(1.0)
        self._ready.clear()


@dataclass(frozen=True)
class Snapshot:
    """What a stream shows first: the trackers' latest positions and the recent alarms."""

    trackers: set[int]
    positions: bytes
    alarms: bytes


def snapshot(
    conn: Connection, viewer: Viewer, states: reading.States, since: datetime, alarms_max: int
) -> Snapshot:
    """Every tracker the viewer may read, and its alarms open or ended after `since`."""
    shown = reading.readable(conn, viewer)
    positions = reading.latest(conn, viewer, states, ids=sorted(shown))
    query = reading.AlarmQuery(start=since, limit=alarms_max)
    return Snapshot(shown, positions, reading.alarms(conn, viewer, query))


@dataclass(frozen=True)
class Update:
    """The changed rows a viewer may read, and the trackers it was shown that it may no longer."""

    positions: bytes | None
    alarms: bytes | None
    gone: set[int]
    shown: set[int]


def update(
    conn: Connection,
    viewer: Viewer,
    states: reading.States,
    changes: Changes,
    shown: set[int],
) -> Update:
    """Read the changed trackers and alarms within the viewer's scope (in SQL)."""
    positions = alarms = None
    still = reading.readable(conn, viewer, sorted(changes.trackers)) if changes.trackers else set()
    if still:
        positions = reading.latest(conn, viewer, states, ids=sorted(still))
    seen = (
        reading.readable_alarms(conn, viewer, sorted(changes.alarms)) if changes.alarms else set()
    )
    if seen:
        alarms = reading.alarms(conn, viewer, reading.AlarmQuery(ids=tuple(sorted(seen))))
    gone = (changes.trackers & shown) - still
    return Update(positions, alarms, gone, (shown | still) - gone)
