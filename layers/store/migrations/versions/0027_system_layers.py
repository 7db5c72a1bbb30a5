"""The other systems of the bureaus' reports as layers: residential compounds (小区) and their
garbage-sorting points, 城管驿站, cameras, shared e-bike parking points and painted
non-motor-vehicle parking lines, each a table built from its registry declaration.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-02 14:30:00
"""

from __future__ import annotations

from alembic import op

from layers.registry import SYSTEM_LAYERS
from layers.store.tables import create_layer_table, drop_layer_table

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    conn = op.get_bind()
    for layer in SYSTEM_LAYERS:  # compounds first: garbage points refer to them
        create_layer_table(conn, layer)


def downgrade() -> None:
    """Revert this revision."""
    conn = op.get_bind()
    for layer in reversed(SYSTEM_LAYERS):
        drop_layer_table(conn, layer)
