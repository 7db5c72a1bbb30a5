"""The JT/T 808 gateway: an asyncio TCP server, one session per terminal connection.

A position report is acknowledged (0x8001) only after the transaction storing it commits; the
positions of every connection are written together (see `BatchWriter`). A connection that sends
something unreadable is logged, answered where it can be and dropped where it cannot; one that
stays silent past the idle timeout is closed. Neither touches the other connections."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine

from layers.tracking import alarms, checks, store
from layers.tracking.jt808 import framing, messages
from layers.tracking.jt808.framing import FrameError
from layers.tracking.jt808.messages import Header, Message, Position
from layers.tracking.writer import BatchWriter

log = logging.getLogger("citygrid.jt808")


@dataclass(frozen=True)
class GatewayConfig:
    """Where the gateway listens and what it tolerates."""

    host: str = "127.0.0.1"
    port: int = 7808
    idle_timeout_s: float = 300.0
    write_timeout_s: float = 30.0
    max_body: int = 1023
    max_connections: int = 10_000
    max_bad_frames: int = 10  # a connection sending more unreadable frames is dropped
    linger_s: float = 0.005
    retention_days: int = 180
    future_s: float = 300.0
    alarm_rules: alarms.Rules = field(default_factory=alarms.Rules)
    offline_check_s: float = 60.0  # how often silent terminals are looked for


@dataclass
class Counts:
    """What the gateway has seen since it started."""

    connections: int = 0
    received: int = 0  # positions read from terminals
    acknowledged: int = 0  # positions stored and acknowledged
    refused: int = 0  # positions answered with a failure
    bad_frames: int = 0
    dropped: int = 0  # connections closed for misbehaving or silence


def _fix(tracker: int, pos: Position) -> store.Fix:
    return store.Fix(
        tracker,
        pos.time,
        pos.lon,
        pos.lat,
        pos.speed,
        pos.heading,
        pos.altitude,
        pos.alarm,
        pos.status,
    )


class Gateway:
    """The TCP server and the writer its sessions share."""

    def __init__(
        self,
        engine: Engine,
        config: GatewayConfig,
        on_positions: Callable[[str, int], None] | None = None,
        on_alarms: Callable[[str, int], None] | None = None,
    ) -> None:
        self.engine = engine
        self.config = config
        self.counts = Counts()
        self.on_positions = on_positions  # (stage, count): "received", "acknowledged"
        self.on_alarms = on_alarms  # (kind, count) of alarms opened
        self.writer: BatchWriter | None = None
        self.server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[None]] = set()
        self._watch: asyncio.Task[None] | None = None
        self._unreported = 0  # positions received and not yet in the metric

    async def start(self) -> None:
        """Make today's partitions, start the writer, listen."""
        await asyncio.to_thread(self._maintain)
        self.writer = BatchWriter(
            self.engine,
            self.config.linger_s,
            on_stored=self._stored,
            rules=self.config.alarm_rules,
            on_alarms=self.on_alarms,
        )
        self.writer.start()
        self._watch = asyncio.create_task(self._watch_silence())
        self.server = await asyncio.start_server(
            self._accept, self.config.host, self.config.port, limit=self.config.max_body * 4
        )

    @property
    def port(self) -> int:
        """The port it listens on (the one chosen when configured as 0)."""
        assert self.server is not None
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def serve(self) -> None:
        """Serve until cancelled, making day partitions ahead and dropping old ones hourly."""
        await self.start()
        try:
            while True:
                await asyncio.sleep(3600)
                await asyncio.to_thread(self._maintain)
        finally:
            await self.close()

    async def close(self) -> None:
        """Stop listening, end the sessions, write what is pending."""
        if self.server is not None:
            self.server.close()
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)
        for task in list(self._sessions):
            task.cancel()
        await asyncio.gather(*self._sessions, return_exceptions=True)
        if self.writer is not None:
            await self.writer.stop()
        self._report_received()
        if self.server is not None:
            await self.server.wait_closed()

    async def _watch_silence(self) -> None:
        """Open `offline` alarms for silent terminals every `offline_check_s`."""
        while True:
            await asyncio.sleep(self.config.offline_check_s)
            try:
                await asyncio.to_thread(self.check_offline)
            except Exception:  # the database may be away for a while; the next round retries
                log.exception("offline alarms not evaluated")

    def check_offline(self, now: datetime | None = None) -> int:
        """Open the `offline` alarms due now; how many were opened."""
        with self.engine.begin() as conn:
            opened = alarms.open_offline(conn, self.config.alarm_rules, now or datetime.now(UTC))
        if opened and self.on_alarms is not None:
            self.on_alarms(alarms.OFFLINE, opened)
        return opened

    def _maintain(self) -> None:
        with self.engine.begin() as conn:
            made, dropped = store.maintain_partitions(conn, self.config.retention_days)
        if made or dropped:
            log.info("position partitions: %d made, %d dropped", made, dropped)

    def _received(self, n: int) -> None:
        """Count positions received; the metric learns them with the next write or refusal
        (a metric's update costs more than a report's parsing)."""
        self.counts.received += n
        self._unreported += n

    def _refused(self, n: int) -> None:
        self.counts.refused += n
        self._report_received()

    def _report_received(self) -> None:
        if self._unreported and self.on_positions is not None:
            self.on_positions("received", self._unreported)
        self._unreported = 0

    def _stored(self, _rows: int, acknowledged: int) -> None:
        """A write committed: its reports are acknowledged next, counted once for all."""
        self.counts.acknowledged += acknowledged
        self._report_received()
        if self.on_positions is not None:
            self.on_positions("acknowledged", acknowledged)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._sessions) >= self.config.max_connections:
            log.warning("connection refused: %d connections open", len(self._sessions))
            writer.close()
            return
        self._sessions.add(task)
        self.counts.connections += 1
        try:
            await Session(self, reader, writer).run()
        except asyncio.CancelledError:
            pass
        except Exception:  # one session's failure never reaches the server
            log.exception("session failed")
        finally:
            self._sessions.discard(task)
            writer.close()


