"""A JT/T 808 terminal over asyncio TCP, as a vehicle's device speaks to the gateway: register,
authenticate, then report and wait for each answer. The demo's fleet and the load bench drive it."""

from __future__ import annotations

import asyncio
import contextlib
import struct

from layers.tracking.jt808 import framing, messages
from layers.tracking.jt808.framing import Splitter
from layers.tracking.jt808.messages import Message, Position, Registration

MAX_REPLY = 1023


class RefusedError(ConnectionError):
    """The gateway refused a terminal's registration or authentication."""


class Terminal:
    """One terminal's connection; requests are answered in order, one at a time."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, phone: str
    ) -> None:
        self.reader, self.writer, self.phone = reader, writer, phone
        self.serial = 0
        self._splitter = Splitter(8192)
        self._pending: list[bytes] = []

    @classmethod
    async def connect(cls, host: str, port: int, phone: str) -> Terminal:
        """A connection to the gateway at host:port for the terminal numbered `phone`."""
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer, phone)

    async def ask(self, message_id: int, body: bytes) -> Message:
        """Send one message and answer the gateway's reply to it."""
        self.serial = (self.serial + 1) & 0xFFFF
        self.writer.write(framing.frame(messages.build(message_id, self.phone, self.serial, body)))
        await self.writer.drain()
        while not self._pending:
            data = await self.reader.read(8192)
            if not data:
                raise ConnectionError(f"terminal {self.phone}: closed by the gateway")
            self._pending.extend(self._splitter.feed(data))
        return messages.parse(framing.unframe(self._pending.pop(0)), MAX_REPLY)

    async def sign_in(self, registration: Registration) -> None:
        """Register (0x0100) and authenticate (0x0102) with the code the gateway issued."""
        answer = await self.ask(messages.REGISTER, messages.build_registration(registration, None))
        if len(answer.body) < 3 or answer.body[2] != messages.OK:
            raise RefusedError(f"terminal {self.phone}: registration refused")
        if await self._result(messages.AUTHENTICATE, answer.body[3:]) != messages.OK:
            raise RefusedError(f"terminal {self.phone}: authentication refused")

    async def report(self, position: Position) -> bool:
        """Send a 0x0200 position; whether the gateway acknowledged it (stored)."""
        return await self._result(messages.POSITION, messages.build_position(position)) == (
            messages.OK
        )

    async def report_batch(self, positions: list[Position]) -> bool:
        """Send a 0x0704 batch of positions; whether the gateway acknowledged them."""
        return await self._result(messages.BATCH, messages.build_batch(positions)) == messages.OK

    async def heartbeat(self) -> None:
        """Send a 0x0002 heartbeat."""
        await self.ask(messages.HEARTBEAT, b"")

    async def close(self) -> None:
        """Log out (0x0003) when still connected, then close."""
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(self.ask(messages.LOGOUT, b""), 5)
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()

    async def _result(self, message_id: int, body: bytes) -> int:
        answer = await self.ask(message_id, body)
        if answer.header.message_id != messages.GENERAL_REPLY or len(answer.body) < 5:
            raise ConnectionError(f"terminal {self.phone}: unexpected reply")
        _, _, result = struct.unpack(">HHB", answer.body[:5])
        return int(result)
