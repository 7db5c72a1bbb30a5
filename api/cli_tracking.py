"""`citygrid tracking`: the JT/T 808 gateway and the day partitions of positions; and
`citygrid demo tracking`, the demo's fleet driven through the gateway."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from api import metric_files
from api.console import friendly, say
from api.settings import DatabaseSettings, DemoSettings, TrackingSettings
from layers.demo import driving
from layers.store import db
from layers.tracking import store
from layers.tracking.jt808.messages import CHINA
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


def _start(value: str | None, duration: timedelta) -> datetime:
    """`--start`: "HH:MM" on the latest day it fits before now, or "YYYY-MM-DD HH:MM" (China)."""
    if value is None or len(value) <= 5:
        return driving.default_start(duration, at=value or driving.DEFAULT_START)
    return datetime.strptime(value, "%Y-%m-%d %H:%M").replace(tzinfo=CHINA)


@friendly
def demo_tracking(
    speed: Annotated[
        float, typer.Option(min=0.1, max=10_000, help="Simulated seconds per real second")
    ] = 120.0,
    duration: Annotated[
        float,
        typer.Option(min=1, max=24 * 60, help="Simulated minutes (default: a night and a morning)"),
    ] = 720.0,
    start: Annotated[
        str | None,
        typer.Option(
            help='China time the period starts: "HH:MM" on the latest day it ends before now '
            '(default 20:00), or "YYYY-MM-DD HH:MM"'
        ),
    ] = None,
    kinds: Annotated[str, typer.Option(help="Vehicle kinds to drive, comma-separated")] = ",".join(
        driving.KINDS
    ),
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many of each kind")] = None,
    plate: Annotated[list[str] | None, typer.Option(help="Only this vehicle (repeatable)")] = None,
    every: Annotated[
        float, typer.Option(min=1, max=3600, help="Simulated seconds between a vehicle's reports")
    ] = 30.0,
    host: Annotated[
        str | None, typer.Option(help="Gateway address (default CITYGRID_JT808_HOST)")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="Gateway port (default CITYGRID_JT808_PORT)"),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed of the scenario")] = 808,
) -> None:
    """Drive the demo's fleet through the JT/T 808 gateway (`citygrid run` starts it): muck trucks
    haul from sites to disposal yards at night, sanitation vehicles sweep in the morning,
    kitchen-waste trucks collect; a few trucks dump illegally, leave their route, cross the
    county line or haul after hours. The simulated period ends before now (the gateway refuses
    positions from the future); --speed 120 plays 12 hours in 6 minutes."""
    settings = TrackingSettings()
    period = timedelta(minutes=duration)
    wanted = tuple(k.strip() for k in kinds.split(",") if k.strip())
    unknown = sorted(set(wanted) - set(driving.KINDS))
    if unknown:
        raise typer.BadParameter(f"unknown kinds {unknown}; choose among {list(driving.KINDS)}")
    options = driving.DriveOptions(
        _start(start, period), period, speed, every, wanted, limit, tuple(plate or ()), seed
    )
    if options.end > datetime.now(UTC):
        raise typer.BadParameter("the period must end before now / 模拟时段须在当前时间之前结束")
    engine = db.make_engine(DatabaseSettings().migration_url(), application_name="citygrid-demo")
    try:
        with engine.connect() as conn:
            plans = driving.plan(conn, options, DemoSettings().seed)
        samples = sum(len(p.samples) for p in plans)
        local = options.start.astimezone(CHINA).strftime("%Y-%m-%d %H:%M")
        say(
            f"driving {len(plans)} vehicles from {local} for {duration:g} min at {speed:g}x: "
            f"{samples:,} positions / 模拟 {len(plans)} 辆车，{samples:,} 个定位"
        )
        tally = asyncio.run(
            driving.drive(host or settings.jt808_host, port or settings.jt808_port, plans, options)
        )
        with engine.connect() as conn:
            raised = driving.alarms_raised(conn, plans, options)
    finally:
        engine.dispose()
    _summary(tally, driving.expected_alarms(plans), raised)


def _summary(
    tally: driving.Tally, expected: dict[str, int], raised: dict[str, tuple[int, int]]
) -> None:
    say(
        f"terminals {tally.signed_in}/{tally.terminals} signed in; positions sent {tally.sent:,}, "
        f"acknowledged {tally.acknowledged:,}, refused {tally.refused:,} / "
        f"终端登录 {tally.signed_in}/{tally.terminals}，发送定位 {tally.sent:,}，"
        f"确认 {tally.acknowledged:,}，拒收 {tally.refused:,}"
    )
    for kind in sorted(set(expected) | set(raised)):
        vehicles, alarms = raised.get(kind, (0, 0))
        scripted = f"{expected[kind]} scripted" if kind in expected else "not scripted"
        scripted_zh = f"剧本 {expected[kind]} 辆" if kind in expected else "非剧本"
        say(
            f"alarm {kind}: {scripted}, raised by {vehicles} vehicles ({alarms} alarms) / "
            f"报警 {kind}：{scripted_zh}，实际 {vehicles} 辆车（{alarms} 次）"
        )
    for failure in tally.failed[:10]:
        say(f"connection lost / 连接中断: {failure}")
    if tally.failed or tally.signed_in < tally.terminals:
        raise typer.Exit(1)
