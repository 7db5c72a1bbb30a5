"""Handling units the admin declares, and versions of inspectors' grid assignments.

A case is dispatched only to a known unit: a current grid's responsible unit or one in `units`.
Changes to `grid_inspectors` are announced like a layer's, so tiles limited to a patrol area can be
cached under the version of the assignments they were read with.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "units",
        sa.Column("name", sa.Text(), nullable=False, comment="处置单位名称"),
        sa.Column("added_by", sa.Text(), nullable=False, comment="登记人"),
        sa.Column(
            "added_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("now()"),
            comment="登记时间",
        ),
        sa.CheckConstraint(
            "name = btrim(name) AND length(name) BETWEEN 1 AND 200",
            name=op.f("ck_units_name_format"),
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_units")),
        comment="处置单位（网格责任单位之外由管理员登记）",
    )
    op.execute(
        "INSERT INTO layer_versions (layer) VALUES ('grid_inspectors') ON CONFLICT DO NOTHING"
    )
    op.execute(
        "CREATE TRIGGER bump_layer_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
        "ON grid_inspectors FOR EACH STATEMENT EXECUTE FUNCTION citygrid_bump_layer_version()"
    )


def downgrade() -> None:
    """Revert this revision."""
    op.execute("DROP TRIGGER IF EXISTS bump_layer_version ON grid_inspectors")
    op.execute("DELETE FROM layer_versions WHERE layer = 'grid_inspectors'")
    op.drop_table("units")
