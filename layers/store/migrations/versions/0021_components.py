"""The component inventory (部件普查): the `components` layer, its coded IDs checked against the
row's county and subclass, and its versions (status changes keep the version they replace).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-02 07:00:00
"""

from __future__ import annotations

from alembic import op

from layers.registry import COMPONENTS
from layers.store.tables import create_layer_table, drop_layer_table

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    create_layer_table(op.get_bind(), COMPONENTS)


def downgrade() -> None:
    """Revert this revision."""
    drop_layer_table(op.get_bind(), COMPONENTS)
