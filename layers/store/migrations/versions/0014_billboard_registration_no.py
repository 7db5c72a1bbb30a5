"""A billboard's registration number: the number on the bureau's register, by which an import
finds the stored billboard a file's row describes.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 01:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.add_column(
        "billboards",
        sa.Column("registration_no", sa.Text(), nullable=True, comment="登记编号"),
    )
    op.create_index(
        op.f("ix_billboards_registration_no"), "billboards", ["registration_no"], unique=False
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index(op.f("ix_billboards_registration_no"), table_name="billboards")
    op.drop_column("billboards", "registration_no")
