"""Session fixtures: a real PostGIS (the project's own cluster or CITYGRID_DATABASE_URL)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Engine, make_url

from api.settings import DatabaseSettings, DemoSettings
from layers import counties as county_rows
from layers import db, migrate, roles
from layers.demo import load as demo_city
from tests.accounts import name_deployment


@dataclass(frozen=True)
class PgServer:
    """A PostgreSQL server the tests may create databases on, and the password of its API role."""

    admin_url: str
    api_password: str

    def url(self, database: str) -> str:
        """URL of a database on this server, as the administrator (who owns the schema)."""
        return make_url(self.admin_url).set(database=database).render_as_string(hide_password=False)

    def api_url(self, database: str) -> str:
        """URL of a database on this server, as the API's role."""
        url = make_url(self.admin_url).set(
            database=database, username=roles.API_ROLE, password=self.api_password
        )
        return url.render_as_string(hide_password=False)

    def as_owner(self, url: str) -> str:
        """The same database as the administrator: for loaders and migrations."""
        database = make_url(url).database
        assert database is not None
        return self.url(database)


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
        yield _with_api_role(admin.render_as_string(hide_password=False), secrets.token_urlsafe(24))
        return
    cluster = settings.cluster()
    started = cluster.up(_log)
    try:
        yield _with_api_role(cluster.url("postgres"), cluster.api_password())
    finally:
        if started:
            cluster.down(_log)


def fresh_database(server: PgServer, suffix: str, with_county: bool = True) -> Iterator[str]:
    """A new database on `server`, migrated by its owner (the demo's county stored, no rows,
    unless `with_county` is false); yields the URL the API connects with (the API's role, rows
    only), dropped when the caller is done with it."""
    name = f"citygrid_test_{suffix}_{os.getpid()}"
    db.drop_database(server.admin_url, name)
    db.ensure_database(server.admin_url, name)
    engine = db.make_engine(server.url(name))
    try:
        migrate.upgrade(engine)
        with engine.begin() as conn:
            roles.grant_api_rights(conn, roles.API_ROLE)
            name_deployment(conn)
            if with_county:
                county_rows.add(conn, demo_city.qidong(), demo_city.COUNTY_SEAT)
    finally:
        engine.dispose()
    try:
        yield server.api_url(name)
    finally:
        db.drop_database(server.admin_url, name)


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
def empty_url(pg_server: PgServer) -> Iterator[str]:
    """A migrated database with nothing in it, not even a county."""
    yield from fresh_database(pg_server, "empty", with_county=False)


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
