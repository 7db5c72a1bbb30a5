"""Test databases: each one a copy of a template migrated once per session, so a new migration
or layer costs one more upgrade per run, not one per module."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import create_engine, make_url, text

from layers.demo import load as demo_city
from layers.places import counties as county_rows
from layers.store import db, migrate, roles
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


TEMPLATE = f"citygrid_test_template_{os.getpid()}"
_templates: set[PgServer] = set()


def _migrated_template(server: PgServer) -> str:
    """The session's template on `server`: migrated, rights granted, the tests' deployment id,
    no county and no rows; made on first use, no connection left open (a template must have none)."""
    if server not in _templates:
        db.drop_database(server.admin_url, TEMPLATE)
        db.ensure_database(server.admin_url, TEMPLATE)
        engine = db.make_engine(server.url(TEMPLATE))
        try:
            migrate.upgrade(engine)
            with engine.begin() as conn:
                roles.grant_api_rights(conn, roles.API_ROLE)
                name_deployment(conn)
        finally:
            engine.dispose()
        _templates.add(server)
    return TEMPLATE


def drop_template(server: PgServer) -> None:
    """Drop the session's template, if one was made on `server`."""
    if server in _templates:
        db.drop_database(server.admin_url, TEMPLATE)
        _templates.discard(server)


def _clone(server: PgServer, name: str) -> None:
    template = _migrated_template(server)
    engine = create_engine(db.parse_url(server.admin_url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            quote = conn.dialect.identifier_preparer.quote
            conn.execute(text(f"CREATE DATABASE {quote(name)} TEMPLATE {quote(template)}"))
    finally:
        engine.dispose()


def fresh_database(server: PgServer, suffix: str, with_county: bool = True) -> Iterator[str]:
    """A new database on `server`, migrated (a copy of the session's template; the demo's county
    stored, no rows, unless `with_county` is false); yields the URL the API connects with (the
    API's role, rows only), dropped when the caller is done with it."""
    name = f"citygrid_test_{suffix}_{os.getpid()}"
    db.drop_database(server.admin_url, name)
    _clone(server, name)
    if with_county:
        engine = db.make_engine(server.url(name))
        try:
            with engine.begin() as conn:
                county_rows.add(conn, demo_city.qidong(), demo_city.COUNTY_SEAT)
        finally:
            engine.dispose()
    try:
        yield server.api_url(name)
    finally:
        db.drop_database(server.admin_url, name)
