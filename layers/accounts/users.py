"""Accounts: roles, argon2id password hashes, inspectors' grids, and sign-in (limits in `signin`).

Passwords are only ever compared through their hash; neither they nor their hashes leave this
module (the audit log records who and when, never what was typed).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, Engine, text

from layers.accounts import passwords, sessions, signin
from layers.accounts.signin import LoginPolicy
from layers.cases import units
from layers.errors import AccountError, NotSignedIn
from layers.places import counties as counties_module
from layers.registry import GRIDS, Role
from layers.store.versions import is_current

HASHER = PasswordHasher()  # argon2id with the RFC 9106 low-memory parameters
USERNAME = re.compile(r"[A-Za-z0-9_.-]{2,64}")


@cache  # hashed on first use, not at import: every command imports this module
def _dummy_hash() -> str:
    """Compared against when the name is unknown, so a wrong name costs as long as a wrong password."""
    return HASHER.hash("citygrid-no-such-user")


@dataclass(frozen=True)
class Account:
    """A user as the rest of the code sees it: never with the password hash."""

    id: int
    username: str
    display_name: str | None
    role: Role
    disabled: bool
    sessions_valid_from: datetime
    grids: tuple[str, ...] = ()
    unit: str | None = None
    counties: tuple[str, ...] = ()  # empty only for the deployment's admin: every county

    @property
    def county_scope(self) -> tuple[str, ...] | None:
        """The counties this account reads and writes; None for all of them."""
        return self.counties or None


def _role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        raise AccountError(
            f"Unknown role {value!r}; one of {allowed}.",
            f"未知角色 {value!r}，可选：{allowed}。",
            code="unknown_role",
        ) from None


def hash_password(password: str, *names: str) -> str:
    """The argon2id hash of a password, refusing a weak one or one holding the user's `names`."""
    passwords.check(password, *names)
    return HASHER.hash(password)


ACCOUNT_SQL = f"""
    SELECT u.id, u.username, u.display_name, u.role, u.disabled, u.sessions_valid_from, u.unit,
           coalesce(array_agg(i.grid_code ORDER BY i.grid_code)
                    FILTER (WHERE i.grid_code IS NOT NULL), '{{}}') AS grids,
           ARRAY(SELECT c.adcode FROM user_counties AS c WHERE c.username = u.username
                 ORDER BY c.adcode) AS counties
    FROM users AS u LEFT JOIN grid_inspectors AS i ON i.username = u.username
        AND EXISTS (SELECT 1 FROM grids AS g WHERE g.code = i.grid_code AND {is_current(GRIDS, "g")})
"""


def _account(row: Any) -> Account:
    return Account(
        row.id,
        row.username,
        row.display_name,
        Role(row.role),
        row.disabled,
        row.sessions_valid_from,
        tuple(row.grids),
        row.unit,
        tuple(row.counties),
    )


def find(conn: Connection, username: str) -> Account | None:
    """The account called `username`, disabled or not."""
    row = conn.execute(
        text(f"{ACCOUNT_SQL} WHERE u.username = :u GROUP BY u.id"), {"u": username}
    ).first()
    return _account(row) if row else None


def get(conn: Connection, username: str) -> Account:
    """The account called `username`, or a clear error."""
    account = find(conn, username)
    if account is None:
        raise AccountError(
            f"There is no user {username!r}.", f"不存在用户 {username!r}。", code="unknown_user"
        )
    return account


def list_accounts(conn: Connection) -> list[Account]:
    """Every account, by role then name."""
    rows = conn.execute(text(f"{ACCOUNT_SQL} GROUP BY u.id ORDER BY u.role, u.username")).all()
    return [_account(r) for r in rows]


def _audit(
    conn: Connection, actor: str, action: str, account: Account | None, **after: Any
) -> None:
    conn.execute(
        text("""
        INSERT INTO audit_log (actor, action, layer, feature_id, after)
        VALUES (:actor, :action, 'users', :fid, CAST(:after AS jsonb))
    """),
        {
            "actor": actor,
            "action": action,
            "fid": account.id if account else None,
            "after": json.dumps(after, ensure_ascii=False, default=str),
        },
    )


