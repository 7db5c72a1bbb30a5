"""A case may name the camera that saw it (a video patrol), the 门前三包 merchant or the
garbage-sorting point it concerns: nullable references, cleared when that row is deleted; the
engine keeps each to the case's county.

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-02 19:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0035"
down_revision = "0034"
branch_labels = None
depends_on = None

LINKS = (
    ("camera_id", "cameras", "发现视频点位"),
    ("merchant_id", "merchants", "涉及门前三包商户"),
    ("garbage_point_id", "garbage_points", "涉及垃圾分类投放点"),
)


def upgrade() -> None:
    """Apply this revision."""
    for column, table, comment in LINKS:
        op.add_column("cases", sa.Column(column, sa.BigInteger(), comment=comment))
        op.create_foreign_key(
            op.f(f"fk_cases_{column}_{table}"),
            "cases",
            table,
            [column],
            ["id"],
            ondelete="SET NULL",
        )
        op.create_index(op.f(f"ix_cases_{column}"), "cases", [column])


def downgrade() -> None:
    """Revert this revision."""
    for column, _table, _comment in LINKS:
        op.drop_index(op.f(f"ix_cases_{column}"), table_name="cases")
        op.drop_column("cases", column)
