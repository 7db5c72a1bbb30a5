"""The `citygrid` command line."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from api import (
    cli_backup,
    cli_calendar,
    cli_cases,
    cli_catalogue,
    cli_counties,
    cli_files,
    cli_merchants,
    cli_ops,
    cli_reports,
    cli_routing,
    cli_tracking,
    cli_units,
    cli_users,
)
from api.cli_db import prepare_database, transaction
from api.console import console, friendly, say, stdout
from api.settings import (
    CalendarSettings,
    DatabaseSettings,
    DemoSettings,
    EditingSettings,
    ServerSettings,
)
from gis.topology import KIND_LABELS, KINDS, Report
from layers.demo import load as demo_city
from layers.registry import ROLE_LABELS, Role
from layers.store import cluster, db, distribution, migrate
from layers.store.cluster import State

app = typer.Typer(
    help="citygrid: grids, layers and cases of a city-management bureau.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(
    help="The PostGIS database: the project's own cluster or CITYGRID_DATABASE_URL.",
    no_args_is_help=True,
)
demo_app = typer.Typer(
    help=f"The demo city ({demo_city.COUNTY_NAME}, {demo_city.ADCODE}).", no_args_is_help=True
)
app.add_typer(db_app, name="db")
app.add_typer(cli_ops.service_app, name="service")
app.command("init")(cli_ops.init)
app.command("check")(cli_ops.check)


@app.callback()
def _options(config: cli_ops.ConfigOption = None) -> None:
    """citygrid: grids, layers and cases of a city-management bureau."""
    cli_ops.use_config(config)


boundary_app = typer.Typer(
    help="Check a county boundary file before `citygrid county add` stores it.",
    no_args_is_help=True,
)
app.add_typer(demo_app, name="demo")
demo_app.command("tracking")(cli_tracking.demo_tracking)
app.add_typer(boundary_app, name="boundary")
app.add_typer(cli_counties.app, name="county")
grids_app = typer.Typer(help="Grids (网格) stored in the database.", no_args_is_help=True)
app.add_typer(grids_app, name="grids")
app.add_typer(cli_users.app, name="users")
app.add_typer(cli_units.app, name="units")
app.add_typer(cli_routing.app, name="routing")
app.add_typer(cli_cases.app, name="categories")
app.add_typer(cli_catalogue.app, name="catalogue")
app.add_typer(cli_calendar.app, name="calendar")
app.add_typer(cli_reports.app, name="report")
app.command("import")(cli_files.import_file)
app.command("export")(cli_files.export_file)
app.add_typer(cli_backup.app, name="backup")
app.add_typer(cli_tracking.app, name="tracking")
app.add_typer(cli_merchants.app, name="merchants")
app.command("restore")(cli_backup.restore)
app.command("upgrade")(cli_backup.upgrade)

HostOption = Annotated[str | None, typer.Option(help="Address to listen on (CITYGRID_HOST)")]
PortOption = Annotated[int | None, typer.Option(help="Port to listen on (CITYGRID_PORT)")]


@db_app.command("up")
@friendly
def db_up() -> None:
    """Start the database (own cluster unless CITYGRID_DATABASE_URL is set) and migrate it."""
    settings = DatabaseSettings()
    prepare_database(settings)
    say(f"database ready: {_public_url(settings)}")


@db_app.command("install")
@friendly
def db_install() -> None:
    """Make sure PostgreSQL 15+ and PostGIS 3 are installed (apt on Debian/Ubuntu as root)."""
    if not DatabaseSettings().uses_own_cluster:
        say("CITYGRID_DATABASE_URL is set: the server there provides PostGIS, nothing to install")
        return
    server = cluster.ensure_server(say)
    say(f"PostgreSQL {server.major} with PostGIS in {server.bindir}")


@db_app.command("down")
@friendly
def db_down() -> None:
    """Stop the project's own cluster (never touches a server given by CITYGRID_DATABASE_URL)."""
    settings = DatabaseSettings()
    if not settings.uses_own_cluster:
        say("CITYGRID_DATABASE_URL is set: that server is not managed by citygrid, nothing stopped")
        return
    stopped = settings.cluster().down(say)
    say("stopped" if stopped else "the cluster was not running")


