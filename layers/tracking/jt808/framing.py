"""JT/T 808 framing: 0x7E flags, 0x7D escaping, the XOR check code, frames split or glued by TCP."""

from __future__ import annotations

from functools import reduce
from operator import xor

FLAG = 0x7E
ESCAPE = 0x7D


class FrameError(ValueError):
    """A frame that cannot be read: bad escape, bad check code, too short or too long."""


def checksum(data: bytes) -> int:
    """The XOR of every byte (header and body)."""
    return reduce(xor, data, 0)


def escape(data: bytes) -> bytes:
    """0x7D becomes 0x7D 0x01, then 0x7E becomes 0x7D 0x02."""
    return data.replace(b"\x7d", b"\x7d\x01").replace(b"\x7e", b"\x7d\x02")


def unescape(data: bytes) -> bytes:
    """Undo `escape`; a 0x7D followed by anything but 0x01 or 0x02 is refused."""
    marks = data.count(b"\x7d")
    if not marks:
        return data
    if marks != data.count(b"\x7d\x01") + data.count(b"\x7d\x02"):
        raise FrameError("bad escape sequence")
    # 0x7D 0x02 can only be an escaped 0x7E (a literal 0x7D is always followed by 0x01)
    return data.replace(b"\x7d\x02", b"\x7e").replace(b"\x7d\x01", b"\x7d")


def frame(packet: bytes) -> bytes:
    """Wrap header+body: append the check code, escape, add the flags."""
    return bytes([FLAG]) + escape(packet + bytes([checksum(packet)])) + bytes([FLAG])


def unframe(content: bytes) -> bytes:
    """The header+body of an escaped frame content (flags removed), its check code verified."""
    raw = unescape(content)
    if len(raw) < 2:
        raise FrameError("frame too short")
    packet, code = raw[:-1], raw[-1]
    if checksum(packet) != code:
        raise FrameError("bad check code")
    return packet


class Splitter:
    """Cuts a TCP byte stream into frame contents, however the reads split or glue the frames.

    Bytes before the first flag are dropped; a content longer than `max_frame` bytes (escaped)
    raises FrameError, and the splitter then waits for the next flag."""

    def __init__(self, max_frame: int) -> None:
        self.max_frame = max_frame
        self._buffer = bytearray()
        self._inside = False

    def feed(self, data: bytes) -> list[bytes]:
        """The complete frame contents in `data` and what came before it."""
        found: list[bytes] = []
        for chunk in _cut(data):
            if chunk == b"\x7e":
                if self._inside and self._buffer:
                    found.append(bytes(self._buffer))
                    self._buffer.clear()
                    self._inside = False
                else:  # an opening flag (two flags in a row: the second one opens)
                    self._inside = True
                continue
            if not self._inside:
                continue
            self._buffer += chunk
            if len(self._buffer) > self.max_frame:
                self._buffer.clear()
                self._inside = False
                raise FrameError("frame longer than the limit")
        return found


def _cut(data: bytes) -> list[bytes]:
    """`data` cut into runs without a flag and single flags."""
    parts: list[bytes] = []
    start = 0
    while (at := data.find(b"\x7e", start)) >= 0:
        if at > start:
            parts.append(data[start:at])
        parts.append(b"\x7e")
        start = at + 1
    if start < len(data):
        parts.append(data[start:])
    return parts
