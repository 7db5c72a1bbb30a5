"""Sign-in failures, counted in the database per (user name, client address) and per client
address, so that several API processes share them and a stranger cannot lock the owner out.

A user name that failed too often from one address waits before it may try again from that
address only; an address that failed too often, whatever the names, waits for every name. The wait
doubles with each further failure up to a cap; counts are forgotten after a quiet spell.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from sqlalchemy import Connection, text

from layers.errors import TooManyAttempts

ANY_NAME = ""  # the row counting every name tried from one address


@dataclass(frozen=True)
class LoginPolicy:
    """How many failures a (name, address) and an address may have before they wait, how long."""

    max_failures: int = 5
    block_seconds: float = 30.0
    max_block_seconds: float = 900.0
    client_max_failures: int = 20
    forget_seconds: float = 3600.0


def limit_key(client: str) -> str:
    """The address failures are counted under: IPv6 by its /64 (one subscriber's whole range)."""
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return client[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def name_key(username: str) -> str:
    """The user name as failures are counted (never the empty key of the per-address row)."""
    return username.replace("\x00", "").strip().lower()[:64] or "?"


def check_not_blocked(conn: Connection, client: str, name: str) -> None:
    """Refuse (429, with the wait) a name blocked from this address, or a blocked address."""
    waits: dict[str, float] = dict(
        conn.execute(
            text("""
            SELECT username, extract(epoch FROM blocked_until - clock_timestamp())
            FROM login_failures
            WHERE client = :c AND username IN (:k, :any) AND blocked_until > clock_timestamp()
        """),
            {"c": client, "k": name, "any": ANY_NAME},
        ).all()
    )
    if ANY_NAME in waits:
        wait = float(waits[ANY_NAME])
        raise TooManyAttempts(
            f"Too many failed sign-ins from this address: try again in {wait:.0f} s.",
            f"该地址登录失败次数过多，请 {max(wait, 1):.0f} 秒后再试。",
            retry_after=max(int(wait + 0.999), 1),
        )
    if name in waits:
        wait = float(waits[name])
        raise TooManyAttempts(
            f"Too many failed sign-ins for {name!r}: try again in {wait:.0f} s.",
            f"用户 {name!r} 登录失败次数过多，请 {max(wait, 1):.0f} 秒后再试。",
            retry_after=max(int(wait + 0.999), 1),
        )


def _count(conn: Connection, client: str, name: str, limit: int, policy: LoginPolicy) -> None:
    conn.execute(
        text("""
        INSERT INTO login_failures AS f (client, username, failures, last_failure_at)
        VALUES (:c, :k, 1, clock_timestamp())
        ON CONFLICT (client, username) DO UPDATE SET
            failures = CASE
                WHEN f.last_failure_at < clock_timestamp() - make_interval(secs => :forget)
                THEN 1 ELSE f.failures + 1 END,
            last_failure_at = clock_timestamp()
    """),
        {"c": client, "k": name, "forget": policy.forget_seconds},
    )
    conn.execute(
        text("""
        UPDATE login_failures SET blocked_until = clock_timestamp() + make_interval(
            secs => least(:max_block, :block * 2 ^ (failures - :limit)))
        WHERE client = :c AND username = :k AND failures >= :limit
    """),
        {
            "c": client,
            "k": name,
            "block": policy.block_seconds,
            "max_block": policy.max_block_seconds,
            "limit": limit,
        },
    )


def record_failure(conn: Connection, client: str, name: str, policy: LoginPolicy) -> None:
    """Count a failure of `name` from `client`, and of `client` whatever the name."""
    _count(conn, client, name, policy.max_failures, policy)
    _count(conn, client, ANY_NAME, policy.client_max_failures, policy)
    conn.execute(
        text("""
        DELETE FROM login_failures
        WHERE last_failure_at < clock_timestamp() - make_interval(secs => :forget)
          AND (blocked_until IS NULL OR blocked_until < clock_timestamp())
    """),
        {"forget": policy.forget_seconds},
    )


def record_success(conn: Connection, client: str, name: str) -> None:
    """Forget the failures of `name` from `client` (the address's own count stays)."""
    conn.execute(
        text("DELETE FROM login_failures WHERE client = :c AND username = :k"),
        {"c": client, "k": name},
    )
