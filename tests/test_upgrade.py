"""Upgrades: one transaction per migration, a failing one leaves the database as it was, an
older release's database with data comes through whole, `citygrid upgrade` backs up first."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from layers.errors import MigrationError
from layers.store import db, migrate, roles
from layers.store.backup import MANIFEST, backups_in, client_args, pg_tool
from layers.store.checksums import TableSum, all_sums
from tests.accounts import ensure_account
from tests.databases import PgServer
from tests.support import CITYGRID

SHIPPED = Path(__file__).resolve().parents[1] / "layers" / "store" / "migrations"
FAILING = '''"""A migration that fails halfway, after DDL and data changes.

Revision ID: 9999
Revises: {head}
"""

from alembic import op

revision = "9999"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create, change, delete, then fail."""
    op.execute("CREATE TABLE doomed (id integer)")
    op.execute("ALTER TABLE cases ADD COLUMN doomed integer")
    op.execute("UPDATE cases SET description = 'changed'")
    op.execute("DELETE FROM audit_log")
    raise RuntimeError("halfway through")


def downgrade() -> None:
    """Nothing to revert: it never completes."""
'''


@pytest.fixture
def failing_scripts(tmp_path: Path) -> str:
    """The shipped migrations plus one that fails after changing schema and data."""
    scripts = tmp_path / "migrations"
    shutil.copytree(SHIPPED, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    head = migrate.head_revision()
    (scripts / "versions" / "9999_fails.py").write_text(FAILING.format(head=head))
    return str(scripts)


def _schema(engine: Engine) -> str:
    with engine.connect() as conn:
        tool = pg_tool(conn, "pg_dump")
    conninfo, env = client_args(engine.url.render_as_string(hide_password=False))
    out = subprocess.run(
        [tool, "--schema-only", f"--dbname={conninfo}"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    # newer pg_dump guards its script with a random key per run
    return "\n".join(
        x for x in out.splitlines() if not x.startswith(("\\restrict", "\\unrestrict"))
    )


def _sums(engine: Engine) -> dict[str, TableSum]:
    with engine.begin() as conn:
        return all_sums(conn)


def _some_rows(engine: Engine) -> None:
    ensure_account(engine, "upgrade-admin", "admin")
    with engine.begin() as conn:
        conn.execute(
            text("""
            INSERT INTO cases (adcode, geom, category_code, source, status, reported_at,
                               description)
            SELECT '320681', ST_SetSRID(ST_MakePoint(121.66, 31.81), 4490), code, 'hotline',
                   'reported', now(), '占道经营'
            FROM case_categories LIMIT 3
        """)
        )


def test_a_failing_migration_leaves_the_database_as_before_it(
    scratch_owner: Engine, failing_scripts: str
) -> None:
    head = migrate.head_revision()
    _some_rows(scratch_owner)
    migrate.downgrade(scratch_owner, "-1")
    before_head = migrate.current_revision(scratch_owner)
    assert before_head != head
    # the migrations before the failing one are kept, each in its own transaction
    with pytest.raises(MigrationError, match="Migration 9999 failed") as failed:
        migrate.upgrade_each(scratch_owner, failing_scripts)
    assert "halfway through" in failed.value.message_en
    assert failed.value.details == {"revision": "9999", "current": head}
    assert migrate.current_revision(scratch_owner) == head
    assert migrate.schema_drift(scratch_owner) == []

    schema, rows = _schema(scratch_owner), _sums(scratch_owner)
    with pytest.raises(MigrationError, match="the database is at " + str(head)):
        migrate.upgrade_each(scratch_owner, failing_scripts)
    assert _schema(scratch_owner) == schema
    assert _sums(scratch_owner) == rows
    with scratch_owner.connect() as conn:
        assert conn.execute(text("SELECT to_regclass('doomed')")).scalar() is None
        assert conn.execute(text("SELECT count(*) FROM audit_log")).scalar_one() > 0


# Rows as the release at revision 0014 stored them: before counties, units without a county.
AT_0014 = [
    """INSERT INTO case_categories (code, kind, major_code, major_name, minor_name, time_limit,
                                    time_unit)
       VALUES ('E0101', 'event', '01', '市容环境', '本局自定的暴露垃圾', 3, 'working_hours')""",
    """INSERT INTO grids (adcode, geom, level, code, name, valid_from, responsible_unit)
       VALUES ('320681', ST_Multi(ST_MakeEnvelope(121.60, 31.78, 121.70, 31.85, 4490)), 'street',
               '320681100000000', '汇龙镇', '2023-01-01', '城管中队'),
              ('320681', ST_Multi(ST_MakeEnvelope(121.60, 31.78, 121.65, 31.85, 4490)),
               'community', '320681100001000', '南城社区', '2023-01-01', NULL)""",
    "UPDATE grids SET parent_code = '320681100000000' WHERE level = 'community'",
    """INSERT INTO units (name, added_by) VALUES ('城管中队', 'cli:root'), ('环卫所', 'cli:root'),
              ('园林所', 'cli:root')""",
    """INSERT INTO users (username, display_name, role, password_hash, unit)
       VALUES ('root', '管理员', 'admin', 'x', NULL), ('planner1', '规划员', 'planner', 'x', NULL),
              ('hw1', '环卫所', 'handler', 'x', '环卫所')""",
    """INSERT INTO cases (adcode, geom, category_code, source, status, reported_at, description,
                          unit, dispatched_at, grid_code)
       SELECT '320681', ST_SetSRID(ST_MakePoint(121.62 + n / 1000.0, 31.80), 4490), c.code,
              'hotline', CASE WHEN n = 1 THEN 'dispatched' ELSE 'reported' END,
              now() - interval '2 days', '案件' || n, CASE WHEN n = 1 THEN '环卫所' END,
              CASE WHEN n = 1 THEN now() - interval '1 day' END, '320681100001000'
       FROM generate_series(1, 5) AS n, (SELECT code FROM case_categories LIMIT 1) AS c""",
    """INSERT INTO case_photos (case_id, content_type, data, size_bytes, sha256, uploaded_by)
       SELECT min(id), 'image/jpeg', '\\xffd8ffe0'::bytea, 4, repeat('a', 64), 'root' FROM cases""",
    """INSERT INTO audit_log (actor, action, layer, feature_id, adcode, after)
       SELECT 'root', 'create', 'cases', id, adcode, jsonb_build_object('description', description)
       FROM cases""",
]
KEPT = {
    "case_categories": "SELECT minor_name, time_limit FROM case_categories WHERE code = 'E0101'",
    "grids": "SELECT code, name, level, parent_code FROM grids ORDER BY code",
    "cases": "SELECT id, description, status, unit FROM cases ORDER BY id",
    "case_photos": "SELECT case_id, data FROM case_photos",
    "audit_log": "SELECT id, actor, action, feature_id FROM audit_log ORDER BY id",
    "users": "SELECT username, role, unit FROM users ORDER BY username",
}


def test_an_older_release_database_with_data_upgrades_whole(
    pg_server: PgServer, empty_url: str
) -> None:
    old = db.make_engine(pg_server.as_owner(empty_url))
    try:
        migrate.downgrade(old, "base")
        migrate.upgrade(old, "0014")
        with old.begin() as conn:
            for statement in AT_0014:
                conn.execute(text(statement))
        with old.connect() as conn:
            before = {k: conn.execute(text(q)).all() for k, q in KEPT.items()}
        assert migrate.upgrade_each(old) == [
            "0015",
            "0016",
            "0017",
            "0018",
            "0019",
            "0020",
            "0021",
            "0022",
            "0023",
            "0024",
            "0025",
            "0026",
            "0027",
            "0028",
            "0029",
            "0030",
            "0031",
            "0032",
            "0033",
            "0034",
            "0035",
            "0036",
            "0037",
            "0038",
        ]
        assert migrate.current_revision(old) == migrate.head_revision()
        assert migrate.schema_drift(old) == []
        with old.begin() as conn:
            after = {k: conn.execute(text(q)).all() for k, q in KEPT.items()}
            counties = conn.execute(
                text("SELECT adcode, ST_Area(boundary::geography) > 1e6 FROM counties")
            ).all()
            holders = conn.execute(
                text("SELECT username, adcode FROM user_counties ORDER BY username")
            ).all()
            units = conn.execute(text("SELECT name, adcode FROM units ORDER BY name")).all()
            deployments = conn.execute(text("SELECT count(*) FROM deployment")).scalar_one()
            photo_counties = conn.execute(
                text(
                    "SELECT p.adcode = c.adcode FROM case_photos p JOIN cases c ON c.id = p.case_id"
                )
            ).all()
            counted = conn.execute(  # 0036 counts the cases already stored
                text(
                    "SELECT (SELECT sum(n) FROM case_cell_days), "
                    "(SELECT sum(n) FROM case_cell_months WHERE category_code = '*'), "
                    "(SELECT count(*) FROM cases)"
                )
            ).one()
            roles.grant_api_rights(conn, roles.API_ROLE)
        assert after == before
        assert counties == [("320681", True)]
        assert holders == [("hw1", "320681"), ("planner1", "320681")]
        assert units == [("园林所", "320681"), ("城管中队", "320681"), ("环卫所", "320681")]
        assert deployments == 1
        assert photo_counties == [(True,)]
        assert tuple(counted) == (5, 5, 5)
        api = db.make_engine(empty_url)
        try:
            with api.connect() as conn:
                assert conn.execute(text("SELECT count(*) FROM cases")).scalar_one() == 5
        finally:
            api.dispose()
    finally:
        old.dispose()


def _upgrade_cli(pg_server: PgServer, url: str, backups: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CITYGRID_DATABASE_URL": url,
        "CITYGRID_MIGRATION_DATABASE_URL": pg_server.as_owner(url),
        "CITYGRID_BACKUP_DIR": str(backups),
    }
    return subprocess.run(
        [CITYGRID, "upgrade"], capture_output=True, text=True, env=env, timeout=300, check=False
    )


def test_upgrade_command_backs_up_first_then_migrates(
    pg_server: PgServer, scratch_url: str, scratch_owner: Engine, tmp_path: Path
) -> None:
    _some_rows(scratch_owner)
    migrate.downgrade(scratch_owner, "-2")
    older = migrate.current_revision(scratch_owner)
    done = _upgrade_cli(pg_server, scratch_url, tmp_path)
    assert done.returncode == 0, done.stderr
    assert migrate.current_revision(scratch_owner) == migrate.head_revision()
    [(_, backup)] = backups_in(tmp_path)
    assert json.loads((backup / MANIFEST).read_text())["revision"] == older
    again = _upgrade_cli(pg_server, scratch_url, tmp_path)
    assert again.returncode == 0 and "nothing to do" in again.stderr
    assert len(backups_in(tmp_path)) == 1
