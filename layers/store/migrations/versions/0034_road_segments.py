"""Road segments (道路路段): the streets split at their junctions, with their length in metres and
the sanitation vehicle sweeping each, read by the presence and sweeping-coverage statistics.

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-02 19:30:00
"""

from __future__ import annotations

from alembic import op

from layers.registry import ROAD_SEGMENTS
from layers.store.tables import create_layer_table, drop_layer_table

revision = "0034"
down_revision = "0033"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    create_layer_table(op.get_bind(), ROAD_SEGMENTS)


def downgrade() -> None:
    """Revert this revision."""
    drop_layer_table(op.get_bind(), ROAD_SEGMENTS)
