"""Lengths of line layers: measured in metres in the line's Gauss-Krüger zone, like areas.

A line layer declaring `length_field` gets the trigger `set_length` (see
`layers.store.tables.layer_table_triggers`), which keeps that field from the geometry.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02 06:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

# The field the trigger keeps is its argument, so one function serves every line layer.
SQL_FUNCTIONS = """
CREATE FUNCTION citygrid_length_m(g geometry) RETURNS double precision
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT ST_Length(ST_Transform(g, citygrid_gk_srid(g)))
$$;

CREATE FUNCTION citygrid_set_length() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW := jsonb_populate_record(NEW, jsonb_build_object(TG_ARGV[0], citygrid_length_m(NEW.geom)));
  RETURN NEW;
END
$$;
"""


def upgrade() -> None:
    """Apply this revision."""
    op.execute(SQL_FUNCTIONS)


def downgrade() -> None:
    """Revert this revision."""
    op.execute("DROP FUNCTION IF EXISTS citygrid_set_length() CASCADE")
    op.execute("DROP FUNCTION IF EXISTS citygrid_length_m(geometry)")
