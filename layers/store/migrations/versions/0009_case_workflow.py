"""The case workflow: command-centre and handling-unit roles, a case's handling unit, its events.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25 22:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

OLD_ROLES = "role IN ('admin', 'planner', 'inspector', 'leader')"
NEW_ROLES = "role IN ('admin', 'planner', 'inspector', 'leader', 'dispatcher', 'handler')"


def upgrade() -> None:
    """Apply this revision."""
    op.drop_constraint(op.f("ck_users_role"), "users", type_="check")
    op.create_check_constraint(op.f("ck_users_role"), "users", NEW_ROLES)
    op.add_column("users", sa.Column("unit", sa.Text(), nullable=True, comment="所属处置单位"))
    op.create_check_constraint(
        op.f("ck_users_handler_unit"), "users", "role <> 'handler' OR unit IS NOT NULL"
    )
    op.add_column("cases", sa.Column("unit", sa.Text(), nullable=True, comment="处置单位"))
    op.create_index(op.f("ix_cases_unit"), "cases", ["unit"], unique=False)
    op.create_table(
        "case_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False, comment="案件"),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, comment="时间"),
        sa.Column("action", sa.Text(), nullable=False, comment="环节"),
        sa.Column("from_status", sa.Text(), nullable=False, comment="原状态"),
        sa.Column("to_status", sa.Text(), nullable=False, comment="新状态"),
        sa.Column("actor", sa.Text(), nullable=False, comment="操作人"),
        sa.Column("note", sa.Text(), nullable=True, comment="说明"),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_events_case_id_cases"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_events")),
        comment="案件流转记录",
    )
    op.create_index(op.f("ix_case_events_case_id"), "case_events", ["case_id"], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index(op.f("ix_case_events_case_id"), table_name="case_events")
    op.drop_table("case_events")
    op.drop_index(op.f("ix_cases_unit"), table_name="cases")
    op.drop_column("cases", "unit")
    op.drop_constraint(op.f("ck_users_handler_unit"), "users", type_="check")
    op.drop_column("users", "unit")
    op.execute("DELETE FROM users WHERE role IN ('dispatcher', 'handler')")
    op.drop_constraint(op.f("ck_users_role"), "users", type_="check")
    op.create_check_constraint(op.f("ck_users_role"), "users", OLD_ROLES)