@db_app.command("status")
@friendly
def db_status() -> None:
    """Tell whether the database is reachable and at the newest schema; exit 1 when not."""
    settings = DatabaseSettings()
    if settings.uses_own_cluster:
        state = settings.cluster().state()
        say(f"own cluster in {settings.cluster().data_dir}: {state.value}")
        if state is not State.RUNNING:
            raise typer.Exit(1)
    engine = db.make_engine(settings.url())
    try:
        db.check_connection(engine)
        current, head = migrate.current_revision(engine), migrate.head_revision()
    finally:
        engine.dispose()
    say(f"{_public_url(settings)}: schema {current or 'empty'} (newest {head})")
    if current != head:
        raise typer.Exit(1)


@db_app.command("distribution-plan")
@friendly
def db_distribution_plan() -> None:
    """Print the SQL that moves this database to Citus, distributed by county (docs/SCALING.md)."""
    with transaction() as conn:
        typer.echo(distribution.script(conn), nl=False)


@db_app.command("migrate")
@friendly
def db_migrate() -> None:
    """Apply migrations to the newest schema."""
    prepare_database(DatabaseSettings())
    say("schema up to date")


@demo_app.command("load")
@friendly
def demo_load(
    force: Annotated[bool, typer.Option("--force", help="Replace the data already loaded")] = False,
    seed: Annotated[
        int | None, typer.Option(help="Random seed (default CITYGRID_DEMO_SEED)")
    ] = None,
) -> None:
    """Load the demo city (grids, layers, a year of cases) unless data is already there."""
    settings, demo = DatabaseSettings(), DemoSettings()
    url = prepare_database(settings)
    _load_demo(url, settings, demo, seed if seed is not None else demo.seed, force)


def _load_demo(
    url: str, settings: DatabaseSettings, demo: DemoSettings, seed: int, force: bool
) -> None:
    engine = db.make_engine(url, settings.gk_epsg)
    started = time.perf_counter()
    try:
        with Progress(
            TextColumn("{task.description:<18}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as progress:

            def step(name: str, total: int) -> Callable[[int], None]:
                task = progress.add_task(name, total=total)
                return lambda n: progress.advance(task, n)

            hours = CalendarSettings().periods()
            scale = demo_city.Scale(fume_months=demo.fume_months)
            written = demo_city.load(
                engine, seed, demo.year, step, force, scale=scale, default_hours=hours
            )
    finally:
        engine.dispose()
    if written is None:
        say("data already loaded; nothing changed (use --force to replace it)")
        return
    total = sum(written.values())
    say(
        f"demo city {demo_city.COUNTY_NAME} loaded: {total:,} rows in {time.perf_counter() - started:.1f} s"
    )
    _demo_logins(url, settings)


def _demo_logins(url: str, settings: DatabaseSettings) -> None:
    """Create the demo accounts; their passwords go to an owner-only file, never to the screen."""
    from layers.demo import accounts as demo_accounts

    engine = db.make_engine(url, settings.gk_epsg)
    try:
        with engine.begin() as conn:
            logins = demo_accounts.ensure_accounts(conn)
    finally:
        engine.dispose()
    path = demo_accounts.write_logins(logins, settings.state_dir)
    table = Table(title="演示账号")
    for column in ("角色", "用户名", "姓名"):
        table.add_column(column)
    # one line for the many by community; the office and the maintainers (部件养护单位) by name
    shared = {
        "insp-": (Role.INSPECTOR, "各社区网格监督员"),
        "unit-": (Role.HANDLER, "各社区处置单位"),
    }
    for login in logins:
        if not login.username.startswith(tuple(shared)):
            table.add_row(ROLE_LABELS[login.role], login.username, login.display_name)
    for prefix, (role, who) in shared.items():
        group = [x for x in logins if x.username.startswith(prefix)]
        if group:
            table.add_row(
                ROLE_LABELS[role],
                f"{group[0].username} 等 {len(group)} 个（{prefix}街道社区六位码）",
                who,
            )
    console.print(table)
    say(
        f"demo passwords written to {path} (readable by you only) / "
        f"演示账号密码已写入 {path}（仅本用户可读；可用 citygrid users passwd 重设）"
    )


@app.command("serve")
@friendly
def serve(
    host: HostOption = None,
    port: PortOption = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Worker processes (CITYGRID_WORKERS, default 1); with more than one, metrics "
            "are kept in PROMETHEUS_MULTIPROC_DIR (default: STATE_DIR/metrics), emptied at start",
        ),
    ] = None,
) -> None:
    """Serve the API and the map pages (the database must be up: `citygrid db up`)."""
    _serve(DatabaseSettings(), ServerSettings(), host, port, workers)


