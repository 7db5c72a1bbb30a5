"""Bring a backup back: into an empty database (or, forced, over one), or into a scratch
database to prove the backup restores to exactly what its manifest records."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import text

from layers.errors import BackupError
from layers.store import db, roles
from layers.store.backup import (
    DUMP,
    KEY,
    Log,
    TableCheck,
    client_args,
    compare,
    expected_sums,
    pg_tool,
    read_backup,
    run_tool,
)
from layers.store.checksums import all_sums, user_tables


def restore(
    backup: Path, url: str, api_role: str | None, force: bool, log: Log
) -> list[TableCheck]:
    """Restore the backup's database into the (empty) database at `url`, as its owner; give
    `api_role` its rights; compare every table with the manifest."""
    manifest = read_backup(backup)
    engine = db.make_engine(url, application_name="citygrid-restore")
    try:
        with engine.begin() as conn:
            stored = user_tables(conn)
            if stored and not force:
                raise BackupError(
                    f"The database {engine.url.database} already holds {len(stored)} tables: "
                    "restore into an empty database, or pass --force to replace everything in it.",
                    f"数据库 {engine.url.database} 中已有 {len(stored)} 张表：请恢复到空数据库，"
                    "或使用 --force 替换其中全部内容。",
                )
            if stored:
                log(f"Replacing everything in {engine.url.database}")
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
                conn.execute(text("GRANT USAGE ON SCHEMA public TO PUBLIC"))
            tool = pg_tool(conn, "pg_restore")
        conninfo, env = client_args(url)
        log(f"Restoring database {engine.url.database} from {backup.name}")
        run_tool(
            [
                tool,
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                "--single-transaction",
                f"--dbname={conninfo}",
                str(backup / DUMP),
            ],
            env,
        )
        with engine.begin() as conn:
            if api_role and api_role != engine.url.username:
                roles.grant_api_rights(conn, api_role)
            found = all_sums(conn)
    finally:
        engine.dispose()
    return compare(expected_sums(manifest), found)


def verify(backup: Path, url: str, log: Log) -> list[TableCheck]:
    """Restore into a scratch database beside the one at `url`, compare, drop the scratch."""
    read_backup(backup)
    parsed = db.parse_url(url)
    scratch = f"{parsed.database}_verify_{os.getpid()}"
    db.drop_database(url, scratch)
    db.ensure_database(url, scratch)
    try:
        scratch_url = parsed.set(database=scratch).render_as_string(hide_password=False)
        return restore(backup, scratch_url, None, False, log)
    finally:
        db.drop_database(url, scratch)


def restore_key(backup: Path, key_file: Path, force: bool) -> str:
    """Put the backup's signing key where the settings keep it; say what was done."""
    manifest = read_backup(backup)
    source = backup / KEY
    if not source.exists():
        return "the backup holds no signing key / 备份中没有签名密钥"
    if manifest.get("signing_key") == "environment":
        return (
            f"the signing key was set by CITYGRID_SECRET_KEY: set it again from {source} / "
            f"签名密钥来自 CITYGRID_SECRET_KEY：请按 {source} 重新设置"
        )
    return _put(source, key_file, force, "signing key / 签名密钥")


def restore_config(backup: Path, target: Path | None, force: bool) -> str:
    """Put the backup's configuration file back where it was (or where `target` says)."""
    manifest = read_backup(backup)
    original = manifest.get("config")
    if not original:
        return "the backup holds no configuration file / 备份中没有配置文件"
    source = backup / Path(str(original)).name
    return _put(source, target or Path(str(original)), force, "configuration / 配置文件")


def _put(source: Path, target: Path, force: bool, what: str) -> str:
    content = source.read_bytes()
    if target.exists() and target.read_bytes() != content and not force:
        return f"{what}: kept the different {target} (--force replaces it) / 保留现有文件"
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(content)
    target.chmod(0o600)
    return f"{what}: restored to {target} / 已恢复"
