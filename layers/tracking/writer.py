"""Positions from many connections written together: each waits for the transaction that stores
it, so a terminal is acknowledged only once its positions are committed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Sequence

from sqlalchemy import Engine

from layers.tracking import alarms
from layers.tracking.store import Fix, write_positions

log = logging.getLogger("citygrid.tracking")


class BatchWriter:
    """Collects positions for `linger_s` (or until `max_rows`) and stores them in one transaction."""

    def __init__(
        self,
        engine: Engine,
        linger_s: float = 0.005,
        max_rows: int = 5_000,
        on_stored: Callable[[int, int], None] | None = None,
        rules: alarms.Rules | None = None,
        on_alarms: Callable[[str, int], None] | None = None,
    ) -> None:
        self.engine = engine
        self.linger_s = linger_s
        self.max_rows = max_rows
        # (rows stored, reports' positions about to be acknowledged), before they are
        self.on_stored = on_stored
        self.rules = rules or alarms.Rules()
        self.on_alarms = on_alarms  # (kind, count) of the alarms a batch opened
        self._pending: list[tuple[Sequence[Fix], int, asyncio.Future[None]]] = []
        self._rows = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the loop that writes."""
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Write what is pending and stop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._pending:
            await self._flush()

    async def store(self, fixes: Sequence[Fix], reported: int | None = None) -> None:
        """Return once `fixes` are committed (of `reported` positions, those without a fix
        included); raise when their transaction failed."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((fixes, len(fixes) if reported is None else reported, done))
        self._rows += len(fixes)
        self._wake.set()
        await done

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            if self._rows < self.max_rows:
                await asyncio.sleep(self.linger_s)
            self._wake.clear()
            await self._flush()

    async def _flush(self) -> None:
        batch, self._pending, self._rows = self._pending, [], 0
        if not batch:
            return
        rows = [fix for fixes, _, _ in batch for fix in fixes]
        try:
            stored, opened = await asyncio.to_thread(self._write, rows)
        except Exception as exc:  # the waiting terminals are not acknowledged, nothing is lost
            log.exception("positions not stored", extra={"rows": len(rows)})
            for _, _, done in batch:
                if not done.done():
                    done.set_exception(exc)
            return
        if self.on_stored is not None:
            self.on_stored(stored, sum(reported for _, reported, _ in batch))
        if self.on_alarms is not None:
            for kind, n in opened.items():
                self.on_alarms(kind, n)
        for _, _, done in batch:
            if not done.done():
                done.set_result(None)

    def _write(self, rows: list[Fix]) -> tuple[int, Counter[str]]:
        with self.engine.begin() as conn:
            stored = write_positions(conn, rows)
            return stored, alarms.evaluate_fixes(conn, rows, self.rules)