@app.command("run")
@friendly
def run(
    host: HostOption = None,
    port: PortOption = None,
    no_demo: Annotated[
        bool,
        typer.Option(
            "--no-demo", help="Start empty, without the demo city (also CITYGRID_DEMO=none)"
        ),
    ] = False,
) -> None:
    """Everything `make run` does: database up, migrations, the demo city if empty (unless
    --no-demo), then serve."""
    settings = DatabaseSettings()
    start(settings, DemoSettings(), no_demo)
    gateway = cli_tracking.start_beside(settings.state_dir)
    try:
        _serve(settings, ServerSettings(), host, port, tracking=gateway is not None)
    finally:
        cli_tracking.stop_beside(gateway)


def start(settings: DatabaseSettings, demo: DemoSettings, no_demo: bool) -> None:
    """What `run` does before it serves: a migrated database, then the demo city, or, when
    started empty, the first steps for a bureau of its own."""
    url = prepare_database(settings)
    if no_demo or demo.load == "none":
        _first_steps(url, settings)
    else:
        _load_demo(url, settings, demo, demo.seed, force=False)


FIRST_STEPS = (
    (
        "添加本部署服务的县级行政区（边界文件可为任意 GDAL 格式）",
        "add a county this deployment serves (boundary: any file GDAL reads)",
        "citygrid county add 350404 --name 三元区 --boundary 三元区.shp",
    ),
    (
        "添加部署管理员账号",
        "add the deployment's admin",
        "citygrid users add admin --role admin",
    ),
    (
        "一次导入全部网格层级",
        "import the whole grid hierarchy",
        "citygrid import grids 网格.shp --county 350404 --valid-from 2021-01-01",
    ),
    (
        "添加该县的账号",
        "add the county's accounts",
        "citygrid users add planner1 --role planner --county 350404",
    ),
)


def _first_steps(url: str, settings: DatabaseSettings) -> None:
    """Say what is stored, and while there is no county, how a bureau sets up its own."""
    from layers.places import counties as county_rows

    engine = db.make_engine(url, settings.gk_epsg)
    try:
        with engine.connect() as conn:
            stored = len(county_rows.all_counties(conn))
    finally:
        engine.dispose()
    if stored:
        say(
            f"started without the demo: {stored} county(ies) stored / 未加载演示数据，已有 {stored} 个县级行政区"
        )
        return
    say(
        "started empty, without the demo city / 已启动空系统（未加载演示数据）。First steps 第一步："
    )
    for number, (zh, en, command) in enumerate(FIRST_STEPS, start=1):
        say(f"  {number}. {zh} / {en}:\n       {command}")


def _serve(
    settings: DatabaseSettings,
    server: ServerSettings,
    host: str | None,
    port: int | None,
    workers: int | None = None,
    tracking: bool = False,
) -> None:
    # The app, its pages and the server load slowly: only commands that serve import them.
    import uvicorn

    from api import metrics
    from api.app import create_app
    from api.observe import log_config
    from api.workers import run as serve_workers
    from webmap.pages import PAGES

    host, port, workers = host or server.host, port or server.port, workers or server.workers
    from api.settings import TrackingSettings

    # with the gateway beside it, /ready checks it too (also in the workers, which read this)
    if tracking:
        os.environ["CITYGRID_JT808_READY_CHECK"] = "true"
    app_ = create_app(settings, tracking=TrackingSettings())
    engine = db.make_engine(settings.url())
    try:
        db.check_connection(engine)
    finally:
        engine.dispose()
    base = f"http://{host}:{port}"
    say(f"API:          {base}/")
    say(f"API docs:     {base}/docs")
    say(f"layers:       {base}/layers")
    say(f"health:       {base}/health  (ready: {base}/ready, metrics: {base}/metrics)")
    for path, title in PAGES.values():
        say(f"map {title}: {base}{path}")
    # The client address of a forwarded request is read by the app (CITYGRID_TRUSTED_PROXIES);
    # logs are JSON lines on stderr, with the app's own access line in place of uvicorn's.
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": "info",
        "proxy_headers": False,
        "log_config": log_config(),
        "access_log": False,
    }
    if workers == 1:
        uvicorn.run(app_, **options)
        return
    folder = metrics.multiprocess_dir(settings.state_dir, clean=not tracking)
    say(f"metrics of {workers} workers kept in {folder}")
    serve_workers("api.asgi:build", workers, factory=True, **options)


