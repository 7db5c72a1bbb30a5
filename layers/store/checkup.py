"""What `citygrid check` asks the database: versions, the API role's rights, counties, disk."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from layers.store import roles
from layers.store.cluster import MIN_MAJOR

MIN_POSTGRES = MIN_MAJOR
# Debian 12's PostGIS; grid checks need its coverage functions (see DOMAIN.md).
MIN_POSTGIS = (3, 3)
SERVER_FILE_ROLES = ("pg_execute_server_program", "pg_read_server_files", "pg_write_server_files")
Level = Literal["OK", "WARN", "FAIL"]


@dataclass(frozen=True)
class Finding:
    """One line of a check: its level and what was found, in English and Chinese."""

    level: Level
    en: str
    zh: str


def versions(conn: Connection) -> list[Finding]:
    """The server's PostgreSQL and PostGIS versions against the oldest supported."""
    number = int(conn.execute(text("SHOW server_version_num")).scalar_one())
    major = number // 10000
    found = [
        Finding(
            "OK", f"PostgreSQL {major} (15+ supported)", f"PostgreSQL {major}（支持 15 及以上）"
        )
        if major >= MIN_POSTGRES
        else Finding(
            "FAIL",
            f"PostgreSQL {major} is older than the oldest supported, {MIN_POSTGRES}",
            f"PostgreSQL {major} 低于最低支持版本 {MIN_POSTGRES}",
        )
    ]
    postgis = conn.execute(
        text("SELECT extversion FROM pg_extension WHERE extname = 'postgis'")
    ).scalar_one_or_none()
    least = ".".join(map(str, MIN_POSTGIS))
    if postgis is None:
        found.append(
            Finding(
                "FAIL",
                "PostGIS is not installed in the database: run `citygrid db migrate`",
                "数据库未安装 PostGIS：请运行 citygrid db migrate",
            )
        )
    elif tuple(int(p) for p in str(postgis).split(".")[:2]) < MIN_POSTGIS:
        found.append(
            Finding(
                "FAIL",
                f"PostGIS {postgis} is older than the oldest supported, {least}",
                f"PostGIS {postgis} 低于最低支持版本 {least}",
            )
        )
    else:
        found.append(
            Finding(
                "OK",
                f"PostGIS {postgis} ({least}+ supported)",
                f"PostGIS {postgis}（支持 {least} 及以上）",
            )
        )
    return found


def _role_problems(conn: Connection, role: str) -> list[str]:
    """What `role` may do beyond reading and writing rows, and the rows it may not touch."""
    attrs = conn.execute(
        text(
            "SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls "
            "FROM pg_roles WHERE rolname = :role"
        ),
        {"role": role},
    ).one()
    names = ("SUPERUSER", "CREATEROLE", "CREATEDB", "REPLICATION", "BYPASSRLS")
    problems = [name for name, held in zip(names, attrs, strict=True) if held]
    for member in SERVER_FILE_ROLES:
        if conn.execute(
            text("SELECT pg_has_role(:role, :name, 'MEMBER')"), {"role": role, "name": member}
        ).scalar_one():
            problems.append(member)
    may = conn.execute(
        text("""
        SELECT has_schema_privilege(:role, 'public', 'CREATE'),
               has_database_privilege(:role, current_database(), 'CREATE')
    """),
        {"role": role},
    ).one()
    problems += [
        what
        for what, held in zip(("CREATE ON SCHEMA public", "CREATE ON DATABASE"), may, strict=True)
        if held
    ]
    owned = conn.execute(
        text("""
        SELECT c.relname FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm')
          AND pg_has_role(:role, c.relowner, 'USAGE') ORDER BY 1
    """),
        {"role": role},
    ).scalars()
    problems += [f"owner of {name}" for name in owned]
    return problems


def _missing_rows(conn: Connection, role: str) -> list[str]:
    """Tables of the schema whose rows `role` may not read and write."""
    # has_table_privilege with several rights is true when any one is held: ask one by one.
    granted = " AND ".join(
        f"has_table_privilege(:role, c.oid, '{right.strip()}')"
        for right in roles.ROW_RIGHTS.split(",")
    )
    return list(
        conn.execute(
            text(f"""
            SELECT c.relname FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
              AND NOT c.relname = ANY(:skip)
              AND NOT EXISTS (SELECT 1 FROM pg_depend AS d WHERE d.objid = c.oid AND d.deptype = 'e')
              AND NOT ({granted})
            ORDER BY 1
        """),
            {"role": role, "skip": list(roles.READ_ONLY_TABLES)},
        ).scalars()
    )


def api_role(conn: Connection, role: str | None, owner: str | None) -> Finding:
    """Whether the API's role exists and may read and write rows, and nothing more."""
    if not role:
        return Finding("FAIL", "The API's database URL names no role", "API 的数据库地址未指定角色")
    if role == owner:
        return Finding(
            "FAIL",
            f"The API connects as {role}, the schema's owner: give it a role with row rights only",
            f"API 以表结构所有者 {role} 连接：请为其使用仅有行权限的角色",
        )
    exists = conn.execute(
        text("SELECT 1 FROM pg_roles WHERE rolname = :role"), {"role": role}
    ).first()
    if not exists:
        return Finding("FAIL", f"The API's role {role} does not exist", f"API 角色 {role} 不存在")
    extra = _role_problems(conn, role)
    if extra:
        listed = ", ".join(extra)
        return Finding(
            "FAIL",
            f"The API's role {role} may do more than read and write rows: {listed}",
            f"API 角色 {role} 的权限超出读写数据行：{listed}",
        )
    missing = _missing_rows(conn, role)
    if missing:
        listed = ", ".join(missing)
        return Finding(
            "FAIL",
            f"The API's role {role} may not write the rows of {listed}: run `citygrid db migrate`",
            f"API 角色 {role} 无权读写 {listed} 的数据：请运行 citygrid db migrate",
        )
    return Finding(
        "OK",
        f"The API's role {role} reads and writes rows only (no DDL)",
        f"API 角色 {role} 仅可读写数据行（无 DDL 权限）",
    )


def county_count(conn: Connection) -> int:
    """How many counties the deployment serves."""
    return int(conn.execute(text("SELECT count(*) FROM counties")).scalar_one())


def data_directory(conn: Connection) -> Path | None:
    """The server's data directory when this role may read it (superuser or pg_read_all_settings)."""
    try:
        with conn.begin_nested():
            found = conn.execute(text("SHOW data_directory")).scalar_one()
    except DBAPIError:
        return None
    return Path(found)


def free_disk(path: Path, least_mb: int, what_en: str, what_zh: str) -> Finding:
    """Free space on the disk holding `path`, a warning below `least_mb`."""
    free_mb = shutil.disk_usage(path).free // (1024 * 1024)
    if free_mb < least_mb:
        return Finding(
            "WARN",
            f"Only {free_mb:,} MB free for the {what_en} ({path}); below {least_mb:,} MB",
            f"{what_zh}（{path}）所在磁盘仅剩 {free_mb:,} MB，低于 {least_mb:,} MB",
        )
    return Finding(
        "OK",
        f"{free_mb:,} MB free for the {what_en} ({path})",
        f"{what_zh}（{path}）所在磁盘剩余 {free_mb:,} MB",
    )