def _summary(account: Account) -> dict[str, Any]:
    return {
        "username": account.username,
        "display_name": account.display_name,
        "role": account.role.value,
        "disabled": account.disabled,
        "grids": list(account.grids),
        "unit": account.unit,
        "counties": list(account.counties),
    }


def assign_grids(conn: Connection, account: Account, codes: list[str]) -> None:
    """Make `account` (an inspector) the inspector of exactly these current grids."""
    if codes and account.role is not Role.INSPECTOR:
        raise AccountError(
            "Only inspectors are assigned grids.",
            "只有监督员才分配网格。",
            code="grids_not_allowed",
        )
    found = set(
        conn.execute(
            text(f"SELECT code FROM grids WHERE code = ANY(:codes) AND {is_current(GRIDS)}"),
            {"codes": codes},
        ).scalars()
    )
    missing = sorted(set(codes) - found)
    if missing:
        raise AccountError(
            f"No current grid has the code(s) {', '.join(missing)}.",
            f"不存在现行网格：{'、'.join(missing)}。",
            code="unknown_grid",
        )
    conn.execute(text("DELETE FROM grid_inspectors WHERE username = :u"), {"u": account.username})
    for code in sorted(found):
        conn.execute(
            text("""
            INSERT INTO grid_inspectors (grid_code, name, username) VALUES (:c, :n, :u)
            ON CONFLICT (grid_code, name) DO UPDATE SET username = excluded.username
        """),
            {"c": code, "n": account.display_name or account.username, "u": account.username},
        )


def add(
    conn: Connection,
    username: str,
    role: str,
    password_hash: str,
    actor: str,
    display_name: str | None = None,
    grids: list[str] | None = None,
    unit: str | None = None,
    counties: list[str] | None = None,
) -> Account:
    """Create an account (a hash from `hash_password`) holding its counties, with an inspector's
    grids or a unit."""
    if not USERNAME.fullmatch(username):
        raise AccountError(
            f"{username!r} is not a valid user name: 2-64 letters, digits, '_', '.' or '-'.",
            f"用户名 {username!r} 无效：应为 2-64 个字母、数字、“_”、“.”或“-”。",
            code="bad_username",
        )
    if find(conn, username) is not None:
        raise AccountError(
            f"The user name {username!r} is taken.",
            f"用户名 {username!r} 已被使用。",
            code="username_taken",
        )
    checked_role = _role(role)
    unit = _unit_for(checked_role, unit)
    held = _counties_for(conn, checked_role, counties or [])
    _check_unit_in(conn, unit, held)
    conn.execute(
        text("""
        INSERT INTO users (username, display_name, role, password_hash, unit)
        VALUES (:u, :d, :r, :h, :unit)
    """),
        {
            "u": username,
            "d": display_name,
            "r": checked_role.value,
            "h": password_hash,
            "unit": unit,
        },
    )
    _write_counties(conn, username, held)
    account = get(conn, username)
    assign_grids(conn, account, grids or [])
    account = get(conn, username)
    _audit(conn, actor, "create", account, **_summary(account))
    return account


def _counties_for(conn: Connection, role: Role, counties: list[str]) -> list[str]:
    if not counties and role is not Role.ADMIN:
        raise AccountError(
            "An account needs the counties it works in (--county ADCODE); only the deployment's "
            "admin has none.",
            "账号必须指定所辖县级行政区（--county 行政区划代码）；只有部署管理员可以不指定。",
            code="county_required",
        )
    return counties_module.require_known(conn, counties) if counties else []


def _write_counties(conn: Connection, username: str, adcodes: list[str]) -> None:
    conn.execute(text("DELETE FROM user_counties WHERE username = :u"), {"u": username})
    for adcode in adcodes:
        conn.execute(
            text("INSERT INTO user_counties (username, adcode) VALUES (:u, :a)"),
            {"u": username, "a": adcode},
        )


def set_counties(conn: Connection, username: str, counties: list[str], actor: str) -> Account:
    """Change the counties an account reads and writes (its tokens stop working)."""
    account = get(conn, username)
    held = _counties_for(conn, account.role, counties)
    _write_counties(conn, username, held)
    return _change(conn, username, actor, "disabled = disabled", before=account)


