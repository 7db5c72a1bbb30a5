"""Backups: the demo backed up, restored into a new cluster, identical table by table; a damaged
backup fails verification; a failed backup leaves nothing that looks complete; rotation."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from api.settings import DatabaseSettings
from layers.errors import BackupError
from layers.store import db, roles
from layers.store.backup import DUMP, KEY, MANIFEST, Extras, backups_in, make_backup, prune
from layers.store.checksums import TableSum, all_sums
from layers.store.cluster import Cluster, find_server
from layers.store.restore import restore, restore_key, verify
from tests.accounts import ensure_account
from tests.databases import PgServer
from tests.support import CITYGRID, free_port
from tests.world import World

KEY_TEXT = "k" * 48
CHINA = ZoneInfo("Asia/Shanghai")


def _log(message: str) -> None:
    print(f"[backup test] {message}")


def _sums(url: str) -> dict[str, TableSum]:
    engine = db.make_engine(url)
    try:
        with engine.begin() as conn:
            return all_sums(conn)
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def new_cluster() -> Iterator[Cluster]:
    """A second cluster, as on a replacement server: PostgreSQL and the API role, no database."""
    if find_server() is None:
        pytest.skip("no local PostgreSQL server to start a second cluster with")
    state = DatabaseSettings().state_dir.resolve() / f"restore-{free_port()}"
    cluster = Cluster(state, free_port())
    try:
        cluster.up(_log)
        admin = db.make_engine(cluster.url("postgres"))
        try:
            roles.ensure_login_role(admin, roles.API_ROLE, cluster.api_password())
        finally:
            admin.dispose()
        yield cluster
    finally:
        cluster.down(_log)
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="module")
def demo_backup(
    pg_server: PgServer,
    database_url: str,
    demo: dict[str, int],
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """The demo database backed up as it is, with a signing key kept in a file."""
    dest = tmp_path_factory.mktemp("backups") / "nightly"
    return make_backup(
        pg_server.as_owner(database_url), dest, Extras(key=KEY_TEXT, key_source="file"), _log
    )


@pytest.fixture(scope="module")
def demo_sums(pg_server: PgServer, database_url: str, demo: dict[str, int]) -> dict[str, TableSum]:
    """Every table of the demo database counted and checksummed once (the tests never write it)."""
    return _sums(pg_server.as_owner(database_url))


@pytest.fixture(scope="module")
def world_backup(
    pg_server: PgServer, world: World, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The small shared world backed up: cheap to restore where the demo's size proves nothing."""
    dest = tmp_path_factory.mktemp("world-backups")
    return make_backup(pg_server.as_owner(world.url), dest, Extras(), _log)


def test_backup_is_private_complete_and_counted(
    demo_backup: Path, demo_sums: dict[str, TableSum]
) -> None:
    assert demo_backup.parent.stat().st_mode & 0o777 == 0o700
    assert demo_backup.stat().st_mode & 0o777 == 0o700
    for path in demo_backup.iterdir():
        assert path.stat().st_mode & 0o777 == 0o600, path
    assert [p.name for p in demo_backup.parent.iterdir()] == [demo_backup.name]
    manifest = json.loads((demo_backup / MANIFEST).read_text())
    assert set(manifest["files"]) == {DUMP, KEY}
    assert manifest["revision"] and manifest["deployment"] and manifest["postgis"]
    tables = manifest["tables"]
    assert {"cases", "grids", "case_photos", "audit_log", "users", "counties"} <= set(tables)
    assert "spatial_ref_sys" not in tables
    assert tables["cases"]["rows"] > 1000
    # the manifest describes the database as it is
    assert {t: TableSum(v["rows"], v["checksum"]) for t, v in tables.items()} == demo_sums


