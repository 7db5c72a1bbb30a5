"""Readiness: a list of named checks, each saying whether one thing the service needs works.

The JT/T 808 vehicle gateway is checked ("gateway": its port accepts a connection) when the
configuration says this API runs beside one (CITYGRID_JT808_READY_CHECK, set by `citygrid run`).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from layers.store import migrate

# A check answers None when all is well, else what is wrong (English, Chinese): no host names,
# ports, user names or driver messages, which an anonymous caller must not learn.
Problem = tuple[str, str] | None
UNREACHABLE_ERRORS = (DBAPIError, DisconnectionError, PoolTimeout)


@dataclass(frozen=True)
class Check:
    """One thing the service needs, by name."""

    name: str
    run: Callable[[Engine], Problem]


@cache
def _head() -> str | None:
    return migrate.head_revision()


def database(engine: Engine) -> Problem:
    """The database answers a query."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except UNREACHABLE_ERRORS:
        return ("the database cannot be reached", "无法连接数据库")
    return None


def migrations(engine: Engine) -> Problem:
    """The database's schema is at the revision this code ships (`citygrid db upgrade` else)."""
    try:
        current = migrate.current_revision(engine)
    except UNREACHABLE_ERRORS:
        return ("the schema revision cannot be read", "无法读取数据库结构版本")
    if current != _head():
        return (
            "the database schema is not at this release's revision: run the migrations",
            "数据库结构不是本版本的版本：请执行数据库迁移",
        )
    return None


CHECKS: tuple[Check, ...] = (Check("database", database), Check("migrations", migrations))


def gateway(host: str, port: int) -> Check:
    """The JT/T 808 gateway accepts a connection on its port."""

    def listening(_: Engine) -> Problem:
        try:
            with socket.create_connection((host, port), timeout=2):
                return None
        except OSError:
            return ("the JT/T 808 gateway is not listening", "JT/T 808 车载终端网关未在监听")

    return Check("gateway", listening)


def run(engine: Engine, checks: tuple[Check, ...] = CHECKS) -> list[tuple[str, Problem]]:
    """Each check's name and problem (None when it passed), in order; after a failed database
    check the others are not tried (they would only wait for it again)."""
    found: list[tuple[str, Problem]] = []
    for check in checks:
        if found and found[0][0] == "database" and found[0][1] is not None:
            found.append(
                (
                    check.name,
                    ("not checked: the database cannot be reached", "未检查：无法连接数据库"),
                )
            )
            continue
        found.append((check.name, check.run(engine)))
    return found
