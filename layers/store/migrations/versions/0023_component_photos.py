"""Photos of components, kept by county and component ID so they outlive the component's versions.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-02 10:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "component_photos",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("adcode", sa.String(6), nullable=False, comment="县级行政区"),
        sa.Column("component_code", sa.Text(), nullable=False, comment="部件标识码"),
        sa.Column("content_type", sa.Text(), nullable=False, comment="图片类型"),
        sa.Column("data", sa.LargeBinary(), nullable=False, comment="图片"),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("uploaded_by", sa.Text(), nullable=False, comment="上传人"),
        sa.Column(
            "uploaded_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("now()"),
        ),
        sa.CheckConstraint(
            "content_type IN ('image/jpeg', 'image/png', 'image/webp')",
            name=op.f("ck_component_photos_content_type"),
        ),
        sa.ForeignKeyConstraint(
            ["adcode"],
            ["counties.adcode"],
            name=op.f("fk_component_photos_adcode_counties"),
            onupdate="CASCADE",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_component_photos")),
        comment="部件照片（按部件标识码保存，跨版本保留）",
    )
    op.create_index(
        "ix_component_photos_adcode_component_code",
        "component_photos",
        ["adcode", "component_code"],
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("component_photos")
