"""Online fume monitoring: the `restaurants` layer (name, address, seats, purifier type, last
cleaning, monitoring device ID unique in its county, operator contact), `fume_checks` (an
inspector's check, whose cleaning date becomes the restaurant's last cleaning), `fume_limits` (a county's
own limit; without one the national 2.0 mg/m³ of GB 18483 holds) and `fume_readings`, partitioned
by China-time month on `time` (BRIN on time). The API's role makes month partitions through a
function run with the owner's rights.

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-02 15:30:00
"""

from __future__ import annotations

from alembic import op

from layers.registry import FUME_CHECKS, RESTAURANTS
from layers.store.tables import (
    create_layer_table,
    drop_layer_table,
    fume_limits,
    fume_readings,
)

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None

# A month partition is named fume_readings_YYYYMM and holds that China-time month.
MAKE_PARTITIONS = """
CREATE FUNCTION citygrid_fume_partitions(months date[]) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  month date;
  made integer := 0;
BEGIN
  FOREACH month IN ARRAY months LOOP
    month := date_trunc('month', month)::date;
    IF to_regclass(format('public.%I', 'fume_readings_' || to_char(month, 'YYYYMM'))) IS NULL THEN
      EXECUTE format(
        'CREATE TABLE IF NOT EXISTS %I PARTITION OF fume_readings FOR VALUES FROM (%L) TO (%L)',
        'fume_readings_' || to_char(month, 'YYYYMM'),
        month::timestamp AT TIME ZONE 'Asia/Shanghai',
        (month + interval '1 month')::timestamp AT TIME ZONE 'Asia/Shanghai');
      made := made + 1;
    END IF;
  END LOOP;
  RETURN made;
END
$$;
"""


# A check's cleaning date becomes the restaurant's last cleaning, unless it already has a later one.
CLEANED_BY_CHECK = """
CREATE FUNCTION citygrid_fume_check_cleaned() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.cleaned_on IS NOT NULL THEN
    UPDATE restaurants SET cleaned_on = NEW.cleaned_on
    WHERE id = NEW.restaurant_id AND (cleaned_on IS NULL OR cleaned_on < NEW.cleaned_on);
  END IF;
  RETURN NULL;
END
$$;
"""
CLEANED_TRIGGER = """
CREATE TRIGGER set_restaurant_cleaned_on AFTER INSERT OR UPDATE OF cleaned_on ON fume_checks
FOR EACH ROW EXECUTE FUNCTION citygrid_fume_check_cleaned();
"""


def upgrade() -> None:
    """Apply this revision."""
    conn = op.get_bind()
    create_layer_table(conn, RESTAURANTS)
    create_layer_table(conn, FUME_CHECKS)
    op.execute(CLEANED_BY_CHECK)
    op.execute(CLEANED_TRIGGER)
    fume_limits.create(conn)
    fume_readings.create(conn)
    op.execute(MAKE_PARTITIONS)
    op.execute("REVOKE ALL ON FUNCTION citygrid_fume_partitions(date[]) FROM PUBLIC")


def downgrade() -> None:
    """Revert this revision: every restaurant and reading is dropped."""
    conn = op.get_bind()
    op.execute("DROP FUNCTION citygrid_fume_partitions(date[])")
    fume_readings.drop(conn)
    fume_limits.drop(conn)
    drop_layer_table(conn, FUME_CHECKS)
    op.execute("DROP FUNCTION citygrid_fume_check_cleaned()")
    drop_layer_table(conn, RESTAURANTS)
