"""Streamed bodies that give their database connection back from the request that took it.

A body read from a server-side cursor holds a pooled connection until it is closed. Left to the
garbage collector, an abandoned body (a client gone mid-way) would close it from whatever thread
happens to collect it, possibly one inside the pool's own bookkeeping, which hands one connection
to two requests. Here the body is always closed, in a worker thread, when the response ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator

import anyio
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send


async def _chunks(first: bytes, rest: Generator[bytes, None, None]) -> AsyncIterator[bytes]:
    try:
        yield first
        while (chunk := await anyio.to_thread.run_sync(next, rest, None)) is not None:
            yield chunk
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(rest.close)


class ClosingStream(StreamingResponse):
    """A streamed answer whose body is closed when it has been sent, has failed or was cut off."""

    def __init__(
        self,
        first: bytes,
        rest: Generator[bytes, None, None],
        media_type: str,
        headers: dict[str, str],
    ) -> None:
        super().__init__(_chunks(first, rest), media_type=media_type, headers=headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the body, then close it whatever happened."""
        try:
            await super().__call__(scope, receive, send)
        finally:
            body = self.body_iterator
            with anyio.CancelScope(shield=True):
                if hasattr(body, "aclose"):
                    await body.aclose()
