"""The demo city's accounts: one per office role, for every community grid an inspector and
its handling unit (the community's committee, responsible for the grid's cases), and a handler
for every unit of the directory that cases are routed to (a component's maintainer, a rule's unit).

Passwords are drawn at random when the demo is loaded and written to a file only its owner may
read (never printed, so no log keeps them); the demo's inspectors share one password (one hash),
and so do its units, so the list a trainer hands out stays short.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, text

from layers.accounts import users
from layers.demo.load import ADCODE
from layers.demo.owners import UNITS
from layers.demo.usernames import (
    DISPATCHER,
    LEADER,
    inspector_name,
    maintainer_name,
    unit_name,
)
from layers.registry import GRIDS, Role
from layers.store.versions import is_current

ACTOR = "demo"
PASSWORDS_FILE = "demo-passwords.txt"
OFFICE = (
    ("admin", Role.ADMIN, "系统管理员"),
    ("planner", Role.PLANNER, "网格规划员"),
    (LEADER, Role.LEADER, "局领导"),
    (DISPATCHER, Role.DISPATCHER, "指挥中心派遣员"),
)


@dataclass(frozen=True)
class DemoLogin:
    """A demo account to print: who, for what, with which password."""

    username: str
    role: Role
    display_name: str
    password: str


def _receiving_units(conn: Connection) -> list[str]:
    """The units of the demo directory that cases are routed to (as maintainers or by rule)."""
    return list(
        conn.execute(
            text("""
            SELECT d.name FROM unnest(CAST(:names AS text[])) WITH ORDINALITY AS d(name, n)
            WHERE EXISTS (SELECT 1 FROM cases AS c WHERE c.unit = d.name AND c.adcode = :adcode)
            ORDER BY d.n
        """),
            {"names": [u.name for u in UNITS], "adcode": ADCODE},
        ).scalars()
    )


def _ensure(
    conn: Connection,
    username: str,
    role: Role,
    display: str,
    password_hash: str,
    unit: str | None = None,
) -> users.Account:
    counties = [] if role is Role.ADMIN else [ADCODE]  # the demo's admin runs the deployment
    account = users.find(conn, username)
    if account is None:
        return users.add(
            conn, username, role.value, password_hash, ACTOR, display, unit=unit, counties=counties
        )
    if list(account.counties) != counties:
        users.set_counties(conn, username, counties, ACTOR)
    if account.role is not role or account.unit != unit:
        users.set_role(conn, username, role.value, ACTOR, unit)
    return users.set_password(conn, username, password_hash, ACTOR)


def ensure_accounts(conn: Connection) -> list[DemoLogin]:
    """Create (or reset the passwords of) the demo accounts: inspectors and units by community."""
    logins = []
    for username, role, display in OFFICE:
        password = secrets.token_urlsafe(9)
        _ensure(conn, username, role, display, users.hash_password(password, username))
        logins.append(DemoLogin(username, role, display, password))
    shared = secrets.token_urlsafe(9)
    shared_hash = users.hash_password(shared)
    units = secrets.token_urlsafe(9)
    units_hash = users.hash_password(units)
    communities = conn.execute(
        text(f"""
        SELECT code, name, responsible_unit FROM grids
        WHERE level = 'community' AND {is_current(GRIDS)} AND adcode = :adcode ORDER BY code
    """),
        {"adcode": ADCODE},
    ).all()
    for code, name, unit in communities:
        display = f"{name}监督员"
        account = _ensure(conn, inspector_name(code), Role.INSPECTOR, display, shared_hash)
        users.assign_grids(conn, account, [code])
        logins.append(DemoLogin(account.username, Role.INSPECTOR, display, shared))
        if unit:
            _ensure(conn, unit_name(code), Role.HANDLER, unit, units_hash, unit)
            logins.append(DemoLogin(unit_name(code), Role.HANDLER, unit, units))
    for unit in _receiving_units(conn):  # a maintainer's or department's queue to show
        _ensure(conn, maintainer_name(unit), Role.HANDLER, unit, units_hash, unit)
        logins.append(DemoLogin(maintainer_name(unit), Role.HANDLER, unit, units))
    return logins


def write_logins(logins: list[DemoLogin], state_dir: Path) -> Path:
    """Write the demo accounts and passwords to a file readable by its owner only; its path."""
    lines = [
        "# citygrid 演示账号 demo accounts: 角色 role, 用户名 username, 姓名 name, 密码 password"
    ]
    lines += [f"{x.role.value}\t{x.username}\t{x.display_name}\t{x.password}" for x in logins]
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir.resolve() / PASSWORDS_FILE
    partial = path.with_name(f".{PASSWORDS_FILE}.{os.getpid()}")
    partial.unlink(missing_ok=True)
    # Created with owner-only rights (never readable for a moment), then moved over the old one.
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")
    os.replace(partial, path)
    return path
