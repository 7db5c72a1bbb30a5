"""`citygrid tracking`: the JT/T 808 gateway and the day partitions of positions."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from api import metric_files
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
    beside: Annotated[
        int | None, typer.Option(hidden=True, help="Stop when this parent process is gone")
    ] = None,
) -> None:
    """Serve the JT/T 808 gateway: terminals register, authenticate and report positions,
    each acknowledged once stored (the database must be up and migrated)."""
    settings = TrackingSettings()
    config = settings.gateway()
    config = replace(config, host=host or config.host, port=config.port if port is None else port)
    # imported here: prometheus_client reads PROMETHEUS_MULTIPROC_DIR when first imported
    from api import metrics

    engine = db.make_engine(DatabaseSettings().url(), application_name="citygrid-gateway")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    say(f"JT/T 808 gateway: {config.host}:{config.port}")
    served = Gateway(
        engine, config, lambda stage, n: metrics.positions("jt808", stage, n), metrics.alarms
    )
    try:
        asyncio.run(_serve_while(served, beside))
    except KeyboardInterrupt:
        pass
    finally:
        engine.dispose()


async def _serve_while(served: Gateway, parent: int | None) -> None:
    """Serve; when started beside the API, stop once that process is gone (however it ended)."""
    serving = asyncio.create_task(served.serve())
    # systemd stops with SIGTERM: close the connections and write what is pending first
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, serving.cancel)
    while parent is not None and not serving.done():
        await asyncio.sleep(1)
        if os.getppid() != parent:
            serving.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await serving


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


def start_beside(state_dir: Path) -> subprocess.Popen[bytes] | None:
    """Start the gateway in its own process beside the API (`citygrid run`), unless disabled;
    both then count their metrics into files, which the API's /metrics sums."""
    settings = TrackingSettings()
    if not settings.jt808_enabled:
        return None
    metric_files.prepare(state_dir)
    command = [sys.executable, "-m", "api.cli", "tracking", "gateway", "--beside", str(os.getpid())]
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
