"""Engines and connections, with clear errors when the database cannot be used."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, DBAPIError, DisconnectionError, InvalidatePoolError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from layers.errors import (
    CitygridError,
    ConcurrentChange,
    DatabaseUnreachable,
    PostgisMissing,
    QueryTimeout,
)
from layers.store.raw import CLIENT_ENCODING

# Every bureau works on China Standard Time: "today", day boundaries of statistics and the day a
# grid change takes effect are the bureau's, whatever the server's clock zone.
BUREAU_TIMEZONE = "Asia/Shanghai"


# Seconds a client is asked to wait (Retry-After) when the database cannot be used: about the
# time PostgreSQL takes to restart.
RETRY_AFTER_S = 5
# SQLSTATEs of a server that cannot be used now: too many connections, shutting down or starting
# up; class 08 (connection exceptions) is matched by its prefix.
UNAVAILABLE_STATES = frozenset({"53300", "57P01", "57P02", "57P03"})
# Serialization failure and deadlock: the transaction lost a race with another one.
CONFLICT_STATES = frozenset({"40001", "40P01"})
# query_canceled: the statement ran past its statement_timeout (or was cancelled by an admin).
CANCELLED_STATE = "57014"


@dataclass
class StatementBudget:
    """How long each statement of the current request may run (ms; 0 = no limit)."""

    timeout_ms: int
    kind: str = "read"


# The budget of the request being served; None outside requests (CLI, background watchers).
STATEMENT_BUDGET: ContextVar[StatementBudget | None] = ContextVar("statement_budget", default=None)


def _describe(url: URL) -> str:
    return f"{url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"


def parse_url(url: str) -> URL:
    """Parse a database URL, refusing anything that is not PostgreSQL."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseUnreachable(
            "CITYGRID_DATABASE_URL is not a valid database URL "
            "(expected postgresql://user:password@host:port/database).",
            "CITYGRID_DATABASE_URL 不是有效的数据库地址（应为 postgresql://用户:密码@主机:端口/数据库）。",
        ) from exc
    if parsed.get_backend_name() != "postgresql":
        raise DatabaseUnreachable(
            f"The database URL names {parsed.get_backend_name()!r}; citygrid needs PostgreSQL with PostGIS.",
            f"数据库地址指向 {parsed.get_backend_name()!r}；citygrid 需要 PostgreSQL + PostGIS。",
        )
    return parsed


def session_statement(
    gk_epsg: int | None, statement_timeout_ms: int | None = None
) -> tuple[str, tuple[list[str], list[str]]]:
    """The statement (and its values) giving a new connection the session's settings: the
    bureau's time zone, no JIT, a forced Gauss-Krüger zone, and a statement timeout for every
    statement of the session when one is given."""
    # PostGIS functions look expensive to the planner, whose JIT then spends more time compiling
    # than the query runs (400 ms for a 5 ms tile).
    settings = {"jit": "off", "timezone": BUREAU_TIMEZONE}
    if gk_epsg is not None:
        settings["citygrid.gk_srid"] = str(gk_epsg)
    if statement_timeout_ms is not None:
        settings["statement_timeout"] = f"{statement_timeout_ms}ms"
    sql = (
        "SELECT set_config(name, value, false) "
        "FROM unnest(%s::text[], %s::text[]) AS s(name, value)"
    )
    return sql, (list(settings), list(settings.values()))


TIMEOUT_SQL = "SELECT set_config('statement_timeout', %s, true)"
TIMEOUT_SET = "citygrid_timeout_set"  # connection info: the timeout the checkout's ping set


def _request_timeout(driver: psycopg.Connection[Any]) -> str | None:
    """The statement timeout of the request being served (None outside requests, and for
    autocommit connections, whose settings would outlive their statement)."""
    budget = STATEMENT_BUDGET.get()
    if budget is None or driver.autocommit:
        return None
    return f"{budget.timeout_ms}ms"


