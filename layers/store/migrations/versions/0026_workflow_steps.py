"""The workflow steps the standard counts beyond the main line: 核实 (a new state `unverified`
for reports from the public, the hotline and cameras, with its time limit), 作废 and 合并 (a new
final state `cancelled`, the case merged into), 延期 (the days asked, the extensions granted),
督办 (count and deadline), 回访 (the caller's answer) and 自行处置 (a flag); the data each step
carries is kept on its event.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-02 11:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

OLD_STATUSES = (
    "reported",
    "registered",
    "rejected",
    "dispatched",
    "handled",
    "feedback",
    "verified",
    "closed",
    "returned",
    "rework",
    "parked",
)
NEW_STATUSES = ("unverified", *OLD_STATUSES, "cancelled")
STAMP = TIMESTAMP(timezone=True, precision=0)  # whole seconds, as the other case times
CALLBACK = "callback_result IN ('satisfied', 'unsatisfied', 'unreachable')"
COLUMNS = (
    ("verify_deadline", STAMP, "核实时限"),
    ("confirmed_at", STAMP, "核实时间"),
    ("merged_into", sa.Integer(), "合并至案件"),
    ("extension_asked", sa.Integer(), "申请延期工作日"),
    ("extensions", sa.Integer(), "延期次数"),
    ("supervisions", sa.Integer(), "督办次数"),
    ("supervise_deadline", STAMP, "督办时限"),
    ("callback_result", sa.Text(), "回访结果"),
    ("self_handled", sa.Boolean(), "自行处置"),
)


def _status_check(statuses: tuple[str, ...]) -> None:
    op.drop_constraint(op.f("ck_cases_status"), "cases", type_="check")
    listed = ", ".join(f"'{s}'" for s in statuses)
    op.create_check_constraint(op.f("ck_cases_status"), "cases", f"status IN ({listed})")


def upgrade() -> None:
    """Apply this revision."""
    _status_check(NEW_STATUSES)
    for name, kind, comment in COLUMNS:
        op.add_column("cases", sa.Column(name, kind, comment=comment))
    op.create_check_constraint(op.f("ck_cases_callback_result"), "cases", CALLBACK)
    op.add_column(
        "case_events",
        sa.Column("detail", JSONB(), comment="环节数据（延期天数、合并案件、回访结果等）"),
    )


def downgrade() -> None:
    """Revert this revision: unverified reports wait as reported, cancelled ones as rejected."""
    op.drop_column("case_events", "detail")
    op.drop_constraint(op.f("ck_cases_callback_result"), "cases", type_="check")
    for name, _, _ in reversed(COLUMNS):
        op.drop_column("cases", name)
    op.execute("UPDATE cases SET status = 'reported' WHERE status = 'unverified'")
    op.execute("UPDATE cases SET status = 'rejected' WHERE status = 'cancelled'")
    _status_check(OLD_STATUSES)
