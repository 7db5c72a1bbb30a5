"""Announce account changes like layer changes, so API processes can keep accounts in memory and
still drop them the moment one is disabled or changed.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25 23:40:00
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.execute("INSERT INTO layer_versions (layer) VALUES ('users') ON CONFLICT DO NOTHING")
    op.execute(
        "CREATE TRIGGER bump_layer_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON users "
        "FOR EACH STATEMENT EXECUTE FUNCTION citygrid_bump_layer_version()"
    )


def downgrade() -> None:
    """Revert this revision."""
    op.execute("DROP TRIGGER IF EXISTS bump_layer_version ON users")
    op.execute("DELETE FROM layer_versions WHERE layer = 'users'")
