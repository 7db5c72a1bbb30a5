"""Sessions that can be ended on the server, and sign-in failures counted per client address.

Every token names a session; ending one (logout) or all of a user's (password change, disabling)
marks them revoked, announced on `citygrid_layers` like a layer change so every API process drops
them at once. Failures are counted per (user name, client address) and per client address, so a
stranger can no longer lock the owner out.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 23:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.drop_table("login_failures")  # counts of a few minutes: nothing worth carrying over
    op.create_table(
        "login_failures",
        sa.Column("client", sa.Text(), nullable=False, comment="客户端地址"),
        sa.Column(
            "username",
            sa.Text(),
            nullable=False,
            comment="尝试登录的用户名（小写）；空串 = 该地址尝试的所有用户名",
        ),
        sa.Column("failures", sa.Integer(), nullable=False, comment="失败次数"),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "blocked_until", sa.DateTime(timezone=True), nullable=True, comment="此前拒绝再试"
        ),
        sa.PrimaryKeyConstraint("client", "username", name=op.f("pk_login_failures")),
        comment="登录失败计数（按用户名与客户端地址、按客户端地址；防暴力破解）",
    )
    op.create_index(
        op.f("ix_login_failures_last_failure_at"), "login_failures", ["last_failure_at"]
    )
    op.create_table(
        "sessions",
        sa.Column("sid", sa.Text(), nullable=False, comment="会话编号（令牌中的 sid）"),
        sa.Column("username", sa.Text(), nullable=False, comment="用户名"),
        sa.Column(
            "kind", sa.Text(), nullable=False, comment="cookie（页面登录）或 bearer（接口令牌）"
        ),
        sa.Column("client", sa.Text(), nullable=True, comment="登录时的客户端地址"),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("now()"),
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True, comment="注销时间"),
        sa.CheckConstraint("kind IN ('cookie', 'bearer')", name=op.f("ck_sessions_kind")),
        sa.ForeignKeyConstraint(
            ["username"],
            ["users.username"],
            name=op.f("fk_sessions_username_users"),
            onupdate="CASCADE",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("sid", name=op.f("pk_sessions")),
        comment="登录会话（注销、改密、停用后立即失效）",
    )
    op.create_index(op.f("ix_sessions_username"), "sessions", ["username"])
    op.create_index(op.f("ix_sessions_expires_at"), "sessions", ["expires_at"])
    op.execute("INSERT INTO layer_versions (layer) VALUES ('sessions') ON CONFLICT DO NOTHING")
    op.execute(
        "CREATE TRIGGER bump_layer_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
        "ON sessions FOR EACH STATEMENT EXECUTE FUNCTION citygrid_bump_layer_version()"
    )


def downgrade() -> None:
    """Revert this revision."""
    op.execute("DROP TRIGGER IF EXISTS bump_layer_version ON sessions")
    op.execute("DELETE FROM layer_versions WHERE layer = 'sessions'")
    op.drop_index(op.f("ix_sessions_expires_at"), table_name="sessions")
    op.drop_index(op.f("ix_sessions_username"), table_name="sessions")
    op.drop_table("sessions")
    op.drop_table("login_failures")
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
