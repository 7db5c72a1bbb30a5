"""Session fixtures: a real PostGIS (the project's own cluster or CITYGRID_DATABASE_URL)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from api.settings import DatabaseSettings, DemoSettings
from layers.demo import load as demo_city
from layers.store import db, roles
from tests.databases import PgServer, drop_template, fresh_database
from tests.world import World, make_world


def _with_api_role(admin_url: str, password: str) -> PgServer:
    engine = db.make_engine(admin_url)
    try:
        roles.ensure_login_role(engine, roles.API_ROLE, password)
    finally:
        engine.dispose()
    return PgServer(admin_url, password)


def _log(message: str) -> None:
    print(f"[citygrid tests] {message}")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The server: started for the session if it was not running, stopped again afterwards."""
    settings = DatabaseSettings()
    if not settings.uses_own_cluster:
        admin = db.parse_url(settings.migration_url()).set(database="postgres")
        server = _with_api_role(
            admin.render_as_string(hide_password=False), secrets.token_urlsafe(24)
        )
        try:
            yield server
        finally:
            drop_template(server)
        return
    cluster = settings.cluster()
    started = cluster.up(_log)
    server = _with_api_role(cluster.url("postgres"), cluster.api_password())
    try:
        yield server
    finally:
        drop_template(server)
        if started:
            cluster.down(_log)


@pytest.fixture(scope="session")
def database_url(pg_server: PgServer) -> Iterator[str]:
    """A migrated database holding the demo city, shared by the session (tests must not write)."""
    yield from fresh_database(pg_server, "demo")


@pytest.fixture(scope="session")
def engine(pg_server: PgServer, database_url: str) -> Iterator[Engine]:
    """An engine on the session database, as its owner (the demo loader vacuums)."""
    eng = db.make_engine(pg_server.as_owner(database_url))
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def demo(engine: Engine) -> dict[str, int]:
    """Load the demo city once per session, with the project's own loader."""
    settings = DemoSettings()
    written = demo_city.load(engine, settings.seed, settings.year)
    assert written is not None, "the session database was expected to be empty"
    return written


@pytest.fixture
def scratch_url(pg_server: PgServer) -> Iterator[str]:
    """A migrated database for one test that writes: the demo's county stored, no rows."""
    yield from fresh_database(pg_server, "scratch")


@pytest.fixture
def scratch_owner(pg_server: PgServer, scratch_url: str) -> Iterator[Engine]:
    """The scratch database as its owner: for migrating it down and up, or writing past the API."""
    eng = db.make_engine(pg_server.as_owner(scratch_url))
    yield eng
    eng.dispose()


@pytest.fixture
def empty_url(pg_server: PgServer) -> Iterator[str]:
    """A migrated database with nothing in it, not even a county."""
    yield from fresh_database(pg_server, "empty", with_county=False)


@pytest.fixture(scope="module")
def world(request: pytest.FixtureRequest, pg_server: PgServer) -> Iterator[World]:
    """The shared world (tests/world.py) in a database of the module's own."""
    module = request.module.__name__.rsplit(".", 1)[-1]
    yield from make_world(pg_server, module.removeprefix("test_"))


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright."""
    from playwright.sync_api import sync_playwright

    from tests.support import CHROMIUM_ARGS, chromium_path

    executable = chromium_path()
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
