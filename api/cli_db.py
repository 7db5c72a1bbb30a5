"""What the commands share: a database made ready to serve, one transaction on the configured
database, and the name changes are recorded under."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection

from api.console import say
from api.settings import DatabaseSettings
from layers.store import db, migrate, roles


def actor() -> str:
    """Who a command's change is recorded as in the audit log: the operating-system user."""
    return f"cli:{getpass.getuser()}"


@contextmanager
def transaction() -> Iterator[Connection]:
    """A connection to the configured database inside one transaction, closed afterwards."""
    settings = DatabaseSettings()
    engine = db.make_engine(settings.url(), settings.gk_epsg)
    try:
        db.check_connection(engine)
        with engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()


def start_own_cluster(settings: DatabaseSettings) -> None:
    """When the settings name the project's own cluster: start it, with its database and the API
    role."""
    if settings.uses_own_cluster:
        cluster = settings.cluster()
        cluster.up(say)
        db.ensure_database(cluster.url("postgres"), settings.database_name)
        admin = db.make_engine(cluster.url("postgres"))
        try:
            roles.ensure_login_role(admin, roles.API_ROLE, cluster.api_password())
        finally:
            admin.dispose()


def prepare_database(settings: DatabaseSettings) -> str:
    """Make the database reachable, PostGIS-ready and migrated, the API's role able to use it;
    return the owner's URL."""
    start_own_cluster(settings)
    url = settings.migration_url()
    engine = db.make_engine(url, settings.gk_epsg, application_name=roles.MIGRATION_APPLICATION)
    try:
        db.check_connection(engine)
        db.check_postgis(engine)
        if migrate.current_revision(engine) != migrate.head_revision():
            say("Applying database migrations")
            migrate.upgrade(engine)
        api_role = db.parse_url(settings.url()).username
        if api_role and api_role != engine.url.username:
            with engine.begin() as conn:
                roles.grant_api_rights(conn, api_role)
    finally:
        engine.dispose()
    return url
