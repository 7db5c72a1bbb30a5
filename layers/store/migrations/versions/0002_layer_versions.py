"""Layer versions: bumped by every write, so caches in any process know when a layer changed.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 16:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

LAYER_TABLES = (
    "grids",
    "illegal_buildings",
    "billboards",
    "dust_sites",
    "dust_inspections",
    "work_orders",
    "parking_lots",
    "cases",
)


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "layer_versions",
        sa.Column("layer", sa.Text(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False, server_default="1"),
        sa.Column(
            "changed_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("now()"),
        ),
        sa.PrimaryKeyConstraint("layer", name=op.f("pk_layer_versions")),
        comment="图层版本：每次写入加一，用于缓存失效",
    )
    op.execute(
        "INSERT INTO layer_versions (layer) VALUES " + ", ".join(f"('{t}')" for t in LAYER_TABLES)
    )
    op.execute("""
        CREATE FUNCTION citygrid_bump_layer_version() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
          INSERT INTO layer_versions (layer) VALUES (TG_TABLE_NAME)
          ON CONFLICT (layer) DO UPDATE
            SET version = layer_versions.version + 1, changed_at = now();
          RETURN NULL;
        END
        $$;
    """)
    for table in LAYER_TABLES:
        op.execute(
            f"CREATE TRIGGER bump_layer_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION citygrid_bump_layer_version()"
        )


def downgrade() -> None:
    """Revert this revision."""
    op.execute("DROP FUNCTION IF EXISTS citygrid_bump_layer_version() CASCADE")
    op.drop_table("layer_versions")