def make_engine(
    url: str,
    gk_epsg: int | None = None,
    pool_size: int = 5,
    application_name: str = "citygrid",
    max_overflow: int = 10,
    pool_timeout_s: float = 30.0,
) -> Engine:
    """An engine for `url`; `gk_epsg` forces the Gauss-Krüger zone the database measures in."""
    engine = create_engine(
        parse_url(url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout_s,
        pool_pre_ping=False,  # `_ping` below, which also opens the request's transaction
        connect_args={
            "connect_timeout": 10,
            "application_name": application_name,
            "client_encoding": CLIENT_ENCODING,
        },
    )

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_conn, record, _proxy):  # type: ignore[no-untyped-def]
        """Refuse a connection the server has dropped (a restart), as a pre-ping would; in a
        request, the ping is the statement that sets its transaction's timeout (one round trip
        fewer than a ping, then the timeout)."""
        timeout = _request_timeout(dbapi_conn)
        try:
            if timeout is None:
                engine.dialect.do_ping(dbapi_conn)
                return
            with dbapi_conn.cursor() as cur:  # the driver's implicit BEGIN comes first
                cur.execute(TIMEOUT_SQL, (timeout,))
        except psycopg.Error as exc:
            if engine.dialect.is_disconnect(exc, dbapi_conn, None):
                raise InvalidatePoolError() from exc
            raise
        record.info[TIMEOUT_SET] = timeout

    @event.listens_for(engine, "begin")
    def _statement_timeout(conn):  # type: ignore[no-untyped-def]
        driver = conn.connection.driver_connection
        timeout = _request_timeout(driver)
        already = conn.connection.info.pop(TIMEOUT_SET, None)
        if timeout is None or (
            already == timeout and driver.info.transaction_status == TransactionStatus.INTRANS
        ):  # none wanted, or set by the ping that began this very transaction
            return
        # Local to the transaction just begun: the pooled connection keeps no limit afterwards.
        with driver.cursor() as cur:
            cur.execute(TIMEOUT_SQL, (timeout,))

    @event.listens_for(engine, "connect")
    def _session_settings(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        with dbapi_conn.cursor() as cur:
            cur.execute(*session_statement(gk_epsg))
        dbapi_conn.commit()

    return engine


def check_connection(engine: Engine) -> None:
    """Connect once, turning driver errors into one clear sentence."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise DatabaseUnreachable(
            f"Cannot connect to the database at {_describe(engine.url)}: {reason}",
            f"无法连接数据库 {_describe(engine.url)}：{reason}",
        ) from exc


def check_postgis(engine: Engine) -> None:
    """Fail clearly when the server cannot provide PostGIS."""
    with engine.connect() as conn:
        available = conn.execute(
            text("SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'")
        ).first()
    if available is None:
        raise PostgisMissing(
            f"The database server at {_describe(engine.url)} has no PostGIS: install PostGIS 3 on it "
            "(Debian/Ubuntu: apt-get install postgresql-15-postgis-3).",
            f"数据库服务器 {_describe(engine.url)} 未安装 PostGIS：请在服务器上安装 PostGIS 3"
            "（Debian/Ubuntu：apt-get install postgresql-15-postgis-3）。",
        )


def ensure_database(admin_url: str, name: str) -> bool:
    """Create database `name` on the server of `admin_url` if missing; True when created."""
    engine = create_engine(parse_url(admin_url), isolation_level="AUTOCOMMIT")
    try:
        check_connection(engine)
        with engine.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).first()
            if exists:
                return False
            quoted = conn.dialect.identifier_preparer.quote(name)
            conn.execute(text(f"CREATE DATABASE {quoted}"))
            return True
    finally:
        engine.dispose()


def drop_database(admin_url: str, name: str) -> None:
    """Drop database `name`, closing other sessions on it first."""
    engine = create_engine(parse_url(admin_url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            quoted = conn.dialect.identifier_preparer.quote(name)
            conn.execute(text(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
    finally:
        engine.dispose()


def unreachable() -> DatabaseUnreachable:
    """The error a client meets while the database cannot be reached or refuses new work."""
    return DatabaseUnreachable(
        "The database cannot be reached at the moment; nothing was changed: try again shortly.",
        "数据库暂时无法连接，本次请求未做任何修改：请稍后重试。",
        retry_after=RETRY_AFTER_S,
    )


def query_timeout() -> QueryTimeout:
    """The error a client meets when a statement of its request ran out of time."""
    budget = STATEMENT_BUDGET.get()
    seconds = f"{budget.timeout_ms / 1000:g}" if budget is not None else "?"
    return QueryTimeout(
        f"The request took longer than the {seconds} s it may run and was stopped; nothing was "
        "changed: narrow it (a smaller area, a shorter period, fewer rows) or ask the "
        "administrator to raise the limit.",
        f"请求运行超过 {seconds} 秒的上限，已被中止，本次未做任何修改：请缩小范围（更小的区域、"
        "更短的时间段、更少的行）后重试，或请管理员调整上限。",
    )


def _driver_error(exc: BaseException) -> BaseException | None:
    if isinstance(exc, DBAPIError):
        return exc.orig
    return exc if isinstance(exc, psycopg.Error) else None


def database_error(exc: BaseException) -> CitygridError | None:
    """The domain error for a database failure no client caused; None for any other error."""
    if isinstance(exc, PoolTimeout | DisconnectionError):
        return unreachable()
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return unreachable()
    orig = _driver_error(exc)
    if orig is None:
        return None
    state = getattr(orig, "sqlstate", None)
    if state == CANCELLED_STATE:
        return query_timeout()
    if state in CONFLICT_STATES:
        return ConcurrentChange(
            "Another change of the same data came first; nothing was changed: try again.",
            "同一数据刚被其他修改占用，本次未做任何修改：请重试。",
        )
    if state is not None:
        return unreachable() if state.startswith("08") or state in UNAVAILABLE_STATES else None
    # without a state the driver itself failed: no connection, or a connection lost mid-way
    return (
        unreachable()
        if isinstance(orig, psycopg.OperationalError | psycopg.InterfaceError)
        else None
    )
