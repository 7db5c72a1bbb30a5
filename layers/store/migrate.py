"""Apply and inspect Alembic migrations programmatically."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from layers.errors import MigrationError
from layers.store.tables import metadata

# Alembic loads slowly and most commands never migrate: each function imports what it uses.
if TYPE_CHECKING:
    from alembic.config import Config


POSITION_PARTITION = re.compile(r"positions_[0-9]{8}")
FUME_PARTITION = re.compile(r"fume_readings_[0-9]{6}")


def include_object(obj, name, type_, reflected, compare_to):  # type: ignore[no-untyped-def]
    """Leave PostGIS's own tables out of schema comparisons."""
    from geoalchemy2 import alembic_helpers

    if type_ == "table" and name == "spatial_ref_sys":
        return False
    if type_ == "table" and reflected and POSITION_PARTITION.fullmatch(name or ""):
        return False  # the day partitions of `positions`, made and dropped as days pass
    table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", "")
    if reflected and FUME_PARTITION.fullmatch(table or ""):
        return False  # the month partitions of `fume_readings` and their indexes, made on demand
    return alembic_helpers.include_object(obj, name, type_, reflected, compare_to)


SHIPPED = "layers.store:migrations"


def alembic_config(location: str = SHIPPED) -> Config:
    """An Alembic config pointing at the migrations shipped in the package (or at `location`)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", location)
    return cfg


def upgrade(engine: Engine, revision: str = "head", location: str = SHIPPED) -> None:
    """Bring the database schema to `revision`, all or nothing."""
    from alembic import command

    cfg = alembic_config(location)
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    except DBAPIError as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0]
        raise MigrationError(
            f"The database refused the schema migration: {reason}",
            f"数据库拒绝了结构迁移：{reason}",
        ) from exc


def downgrade(engine: Engine, revision: str = "base") -> None:
    """Take the database schema back to `revision` (dropping the layers at "base")."""
    from alembic import command

    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def pending_revisions(engine: Engine, location: str = SHIPPED) -> list[str]:
    """The revisions an upgrade to the newest schema would apply, oldest first."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config(location))
    current = current_revision(engine) or "base"
    return [r.revision for r in script.iterate_revisions("head", current)][::-1]


def all_revisions(location: str = SHIPPED) -> list[str]:
    """Every shipped revision, oldest first."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config(location))
    return [r.revision for r in script.iterate_revisions("head", "base")][::-1]


def upgrade_each(
    engine: Engine, location: str = SHIPPED, log: Callable[[str], None] = lambda _: None
) -> list[str]:
    """Apply pending migrations one transaction each; on a failure the database stays as it
    was after the last one that succeeded (the failing one rolled back whole)."""
    applied: list[str] = []
    for revision in pending_revisions(engine, location):
        log(f"Applying migration {revision}")
        try:
            upgrade(engine, revision, location)
        except Exception as exc:  # whatever a migration raises, it was rolled back
            reason = exc.message_en if isinstance(exc, MigrationError) else str(exc) or repr(exc)
            at = current_revision(engine) or "empty"
            raise MigrationError(
                f"Migration {revision} failed and was rolled back; the database is at {at}, "
                f"unchanged by it: {reason}",
                f"迁移 {revision} 失败并已回滚；数据库停留在 {at}，未被其改动：{reason}",
                revision=revision,
                current=at,
            ) from exc
        applied.append(revision)
    return applied


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, None when never migrated."""
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    """The newest revision shipped with the code."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def schema_drift(engine: Engine) -> list[object]:
    """Differences between the registry's tables and the migrated database (empty when in step)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"include_object": include_object, "compare_type": True}
        )
        return list(compare_metadata(ctx, metadata))
