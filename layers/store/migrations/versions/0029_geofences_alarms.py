"""Geofences and tracking alarms: the `geofences` layer (sites, disposal yards, no-go zones,
strict streets, route corridors), `alarms` (one open alarm per tracker and kind),
`tracker_states` (when each terminal stopped), the `vehicle` case source and
`citygrid_in_windows`, which says whether a moment (China time) falls in HH:MM-HH:MM windows.

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-02 16:00:00
"""

from __future__ import annotations

from alembic import op

from layers.registry import GEOFENCES
from layers.store.tables import alarms, create_layer_table, drop_layer_table, tracker_states

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None

# A window may run past midnight (22:00-06:00); no windows at all means always. PL/pgSQL keeps
# its plans, where a SQL function with a subquery would be planned again for every row.
IN_WINDOWS = """
CREATE FUNCTION citygrid_in_windows(windows text, moment timestamptz) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  t interval := CAST(CAST(moment AT TIME ZONE 'Asia/Shanghai' AS time) AS interval);
  period text;
  a interval;
  b interval;
BEGIN
  IF windows IS NULL THEN
    RETURN TRUE;
  END IF;
  FOREACH period IN ARRAY string_to_array(windows, ',') LOOP
    a := CAST(split_part(period, '-', 1) AS interval);
    b := CAST(split_part(period, '-', 2) AS interval);
    IF (a <= b AND t >= a AND t < b) OR (a > b AND (t >= a OR t < b)) THEN
      RETURN TRUE;
    END IF;
  END LOOP;
  RETURN FALSE;
END
$$;
"""

SOURCES = "'inspector', 'public', 'hotline', 'video', 'patrol'"


def upgrade() -> None:
    """Apply this revision."""
    conn = op.get_bind()
    create_layer_table(conn, GEOFENCES)
    alarms.create(conn)
    tracker_states.create(conn)
    op.execute(IN_WINDOWS)
    op.drop_constraint(op.f("ck_cases_source"), "cases", type_="check")
    op.create_check_constraint(
        op.f("ck_cases_source"), "cases", f"source IN ({SOURCES}, 'vehicle')"
    )


def downgrade() -> None:
    """Revert this revision: geofences and alarms are dropped, vehicle cases become patrol's."""
    conn = op.get_bind()
    op.execute("UPDATE cases SET source = 'patrol' WHERE source = 'vehicle'")
    op.drop_constraint(op.f("ck_cases_source"), "cases", type_="check")
    op.create_check_constraint(op.f("ck_cases_source"), "cases", f"source IN ({SOURCES})")
    op.execute("DROP FUNCTION citygrid_in_windows(text, timestamptz)")
    tracker_states.drop(conn)
    alarms.drop(conn)
    drop_layer_table(conn, GEOFENCES)