def test_demo_restored_into_a_new_cluster_is_identical(
    demo_backup: Path, demo_sums: dict[str, TableSum], new_cluster: Cluster
) -> None:
    db.ensure_database(new_cluster.url("postgres"), "citygrid")
    target = new_cluster.url("citygrid")
    checks = restore(demo_backup, target, roles.API_ROLE, False, _log)
    assert checks and all(c.ok for c in checks), [c.line() for c in checks if not c.ok]
    # what the restore counted in the target is what the source holds, table by table
    assert {c.table: c.found for c in checks} == demo_sums
    # the API's role reads and writes the restored rows (the write rolled back)
    api = db.make_engine(new_cluster.api_url("citygrid"))
    try:
        with api.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM cases")).scalar_one() > 1000
            conn.execute(text("UPDATE cases SET description = description WHERE id = 1"))
    finally:
        api.dispose()
    # a second restore over the data is refused, and changes nothing
    with pytest.raises(BackupError, match="already holds"):
        restore(demo_backup, target, roles.API_ROLE, False, _log)
    assert _sums(target) == demo_sums


def test_forced_restore_replaces_data_photos_and_audit_log(
    pg_server: PgServer, scratch_url: str, new_cluster: Cluster, tmp_path: Path
) -> None:
    owner = db.make_engine(pg_server.as_owner(scratch_url))
    try:
        ensure_account(owner, "backup-admin", "admin")
        with owner.begin() as conn:
            case_id = conn.execute(
                text("""
                INSERT INTO cases (adcode, geom, category_code, source, status, reported_at)
                SELECT '320681', ST_SetSRID(ST_MakePoint(121.66, 31.81), 4490), code, 'hotline',
                       'reported', now()
                FROM case_categories LIMIT 1 RETURNING id
            """)
            ).scalar_one()
            conn.execute(
                text("""
                INSERT INTO case_photos (adcode, case_id, content_type, data, size_bytes, sha256,
                                         uploaded_by)
                VALUES ('320681', :case, 'image/png', :data, 4, repeat('0', 64), 'backup-admin')
            """),
                {"case": case_id, "data": b"\x89PN\x00"},
            )
            conn.execute(
                text("""
                INSERT INTO audit_log (actor, action, layer, feature_id, adcode, after)
                VALUES ('backup-admin', 'create', 'cases', :case, '320681', '{"说明": "备份"}')
            """),
                {"case": case_id},
            )
    finally:
        owner.dispose()
    made = make_backup(pg_server.as_owner(scratch_url), tmp_path, Extras(), _log)
    db.ensure_database(new_cluster.url("postgres"), "forced")
    target = new_cluster.url("forced")
    restore(made, target, roles.API_ROLE, False, _log)
    restore(made, target, roles.API_ROLE, True, _log)  # over itself: replaced, not doubled
    assert _sums(target) == _sums(pg_server.as_owner(scratch_url))
    restored = db.make_engine(target)
    try:
        with restored.connect() as conn:
            photo = conn.execute(text("SELECT data FROM case_photos")).scalar_one()
            note = conn.execute(
                text("SELECT after->>'说明' FROM audit_log WHERE layer = 'cases'")
            ).scalar_one()
    finally:
        restored.dispose()
    assert (bytes(photo), note) == (b"\x89PN\x00", "备份")


