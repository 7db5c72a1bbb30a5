"""One deployment: it starts empty when asked, and its tokens are its own."""

from __future__ import annotations

import os
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api import cli
from api.app import create_app
from api.settings import DatabaseSettings, DemoSettings
from layers.store import db, migrate
from tests.accounts import (
    SERVER_ENV,
    TEST_AUTH,
    TEST_KEY,
    TEST_PASSWORD,
    ensure_account,
    token_for,
)
from tests.databases import PgServer, fresh_database
from tests.support import CITYGRID, free_port, stop, wait_healthy


@pytest.fixture
def unmigrated(pg_server: PgServer) -> Iterator[tuple[str, str]]:
    """A database with nothing in it, not even the schema: (API role URL, owner URL)."""
    name = f"citygrid_test_bare_{os.getpid()}"
    db.drop_database(pg_server.admin_url, name)
    db.ensure_database(pg_server.admin_url, name)
    try:
        yield pg_server.api_url(name), pg_server.url(name)
    finally:
        db.drop_database(pg_server.admin_url, name)


def _is_empty(owner_url: str) -> None:
    engine = db.make_engine(owner_url)
    try:
        assert migrate.current_revision(engine) == migrate.head_revision()
        with engine.connect() as conn:
            counts = conn.execute(
                text("""
                SELECT (SELECT count(*) FROM counties), (SELECT count(*) FROM grids),
                       (SELECT count(*) FROM cases), (SELECT count(*) FROM users)
            """)
            ).one()
            deployment = conn.execute(text("SELECT id FROM deployment")).scalar_one()
    finally:
        engine.dispose()
    assert tuple(counts) == (0, 0, 0, 0)
    uuid.UUID(deployment)  # made by the first migration


def test_run_no_demo_serves_an_empty_system_and_says_what_to_do(
    unmigrated: tuple[str, str], tmp_path: Path
) -> None:
    api_url, owner_url = unmigrated
    port, log = free_port(), tmp_path / "run.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [CITYGRID, "run", "--no-demo", "--port", str(port)],
            env={
                **os.environ,
                **SERVER_ENV,
                "CITYGRID_DATABASE_URL": api_url,
                "CITYGRID_MIGRATION_DATABASE_URL": owner_url,
                "CITYGRID_STATE_DIR": str(tmp_path / "state"),
            },
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_healthy(proc, f"http://127.0.0.1:{port}", log, 120)
        conformance = httpx.get(f"http://127.0.0.1:{port}/conformance", timeout=10)
        assert conformance.status_code == 200
    finally:
        stop(proc, group=True)
    said = log.read_text()
    assert "started empty" in said and "已启动空系统" in said
    for command in ("citygrid county add", "citygrid users add admin --role admin"):
        assert command in said
    assert "citygrid import grids" in said and "演示账号" not in said
    _is_empty(owner_url)


def test_citygrid_demo_none_starts_empty_too(
    unmigrated: tuple[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    api_url, owner_url = unmigrated
    monkeypatch.setenv("CITYGRID_DEMO", "none")
    settings = DatabaseSettings(database_url=api_url, migration_database_url=owner_url)
    cli.start(settings, DemoSettings(), no_demo=False)
    said = capsys.readouterr().err
    assert "started empty" in said and "citygrid county add" in said
    _is_empty(owner_url)
    cli.start(settings, DemoSettings(), no_demo=False)  # a second start: the same, still empty
    _is_empty(owner_url)


@pytest.fixture
def two_deployments(pg_server: PgServer) -> Iterator[tuple[str, str]]:
    """Two databases, each with the id its own migration made, and the same user in both."""
    first, second = fresh_database(pg_server, "deploy_a"), fresh_database(pg_server, "deploy_b")
    urls = (next(first), next(second))
    for url in urls:
        engine = db.make_engine(pg_server.as_owner(url))
        with engine.begin() as conn:  # as a migration leaves it, not renamed for the tests
            conn.execute(text("UPDATE deployment SET id = gen_random_uuid()::text"))
        engine.dispose()
        ensure_account(url, "leader", "leader")
    yield urls
    next(first, None)
    next(second, None)


def _deployment(url: str) -> str:
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("SELECT id FROM deployment")).scalar_one())
    finally:
        engine.dispose()


def test_a_token_of_another_deployment_is_refused(two_deployments: tuple[str, str]) -> None:
    ids = [_deployment(url) for url in two_deployments]
    assert ids[0] != ids[1]
    apps = [
        create_app(DatabaseSettings(database_url=url), auth_settings=TEST_AUTH)
        for url in two_deployments
    ]
    with TestClient(apps[0]) as first, TestClient(apps[1]) as second:
        mine = {"Authorization": f"Bearer {token_for('leader', deployment=ids[0])}"}
        assert first.get("/auth/me", headers=mine).status_code == 200
        answer = second.get("/auth/me", headers=mine)
        assert answer.status_code == 401 and answer.json()["code"] == "token_foreign"
        assert "本系统" in answer.json()["message"]
        second.cookies.set("citygrid_session", token_for("leader", deployment=ids[0]))
        page = second.get("/auth/me")
        assert page.status_code == 401 and page.json()["code"] == "token_foreign"
        second.cookies.clear()
        # a token naming no deployment (as every deployment signed them before) is refused too
        now = int(time.time())
        unnamed = jwt.encode(
            {"sub": "leader", "sid": "x", "aud": "citygrid", "iat": now, "exp": now + 60},
            TEST_KEY,
            algorithm="HS256",
        )
        answer = first.get("/auth/me", headers={"Authorization": f"Bearer {unnamed}"})
        assert answer.status_code == 401 and answer.json()["code"] == "token_foreign"
        # a token the deployment issues at sign-in names it
        issued = first.post(
            "/auth/token", data={"username": "leader", "password": TEST_PASSWORD}
        ).json()["access_token"]
        claims = jwt.decode(issued, options={"verify_signature": False})
        assert claims["iss"] == claims["aud"] == f"citygrid:{ids[0]}"
        assert (
            second.get("/auth/me", headers={"Authorization": f"Bearer {issued}"}).status_code == 401
        )
    assert re.fullmatch(r"[0-9a-f-]{36}", ids[0])
