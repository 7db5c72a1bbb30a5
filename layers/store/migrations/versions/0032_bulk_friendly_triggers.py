"""Triggers that keep their checks at a bulk load's speed: the component ID's uniqueness across
the point, line and area layers is checked once per statement over the rows it wrote (one join
instead of two planned lookups per row), and a merchant's rating is computed again only when its
place changes, not when placing it in a grid sets its grid.

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-02 20:00:00
"""

from __future__ import annotations

from importlib import import_module

from alembic import op

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None

VERSIONS = "layers.store.migrations.versions"  # the earlier revisions, to restore their triggers
COMPONENT_TABLES = ("components", "component_lines", "component_areas")

# TG_ARGV: the other tables of the scheme; `written` the rows the statement inserted or updated
CODES_UNIQUE = """
CREATE FUNCTION citygrid_component_codes_unique() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  other text;
  taken text[];
BEGIN
  FOREACH other IN ARRAY TG_ARGV LOOP
    EXECUTE format('SELECT ARRAY[w.component_code, w.adcode] FROM written AS w '
                   'JOIN %I AS o ON o.adcode = w.adcode AND o.component_code = w.component_code '
                   'AND o.valid_to IS NULL WHERE w.valid_to IS NULL LIMIT 1', other)
      INTO taken;
    IF taken IS NOT NULL THEN
      RAISE EXCEPTION 'component code % of county % is held in %', taken[1], taken[2], other
        USING ERRCODE = 'unique_violation', CONSTRAINT = 'component_code_unique_among_layers';
    END IF;
  END LOOP;
  RETURN NULL;
END
$$;
"""

MERCHANT_DERIVE = """
CREATE OR REPLACE FUNCTION citygrid_merchant_derive() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.geom IS DISTINCT FROM OLD.geom
       OR NEW.adcode IS DISTINCT FROM OLD.adcode THEN
        NEW.rating := citygrid_merchant_rating(NEW.id, NEW.geom, NEW.adcode);
    END IF;
    NEW.inspector := citygrid_grid_inspector(NEW.grid_code);
    RETURN NEW;
END $$
"""


def _others(table: str) -> str:
    return ", ".join(f"'{o}'" for o in COMPONENT_TABLES if o != table)


def upgrade() -> None:
    """Apply this revision."""
    op.execute(CODES_UNIQUE)
    for table in COMPONENT_TABLES:
        op.execute(f'DROP TRIGGER component_code_unique ON "{table}"')
        for event in ("INSERT", "UPDATE"):
            op.execute(
                f"CREATE TRIGGER component_codes_unique_{event.lower()} AFTER {event} "
                f'ON "{table}" REFERENCING NEW TABLE AS written FOR EACH STATEMENT '
                f"EXECUTE FUNCTION citygrid_component_codes_unique({_others(table)})"
            )
    op.execute("DROP FUNCTION citygrid_component_code_unique()")
    op.execute(MERCHANT_DERIVE)


def downgrade() -> None:
    """Revert this revision."""
    before_components = import_module(f"{VERSIONS}.0025_component_lines_and_areas")
    before_merchants = import_module(f"{VERSIONS}.0030_merchants")
    (derive,) = [f for f in before_merchants.FUNCTIONS if "citygrid_merchant_derive()" in f]
    op.execute(derive.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"))
    for table in COMPONENT_TABLES:
        for event in ("insert", "update"):
            op.execute(f'DROP TRIGGER component_codes_unique_{event} ON "{table}"')
    op.execute(before_components.SQL_FUNCTION)
    for statement in before_components._triggers():
        op.execute(statement)
    op.execute("DROP FUNCTION citygrid_component_codes_unique()")