def _verify_cli(
    backup: Path, pg_server: PgServer, database_url: str
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CITYGRID_DATABASE_URL": database_url,
        "CITYGRID_MIGRATION_DATABASE_URL": pg_server.as_owner(database_url),
    }
    return subprocess.run(
        [CITYGRID, "backup", "verify", str(backup)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def test_verify_passes_then_finds_a_tampered_backup(
    pg_server: PgServer, world: World, world_backup: Path, tmp_path: Path
) -> None:
    """Verified on the small world's backup: the demo's restore is proved identical table by
    table above, and verifying it again (a restore into a scratch database) took half a minute."""
    database_url = world.url
    good = _verify_cli(world_backup, pg_server, database_url)
    assert good.returncode == 0, good.stderr
    manifest = json.loads((world_backup / MANIFEST).read_text())
    lines = good.stdout.strip().splitlines()
    assert len(lines) == len(manifest["tables"])
    assert all("checksum ok" in line for line in lines)

    flipped = tmp_path / "flipped"
    shutil.copytree(world_backup, flipped)
    dump = flipped / DUMP
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0x01
    dump.write_bytes(bytes(data))
    bad = _verify_cli(flipped, pg_server, database_url)
    assert bad.returncode == 1
    assert "damaged" in bad.stderr and "Traceback" not in bad.stderr

    # a manifest that disagrees with its data
    recounted = tmp_path / "recounted"
    shutil.copytree(world_backup, recounted)
    manifest = json.loads((recounted / MANIFEST).read_text())
    assert manifest["tables"]["grids"]["rows"] > 0
    manifest["tables"]["grids"]["rows"] += 1
    (recounted / MANIFEST).write_text(json.dumps(manifest))
    differs = _verify_cli(recounted, pg_server, database_url)
    assert differs.returncode == 1
    assert "grids: DIFFERS" in differs.stdout
    assert "1 table(s) differ" in differs.stderr
    # the scratch databases are gone
    engine = db.make_engine(pg_server.admin_url)
    try:
        with engine.connect() as conn:
            left = conn.execute(
                text("SELECT count(*) FROM pg_database WHERE datname LIKE '%\\_verify\\_%'")
            ).scalar_one()
    finally:
        engine.dispose()
    assert left == 0


def test_verify_in_process_reports_each_table(
    pg_server: PgServer, world: World, world_backup: Path, tmp_path: Path
) -> None:
    checks = verify(world_backup, pg_server.as_owner(world.url), _log)
    assert all(c.ok for c in checks) and {"cases", "grids"} <= {c.table for c in checks}
    assert next(c for c in checks if c.table == "grids").found.rows > 0  # type: ignore[union-attr]
    recounted = tmp_path / "recounted"
    shutil.copytree(world_backup, recounted)
    manifest = json.loads((recounted / MANIFEST).read_text())
    manifest["tables"]["cases"]["rows"] += 1
    (recounted / MANIFEST).write_text(json.dumps(manifest))
    checks = verify(recounted, pg_server.as_owner(world.url), _log)
    assert [c.table for c in checks if not c.ok] == ["cases"]


def test_signing_key_comes_back_where_it_was_kept(demo_backup: Path, tmp_path: Path) -> None:
    key_file = tmp_path / "state" / "secret_key"
    assert "restored" in restore_key(demo_backup, key_file, False)
    assert key_file.read_text().strip() == KEY_TEXT
    assert key_file.stat().st_mode & 0o777 == 0o600
    key_file.write_text("another key")
    assert "kept" in restore_key(demo_backup, key_file, False)
    assert key_file.read_text() == "another key"
    restore_key(demo_backup, key_file, True)
    assert key_file.read_text().strip() == KEY_TEXT


def test_a_failed_backup_leaves_nothing_that_looks_complete(
    pg_server: PgServer, scratch_url: str, tmp_path: Path
) -> None:
    with pytest.raises(FileNotFoundError):
        make_backup(
            pg_server.as_owner(scratch_url), tmp_path, Extras(config=tmp_path / "gone.toml"), _log
        )
    assert list(tmp_path.iterdir()) == []
    assert backups_in(tmp_path) == []


def _fake_backup(dest: Path, when: str) -> Path:
    path = dest / f"citygrid-{when}"
    path.mkdir(parents=True)
    (path / MANIFEST).write_text("{}")
    return path


def test_rotation_keeps_the_newest_of_each_day_and_month(tmp_path: Path) -> None:
    names = [
        "20260101-020000",  # January: the month's newest is 20260131
        "20260131-020000",
        "20260215-020000",  # February: only one
        "20260301-020000",  # March 1
        "20260302-020000",  # March 2, twice: the later one is the day's
        "20260302-140000",
        "20260303-020000",
        "20260304-020000",
    ]
    for name in names:
        _fake_backup(tmp_path, name)
    (tmp_path / ".citygrid-20260305-020000.partial").mkdir()  # being written: not a backup
    (tmp_path / "notes").mkdir()
    removed = prune(tmp_path, keep_daily=3, keep_monthly=2)
    kept = sorted(p.name.removeprefix("citygrid-") for _, p in backups_in(tmp_path))
    # days: 0304, 0303, 0302 (14:00); months: March (0304), February (0215)
    assert kept == ["20260215-020000", "20260302-140000", "20260303-020000", "20260304-020000"]
    assert len(removed) == 4
    assert (tmp_path / ".citygrid-20260305-020000.partial").exists()
    assert (tmp_path / "notes").exists()


def test_backup_names_sort_and_never_collide(
    pg_server: PgServer, scratch_url: str, tmp_path: Path
) -> None:
    now = datetime(2026, 3, 4, 2, 0, tzinfo=CHINA)
    first = make_backup(pg_server.as_owner(scratch_url), tmp_path, Extras(), _log, now)
    second = make_backup(pg_server.as_owner(scratch_url), tmp_path, Extras(), _log, now)
    assert (first.name, second.name) == ("citygrid-20260304-020000", "citygrid-20260304-020000-2")
    assert json.loads((first / MANIFEST).read_text())["created_at"] == "2026-03-04T02:00:00+08:00"


def test_restore_refuses_a_directory_that_is_no_backup(tmp_path: Path, scratch_url: str) -> None:
    with pytest.raises(BackupError, match="not a citygrid backup"):
        restore(tmp_path, scratch_url, None, False, _log)


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CITYGRID, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=300,
        check=False,
    )


def test_backup_and_restore_commands_carry_key_and_configuration(
    pg_server: PgServer, scratch_url: str, new_cluster: Cluster, tmp_path: Path
) -> None:
    old_state, new_state = tmp_path / "old-state", tmp_path / "new-state"
    old_state.mkdir()
    (old_state / "secret_key").write_text(KEY_TEXT)
    config = tmp_path / "etc" / "citygrid.toml"
    config.parent.mkdir()
    config.write_text("pool_size = 8  # 县级\n")
    made = _cli(
        "backup",
        "--to",
        str(tmp_path / "backups"),
        CITYGRID_DATABASE_URL=scratch_url,
        CITYGRID_MIGRATION_DATABASE_URL=pg_server.as_owner(scratch_url),
        CITYGRID_STATE_DIR=str(old_state),
        CITYGRID_CONFIG=str(config),
    )
    assert made.returncode == 0, made.stderr
    [(_, backup)] = backups_in(tmp_path / "backups")
    assert {p.name for p in backup.iterdir()} == {DUMP, KEY, MANIFEST, "citygrid.toml"}

    config.unlink()  # the server it was on is gone
    db.ensure_database(new_cluster.url("postgres"), "from_cli")
    target = {
        "CITYGRID_DATABASE_URL": new_cluster.api_url("from_cli"),
        "CITYGRID_MIGRATION_DATABASE_URL": new_cluster.url("from_cli"),
        "CITYGRID_STATE_DIR": str(new_state),
    }
    restored = _cli("restore", str(backup), **target)
    assert restored.returncode == 0, restored.stderr
    assert (new_state / "secret_key").read_text().strip() == KEY_TEXT
    assert config.read_text() == "pool_size = 8  # 县级\n"
    assert config.stat().st_mode & 0o777 == 0o600
    assert _sums(new_cluster.url("from_cli")) == _sums(pg_server.as_owner(scratch_url))
    again = _cli("restore", str(backup), **target)
    assert again.returncode == 1
    assert "already holds" in again.stderr and "Traceback" not in again.stderr
