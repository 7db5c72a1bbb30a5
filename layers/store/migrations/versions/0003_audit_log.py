"""Audit log: who changed what, when, with the feature before and after.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 16:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")
        ),
        sa.Column("actor", sa.Text(), nullable=False, comment="操作人"),
        sa.Column("action", sa.Text(), nullable=False, comment="操作"),
        sa.Column("layer", sa.Text(), nullable=False, comment="图层"),
        sa.Column("feature_id", sa.BigInteger(), nullable=True, comment="要素编号"),
        sa.Column("adcode", sa.String(length=6), nullable=True, comment="县级行政区划代码"),
        sa.Column("before", postgresql.JSONB(), nullable=True, comment="修改前"),
        sa.Column("after", postgresql.JSONB(), nullable=True, comment="修改后"),
        sa.CheckConstraint(
            "action IN ('create', 'replace', 'update', 'delete', 'login', 'login_failed')",
            name=op.f("ck_audit_log_action"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
        comment="审计日志",
    )
    op.create_index(op.f("ix_audit_log_at"), "audit_log", ["at"], unique=False)
    op.create_index(op.f("ix_audit_log_layer"), "audit_log", ["layer", "feature_id"], unique=False)
    op.create_index(op.f("ix_audit_log_actor"), "audit_log", ["actor"], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("audit_log")
