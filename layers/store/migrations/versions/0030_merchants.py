"""门前三包 merchants and their inspections as layers; each merchant's red/yellow/green rating and
responsible inspector written by the database, and the unguessable token of its public card.

The rating (README, "门前三包 merchants") counts, over the last 90 days, the confirmed cases of a
frontage kind of category within 20 m of the merchant and its failed inspections. It is kept on
the row, refreshed by every write that can change it (the merchant's own place, cases, the
merchant's inspections), so tiles, items, exports and statistics read and index one column.

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-02 15:30:00
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

from layers.registry import MERCHANT_LAYERS
from layers.store.tables import create_layer_table, drop_layer_table

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None

# 暴露垃圾, 乱堆物堆料, 违规设置落地广告, 店外经营, 占道经营, 占道洗车, 占道维修
FRONTAGE_CATEGORIES = "ARRAY['E0102','E0107','E0207','E0502','E0506','E0509','E0510']"

FUNCTIONS = [
    # the grid's inspector on record, else its responsible person (责任人): names only, no phone
    """
    CREATE FUNCTION citygrid_grid_inspector(grid_code text) RETURNS text LANGUAGE sql STABLE AS $$
        SELECT coalesce(
            (SELECT i.name FROM grid_inspectors AS i WHERE i.grid_code = $1
             ORDER BY i.name LIMIT 1),
            (SELECT g.responsible_person FROM grids AS g WHERE g.code = $1
             ORDER BY g.valid_to IS NULL DESC, g.valid_from DESC LIMIT 1))
    $$
    """,
    f"""
    CREATE FUNCTION citygrid_merchant_rating(m_id bigint, m_geom geometry, m_adcode text)
    RETURNS text LANGUAGE sql STABLE AS $$
        WITH counted AS (
            SELECT (SELECT count(*) FROM cases AS c
                    WHERE c.adcode = m_adcode
                      AND c.category_code = ANY({FRONTAGE_CATEGORIES})
                      AND c.status NOT IN ('unverified', 'rejected', 'cancelled')
                      AND c.reported_at >= now() - interval '90 days'
                      AND ST_DWithin(c.geom, m_geom, 0.0005)
                      AND ST_DWithin(c.geom::geography, m_geom::geography, 20)) AS cases,
                   (SELECT count(*) FROM merchant_inspections AS i
                    WHERE i.merchant_id = m_id AND i.result = 'fail'
                      AND i.inspected_on >= (now() AT TIME ZONE 'Asia/Shanghai')::date - 90)
                    AS failed
        )
        SELECT CASE WHEN m_geom IS NULL THEN NULL
                    WHEN cases + 2 * failed >= 4 THEN 'red'
                    WHEN cases + 2 * failed >= 2 THEN 'yellow'
                    ELSE 'green' END
        FROM counted
    $$
    """,
    """
    CREATE FUNCTION citygrid_merchant_derive() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.rating := citygrid_merchant_rating(NEW.id, NEW.geom, NEW.adcode);
        NEW.inspector := citygrid_grid_inspector(NEW.grid_code);
        RETURN NEW;
    END $$
    """,
    f"""
    CREATE FUNCTION citygrid_merchants_rate_near_cases() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        -- from the changed cases to the merchants near them, through the merchants' index
        UPDATE merchants AS m
        SET rating = citygrid_merchant_rating(m.id, m.geom, m.adcode)
        FROM (SELECT DISTINCT n.id FROM changed_cases AS c
              JOIN merchants AS n ON n.adcode = c.adcode AND ST_DWithin(n.geom, c.geom, 0.0005)
              WHERE c.category_code = ANY({FRONTAGE_CATEGORIES})) AS near
        WHERE m.id = near.id
          AND m.rating IS DISTINCT FROM citygrid_merchant_rating(m.id, m.geom, m.adcode);
        RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION citygrid_merchants_rate_inspected() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE merchants AS m
        SET rating = citygrid_merchant_rating(m.id, m.geom, m.adcode)
        WHERE m.id IN (SELECT merchant_id FROM changed_inspections)
          AND m.rating IS DISTINCT FROM citygrid_merchant_rating(m.id, m.geom, m.adcode);
        RETURN NULL;
    END $$
    """,
]

DERIVE = (
    "CREATE TRIGGER derive_merchant BEFORE INSERT OR UPDATE OF geom, grid_code, adcode "
    "ON merchants FOR EACH ROW EXECUTE FUNCTION citygrid_merchant_derive()"
)
# (trigger, table, event, transition table, its name in the function): an update counts both
# where a case was and where it is now
RATE = [
    (f"rate_merchants_{n}", table, event, side, alias, function)
    for table, alias, function in (
        ("cases", "changed_cases", "citygrid_merchants_rate_near_cases"),
        ("merchant_inspections", "changed_inspections", "citygrid_merchants_rate_inspected"),
    )
    for n, (event, side) in enumerate(
        (("INSERT", "NEW"), ("UPDATE", "NEW"), ("UPDATE", "OLD"), ("DELETE", "OLD"))
    )
]


def upgrade() -> None:
    """Apply this revision."""
    conn = op.get_bind()
    for layer in MERCHANT_LAYERS:  # merchants first: inspections refer to them
        create_layer_table(conn, layer)
    conn.execute(
        text(
            "ALTER TABLE merchants ALTER COLUMN card_token "
            "SET DEFAULT replace(gen_random_uuid()::text, '-', '')"
        )
    )
    for statement in FUNCTIONS:
        conn.execute(text(statement))
    conn.execute(text(DERIVE))
    for name, table, event, side, alias, function in RATE:
        conn.execute(
            text(
                f"CREATE TRIGGER {name} AFTER {event} ON {table} REFERENCING {side} TABLE AS "
                f"{alias} FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
            )
        )


def downgrade() -> None:
    """Revert this revision."""
    conn = op.get_bind()
    for name, table, *_ in RATE:
        if table == "cases":
            conn.execute(text(f"DROP TRIGGER IF EXISTS {name} ON cases"))
    for layer in reversed(MERCHANT_LAYERS):
        drop_layer_table(conn, layer)
    for function in (
        "citygrid_merchants_rate_inspected()",
        "citygrid_merchants_rate_near_cases()",
        "citygrid_merchant_derive()",
        "citygrid_merchant_rating(bigint, geometry, text)",
        "citygrid_grid_inspector(text)",
    ):
        conn.execute(text(f"DROP FUNCTION IF EXISTS {function}"))
