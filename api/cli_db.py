"""What the account and unit commands share: one transaction on the configured database, and
the name their changes are recorded under."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection

from api.settings import DatabaseSettings
from layers import db


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
