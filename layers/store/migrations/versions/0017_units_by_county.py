"""Handling units belong to a county: `units` gets an adcode, and a name is unique in its county.

A unit declared before counties existed is placed by the first of these that names it:
1. the counties of the grids (any version) naming it as their responsible unit;
2. else the counties of the cases dispatched to it;
3. else the counties held by the handling-unit accounts of that unit;
4. else the one stored county, when exactly one is stored.
A unit none of these places (several counties, nothing naming it) is not kept: its declaration
moves to the audit log (action `delete`, layer `units`, actor `migration 0017`), from which an admin
declares it again with its county (`citygrid units add NAME --county ADCODE`).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 05:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

ACTOR = "migration 0017"

EVIDENCE = """
    SELECT 1 AS tier, u.name, g.adcode
    FROM units AS u JOIN grids AS g ON g.responsible_unit = u.name
    UNION
    SELECT 2, u.name, c.adcode FROM units AS u JOIN cases AS c ON c.unit = u.name
    UNION
    SELECT 3, u.name, h.adcode
    FROM units AS u
    JOIN users AS a ON a.unit = u.name AND a.role = 'handler'
    JOIN user_counties AS h ON h.username = a.username
    UNION
    SELECT 4, u.name, k.adcode
    FROM units AS u CROSS JOIN counties AS k
    WHERE (SELECT count(*) FROM counties) = 1
"""


def _place_units() -> None:
    """One row per county each existing unit belongs to; the unplaced ones to the audit log."""
    op.execute(f"""
        INSERT INTO units (name, added_by, added_at, adcode)
        SELECT u.name, u.added_by, u.added_at, e.adcode
        FROM units AS u
        JOIN ({EVIDENCE}) AS e ON e.name = u.name
        WHERE u.adcode IS NULL
          AND e.tier = (SELECT min(f.tier) FROM ({EVIDENCE}) AS f WHERE f.name = u.name)
    """)
    op.execute(f"""
        INSERT INTO audit_log (actor, action, layer, before)
        SELECT '{ACTOR}', 'delete', 'units',
               jsonb_build_object('name', u.name, 'added_by', u.added_by, 'added_at', u.added_at,
                                  'reason', 'no county names this unit')
        FROM units AS u
        WHERE u.adcode IS NULL
          AND NOT EXISTS (SELECT 1 FROM units AS p WHERE p.name = u.name AND p.adcode IS NOT NULL)
    """)
    op.execute("DELETE FROM units WHERE adcode IS NULL")


def upgrade() -> None:
    """Apply this revision."""
    op.drop_constraint(op.f("pk_units"), "units", type_="primary")
    op.add_column(
        "units",
        sa.Column("adcode", sa.String(6), nullable=True, comment="所属县级行政区"),
    )
    _place_units()
    op.alter_column("units", "adcode", nullable=False)
    op.create_foreign_key(
        op.f("fk_units_adcode_counties"),
        "units",
        "counties",
        ["adcode"],
        ["adcode"],
        onupdate="CASCADE",
        ondelete="RESTRICT",
    )
    op.create_primary_key(op.f("pk_units"), "units", ["adcode", "name"])


def downgrade() -> None:
    """Revert this revision (a name declared in several counties keeps its earliest row)."""
    op.drop_constraint(op.f("pk_units"), "units", type_="primary")
    op.drop_constraint(op.f("fk_units_adcode_counties"), "units", type_="foreignkey")
    op.execute("""
        DELETE FROM units AS u USING units AS v
        WHERE v.name = u.name AND (v.added_at, v.adcode) < (u.added_at, u.adcode)
    """)
    op.drop_column("units", "adcode")
    op.create_primary_key(op.f("pk_units"), "units", ["name"])
