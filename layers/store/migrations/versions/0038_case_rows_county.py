"""A case's events and photos carry their county, and reach their case by county and id: the
keys a cluster distributed by county needs (docs/SCALING.md), made while the tables are small.

Revision ID: 0038
Revises: 0037
Create Date: 2026-12-03 05:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0038"
down_revision = "0037"
branch_labels = None
depends_on = None

CHILDREN = (
    ("case_events", "案件流转记录所属县级行政区"),
    ("case_photos", "案件照片所属县级行政区"),
)


def upgrade() -> None:
    """Apply this revision."""
    op.create_unique_constraint("uq_cases_adcode_id", "cases", ["adcode", "id"])
    for table, comment in CHILDREN:
        op.add_column(table, sa.Column("adcode", sa.String(6), nullable=True, comment=comment))
        op.execute(
            f"UPDATE {table} AS r SET adcode = c.adcode FROM cases AS c WHERE c.id = r.case_id"
        )
        op.alter_column(table, "adcode", nullable=False)
        op.drop_constraint(f"fk_{table}_case_id_cases", table, type_="foreignkey")
        op.create_foreign_key(
            f"fk_{table}_adcode_cases",
            table,
            "cases",
            ["adcode", "case_id"],
            ["adcode", "id"],
            onupdate="CASCADE",
            ondelete="CASCADE",
        )


def downgrade() -> None:
    """Revert this revision."""
    for table, _ in CHILDREN:
        op.drop_constraint(f"fk_{table}_adcode_cases", table, type_="foreignkey")
        op.create_foreign_key(
            f"fk_{table}_case_id_cases", table, "cases", ["case_id"], ["id"], ondelete="CASCADE"
        )
        op.drop_column(table, "adcode")
    op.drop_constraint("uq_cases_adcode_id", "cases", type_="unique")
