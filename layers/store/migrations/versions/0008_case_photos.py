"""Photos taken on the spot, stored with their case.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 22:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "case_photos",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False, comment="案件"),
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
            name=op.f("ck_case_photos_content_type"),
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_case_photos_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_photos")),
        comment="案件照片",
    )
    op.create_index(op.f("ix_case_photos_case_id"), "case_photos", ["case_id"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index(op.f("ix_case_photos_case_id"), table_name="case_photos")
    op.drop_table("case_photos")
