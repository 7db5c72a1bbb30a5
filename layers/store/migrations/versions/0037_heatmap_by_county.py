"""The heatmap's index leads with the county: a county's year is one range of it, however many
counties the database holds (before, a county's heatmap walked every county's year and filtered).

Every account but the deployment's admin holds its counties, so its statistics are asked with
`adcode = ANY(...)`; an index-only scan then reads that county's entries alone.

Revision ID: 0037
Revises: 0036
Create Date: 2026-12-03 04:40:00
"""

from __future__ import annotations

from alembic import op

revision = "0037"
down_revision = "0036"
branch_labels = None
depends_on = None

INCLUDE = ["gk_srid", "cell_x", "cell_y", "category_code", "geom"]


def upgrade() -> None:
    """Apply this revision."""
    op.drop_index("ix_cases_heatmap", table_name="cases")
    op.create_index(
        "ix_cases_heatmap", "cases", ["adcode", "reported_at"], postgresql_include=INCLUDE
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_cases_heatmap", table_name="cases")
    op.create_index("ix_cases_heatmap", "cases", ["reported_at"], postgresql_include=INCLUDE)
