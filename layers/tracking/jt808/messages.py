"""JT/T 808 messages: the header (2013 and 2019), and the bodies the gateway reads and writes."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from layers.tracking.jt808.framing import FrameError

CHINA = timezone(timedelta(hours=8))

REGISTER, REGISTER_REPLY = 0x0100, 0x8100
AUTHENTICATE, GENERAL_REPLY = 0x0102, 0x8001
HEARTBEAT, LOGOUT = 0x0002, 0x0003
POSITION, BATCH = 0x0200, 0x0704

# 0x8001 results
OK, FAILED, MALFORMED, UNSUPPORTED = 0, 1, 2, 3

LENGTH_MASK = 0x03FF
SUBPACKAGE_BIT = 1 << 13
VERSION_BIT = 1 << 14

# status bits of a position
ACC_ON, LOCATED, SOUTH, WEST = 1 << 0, 1 << 1, 1 << 2, 1 << 3


@dataclass(frozen=True)
class Header:
    """A message's header: its id, the terminal's phone number and the message serial."""

    message_id: int
    phone: str
    serial: int
    version: int | None = None  # the 2019 protocol version; None for a 2013 header
    encryption: int = 0
    packages: tuple[int, int] | None = None  # (total, index) of a split message


@dataclass(frozen=True)
class Message:
    """A header and its body."""

    header: Header
    body: bytes


@dataclass(frozen=True)
class Position:
    """One 0x0200 position report, decoded."""

    alarm: int
    status: int
    lat: float
    lon: float
    altitude: int  # metres
    speed: float  # km/h
    heading: int  # degrees from north
    time: datetime  # aware, UTC

    @property
    def acc_on(self) -> bool:
        """Whether the engine (ACC) is on."""
        return bool(self.status & ACC_ON)


@dataclass(frozen=True)
class Registration:
    """A 0x0100 register body, decoded."""

    province: int
    city: int
    maker: str
    model: str
    terminal_id: str
    plate_colour: int
    plate: str


def bcd(digits: str, size: int) -> bytes:
    """`digits` as packed BCD of `size` bytes, padded with leading zeros."""
    text = digits.rjust(size * 2, "0")
    if len(text) != size * 2 or not text.isdigit():
        raise ValueError(f"{digits!r} does not fit {size} BCD bytes")
    return bytes.fromhex(text)


def from_bcd(data: bytes) -> str:
    """The digits of packed BCD bytes."""
    text = data.hex()
    if not text.isdigit():
        raise FrameError("bad BCD digits")
    return text


def parse(packet: bytes, max_body: int) -> Message:
    """A header+body (check code removed) read into a Message; FrameError when it does not add up."""
    if len(packet) < 12:
        raise FrameError("header too short")
    message_id, props = struct.unpack_from(">HH", packet)
    length = props & LENGTH_MASK
    if length > max_body:
        raise FrameError("body longer than the limit")
    at = 4
    version = None
    if props & VERSION_BIT:
        if len(packet) < 17:
            raise FrameError("header too short")
        version = packet[4]
        phone, at = from_bcd(packet[5:15]), 15
    else:
        phone, at = from_bcd(packet[4:10]), 10
    (serial,) = struct.unpack_from(">H", packet, at)
    at += 2
    packages = None
    if props & SUBPACKAGE_BIT:
        if len(packet) < at + 4:
            raise FrameError("header too short")
        packages = struct.unpack_from(">HH", packet, at)
        at += 4
    body = packet[at:]
    if len(body) != length:
        raise FrameError("body length differs from the header's")
    header = Header(
        message_id, phone.lstrip("0") or "0", serial, version, (props >> 10) & 7, packages
    )
    return Message(header, body)


def build(
    message_id: int, phone: str, serial: int, body: bytes, version: int | None = None
) -> bytes:
    """A header+body (without check code) in the 2013 layout, or 2019's when `version` is given."""
    if len(body) > LENGTH_MASK:
        raise ValueError("body too long for one package")
    props = len(body)
    if version is None:
        head = struct.pack(">HH", message_id, props) + bcd(phone, 6)
    else:
        props |= VERSION_BIT
        head = struct.pack(">HHB", message_id, props, version) + bcd(phone, 10)
    return head + struct.pack(">H", serial) + body


def general_reply(serial: int, message_id: int, result: int) -> bytes:
    """The body of a 0x8001 platform general reply."""
    return struct.pack(">HHB", serial, message_id, result)


def register_reply(serial: int, result: int, auth_code: str) -> bytes:
    """The body of a 0x8100 register reply (the code only when registered)."""
    tail = auth_code.encode("ascii") if result == OK else b""
    return struct.pack(">HB", serial, result) + tail


def _text(raw: bytes) -> str:
    return raw.rstrip(b"\x00").decode("gbk", errors="replace").strip()


