"""The real JT/T 808 gateway served in a thread of the test process, on a free port."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from api import metrics
from layers.store import db
from layers.tracking.jt808.server import Gateway, GatewayConfig


@dataclass
class Running:
    """A gateway serving in a thread of its own."""

    gateway: Gateway
    port: int
    loop: asyncio.AbstractEventLoop


def serve_gateway(url: str, **config: Any) -> Iterator[Running]:
    """The gateway on a free port of 127.0.0.1 over `url` (`config`: GatewayConfig's fields), in a
    thread, counting into the metrics, until closed."""
    engine = db.make_engine(url, application_name="citygrid-gateway-test")
    loop = asyncio.new_event_loop()
    gateway = Gateway(
        engine,
        GatewayConfig(port=0, **config),
        on_positions=lambda stage, n: metrics.positions("jt808", stage, n),
        on_alarms=metrics.alarms,
    )
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(gateway.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(30)
    try:
        yield Running(gateway, gateway.port, loop)
    finally:
        asyncio.run_coroutine_threadsafe(gateway.close(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        engine.dispose()