@boundary_app.command("check")
@friendly
def boundary_check(
    path: Annotated[Path, typer.Argument(help="Boundary file: any format GDAL reads")],
    crs: cli_counties.CrsOpt = None,
    gcj02: Annotated[
        bool, typer.Option("--gcj02", help="Same as --crs gcj02 (Amap/Tencent coordinates)")
    ] = False,
) -> None:
    """Read and check a boundary file; print its area and Gauss-Krüger zone; store nothing."""
    from gis import zones
    from layers.places.boundary import GCJ02, read_boundary_file

    found = read_boundary_file(path, GCJ02 if gcj02 else crs)
    epsg = int(zones.geometry_zone([found.boundary])[0])
    area = float(zones.area_m2([found.boundary], epsg)[0])
    say(
        f"{path}: {len(found.boundary.geoms)} polygon(s), {area / 1e6:,.2f} km², "
        f"zone EPSG:{epsg} (read as {found.crs_label})"
    )


@grids_app.command(
    "check",
    epilog="Problem kinds 问题类型: " + ", ".join(f"{k} {v}" for k, v in KIND_LABELS.items()) + ".",
)
@friendly
def grids_check(
    parent: Annotated[
        str | None,
        typer.Option(
            metavar="CODE",
            help="Check only the children of this 15-digit grid code (a county is its adcode "
            "followed by nine zeros); default: every parent with current children",
        ),
    ] = None,
    sliver_m2: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="Grids smaller than this many m² are reported as slivers "
            "(default CITYGRID_GRID_SLIVER_M2, 100)",
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print the whole report as JSON on stdout (problems as GeoJSON in CGCS2000 "
            "longitude/latitude), as POST /grids/check answers",
        ),
    ] = False,
) -> None:
    """Check that current grids tile their parents; exit status 1 when any problem is found."""
    from layers.grids.grids import all_parents, check_stored, report_document

    settings = DatabaseSettings()
    engine = db.make_engine(settings.url(), settings.gk_epsg)
    options = EditingSettings().check_options(sliver_m2)
    try:
        db.check_connection(engine)
        with engine.connect() as conn:
            parents = [parent] if parent else all_parents(conn)
            reports = [check_stored(conn, code, options) for code in parents]
    finally:
        engine.dispose()
    if as_json:
        typer.echo(json.dumps(report_document(reports), ensure_ascii=False, indent=2))
    else:
        _print_reports([report for report, _ in reports])
    if any(report.problems for report, _ in reports):
        raise typer.Exit(1)


def _print_reports(reports: list[Report]) -> None:
    """Counts by kind as a table, then one line per problem, then a one-line verdict."""
    table = Table(title="网格拓扑检查")
    table.add_column("问题类型")
    table.add_column("代码")
    table.add_column("数量", justify="right")
    table.add_column("面积合计（㎡）", justify="right")
    for kind in KINDS:
        count = sum(r.counts()[kind] for r in reports)
        total = sum(r.area(kind) for r in reports)
        table.add_row(KIND_LABELS[kind], kind, f"{count:,}", f"{total:,.2f}" if total else "—")
    stdout.print(table)
    for report in reports:
        for p in report.problems:
            codes = escape("、".join(p.codes)) or "—"
            area = "—" if p.area_m2 is None else f"{p.area_m2:,.2f} ㎡"
            stdout.print(
                f"[red]{KIND_LABELS[p.kind]}[/]  上级 {report.parent_code}  网格 {codes}  {area}  "
                f"{escape(p.message_zh)}",
                highlight=False,
            )
    found = sum(len(r.problems) for r in reports)
    children = sum(r.children for r in reports)
    verdict = f"[red]发现 {found:,} 个问题[/]" if found else "[green]未发现问题[/]"
    stdout.print(f"检查了 {len(reports):,} 个上级网格的 {children:,} 个下级网格：{verdict}")


def _public_url(settings: DatabaseSettings) -> str:
    url = db.parse_url(settings.url())
    return url.render_as_string(hide_password=True)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="citygrid")


if __name__ == "__main__":
    main()
