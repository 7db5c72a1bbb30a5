"""The database's own cost of a page: the statements citygrid sends for one request, replayed by
pgbench at the same concurrency as wrk.

The statements are captured where psycopg sends them (the transaction's timeout, the count for
numberMatched, the page, a server-side cursor's DECLARE, FETCHes and CLOSE, the end of the
transaction; the read pool's single statement, in autocommit), from citygrid run in this process on the same database, with each bound value
written in as a literal.
"""

from __future__ import annotations

import inspect
import os
import re
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

from api.app import create_app
from api.settings import DatabaseSettings
from layers.store.db import STATEMENT_BUDGET


def pgbench() -> str:
    """The pgbench of the PostgreSQL the project uses (on PATH, else under /usr/lib/postgresql)."""
    found = shutil.which("pgbench") or next(
        (str(p) for p in sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"))), None
    )
    if found is None:
        raise SystemExit("pgbench not found: install PostgreSQL's client programs")
    return found


def _literal(conn: psycopg.Connection[Any], query: Any, params: Any) -> str:
    """The statement with its values written in, as psycopg's client-side binding writes them."""
    if isinstance(query, bytes):
        query = query.decode()
    if not isinstance(query, str):
        query = query.as_string(conn)
    return query if params is None else psycopg.ClientCursor(conn).mogrify(query, params)


class _Recorder:
    """What each patched psycopg method sends, as statements with their values written in."""

    def __init__(self, render: psycopg.Connection[Any]) -> None:
        self.render = render

    def _begin(self, conn: psycopg.Connection[Any]) -> list[str]:
        idle = conn.info.transaction_status == TransactionStatus.IDLE
        return ["BEGIN"] if idle and not conn.autocommit else []  # the driver's implicit BEGIN

    def execute(
        self, cur: psycopg.Cursor[Any], query: Any, params: Any = None, **_: Any
    ) -> list[str]:
        return [*self._begin(cur.connection), _literal(self.render, query, params)]

    def declare(
        self, cur: psycopg.ServerCursor[Any], query: Any, params: Any = None, **_: Any
    ) -> list[str]:
        statement = f'DECLARE "{cur.name}" CURSOR FOR {_literal(self.render, query, params)}'
        return [*self._begin(cur.connection), statement]

    def fetch(self, cur: psycopg.ServerCursor[Any], size: int = 0) -> list[str]:
        return [f'FETCH FORWARD {size or cur.arraysize} FROM "{cur.name}"']

    def close(self, cur: psycopg.ServerCursor[Any]) -> list[str]:
        return [] if cur.closed else [f'CLOSE "{cur.name}"']

    def commit(self, conn: psycopg.Connection[Any]) -> list[str]:
        return [] if conn.info.transaction_status == TransactionStatus.IDLE else ["COMMIT"]

    def rollback(self, conn: psycopg.Connection[Any]) -> list[str]:
        return [] if conn.info.transaction_status == TransactionStatus.IDLE else ["ROLLBACK"]


PATCHED = [
    (psycopg.Cursor, "execute", "execute"),
    (psycopg.AsyncCursor, "execute", "execute"),  # the read pool's (`layers.store.aio`)
    (psycopg.ServerCursor, "execute", "declare"),
    (psycopg.ServerCursor, "fetchmany", "fetch"),
    (psycopg.ServerCursor, "close", "close"),
    (psycopg.Connection, "commit", "commit"),
    (psycopg.Connection, "rollback", "rollback"),
]


def _recorded(original: Any, record: Callable[..., list[str]], sent: list[str]) -> Any:
    if inspect.iscoroutinefunction(original):

        @wraps(original)
        async def awaited(self: Any, *args: Any, **kwargs: Any) -> Any:
            if STATEMENT_BUDGET.get() is not None:
                sent.extend(record(self, *args, **kwargs))
            return await original(self, *args, **kwargs)

        return awaited

    @wraps(original)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if STATEMENT_BUDGET.get() is not None:  # only what a request sends
            sent.extend(record(self, *args, **kwargs))
        return original(self, *args, **kwargs)

    return wrapper


@contextmanager
def _recording(render: psycopg.Connection[Any]) -> Iterator[list[str]]:
    """Every statement psycopg sends while a request is served (the request's statement budget
    is set), in order; other threads' statements (notification listeners) are left out."""
    recorder, sent = _Recorder(render), list[str]()
    originals = [(cls, name, getattr(cls, name)) for cls, name, _ in PATCHED]
    for (cls, name, original), (_, _, method) in zip(originals, PATCHED, strict=True):
        setattr(cls, name, _recorded(original, getattr(recorder, method), sent))
    try:
        yield sent
    finally:
        for cls, name, original in originals:
            setattr(cls, name, original)


def statements(
    url: str, env: dict[str, str], headers: dict[str, str], paths: list[str]
) -> dict[str, list[str]]:
    """What citygrid sends the database for each path (the second of two requests, so that
    caches filled on first use are filled)."""
    with warnings.catch_warnings():  # the test client's notice about its HTTP library
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    saved = {name: os.environ.get(name) for name in [*env, "CITYGRID_DATABASE_URL"]}
    os.environ.update({**env, "CITYGRID_DATABASE_URL": url})
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    try:
        with psycopg.connect(plain) as render, TestClient(create_app(DatabaseSettings())) as client:
            out = {}
            for path in paths:
                client.get(path, headers=headers).raise_for_status()
                with _recording(render) as sent:
                    client.get(path, headers=headers).raise_for_status()
                out[path] = list(sent)
            return out
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def script(sent: list[str]) -> str:
    """A pgbench script of the statements (one transaction of one request)."""
    return "".join(f"{s.strip()};\n" for s in sent)


def rate(url: str, sent: list[str], seconds: int, clients: int) -> float:
    """Transactions per second of pgbench replaying `sent` with `clients` connections (each
    statement prepared once per connection, as citygrid's driver prepares repeated ones)."""
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    with tempfile.TemporaryDirectory(prefix="citygrid-sql-") as tmp:
        path = Path(tmp) / "request.sql"
        path.write_text(script(sent))
        threads = min(clients, os.cpu_count() or 1)
        command = [pgbench(), "-n", "-M", "prepared", "-f", str(path)]
        command += ["-c", str(clients), "-j", str(threads), "-T", str(seconds), plain]
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)
    if match is None:
        raise SystemExit(f"pgbench said:\n{out}")
    return float(match.group(1))
