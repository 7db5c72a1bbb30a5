"""Live tracking: the `vehicles` layer (plate, company, kind, terminal number, permit 核准证 and its
validity, allowed time windows, approved route), `terminals` (JT/T 808 terminals, their
authentication codes and vehicles), `latest_positions` (one row per terminal or person) and
`positions`, partitioned by China-time day on `time` (BRIN on time). The API's role makes day
partitions ahead and drops old ones through two functions run with the owner's rights.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-02 15:00:00
"""

from __future__ import annotations

from alembic import op

from layers.registry import VEHICLES
from layers.store.tables import (
    create_layer_table,
    drop_layer_table,
    latest_positions,
    positions,
    terminals,
)

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None

# A day partition is named positions_YYYYMMDD and holds that China-time day.
MAKE_PARTITIONS = """
CREATE FUNCTION citygrid_position_partitions(days date[]) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  day date;
  made integer := 0;
BEGIN
  FOREACH day IN ARRAY days LOOP
    IF to_regclass(format('public.%I', 'positions_' || to_char(day, 'YYYYMMDD'))) IS NULL THEN
      EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF positions FOR VALUES FROM (%L) TO (%L)',
        'positions_' || to_char(day, 'YYYYMMDD'),
        day::timestamp AT TIME ZONE 'Asia/Shanghai',
        (day + 1)::timestamp AT TIME ZONE 'Asia/Shanghai');
      made := made + 1;
    END IF;
  END LOOP;
  RETURN made;
END
$$;
"""

DROP_PARTITIONS = """
CREATE FUNCTION citygrid_drop_position_partitions(before date) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  part text;
  dropped integer := 0;
BEGIN
  FOR part IN
    SELECT c.relname FROM pg_inherits AS i
    JOIN pg_class AS c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'public.positions'::regclass
      AND c.relname ~ '^positions_[0-9]{8}$'
      AND to_date(substr(c.relname, 11), 'YYYYMMDD') < before
  LOOP
    EXECUTE format('DROP TABLE %I', part);
    dropped := dropped + 1;
  END LOOP;
  RETURN dropped;
END
$$;
"""


def upgrade() -> None:
    """Apply this revision."""
    conn = op.get_bind()
    create_layer_table(conn, VEHICLES)
    terminals.create(conn)
    latest_positions.create(conn)
    positions.create(conn)
    op.execute(MAKE_PARTITIONS)
    op.execute(DROP_PARTITIONS)
    op.execute("REVOKE ALL ON FUNCTION citygrid_position_partitions(date[]) FROM PUBLIC")
    op.execute("REVOKE ALL ON FUNCTION citygrid_drop_position_partitions(date) FROM PUBLIC")


def downgrade() -> None:
    """Revert this revision: every stored position, terminal and vehicle is dropped."""
    conn = op.get_bind()
    op.execute("DROP FUNCTION citygrid_drop_position_partitions(date)")
    op.execute("DROP FUNCTION citygrid_position_partitions(date[])")
    positions.drop(conn)
    latest_positions.drop(conn)
    terminals.drop(conn)
    drop_layer_table(conn, VEHICLES)
