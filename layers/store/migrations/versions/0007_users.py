"""Accounts with roles, failed-login counts, and inspectors' grids tied to their accounts.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 21:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("username", sa.Text(), nullable=False, comment="用户名"),
        sa.Column("display_name", sa.Text(), nullable=True, comment="姓名"),
        sa.Column("role", sa.Text(), nullable=False, comment="角色"),
        sa.Column("password_hash", sa.Text(), nullable=False, comment="口令哈希 (argon2id)"),
        sa.Column(
            "disabled",
            sa.Boolean(),
            nullable=False,
            server_default=sa.text("false"),
            comment="已停用",
        ),
        sa.Column(
            "sessions_valid_from",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("now()"),
            comment="此前签发的令牌作废",
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("now()"),
        ),
        sa.CheckConstraint(
            "username ~ '^[A-Za-z0-9_.-]{2,64}$'", name=op.f("ck_users_username_format")
        ),
        sa.CheckConstraint(
            "role IN ('admin', 'planner', 'inspector', 'leader')", name=op.f("ck_users_role")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
        comment="用户",
    )
    op.create_table(
        "login_failures",
        sa.Column("username", sa.Text(), nullable=False, comment="尝试登录的用户名（小写）"),
        sa.Column("failures", sa.Integer(), nullable=False, comment="连续失败次数"),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "blocked_until", sa.DateTime(timezone=True), nullable=True, comment="此前拒绝再试"
        ),
        sa.PrimaryKeyConstraint("username", name=op.f("pk_login_failures")),
        comment="登录失败计数（防暴力破解）",
    )
    op.add_column(
        "grid_inspectors",
        sa.Column("username", sa.Text(), nullable=True, comment="监督员账号"),
    )
    op.create_foreign_key(
        op.f("fk_grid_inspectors_username_users"),
        "grid_inspectors",
        "users",
        ["username"],
        ["username"],
        onupdate="CASCADE",
        ondelete="SET NULL",
    )
    op.create_index(op.f("ix_grid_inspectors_username"), "grid_inspectors", ["username"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index(op.f("ix_grid_inspectors_username"), table_name="grid_inspectors")
    op.drop_constraint(
        op.f("fk_grid_inspectors_username_users"), "grid_inspectors", type_="foreignkey"
    )
    op.drop_column("grid_inspectors", "username")
    op.drop_table("login_failures")
    op.drop_table("users")
