"""Announce tracking changes on the channel `citygrid_tracking` (NOTIFY) for the live command map.

A statement-level trigger on `latest_positions` (UPDATE) and on `alarms` (INSERT, UPDATE) sends
the ids a statement changed, `p:1,2,3` for trackers and `a:7,8` for alarms, at most 500 ids a
notification. PostgreSQL delivers them when the writer's transaction commits, in commit order, so
every writer (the gateway, phones, the offline task) is covered without knowing the listeners.

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-02 19:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None

FUNCTION = """
CREATE OR REPLACE FUNCTION citygrid_notify_tracking() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('citygrid_tracking', TG_ARGV[0] || ':' || string_agg(c.id::text, ','))
  FROM (SELECT id, (row_number() OVER ()) / 500 AS chunk FROM changed) AS c
  GROUP BY c.chunk;
  RETURN NULL;
END
$$;
"""

TRIGGERS = {
    "tracking_notify_positions": ("latest_positions", "UPDATE", "p"),
    "tracking_notify_alarms_opened": ("alarms", "INSERT", "a"),
    "tracking_notify_alarms_changed": ("alarms", "UPDATE", "a"),
}


def upgrade() -> None:
    """Apply this revision."""
    op.execute(FUNCTION)
    for name, (table, event, tag) in TRIGGERS.items():
        op.execute(
            f"CREATE TRIGGER {name} AFTER {event} ON {table} REFERENCING NEW TABLE AS changed "
            f"FOR EACH STATEMENT EXECUTE FUNCTION citygrid_notify_tracking('{tag}')"
        )


def downgrade() -> None:
    """Revert this revision."""
    for name, (table, _, _) in TRIGGERS.items():
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
    op.execute("DROP FUNCTION IF EXISTS citygrid_notify_tracking()")
