"""Layer timestamps in whole seconds (clients such as GDAL round microseconds badly).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 16:40:00
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

CASE_TIMES = (
    "reported_at",
    "registered_at",
    "dispatched_at",
    "handled_at",
    "feedback_at",
    "verified_at",
    "closed_at",
    "deadline",
)


def upgrade() -> None:
    """Apply this revision."""
    for column in CASE_TIMES:
        op.execute(f"ALTER TABLE cases ALTER COLUMN {column} TYPE timestamptz(0)")


def downgrade() -> None:
    """Revert this revision."""
    for column in CASE_TIMES:
        op.execute(f"ALTER TABLE cases ALTER COLUMN {column} TYPE timestamptz")
