"""The `citygrid` command line."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
import uvicorn
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from api.app import create_app
from api.settings import DatabaseSettings, DemoSettings, ServerSettings
from gis import zones
from layers import cluster, db, migrate
from layers.boundary import load_county
from layers.cluster import State
from layers.demo import load as demo_city
from layers.errors import CitygridError
from webmap.pages import PAGES

console = Console(stderr=True, soft_wrap=True)
app = typer.Typer(
    help="citygrid: grids, layers and cases of a city-management bureau.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(
    help="The PostGIS database: the project's own cluster or CITYGRID_DATABASE_URL.",
    no_args_is_help=True,
)
demo_app = typer.Typer(help="The demo city (启东市).", no_args_is_help=True)
app.add_typer(db_app, name="db")
boundary_app = typer.Typer(help="County boundary files.", no_args_is_help=True)
app.add_typer(demo_app, name="demo")
app.add_typer(boundary_app, name="boundary")

HostOption = Annotated[str | None, typer.Option(help="Address to listen on (CITYGRID_HOST)")]
PortOption = Annotated[int | None, typer.Option(help="Port to listen on (CITYGRID_PORT)")]

P = ParamSpec("P")
R = TypeVar("R")


def say(message: str) -> None:
    """Print one progress line for the user."""
    console.print(f"[cyan]citygrid[/]: {message}")


def friendly(func: Callable[P, R]) -> Callable[P, R]:
    """Turn citygrid errors into one clear sentence and exit status 1, never a traceback."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except CitygridError as exc:
            console.print(f"[red]citygrid: {exc.message_en}[/]\n[red]citygrid：{exc.message_zh}[/]")
            raise typer.Exit(1) from None

    return wrapper


def prepare_database(settings: DatabaseSettings) -> str:
    """Make the database reachable, PostGIS-ready and migrated; return its URL."""
    if settings.uses_own_cluster:
        cluster = settings.cluster()
        cluster.up(say)
        db.ensure_database(cluster.url("postgres"), settings.database_name)
    url = settings.url()
    engine = db.make_engine(url, settings.gk_epsg)
    try:
        db.check_connection(engine)
        db.check_postgis(engine)
        if migrate.current_revision(engine) != migrate.head_revision():
            say("Applying database migrations")
            migrate.upgrade(engine)
    finally:
        engine.dispose()
    return url


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
    """Load the demo city 启东市 (grids, layers, a year of cases) unless data is already there."""
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

            written = demo_city.load(engine, seed, demo.year, step, force)
    finally:
        engine.dispose()
    if written is None:
        say("data already loaded; nothing changed (use --force to replace it)")
        return
    total = sum(written.values())
    say(f"demo city 启东市 loaded: {total:,} rows in {time.perf_counter() - started:.1f} s")


@app.command("serve")
@friendly
def serve(host: HostOption = None, port: PortOption = None) -> None:
    """Serve the API and the map pages (the database must be up: `citygrid db up`)."""
    _serve(DatabaseSettings(), ServerSettings(), host, port)


@app.command("run")
@friendly
def run(host: HostOption = None, port: PortOption = None) -> None:
    """Everything `make run` does: database up, migrations, demo city if empty, then serve."""
    settings, demo = DatabaseSettings(), DemoSettings()
    url = prepare_database(settings)
    _load_demo(url, settings, demo, demo.seed, force=False)
    _serve(settings, ServerSettings(), host, port)


def _serve(
    settings: DatabaseSettings, server: ServerSettings, host: str | None, port: int | None
) -> None:
    host, port = host or server.host, port or server.port
    app_ = create_app(settings)
    engine = db.make_engine(settings.url())
    try:
        db.check_connection(engine)
    finally:
        engine.dispose()
    base = f"http://{host}:{port}"
    say(f"API:          {base}/")
    say(f"API docs:     {base}/docs")
    say(f"layers:       {base}/layers")
    say(f"health:       {base}/health")
    for path, title in PAGES.values():
        say(f"map {title}: {base}{path}")
    uvicorn.run(app_, host=host, port=port, log_level="info")


@boundary_app.command("check")
@friendly
def boundary_check(
    path: Annotated[Path, typer.Argument(help="GeoJSON file of a county boundary")],
    gcj02: Annotated[
        bool, typer.Option("--gcj02", help="Coordinates are GCJ-02 (Amap/Tencent)")
    ] = False,
) -> None:
    """Read and check a boundary file; print its area and Gauss-Krüger zone."""
    county = load_county(path, "000000", path.stem, gcj02=gcj02)
    epsg = int(zones.geometry_zone([county.boundary])[0])
    area = float(zones.area_m2([county.boundary], epsg)[0])
    say(f"{path}: {len(county.boundary.geoms)} polygon(s), {area / 1e6:,.2f} km², zone EPSG:{epsg}")


def _public_url(settings: DatabaseSettings) -> str:
    url = db.parse_url(settings.url())
    return url.render_as_string(hide_password=True)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="citygrid")


if __name__ == "__main__":
    main()