def _change(
    conn: Connection,
    username: str,
    actor: str,
    assignments: str,
    before: Account | None = None,
    **values: Any,
) -> Account:
    before = before or get(conn, username)
    conn.execute(
        text(f"UPDATE users SET {assignments}, sessions_valid_from = now() WHERE username = :u"),
        {"u": username, **values},
    )
    sessions.revoke_all(conn, username)
    after = get(conn, username)
    _audit(conn, actor, "update", after, before=_summary(before), **_summary(after))
    return after


def _unit_for(role: Role, unit: str | None) -> str | None:
    if (role is Role.HANDLER) != bool(unit and unit.strip()):
        raise AccountError(
            "A handling unit's account needs its unit, and only such an account has one.",
            "处置单位账号必须填写所属单位（且只有处置单位账号填写）。",
            code="unit_mismatch",
        )
    return unit.strip() if unit else None


def _check_unit_in(conn: Connection, unit: str | None, held: list[str]) -> None:
    """Refuse a handling unit's account whose unit is not a unit of one of its counties."""
    if unit is None or set(units.counties_of(conn, unit)) & set(held):
        return
    raise AccountError(
        f"{unit!r} is not a handling unit of the account's counties ({', '.join(held)}): use a "
        "grid's responsible unit there or declare it first (citygrid units add NAME --county).",
        f"“{unit}”不是该账号所辖县级行政区（{'、'.join(held)}）的处置单位：请选用其网格责任单位，"
        "或先登记（citygrid units add 名称 --county 行政区划代码）。",
        code="unit_not_in_county",
    )


def set_role(
    conn: Connection, username: str, role: str, actor: str, unit: str | None = None
) -> Account:
    """Change a user's role (a handling unit's with its unit); grids go with the inspector role."""
    new_role = _role(role)
    unit = _unit_for(new_role, unit)
    held = _counties_for(conn, new_role, list(get(conn, username).counties))
    _check_unit_in(conn, unit, held)
    if new_role is not Role.INSPECTOR:
        conn.execute(text("DELETE FROM grid_inspectors WHERE username = :u"), {"u": username})
    return _change(conn, username, actor, "role = :r, unit = :unit", r=new_role.value, unit=unit)


def disable(conn: Connection, username: str, actor: str) -> Account:
    """Disable an account: it can no longer sign in and its tokens stop working."""
    return _change(conn, username, actor, "disabled = true")


def set_password(conn: Connection, username: str, password_hash: str, actor: str) -> Account:
    """Replace a password (its tokens stop working)."""
    return _change(conn, username, actor, "password_hash = :h", h=password_hash)


def _refused(detail_en: str, detail_zh: str) -> NotSignedIn:
    return NotSignedIn(detail_en, detail_zh, code="bad_credentials")


def authenticate(
    engine: Engine, username: str, password: str, policy: LoginPolicy, client: str
) -> Account:
    """The account whose password this is, signing in from `client` (an address); failures are
    counted (and kept) even though they raise."""
    key, where = signin.name_key(username), signin.limit_key(client)
    possible = USERNAME.fullmatch(username) is not None  # anything else names no account
    with engine.begin() as conn:
        signin.check_not_blocked(conn, where, key)
        row = (
            conn.execute(
                text("SELECT password_hash FROM users WHERE username = :u"), {"u": username}
            ).first()
            if possible
            else None
        )
        try:
            HASHER.verify(row.password_hash if row else _dummy_hash(), password)
            ok = row is not None
        except (VerificationError, InvalidHashError):
            ok = False
        account = find(conn, username) if ok else None
        if account is None or account.disabled:
            signin.record_failure(conn, where, key, policy)
            _audit(conn, key, "login_failed", account, client=client)
        else:
            signin.record_success(conn, where, key)
            if row is not None and HASHER.check_needs_rehash(row.password_hash):
                conn.execute(
                    text("UPDATE users SET password_hash = :h WHERE id = :id"),
                    {"h": HASHER.hash(password), "id": account.id},
                )
            _audit(conn, account.username, "login", account, client=client)
    if account is None:
        raise _refused("Wrong user name or password.", "用户名或密码错误。")
    if account.disabled:
        raise _refused("This account is disabled.", "该账号已停用。")
    return account
