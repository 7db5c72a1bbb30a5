"""Backups of a deployment: the database (one pg_dump snapshot, photos and audit log included),
the configuration file and the token signing key, with a manifest of every table's row count and
checksum (computed in the same snapshot as the dump) and every file's sha256.

A backup is written under a hidden temporary name and renamed when complete, so a directory named
like a backup always holds a whole one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path
from zoneinfo import ZoneInfo

from psycopg.conninfo import make_conninfo
from sqlalchemy import Connection, text

from layers.errors import BackupError, SetupError
from layers.store import db
from layers.store.checksums import TableSum, all_sums
from layers.store.cluster import DEBIAN_LIB, find_server

Log = Callable[[str], None]

MANIFEST = "manifest.json"
DUMP = "database.dump"
KEY = "signing_key"
FORMAT = 1
NAME = re.compile(r"^citygrid-(\d{8}-\d{6})(?:-\d+)?$")
STAMP = "%Y%m%d-%H%M%S"
BACKUP_APPLICATION = "citygrid-backup"


@dataclass(frozen=True)
class Extras:
    """What a backup keeps beside the database: the configuration file and the signing key."""

    config: Path | None = None
    key: str | None = None
    key_source: str | None = None  # "file": kept in the state directory; "environment": set


@dataclass(frozen=True)
class TableCheck:
    """One table of a manifest compared with a database."""

    table: str
    expected: TableSum | None
    found: TableSum | None

    @property
    def ok(self) -> bool:
        """Whether the table holds exactly what the manifest says."""
        return self.expected == self.found

    def line(self) -> str:
        """One line for the operator."""
        if self.expected is None:
            return f"{self.table}: not in the backup / 备份中没有此表"
        if self.found is None:
            return f"{self.table}: missing / 缺失 (expected {self.expected.rows} rows)"
        if self.ok:
            return f"{self.table}: {self.found.rows} rows, checksum ok / 一致"
        return (
            f"{self.table}: DIFFERS / 不一致 — {self.found.rows} rows {self.found.checksum}, "
            f"expected {self.expected.rows} rows {self.expected.checksum}"
        )


def pg_tool(conn: Connection, name: str) -> str:
    """The client program `name` of the server's major version (or a newer one)."""
    major = int(conn.execute(text("SHOW server_version_num")).scalar_one()) // 10000
    exact = DEBIAN_LIB / str(major) / "bin" / name
    if exact.exists():
        return str(exact)
    server = find_server()
    if server and server.major >= major and (server.bindir / name).exists():
        return server.tool(name)
    found = shutil.which(name)
    if found:
        out = subprocess.run([found, "--version"], capture_output=True, text=True).stdout
        match = re.search(r"(\d+)", out)
        if match and int(match.group(1)) >= major:
            return found
    raise SetupError(
        f"{name} of PostgreSQL {major} or newer is not installed "
        f"(Debian/Ubuntu: apt-get install postgresql-client-{major}).",
        f"未安装 PostgreSQL {major} 或更新版本的 {name}"
        f"（Debian/Ubuntu：apt-get install postgresql-client-{major}）。",
    )


def client_args(url: str) -> tuple[str, dict[str, str]]:
    """A libpq connection string for `url` without its password, and an environment with it."""
    parsed = db.parse_url(url)
    params = {k: str(v) for k, v in parsed.query.items()}
    conninfo = make_conninfo(
        host=parsed.host or "localhost",
        port=str(parsed.port or 5432),
        user=parsed.username or "",
        dbname=parsed.database or "",
        application_name=BACKUP_APPLICATION,
        **params,
    )
    env = dict(os.environ)
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    return conninfo, env


def run_tool(argv: list[str], env: dict[str, str]) -> None:
    """Run a PostgreSQL client program, its failure one clear sentence."""
    result = subprocess.run(argv, capture_output=True, text=True, env=env, cwd="/")
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        detail = next((x for x in lines if "error" in x.lower()), lines[-1] if lines else "")
        name = Path(argv[0]).name
        raise BackupError(f"{name} failed: {detail}", f"{name} 执行失败：{detail}")


