"""`citygrid tracking`: the JT/T 808 gateway and the day partitions of positions."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from dataclasses import replace
from typing import Annotated

import typer

from api import metrics
from api.console import friendly, say
from api.settings import DatabaseSettings, TrackingSettings
from layers.store import db
from layers.tracking import store
from layers.tracking.jt808.server import Gateway

app = typer.Typer(help="Vehicle and inspector tracking: the JT/T 808 gateway, position storage.")


@app.command("gateway")
@friendly
def gateway(
    host: Annotated[str | None, typer.Option(help="Address (default CITYGRID_JT808_HOST)")] = None,
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="Port (default CITYGRID_JT808_PORT)")
    ] = None,
) -> None:
    """Serve the JT/T 808 gateway: terminals register, authenticate and report positions,
    each acknowledged once stored (the database must be up and migrated)."""
    settings = TrackingSettings()
    config = settings.gateway()
    config = replace(config, host=host or config.host, port=config.port if port is None else port)
    engine = db.make_engine(DatabaseSettings().url(), application_name="citygrid-gateway")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    say(f"JT/T 808 gateway: {config.host}:{config.port}")
    served = Gateway(engine, config, lambda stage, n: metrics.positions("jt808", stage, n))
    try:
        asyncio.run(served.serve())
    except KeyboardInterrupt:
        pass
    finally:
        engine.dispose()


@app.command("partitions")
@friendly
def partitions(
    ahead: Annotated[int, typer.Option(min=0, max=60, help="Days ahead to make")] = 2,
) -> None:
    """Make today's and the next days' position partitions and drop those older than
    CITYGRID_POSITION_RETENTION_DAYS (the gateway does this every hour too)."""
    settings = TrackingSettings()
    engine = db.make_engine(DatabaseSettings().url())
    try:
        with engine.begin() as conn:
            made, dropped = store.maintain_partitions(conn, settings.position_retention_days, ahead)
    finally:
        engine.dispose()
    say(
        f"position partitions: {made} made, {dropped} dropped / 位置分区：新建 {made}，删除 {dropped}"
    )


def start_beside() -> subprocess.Popen[bytes] | None:
    """Start the gateway in its own process beside the API (`citygrid run`), unless disabled."""
    settings = TrackingSettings()
    if not settings.jt808_enabled:
        return None
    command = [sys.executable, "-m", "api.cli", "tracking", "gateway"]
    return subprocess.Popen(command)


def stop_beside(process: subprocess.Popen[bytes] | None) -> None:
    """Stop the gateway started by `start_beside`."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
