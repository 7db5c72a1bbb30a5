"""Sign-in sessions: every token names one, and a session ended here is refused everywhere.

Writes to `sessions` are announced like a layer's (`layer_versions`, NOTIFY), so each API process
keeps the revoked ids in memory and reloads them the moment one more is revoked.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import Connection, text

Kind = Literal["cookie", "bearer"]
# A day past their expiry rows are dropped: by then the tokens they revoked are refused anyway.
KEEP_EXPIRED = timedelta(days=1)


def open_session(
    conn: Connection, username: str, kind: Kind, lifetime: timedelta, client: str | None
) -> tuple[str, datetime]:
    """Record a new session of `username`; its id and when it expires."""
    sid = secrets.token_urlsafe(18)
    expires = conn.execute(
        text("""
        INSERT INTO sessions (sid, username, kind, client, expires_at)
        VALUES (:sid, :u, :kind, :client, now() + make_interval(secs => :seconds))
        RETURNING expires_at
    """),
        {
            "sid": sid,
            "u": username,
            "kind": kind,
            "client": client,
            "seconds": lifetime.total_seconds(),
        },
    ).scalar_one()
    conn.execute(
        text("DELETE FROM sessions WHERE expires_at < now() - make_interval(secs => :keep)"),
        {"keep": KEEP_EXPIRED.total_seconds()},
    )
    return sid, expires


def revoke(conn: Connection, sid: str, username: str, kind: Kind, expires_at: datetime) -> None:
    """End one session (recorded or not: a token names it and its expiry)."""
    conn.execute(
        text("""
        INSERT INTO sessions (sid, username, kind, expires_at, revoked_at)
        SELECT :sid, :u, :kind, :expires, now() WHERE EXISTS (SELECT 1 FROM users WHERE username = :u)
        ON CONFLICT (sid) DO UPDATE SET revoked_at = coalesce(sessions.revoked_at, now())
    """),
        {"sid": sid, "u": username, "kind": kind, "expires": expires_at},
    )


def revoke_all(conn: Connection, username: str) -> None:
    """End every open session of `username` (password changed, account disabled or changed)."""
    conn.execute(
        text("""
        UPDATE sessions SET revoked_at = now()
        WHERE username = :u AND revoked_at IS NULL AND expires_at > now()
    """),
        {"u": username},
    )


def revoked_ids(conn: Connection) -> frozenset[str]:
    """The ids of revoked sessions whose tokens have not expired yet."""
    return frozenset(
        conn.execute(
            text("SELECT sid FROM sessions WHERE revoked_at IS NOT NULL AND expires_at > now()")
        ).scalars()
    )


def is_revoked(conn: Connection, sid: str) -> bool:
    """Whether the session `sid` has been ended."""
    return bool(
        conn.execute(
            text(
                "SELECT EXISTS (SELECT 1 FROM sessions WHERE sid = :sid AND revoked_at IS NOT NULL)"
            ),
            {"sid": sid},
        ).scalar()
    )
