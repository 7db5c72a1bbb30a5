"""`citygrid backup`, `restore` and `upgrade`: what keeps a bureau's data through disk failures
and new releases."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli_db import start_own_cluster
from api.config_file import config_path
from api.console import friendly, say, stdout
from api.settings import AuthSettings, BackupSettings, DatabaseSettings
from layers.errors import BackupError, MigrationError
from layers.store import db, migrate, roles
from layers.store.backup import Extras, TableCheck, make_backup, prune
from layers.store.restore import restore as restore_database
from layers.store.restore import restore_config, restore_key, verify

app = typer.Typer(
    help="Back up the database (photos and audit log included), the configuration file and the "
    "signing key, with a manifest of row counts and checksums; `backup verify` proves one.",
)
BackupArg = Annotated[
    Path,
    typer.Argument(exists=True, file_okay=False, help="A backup directory (citygrid-YYYYMMDD-…)"),
]


def reach(settings: DatabaseSettings) -> str:
    """Start the own cluster and make its database and the API role if needed; the owner's URL."""
    start_own_cluster(settings)
    url = settings.migration_url()
    engine = db.make_engine(url)
    try:
        db.check_connection(engine)
    finally:
        engine.dispose()
    return url


def extras(backup: BackupSettings, auth: AuthSettings) -> Extras:
    """The configuration file and the signing key, from wherever the settings keep them."""
    named = config_path()
    config = named if named and named.is_file() else None
    if auth.secret_key is not None:
        return Extras(config, auth.secret_key.get_secret_value(), "environment")
    key_file = auth.state_dir.resolve() / "secret_key"
    if key_file.is_file():
        return Extras(config, key_file.read_text().strip(), "file")
    return Extras(config)


def take_backup(to: Path | None, settings: DatabaseSettings) -> Path:
    """Back up everything into a new directory under `to` (default CITYGRID_BACKUP_DIR)."""
    backup = BackupSettings()
    dest = (to or backup.backup_dir).resolve()
    made = make_backup(reach(settings), dest, extras(backup, AuthSettings()), say)
    say(f"backup complete / 备份完成: {made}")
    return made


@app.callback(invoke_without_command=True)
@friendly
def backup(
    ctx: typer.Context,
    to: Annotated[
        Path | None,
        typer.Option("--to", file_okay=False, help="Directory for backups (CITYGRID_BACKUP_DIR)"),
    ] = None,
    keep_daily: Annotated[
        int | None,
        typer.Option(min=1, help="Keep one backup a day for this many days (default 7)"),
    ] = None,
    keep_monthly: Annotated[
        int | None,
        typer.Option(min=0, help="Keep one backup a month for this many months (default 12)"),
    ] = None,
) -> None:
    """Make a consistent backup, then remove older ones beyond the daily and monthly counts."""
    if ctx.invoked_subcommand is not None:
        return
    settings = BackupSettings()
    made = take_backup(to, DatabaseSettings())
    daily = keep_daily if keep_daily is not None else settings.backup_keep_daily
    monthly = keep_monthly if keep_monthly is not None else settings.backup_keep_monthly
    for path in prune(made.parent, daily, monthly):
        say(f"removed old backup / 已删除旧备份: {path.name}")


def _report(checks: list[TableCheck]) -> None:
    for check in checks:
        stdout.print(check.line(), markup=False, highlight=False)
    bad = [c.table for c in checks if not c.ok]
    if bad:
        raise BackupError(
            f"{len(bad)} table(s) differ from the backup's manifest: {', '.join(bad)}",
            f"{len(bad)} 张表与备份清单不一致：{', '.join(bad)}",
        )


@app.command("verify")
@friendly
def backup_verify(backup: BackupArg) -> None:
    """Restore into a scratch database, compare every table with the manifest, drop it;
    exit 1 on any difference."""
    _report(verify(backup, reach(DatabaseSettings()), say))
    say(f"{backup.name}: verified, every table as recorded / 校验通过")


@friendly
def restore(
    backup: BackupArg,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Replace a database that is not empty, a different key or config"
        ),
    ] = False,
) -> None:
    """Restore a backup into an empty database (own cluster or CITYGRID_MIGRATION_DATABASE_URL),
    with its signing key and configuration file, and compare it with its manifest."""
    settings = DatabaseSettings()
    url = reach(settings)
    api_role = db.parse_url(settings.url()).username
    checks = restore_database(backup, url, api_role, force, say)
    auth = AuthSettings()
    say(restore_key(backup, auth.state_dir.resolve() / "secret_key", force))
    say(restore_config(backup, config_path(), force))
    _report(checks)
    engine = db.make_engine(url)
    try:
        current, head = migrate.current_revision(engine), migrate.head_revision()
    finally:
        engine.dispose()
    if current != head:
        say(
            f"the restored schema is at {current}, this release's at {head}: run `citygrid upgrade` "
            f"/ 恢复的数据库结构为 {current}，本版本为 {head}：请运行 citygrid upgrade"
        )
    say(f"restored / 已恢复: {backup.name}")


@friendly
def upgrade() -> None:
    """Back up, then apply pending migrations one transaction each; a failing one leaves the
    database as it was before it."""
    settings = DatabaseSettings()
    url = reach(settings)
    engine = db.make_engine(url, application_name=roles.MIGRATION_APPLICATION)
    try:
        db.check_postgis(engine)
        pending = migrate.pending_revisions(engine)
        if not pending:
            say(f"schema up to date ({migrate.current_revision(engine)}); nothing to do")
            return
        made = take_backup(None, settings)
        say(f"{len(pending)} migration(s) to apply: {', '.join(pending)}")
        try:
            migrate.upgrade_each(engine, log=say)
        except MigrationError:
            say(f"to return to the state before the upgrade: citygrid restore --force {made}")
            raise
        api_role = db.parse_url(settings.url()).username
        if api_role and api_role != engine.url.username:
            with engine.begin() as conn:
                roles.grant_api_rights(conn, api_role)
    finally:
        engine.dispose()
    say(f"upgraded to {migrate.head_revision()} / 升级完成")
