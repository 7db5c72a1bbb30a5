"""The `citygrid` command line."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console

from api.settings import DatabaseSettings, DemoSettings, ServerSettings
from layers import db, migrate
from layers.cluster import State
from layers.errors import CitygridError

console = Console(stderr=True)
app = typer.Typer(help="citygrid: grids, layers and cases of a city-management bureau.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
db_app = typer.Typer(help="The PostGIS database: the project's own cluster or CITYGRID_DATABASE_URL.",
                     no_args_is_help=True)
demo_app = typer.Typer(help="The demo city (启东市).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(demo_app, name="demo")

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


def _public_url(settings: DatabaseSettings) -> str:
    url = db.parse_url(settings.url())
    return url.render_as_string(hide_password=True)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="citygrid")


if __name__ == "__main__":
    sys.exit(main())
