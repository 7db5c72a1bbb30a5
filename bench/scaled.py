"""The scaled city the benchmarks share, a signed-in admin for them, and servers started and stopped.

`citygrid_bench` on the project's cluster holds 启东 at 1,000,000 cases, 100,000 illegal buildings
and 100,000 billboards; it is loaded once (a few minutes) and kept for later runs.
"""

from __future__ import annotations

import atexit
import os
import secrets
import signal
import subprocess
import sys
import time
from datetime import timedelta

import httpx
from pydantic import SecretStr
from sqlalchemy import text

from api.auth import Issuer
from api.settings import AuthSettings, DatabaseSettings
from layers.accounts import users
from layers.demo import load as demo_city
from layers.store import db, migrate
from layers.store.deployment import deployment_id

DATABASE = "citygrid_bench"
SCALE = demo_city.Scale(
    cases=1_000_000 / 143_652, billboards=100_000 / 1_844, illegal_buildings=100_000 / 420
)
BENCH_USER = "bench-admin"
DEMO_DATABASE = "citygrid_bench_demo"  # the demo city as it ships (143,652 cases): quick to load


def prepare(settings: DatabaseSettings, demo: bool = False, database: str | None = None) -> str:
    """The benchmark database (`database` when given, a copy of the scaled city, say), loaded
    once with the scaled city (or with the demo city as it ships when `demo`); its URL. A
    cluster started for it is stopped when the process exits."""
    default, scale, least = (
        (DEMO_DATABASE, demo_city.Scale(), 100_000) if demo else (DATABASE, SCALE, 900_000)
    )
    database = database or default
    cluster = settings.cluster()
    if cluster.up(print):  # started here: stopped again when the benchmark ends
        atexit.register(cluster.down, print)
    db.ensure_database(cluster.url("postgres"), database)
    url = cluster.url(database)
    engine = db.make_engine(url)
    try:
        migrate.upgrade(engine)
        with engine.connect() as conn:
            cases = conn.execute(text("SELECT count(*) FROM cases")).scalar_one()
        if cases < least:
            print(f"loading the city into {database} (a few minutes, once)", flush=True)
            demo_city.load(engine, 20231231, 2023, force=True, scale=scale)
        with engine.begin() as conn:
            if users.find(conn, BENCH_USER) is None:
                password = users.hash_password(secrets.token_urlsafe(16))
                users.add(conn, BENCH_USER, "admin", password, "bench")
    finally:
        engine.dispose()
    return url


def signed_in(url: str) -> tuple[dict[str, str], dict[str, str]]:
    """A fresh signing key for the server's environment, and the bench admin's header for it
    (naming the deployment of the database at `url`)."""
    env, headers = signed_in_as(url, [BENCH_USER])
    return env, headers[BENCH_USER]


def signed_in_as(
    url: str, usernames: list[str]
) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """A fresh signing key for the server's environment, and each account's header for it (each
    its own session, as after a sign-in), naming the deployment of the database at `url`."""
    key = secrets.token_urlsafe(48)
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            deployment = deployment_id(conn)
    finally:
        engine.dispose()
    issuer = Issuer.from_settings(AuthSettings(secret_key=SecretStr(key)), deployment)
    headers = {}
    for name in usernames:
        token = issuer.issue(name, timedelta(hours=6), secrets.token_urlsafe(18))
        headers[name] = {"Authorization": f"Bearer {token}"}
    return {"CITYGRID_SECRET_KEY": key}, headers


def start(command: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    """A server in its own process group, once it answers on `port`."""
    proc = subprocess.Popen(
        command,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    for _ in range(120):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/conformance", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    stop(proc)
    sys.exit(f"server on port {port} did not start: {' '.join(command)}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a server started by `start`, and its workers."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def citygrid_server(
    url: str, port: int, workers: int, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    """citygrid under uvicorn on the benchmark database, its workers as `citygrid serve` runs
    them (api/workers.py)."""
    command = [
        sys.executable, "-m", "api.workers", "api.asgi:build", "--factory",
        "--port", str(port), "--workers", str(workers), "--log-level", "warning",
    ]  # fmt: skip
    return start(command, {"CITYGRID_DATABASE_URL": url, **env}, port)
