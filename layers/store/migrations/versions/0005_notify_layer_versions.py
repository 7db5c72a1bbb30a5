"""Announce every layer version change on the channel `citygrid_layers` (NOTIFY).

Each API process listens and keeps the versions in memory, so a cached tile is served without a
query, and still never after a write to its layer.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 17:25:00
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _function(notify: str) -> str:
    return f"""
        CREATE OR REPLACE FUNCTION citygrid_bump_layer_version() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
          new_version bigint;
        BEGIN
          INSERT INTO layer_versions (layer) VALUES (TG_TABLE_NAME)
          ON CONFLICT (layer) DO UPDATE
            SET version = layer_versions.version + 1, changed_at = now()
          RETURNING version INTO new_version;
          {notify}
          RETURN NULL;
        END
        $$;
    """


def upgrade() -> None:
    """Apply this revision."""
    op.execute(
        _function("PERFORM pg_notify('citygrid_layers', TG_TABLE_NAME || ':' || new_version);")
    )


def downgrade() -> None:
    """Revert this revision."""
    op.execute(_function(""))