def parse_registration(body: bytes, version: int | None) -> Registration:
    """A 0x0100 body: 2013 sizes (maker 5, model 20, id 7) or 2019's (11, 30, 30)."""
    maker, model, ident = (5, 20, 7) if version is None else (11, 30, 30)
    fixed = 4 + maker + model + ident + 1
    if len(body) < fixed:
        raise FrameError("register body too short")
    province, city = struct.unpack_from(">HH", body)
    at = 4
    texts = []
    for size in (maker, model, ident):
        texts.append(_text(body[at : at + size]))
        at += size
    return Registration(
        province, city, texts[0], texts[1], texts[2], body[at], _text(body[at + 1 :])
    )


def build_registration(reg: Registration, version: int | None) -> bytes:
    """A 0x0100 body (what a terminal sends)."""
    maker, model, ident = (5, 20, 7) if version is None else (11, 30, 30)
    parts = [struct.pack(">HH", reg.province, reg.city)]
    for value, size in ((reg.maker, maker), (reg.model, model), (reg.terminal_id, ident)):
        parts.append(value.encode("gbk")[:size].ljust(size, b"\x00"))
    parts.append(bytes([reg.plate_colour]) + reg.plate.encode("gbk"))
    return b"".join(parts)


def parse_auth_code(body: bytes, version: int | None) -> str:
    """The authentication code of a 0x0102 body (2019: length-prefixed, then IMEI and version)."""
    if version is None:
        return body.decode("ascii", errors="replace")
    if not body or len(body) < 1 + body[0]:
        raise FrameError("authenticate body too short")
    return body[1 : 1 + body[0]].decode("ascii", errors="replace")


def build_auth(code: str, version: int | None) -> bytes:
    """A 0x0102 body (what a terminal sends)."""
    raw = code.encode("ascii")
    if version is None:
        return raw
    return bytes([len(raw)]) + raw + b"0" * 15 + b"1.0".ljust(20, b"\x00")


def parse_position(body: bytes) -> Position:
    """A 0x0200 body (its basic 28 bytes; additional items are skipped)."""
    if len(body) < 28:
        raise FrameError("position body too short")
    alarm, status, lat, lon, altitude, speed, heading = struct.unpack_from(">IIIIHHH", body)
    stamp = from_bcd(body[22:28])
    year, month, day, hour, minute, second = (int(stamp[i : i + 2]) for i in range(0, 12, 2))
    try:  # two-digit years as strptime's %y reads them, without its cost per position
        local = datetime(
            year + (2000 if year < 69 else 1900), month, day, hour, minute, second, tzinfo=CHINA
        )
    except ValueError:
        raise FrameError("bad position time") from None
    lat_deg, lon_deg = lat / 1e6, lon / 1e6
    if status & SOUTH:
        lat_deg = -lat_deg
    if status & WEST:
        lon_deg = -lon_deg
    if lat_deg > 90 or lat_deg < -90 or lon_deg > 180 or lon_deg < -180:
        raise FrameError("position outside the earth")
    return Position(
        alarm, status, lat_deg, lon_deg, altitude, speed / 10, heading, local.astimezone(UTC)
    )


def build_position(pos: Position, extra: bytes = b"") -> bytes:
    """A 0x0200 body (what a terminal sends), with optional additional items appended."""
    status = pos.status & ~(SOUTH | WEST)
    status |= SOUTH if pos.lat < 0 else 0
    status |= WEST if pos.lon < 0 else 0
    stamp = pos.time.astimezone(CHINA).strftime("%y%m%d%H%M%S")
    return (
        struct.pack(
            ">IIIIHHH",
            pos.alarm,
            status,
            round(abs(pos.lat) * 1e6),
            round(abs(pos.lon) * 1e6),
            pos.altitude,
            round(pos.speed * 10),
            pos.heading,
        )
        + bcd(stamp, 6)
        + extra
    )


def parse_batch(body: bytes) -> list[Position]:
    """The positions of a 0x0704 body: count, type, then length-prefixed 0x0200 bodies."""
    if len(body) < 3:
        raise FrameError("batch body too short")
    (count,) = struct.unpack_from(">H", body)
    at, found = 3, []
    for _ in range(count):
        if len(body) < at + 2:
            raise FrameError("batch body too short")
        (size,) = struct.unpack_from(">H", body, at)
        at += 2
        if len(body) < at + size:
            raise FrameError("batch item too short")
        found.append(parse_position(body[at : at + size]))
        at += size
    if at != len(body):
        raise FrameError("batch body longer than its items")
    return found


def build_batch(positions: list[Position], blind: bool = False) -> bytes:
    """A 0x0704 body (what a terminal sends)."""
    parts = [struct.pack(">HB", len(positions), 1 if blind else 0)]
    for pos in positions:
        item = build_position(pos)
        parts.append(struct.pack(">H", len(item)) + item)
    return b"".join(parts)
