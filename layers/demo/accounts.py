"""The demo city's accounts: one per office role, and for every community grid an inspector and
its handling unit (the community's committee, responsible for the grid's cases).

Passwords are drawn at random when the demo is loaded and shown once; the demo's inspectors share
one password (one hash), and so do its units, so the list a trainer hands out stays short.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, text

from layers import users
from layers.registry import Role

ACTOR = "demo"
OFFICE = (
    ("admin", Role.ADMIN, "系统管理员"),
    ("planner", Role.PLANNER, "网格规划员"),
    ("leader", Role.LEADER, "局领导"),
    ("dispatcher", Role.DISPATCHER, "指挥中心派遣员"),
)


@dataclass(frozen=True)
class DemoLogin:
    """A demo account to print: who, for what, with which password."""

    username: str
    role: Role
    display_name: str
    password: str


def inspector_name(community_code: str) -> str:
    """The demo inspector's user name for a community grid: insp- and its six local digits."""
    return f"insp-{community_code[6:12]}"


def unit_name(community_code: str) -> str:
    """The demo handling unit's user name for a community grid: unit- and its six local digits."""
    return f"unit-{community_code[6:12]}"


def _ensure(
    conn: Connection,
    username: str,
    role: Role,
    display: str,
    password_hash: str,
    unit: str | None = None,
) -> users.Account:
    account = users.find(conn, username)
    if account is None:
        return users.add(conn, username, role.value, password_hash, ACTOR, display, unit=unit)
    if account.role is not role or account.unit != unit:
        users.set_role(conn, username, role.value, ACTOR, unit)
    return users.set_password(conn, username, password_hash, ACTOR)


def ensure_accounts(conn: Connection) -> list[DemoLogin]:
    """Create (or reset the passwords of) the demo accounts: inspectors and units by community."""
    logins = []
    for username, role, display in OFFICE:
        password = secrets.token_urlsafe(9)
        _ensure(conn, username, role, display, users.hash_password(password))
        logins.append(DemoLogin(username, role, display, password))
    shared = secrets.token_urlsafe(9)
    shared_hash = users.hash_password(shared)
    units = secrets.token_urlsafe(9)
    units_hash = users.hash_password(units)
    communities = conn.execute(
        text("""
        SELECT code, name, responsible_unit FROM grids
        WHERE level = 'community' AND valid_to IS NULL ORDER BY code
    """)
    ).all()
    for code, name, unit in communities:
        display = f"{name}监督员"
        account = _ensure(conn, inspector_name(code), Role.INSPECTOR, display, shared_hash)
        users.assign_grids(conn, account, [code])
        logins.append(DemoLogin(account.username, Role.INSPECTOR, display, shared))
        if unit:
            _ensure(conn, unit_name(code), Role.HANDLER, unit, units_hash, unit)
            logins.append(DemoLogin(unit_name(code), Role.HANDLER, unit, units))
    return logins
