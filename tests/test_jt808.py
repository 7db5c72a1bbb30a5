"""The JT/T 808 gateway on 127.0.0.1 against the real PostGIS, driven by frames built here."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Engine, text

from layers.store import db
from layers.tracking.jt808 import framing, messages
from layers.tracking.jt808.framing import FrameError, Splitter
from layers.tracking.jt808.messages import Position, Registration
from tests.conftest import PgServer
from tests.gateways import Running, serve_gateway
from tests.support import CITYGRID, citygrid, free_port

SEAT = (121.657, 31.808)  # the demo county's seat, CGCS2000
REG = Registration(32, 681, "CG001", "M1", "T000001", 1, "苏F12345")


# ---- frames: pure functions ------------------------------------------------------------------


def test_escaping_round_trips_bodies_holding_flags_and_escapes() -> None:
    for raw in (
        b"\x7e",
        b"\x7d",
        b"\x7d\x02",
        b"\x7d\x01",
        b"\x30\x7e\x08\x7d\x55",
        b"\x7e\x7e\x7d",
    ):
        escaped = framing.escape(raw)
        assert b"\x7e" not in escaped
        assert framing.unescape(escaped) == raw
    assert framing.escape(b"\x30\x7e\x08\x7d\x55") == b"\x30\x7d\x02\x08\x7d\x01\x55"


def test_a_body_with_0x7e_and_0x7d_survives_framing_and_the_check_code() -> None:
    packet = messages.build(messages.HEARTBEAT, "13800138000", 0x7E7D, b"\x7e\x7d\x7e")
    wire = framing.frame(packet)
    assert wire[0] == wire[-1] == 0x7E and b"\x7e" not in wire[1:-1]
    assert framing.unframe(wire[1:-1]) == packet


def test_a_wrong_check_code_and_a_bad_escape_are_refused() -> None:
    wire = bytearray(framing.frame(messages.build(messages.HEARTBEAT, "1", 1, b"")))
    wire[-2] ^= 0x01
    with pytest.raises(FrameError, match="check code"):
        framing.unframe(bytes(wire[1:-1]))
    with pytest.raises(FrameError, match="escape"):
        framing.unescape(b"\x01\x7d\x03")


def test_split_and_glued_frames_come_out_whole() -> None:
    frames = [
        framing.frame(messages.build(messages.HEARTBEAT, "13800138000", n, b"\x7e" * n))
        for n in range(1, 6)
    ]
    stream = b"garbage" + b"".join(frames)
    for step in (1, 2, 3, 7, len(stream)):
        splitter = Splitter(max_frame=200)
        contents = []
        for at in range(0, len(stream), step):
            contents += splitter.feed(stream[at : at + step])
        assert [framing.unframe(c) for c in contents] == [framing.unframe(f[1:-1]) for f in frames]


def test_a_frame_longer_than_the_limit_is_refused() -> None:
    splitter = Splitter(max_frame=50)
    with pytest.raises(FrameError, match="limit"):
        splitter.feed(b"\x7e" + b"\x01" * 60)


def test_2013_and_2019_headers() -> None:
    old = messages.parse(messages.build(0x0200, "13800138000", 7, b"ab"), 1023)
    assert (old.header.phone, old.header.serial, old.header.version) == ("13800138000", 7, None)
    packet = messages.build(0x0200, "12345678901234567890", 8, b"ab", version=1)
    assert struct.unpack(">H", packet[2:4])[0] & messages.VERSION_BIT
    new = messages.parse(packet, 1023)
    assert (new.header.phone, new.header.version, new.body) == ("12345678901234567890", 1, b"ab")
    with pytest.raises(FrameError, match="limit"):
        messages.parse(messages.build(0x0200, "1", 1, b"x" * 100), 50)
    with pytest.raises(FrameError, match="length"):
        messages.parse(messages.build(0x0200, "1", 1, b"abc")[:-1], 1023)


def test_a_position_in_its_units_and_china_time() -> None:
    when = datetime(2026, 12, 2, 1, 2, 3, tzinfo=UTC)
    pos = Position(0x1, 0x3, 31.808123, 121.657456, 12, 45.6, 270, when)
    body = messages.build_position(pos)
    lat, lon, alt, speed, heading = struct.unpack(">IIHHH", body[8:22])
    assert (lat, lon, alt, speed, heading) == (31_808_123, 121_657_456, 12, 456, 270)
    assert body[22:28] == bytes.fromhex("261202090203")  # 09:02:03 in China
    assert messages.parse_position(body) == pos
    south_west = Position(0, 0x3 | messages.SOUTH | messages.WEST, -33.5, -70.25, 0, 0, 0, when)
    assert messages.parse_position(messages.build_position(south_west)) == south_west
    assert struct.unpack(">I", messages.build_position(south_west)[4:8])[0] == 0xF
    assert messages.parse_batch(messages.build_batch([pos, south_west])) == [pos, south_west]


def test_registration_bodies_of_both_versions() -> None:
    for version in (None, 1):
        body = messages.build_registration(REG, version)
        assert messages.parse_registration(body, version) == REG
        assert messages.parse_auth_code(messages.build_auth("abc123", version), version) == "abc123"


# ---- the gateway ---------------------------------------------------------------------------


@pytest.fixture
def owner(pg_server: PgServer, scratch_url: str) -> Iterator[Engine]:
    """The scratch database as its owner (to read what was stored)."""
    eng = db.make_engine(pg_server.as_owner(scratch_url))
    yield eng
    eng.dispose()


@pytest.fixture
def served(scratch_url: str) -> Iterator[Running]:
    """The gateway on a free port of 127.0.0.1, idle timeout 1 s."""
    yield from serve_gateway(scratch_url, idle_timeout_s=1.0, max_body=512)


class Terminal:
    """A terminal speaking JT/T 808 over a blocking socket."""

    def __init__(self, port: int, phone: str, version: int | None = None) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.phone, self.version, self.serial = phone, version, 0
        self.splitter = Splitter(4096)
        self.pending: list[messages.Message] = []

    def send(self, message_id: int, body: bytes, raw: bytes | None = None) -> int:
        self.serial += 1
        packet = messages.build(message_id, self.phone, self.serial, body, self.version)
        self.sock.sendall(raw if raw is not None else framing.frame(packet))
        return self.serial

    def receive(self) -> messages.Message:
        while not self.pending:
            data = self.sock.recv(4096)
            if not data:
                raise ConnectionError("closed by the gateway")
            self.pending += [
                messages.parse(framing.unframe(c), 1023) for c in self.splitter.feed(data)
            ]
        return self.pending.pop(0)

    def reply(self, serial: int, message_id: int) -> int:
        answer = self.receive()
        assert answer.header.message_id == messages.GENERAL_REPLY
        got_serial, got_id, result = struct.unpack(">HHB", answer.body)
        assert (got_serial, got_id) == (serial, message_id)
        return result

    def sign_in(self) -> None:
        self.send(messages.REGISTER, messages.build_registration(REG, self.version))
        answer = self.receive()
        assert answer.header.message_id == messages.REGISTER_REPLY
        assert answer.body[2] == messages.OK
        code = answer.body[3:].decode()
        serial = self.send(messages.AUTHENTICATE, messages.build_auth(code, self.version))
        assert self.reply(serial, messages.AUTHENTICATE) == messages.OK

    def close(self) -> None:
        self.sock.close()


def _position(n: int, when: datetime | None = None) -> Position:
    when = when or datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=100 - n)
    return Position(
        0, messages.ACC_ON | messages.LOCATED, SEAT[1] + n * 1e-5, SEAT[0], 5, 30.0, 90, when
    )


def _counted(stage: str) -> float:
    labels = {"source": "jt808", "stage": stage}
    return REGISTRY.get_sample_value("citygrid_positions_total", labels) or 0.0


def _stored(owner: Engine, phone: str) -> list[tuple[float, float, datetime]]:
    with owner.connect() as conn:
        rows = conn.execute(
            text("""SELECT ST_X(p.geom), ST_Y(p.geom), p.time FROM positions AS p
                    JOIN latest_positions AS l ON l.id = p.tracker_id
                    JOIN terminals AS t ON t.id = l.terminal_id
                    WHERE t.phone = :phone ORDER BY p.time"""),
            {"phone": phone},
        ).all()
    return [(round(x, 6), round(y, 6), t) for x, y, t in rows]


@pytest.mark.parametrize("version", [None, 1], ids=["2013", "2019"])
def test_register_authenticate_report_and_find_it_stored(
    served: Running, owner: Engine, version: int | None
) -> None:
    phone = "13800138000" if version is None else "19912345678901"
    before = _counted("acknowledged")
    term = Terminal(served.port, phone, version)
    try:
        term.sign_in()
        serial = term.send(messages.HEARTBEAT, b"")
        assert term.reply(serial, messages.HEARTBEAT) == messages.OK
        first = _position(1)  # made once: sent and then looked for
        serial = term.send(messages.POSITION, messages.build_position(first))
        assert term.reply(serial, messages.POSITION) == messages.OK
        batch = [_position(2), _position(3)]
        batch.append(batch[-1])  # a repeated position is kept
        serial = term.send(messages.BATCH, messages.build_batch(batch))
        assert term.reply(serial, messages.BATCH) == messages.OK
    finally:
        term.close()
    stored = _stored(owner, phone)
    assert _counted("acknowledged") == before + 4  # the metric /metrics exposes
    assert stored == [(p.lon, round(p.lat, 6), p.time) for p in [first, *batch]]
    with owner.connect() as conn:
        row = conn.execute(
            text("""SELECT t.vehicle_id, t.protocol, l.adcode, l.time FROM terminals AS t
                    JOIN latest_positions AS l ON l.terminal_id = t.id WHERE t.phone = :p"""),
            {"p": phone},
        ).one()
    # not in the vehicle registry: accepted, no vehicle; the county is the position's
    assert row[:3] == (None, "2013" if version is None else "2019", "320681")
    assert row[3] == batch[-1].time


def test_a_wrong_authentication_code_and_positions_before_it_are_refused(
    served: Running, owner: Engine
) -> None:
    term = Terminal(served.port, "13800000001")
    try:
        term.send(messages.REGISTER, messages.build_registration(REG, None))
        assert term.receive().header.message_id == messages.REGISTER_REPLY
        serial = term.send(messages.POSITION, messages.build_position(_position(1)))
        assert term.reply(serial, messages.POSITION) == messages.FAILED
        serial = term.send(messages.AUTHENTICATE, messages.build_auth("not-the-code", None))
        assert term.reply(serial, messages.AUTHENTICATE) == messages.FAILED
        serial = term.send(messages.POSITION, messages.build_position(_position(2)))
        assert term.reply(serial, messages.POSITION) == messages.FAILED
    finally:
        term.close()
    assert _stored(owner, "13800000001") == []


def test_bad_check_codes_and_malformed_bodies_are_answered_or_skipped(
    served: Running, owner: Engine
) -> None:
    term = Terminal(served.port, "13800000002")
    try:
        term.sign_in()
        packet = messages.build(
            messages.POSITION, term.phone, 99, messages.build_position(_position(1))
        )
        wire = bytearray(framing.frame(packet))
        wire[-2] ^= 0xFF  # the check code
        term.send(0, b"", raw=bytes(wire))
        serial = term.send(messages.POSITION, b"\x00" * 10)  # too short for a position
        assert term.reply(serial, messages.POSITION) == messages.MALFORMED
        future = _position(1, datetime.now(UTC) + timedelta(hours=2))
        serial = term.send(messages.POSITION, messages.build_position(future))
        assert term.reply(serial, messages.POSITION) == messages.FAILED
        serial = term.send(messages.POSITION, messages.build_position(_position(2)))
        assert term.reply(serial, messages.POSITION) == messages.OK  # the bad frame was skipped
    finally:
        term.close()
    assert len(_stored(owner, "13800000002")) == 1
    assert served.gateway.counts.bad_frames >= 2


def test_an_oversized_body_drops_its_connection_only(served: Running) -> None:
    bad = Terminal(served.port, "13800000003")
    good = Terminal(served.port, "13800000004")
    try:
        good.sign_in()
        bad.send(messages.BATCH, b"\x00" * 900)  # over the 512-byte limit
        with pytest.raises((ConnectionError, OSError)):
            bad.receive()
        serial = good.send(messages.HEARTBEAT, b"")
        assert good.reply(serial, messages.HEARTBEAT) == messages.OK
    finally:
        bad.close()
        good.close()


def test_a_silent_connection_is_dropped_while_another_terminal_keeps_working(
    served: Running, owner: Engine
) -> None:
    silent = Terminal(served.port, "13800000005")
    busy = Terminal(served.port, "13800000006")
    try:
        silent.sock.sendall(b"\x7e\x00\x02")  # half a frame, then nothing
        busy.sign_in()
        started = time.monotonic()
        for n in range(8):  # 2 s of reports across the silent one's 1 s timeout
            serial = busy.send(messages.POSITION, messages.build_position(_position(n)))
            assert busy.reply(serial, messages.POSITION) == messages.OK
            time.sleep(0.25)
        assert time.monotonic() - started > 1.5
        silent.sock.settimeout(5)
        assert silent.sock.recv(10) == b""  # closed by the gateway
    finally:
        silent.close()
        busy.close()
    assert len(_stored(owner, "13800000006")) == 8
    assert served.gateway.counts.dropped >= 1


def test_a_disconnect_in_the_middle_of_a_batch_loses_nothing_acknowledged(
    served: Running, owner: Engine
) -> None:
    term = Terminal(served.port, "13800000007")
    acknowledged: list[Position] = []
    try:
        term.sign_in()
        for n in range(5):
            pos = _position(n)
            serial = term.send(messages.POSITION, messages.build_position(pos))
            assert term.reply(serial, messages.POSITION) == messages.OK
            acknowledged.append(pos)
        batch = [_position(n) for n in range(10, 40)]
        wire = framing.frame(
            messages.build(messages.BATCH, term.phone, 77, messages.build_batch(batch))
        )
        term.sock.sendall(wire[: len(wire) // 2])  # the connection dies halfway through
    finally:
        term.close()
    time.sleep(0.3)
    stored = _stored(owner, "13800000007")
    assert all((p.lon, round(p.lat, 6), p.time) in stored for p in acknowledged)
    assert len(stored) == len(acknowledged)  # the half batch was never acknowledged nor stored
    assert served.gateway.counts.acknowledged == len(acknowledged)


def test_many_terminals_at_once_are_each_acknowledged_after_their_rows_commit(
    served: Running, owner: Engine
) -> None:
    async def one(n: int) -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        phone = f"1390000{n:04d}"
        splitter = Splitter(4096)

        async def ask(message_id: int, body: bytes, serial: int) -> messages.Message:
            writer.write(framing.frame(messages.build(message_id, phone, serial, body)))
            while True:
                got = splitter.feed(await reader.read(4096))
                if got:
                    return messages.parse(framing.unframe(got[0]), 1023)

        answer = await ask(messages.REGISTER, messages.build_registration(REG, None), 1)
        await ask(messages.AUTHENTICATE, answer.body[3:], 2)
        oks = 0
        for k in range(5):
            reply = await ask(messages.POSITION, messages.build_position(_position(k)), 3 + k)
            oks += reply.body[4] == messages.OK
        writer.close()
        return oks

    async def all_of_them() -> list[int]:
        return await asyncio.gather(*(one(n) for n in range(40)))

    # in a thread of its own: the session's browser keeps an event loop running in this one
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(asyncio.run, all_of_them()).result(120) == [5] * 40
    with owner.connect() as conn:
        count = conn.execute(
            text("""SELECT count(*) FROM positions AS p JOIN latest_positions AS l
                    ON l.id = p.tracker_id JOIN terminals AS t ON t.id = l.terminal_id
                    WHERE t.phone LIKE '1390000%'""")
        ).scalar_one()
    assert count == 200


def test_the_gateway_command_serves_until_stopped(scratch_url: str, owner: Engine) -> None:
    port = free_port()
    env = {**os.environ, "CITYGRID_DATABASE_URL": scratch_url, "CITYGRID_JT808_PORT": str(port)}
    proc = subprocess.Popen([CITYGRID, "tracking", "gateway"], env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                term = Terminal(port, "13800000009")
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "did not listen"
                time.sleep(0.2)
        try:
            term.sign_in()
            serial = term.send(messages.POSITION, messages.build_position(_position(1)))
            assert term.reply(serial, messages.POSITION) == messages.OK
        finally:
            term.close()
    finally:
        proc.terminate()
        proc.wait(20)
    assert proc.returncode == 0  # SIGTERM closes it in order
    assert len(_stored(owner, "13800000009")) == 1
    with owner.connect() as conn:  # today's and the next days' partitions were made at start
        days = conn.execute(
            text("SELECT count(*) FROM pg_inherits WHERE inhparent = 'positions'::regclass")
        ).scalar_one()
    assert days >= 3


def test_the_partitions_command_makes_days_ahead(scratch_url: str, owner: Engine) -> None:
    done = citygrid(
        "tracking", "partitions", "--ahead", "5", env={"CITYGRID_DATABASE_URL": scratch_url}
    )
    assert done.returncode == 0, done.stderr
    assert "6 made" in done.stderr  # `say` reports on stderr
    again = citygrid("tracking", "partitions", env={"CITYGRID_DATABASE_URL": scratch_url})
    assert "0 made, 0 dropped" in again.stderr
