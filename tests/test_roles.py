"""Least privilege: the API connects as a role that reads and writes rows and can do nothing else."""

from __future__ import annotations

import stat
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, make_url, text
from sqlalchemy.exc import ProgrammingError

from api.app import create_app
from api.settings import DatabaseSettings
from layers.store import db, roles
from tests.accounts import TEST_AUTH, sign_in
from tests.databases import PgServer
from tests.support import citygrid

SERVER_FILE_ROLES = ("pg_execute_server_program", "pg_read_server_files", "pg_write_server_files")


@pytest.fixture
def api_engine(database_url: str) -> Iterator[Engine]:
    eng = db.make_engine(database_url)
    yield eng
    eng.dispose()


def test_the_api_url_names_the_api_role(database_url: str) -> None:
    assert make_url(database_url).username == roles.API_ROLE


def test_the_api_role_has_no_special_rights(engine: Engine) -> None:
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls "
                "FROM pg_roles WHERE rolname = :role"
            ),
            {"role": roles.API_ROLE},
        ).one()
        members = {
            name: conn.execute(
                text("SELECT pg_has_role(:role, :name, 'MEMBER')"),
                {"role": roles.API_ROLE, "name": name},
            ).scalar_one()
            for name in SERVER_FILE_ROLES
        }
    assert tuple(row) == (False, False, False, False, False)
    assert not any(members.values()), members


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TABLE sneaky (id int)",
        "ALTER TABLE cases ADD COLUMN sneaky int",
        "DROP TABLE audit_log",
        "TRUNCATE cases",
        "CREATE INDEX sneaky ON cases (id)",
        "COPY (SELECT 1) TO PROGRAM 'id'",
        "COPY cases FROM '/etc/passwd'",
        "SELECT pg_read_file('/etc/passwd')",
        "CREATE ROLE sneaky",
        "CREATE DATABASE sneaky",
        "UPDATE alembic_version SET version_num = '0001'",
    ],
)
def test_the_api_role_is_refused_what_it_does_not_need(api_engine: Engine, statement: str) -> None:
    with api_engine.connect() as conn:
        if statement.startswith("CREATE DATABASE"):
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        with pytest.raises(ProgrammingError) as refused:
            conn.execute(text(statement))
    assert refused.value.orig is not None
    assert refused.value.orig.sqlstate == "42501"  # insufficient_privilege


def test_the_api_role_reads_and_writes_rows(api_engine: Engine) -> None:
    with api_engine.connect() as conn:
        conn.execute(text("CREATE TEMP TABLE scratch (id int)"))  # TEMP: allowed, session-local
        fid = conn.execute(
            text("""
            INSERT INTO billboards (adcode, geom, type, face_area_m2)
            VALUES ('320681', ST_SetSRID(ST_MakePoint(121.6, 31.8), 4490), 'wall', 3) RETURNING id
        """)
        ).scalar_one()
        conn.execute(text("UPDATE billboards SET face_area_m2 = 4 WHERE id = :id"), {"id": fid})
        conn.execute(text("DELETE FROM billboards WHERE id = :id"), {"id": fid})
        conn.execute(text("SELECT citygrid_gk_srid(ST_SetSRID(ST_MakePoint(121.6, 31.8), 4490))"))
        conn.rollback()


def test_a_table_made_by_a_later_migration_is_reachable(
    pg_server: PgServer, scratch_url: str
) -> None:
    owner = db.make_engine(pg_server.as_owner(scratch_url))
    api = db.make_engine(scratch_url)
    try:
        with owner.begin() as conn:
            conn.execute(text("CREATE TABLE later_layer (id serial PRIMARY KEY, name text)"))
        with api.begin() as conn:
            conn.execute(text("INSERT INTO later_layer (name) VALUES ('新图层')"))
            assert conn.execute(text("SELECT name FROM later_layer")).scalar_one() == "新图层"
    finally:
        owner.dispose()
        api.dispose()


def test_the_api_connects_as_its_role_and_names_itself(
    pg_server: PgServer, database_url: str, engine: Engine
) -> None:
    name = make_url(database_url).database
    app = create_app(DatabaseSettings(database_url=database_url), auth_settings=TEST_AUTH)
    with TestClient(app) as client:
        sign_in(client, engine, "roles-admin", "admin")
        assert client.get("/collections/cases/items?limit=1").status_code == 200
        deadline = time.monotonic() + 10
        while True:
            with engine.connect() as conn:
                seen = conn.execute(
                    text(
                        "SELECT usename, count(*) FROM pg_stat_activity "
                        "WHERE datname = :db AND application_name = :app GROUP BY usename"
                    ),
                    {"db": name, "app": roles.API_APPLICATION},
                ).all()
            # the request's pooled connection and the listener of layer versions
            if sum(n for _, n in seen) >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert [u for u, _ in seen] == [roles.API_ROLE] and sum(n for _, n in seen) >= 2, seen


def test_the_own_cluster_keeps_the_api_password_to_its_user() -> None:
    settings = DatabaseSettings()
    if not settings.uses_own_cluster:
        pytest.skip("CITYGRID_DATABASE_URL is set: the API role's password is the deployment's")
    path = settings.cluster().api_password_file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.fixture
def empty_database(pg_server: PgServer) -> Iterator[str]:
    name = "citygrid_test_two_roles"
    db.drop_database(pg_server.admin_url, name)
    db.ensure_database(pg_server.admin_url, name)
    yield name
    db.drop_database(pg_server.admin_url, name)


def test_db_up_migrates_as_the_owner_and_grants_the_api_role(
    pg_server: PgServer, empty_database: str
) -> None:
    env = {
        "CITYGRID_DATABASE_URL": pg_server.api_url(empty_database),
        "CITYGRID_MIGRATION_DATABASE_URL": pg_server.url(empty_database),
    }
    result = citygrid("db", "up", env=env)
    assert result.returncode == 0, result.stderr
    api = db.make_engine(pg_server.api_url(empty_database))
    try:
        with api.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM cases")).scalar_one() == 0
            owner = conn.execute(
                text("SELECT tableowner FROM pg_tables WHERE tablename = 'cases'")
            ).scalar_one()
            with pytest.raises(ProgrammingError):
                conn.execute(text("CREATE TABLE sneaky (id int)"))
    finally:
        api.dispose()
    assert owner == make_url(pg_server.admin_url).username
