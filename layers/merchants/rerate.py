"""Bring every merchant's red/yellow/green rating up to date with the moving 90-day window."""

from __future__ import annotations

from sqlalchemy import Connection, text

# the rating is the database's (citygrid_merchant_rating, migration 0030): only rows whose stored
# rating the window has left behind are written, so a night with nothing aged writes nothing
RERATE = """
    UPDATE merchants AS m
    SET rating = citygrid_merchant_rating(m.id, m.geom, m.adcode)
    WHERE m.rating IS DISTINCT FROM citygrid_merchant_rating(m.id, m.geom, m.adcode)
"""


def rerate(conn: Connection) -> int:
    """Rewrite the ratings that have aged; return how many changed."""
    return int(conn.execute(text(RERATE)).rowcount)
