"""Inspectors assigned to grids, kept by grid code so they outlive boundary changes.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "grid_inspectors",
        sa.Column("grid_code", sa.String(length=15), nullable=False, comment="网格编码"),
        sa.Column("name", sa.Text(), nullable=False, comment="监督员"),
        sa.Column("phone", sa.Text(), nullable=True, comment="联系电话"),
        sa.CheckConstraint(
            "grid_code ~ '^[0-9]{15}$'", name=op.f("ck_grid_inspectors_code_format")
        ),
        sa.CheckConstraint("length(btrim(name)) > 0", name=op.f("ck_grid_inspectors_name_present")),
        sa.PrimaryKeyConstraint("grid_code", "name", name=op.f("pk_grid_inspectors")),
        comment="网格监督员",
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("grid_inspectors")