def sha256(path: Path) -> str:
    """The sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _scalar(conn: Connection, query: str, table: str | None = None) -> str | None:
    if table and conn.execute(text("SELECT to_regclass(:t)"), {"t": table}).scalar() is None:
        return None
    found = conn.execute(text(query)).scalar()
    return None if found is None else str(found)


def _facts(conn: Connection) -> dict[str, object]:
    try:
        version = metadata.version("citygrid")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return {
        "citygrid": version,
        "postgresql": _scalar(conn, "SHOW server_version"),
        "postgis": _scalar(conn, "SELECT extversion FROM pg_extension WHERE extname = 'postgis'"),
        "revision": _scalar(conn, "SELECT version_num FROM alembic_version", "alembic_version"),
        "deployment": _scalar(conn, "SELECT id FROM deployment", "deployment"),
        "database": conn.engine.url.database,
    }


def _private(path: Path) -> None:
    path.chmod(0o700 if path.is_dir() else 0o600)


def _new_name(dest: Path, now: datetime) -> str:
    base = f"citygrid-{now.strftime(STAMP)}"
    name, n = base, 1
    while (dest / name).exists() or (dest / f".{name}.partial").exists():
        n += 1
        name = f"{base}-{n}"
    return name


def make_backup(
    url: str, dest: Path, extras: Extras, log: Log, now: datetime | None = None
) -> Path:
    """Back up the database at `url` (its owner) and the extras into a new directory in `dest`."""
    now = now or datetime.now(ZoneInfo(db.BUREAU_TIMEZONE))
    if not dest.exists():
        dest.mkdir(parents=True, mode=0o700)
    name = _new_name(dest, now)
    partial = dest / f".{name}.partial"
    partial.mkdir(mode=0o700)
    try:
        manifest = _write_backup(url, partial, extras, log)
        manifest["created_at"] = now.isoformat(timespec="seconds")
        manifest["files"] = {p.name: sha256(p) for p in sorted(partial.iterdir())}
        (partial / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")
        for path in partial.iterdir():
            _private(path)
        final = dest / name
        partial.rename(final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return final


def _write_backup(url: str, into: Path, extras: Extras, log: Log) -> dict[str, object]:
    engine = db.make_engine(url, application_name=BACKUP_APPLICATION)
    try:
        with engine.connect() as raw:
            conn = raw.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                conn.execute(text("SET TRANSACTION READ ONLY"))
                snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
                conninfo, env = client_args(url)
                log(f"Dumping database {engine.url.database}")
                run_tool(
                    [
                        pg_tool(conn, "pg_dump"),
                        "--format=custom",
                        "--no-owner",
                        "--no-privileges",
                        f"--snapshot={snapshot}",
                        f"--file={into / DUMP}",
                        f"--dbname={conninfo}",
                    ],
                    env,
                )
                log("Counting rows and checksumming every table")
                facts = _facts(conn)
                sums = all_sums(conn)
    finally:
        engine.dispose()
    if extras.config is not None:
        shutil.copyfile(extras.config, into / extras.config.name)
    if extras.key is not None:
        (into / KEY).write_text(extras.key + "\n")
    return {
        "format": FORMAT,
        **facts,
        "config": None if extras.config is None else str(extras.config.resolve()),
        "signing_key": extras.key_source if extras.key is not None else None,
        "tables": {t: {"rows": s.rows, "checksum": s.checksum} for t, s in sums.items()},
    }


def read_backup(backup: Path) -> dict[str, object]:
    """The manifest of a backup whose files all match their checksums; BackupError if not."""
    path = backup / MANIFEST
    try:
        manifest = json.loads(path.read_text())
        files = manifest["files"]
        assert isinstance(files, dict) and isinstance(manifest["tables"], dict)
    except (OSError, ValueError, KeyError, AssertionError) as exc:
        raise BackupError(
            f"{backup} is not a citygrid backup (no readable {MANIFEST}).",
            f"{backup} 不是 citygrid 备份（缺少可读的 {MANIFEST}）。",
        ) from exc
    for name, digest in files.items():
        file = backup / name
        if not file.is_file() or sha256(file) != digest:
            raise BackupError(
                f"The backup is damaged: {name} is missing or differs from its checksum.",
                f"备份已损坏：{name} 缺失或与校验和不符。",
            )
    return dict(manifest)


def expected_sums(manifest: dict[str, object]) -> dict[str, TableSum]:
    """The row counts and checksums a manifest records."""
    tables = manifest["tables"]
    assert isinstance(tables, dict)
    return {t: TableSum(int(v["rows"]), str(v["checksum"])) for t, v in tables.items()}


def compare(expected: dict[str, TableSum], found: dict[str, TableSum]) -> list[TableCheck]:
    """Every table of either side, compared."""
    return [TableCheck(t, expected.get(t), found.get(t)) for t in sorted({*expected, *found})]


def backups_in(dest: Path) -> list[tuple[datetime, Path]]:
    """The complete backups in `dest`, newest first."""
    found = []
    for path in dest.iterdir() if dest.is_dir() else []:
        match = NAME.match(path.name)
        if match and path.is_dir() and (path / MANIFEST).exists():
            found.append((datetime.strptime(match.group(1), STAMP), path))
    return sorted(found, key=lambda x: (x[0], x[1].name), reverse=True)


def prune(dest: Path, keep_daily: int, keep_monthly: int) -> list[Path]:
    """Remove backups but the newest of each of the last `keep_daily` days and of each of the
    last `keep_monthly` months; return the removed ones."""
    keep: set[Path] = set()
    days: set[str] = set()
    months: set[str] = set()
    for when, path in backups_in(dest):
        day, month = when.strftime("%Y%m%d"), when.strftime("%Y%m")
        if day not in days and len(days) < keep_daily:
            keep.add(path)
        if month not in months and len(months) < keep_monthly:
            keep.add(path)
        days.add(day)
        months.add(month)
    removed = [path for _, path in backups_in(dest) if path not in keep]
    for path in removed:
        shutil.rmtree(path)
    return removed