class Session:
    """One terminal's connection."""

    def __init__(
        self, gateway: Gateway, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.gateway = gateway
        self.config = gateway.config
        self.reader = reader
        self.writer = writer
        self.splitter = framing.Splitter(max_frame=2 * (self.config.max_body + 30) + 2)
        self.tracker: int | None = None
        self.serial = 0
        self.bad_frames = 0
        self.peer = writer.get_extra_info("peername")

    async def run(self) -> None:
        """Read frames until the terminal leaves, misbehaves or falls silent."""
        while True:
            try:  # asyncio.timeout: no task per read, unlike wait_for
                async with asyncio.timeout(self.config.idle_timeout_s):
                    data = await self.reader.read(65536)
            except TimeoutError:
                log.info("silent connection closed: %s", self.peer)
                self.gateway.counts.dropped += 1
                return
            if not data:
                return
            try:
                contents = self.splitter.feed(data)
            except FrameError as exc:
                log.warning("connection dropped (%s): %s", exc, self.peer)
                self.gateway.counts.dropped += 1
                return
            for content in contents:
                if not await self._frame(content):
                    return

    async def _frame(self, content: bytes) -> bool:
        """Handle one frame; False when the connection must end."""
        try:
            message = messages.parse(framing.unframe(content), self.config.max_body)
        except FrameError as exc:
            self.bad_frames += 1
            self.gateway.counts.bad_frames += 1
            log.warning("unreadable frame (%s) from %s", exc, self.peer)
            if "limit" in str(exc) or self.bad_frames > self.config.max_bad_frames:
                self.gateway.counts.dropped += 1
                return False
            return True
        return await self._handle(message)

    async def _reply(self, header: Header, message_id: int, body: bytes) -> None:
        self.serial = (self.serial + 1) & 0xFFFF
        packet = messages.build(message_id, header.phone, self.serial, body, header.version)
        self.writer.write(framing.frame(packet))
        async with asyncio.timeout(self.config.write_timeout_s):
            await self.writer.drain()

    async def _general(self, header: Header, result: int) -> None:
        await self._reply(
            header,
            messages.GENERAL_REPLY,
            messages.general_reply(header.serial, header.message_id, result),
        )

    async def _handle(self, message: Message) -> bool:
        header, kind = message.header, message.header.message_id
        try:
            if kind == messages.REGISTER:
                reg = messages.parse_registration(message.body, header.version)
                code = await asyncio.to_thread(self._register, header, reg)
                body = messages.register_reply(header.serial, messages.OK, code)
                await self._reply(header, messages.REGISTER_REPLY, body)
            elif kind == messages.AUTHENTICATE:
                code = messages.parse_auth_code(message.body, header.version)
                self.tracker = await asyncio.to_thread(self._authenticate, header.phone, code)
                if self.tracker is None:
                    log.warning("authentication refused: terminal %s", header.phone)
                await self._general(
                    header, messages.FAILED if self.tracker is None else messages.OK
                )
            elif kind == messages.HEARTBEAT:
                await self._general(header, messages.OK)
            elif kind == messages.LOGOUT:
                await self._general(header, messages.OK)
                return False
            elif kind in (messages.POSITION, messages.BATCH):
                await self._positions(message)
            else:
                await self._general(header, messages.UNSUPPORTED)
        except FrameError as exc:
            self.gateway.counts.bad_frames += 1
            log.warning("malformed message 0x%04X (%s) from %s", kind, exc, self.peer)
            await self._general(header, messages.MALFORMED)
        return True

    async def _positions(self, message: Message) -> None:
        header = message.header
        found = (
            [messages.parse_position(message.body)]
            if header.message_id == messages.POSITION
            else messages.parse_batch(message.body)
        )
        self.gateway._received(len(found))
        if self.tracker is None:
            log.warning("positions from an unauthenticated terminal %s refused", header.phone)
            self.gateway._refused(len(found))
            await self._general(header, messages.FAILED)
            return
        # a report without a satellite fix carries no position: answered, not stored
        fixes = [_fix(self.tracker, p) for p in found if p.status & messages.LOCATED]
        limits = checks.Limits(self.config.retention_days, self.config.future_s)
        now = datetime.now(UTC)
        if any(checks.problem(f, now, limits) is not None for f in fixes):
            log.warning("positions refused (bad time or place) from %s", header.phone)
            self.gateway._refused(len(found))
            await self._general(header, messages.FAILED)
            return
        assert self.gateway.writer is not None
        try:
            await self.gateway.writer.store(fixes, len(found))
        except Exception:
            self.gateway._refused(len(found))
            await self._general(header, messages.FAILED)
            return
        await self._general(header, messages.OK)

    def _register(self, header: Header, reg: messages.Registration) -> str:
        with self.gateway.engine.begin() as conn:
            return store.register_terminal(conn, header.phone, reg, header.version)

    def _authenticate(self, phone: str, code: str) -> int | None:
        with self.gateway.engine.begin() as conn:
            return store.authenticate(conn, phone, code)
