"""Components that are lines or areas: the catalogue says which geometry each component subclass
takes (`case_categories.geometry`: point, line or area, backfilled from the shipped catalogue;
a local subclass is a point), and the layers `component_lines` and `component_areas` hold them
beside the points of `components`. A county's component IDs are unique across the three layers:
a trigger on each refuses an ID a current row of another holds.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-02 11:00:00
"""

from __future__ import annotations

import csv
import io

import sqlalchemy as sa
from alembic import op
from citygrid_data import data_file

from layers.registry import COMPONENT_AREAS, COMPONENT_LINES, COMPONENTS
from layers.store.tables import create_layer_table, drop_layer_table

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

LAYERS = (COMPONENTS, COMPONENT_LINES, COMPONENT_AREAS)

# TG_ARGV: the other tables of the scheme, checked for a current row of the county with the ID
SQL_FUNCTION = """
CREATE FUNCTION citygrid_component_code_unique() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  other text;
  held boolean;
BEGIN
  IF NEW.component_code IS NULL OR NEW.valid_to IS NOT NULL THEN
    RETURN NEW;
  END IF;
  FOREACH other IN ARRAY TG_ARGV LOOP
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE adcode = $1 AND component_code = $2 '
                   'AND valid_to IS NULL)', other)
      INTO held USING NEW.adcode, NEW.component_code;
    IF held THEN
      RAISE EXCEPTION 'component code % of county % is held in %', NEW.component_code,
        NEW.adcode, other USING ERRCODE = 'unique_violation',
        CONSTRAINT = 'component_code_unique_among_layers';
    END IF;
  END LOOP;
  RETURN NEW;
END
$$;
"""


def _triggers() -> list[str]:
    statements = []
    for layer in LAYERS:
        others = ", ".join(f"'{o.id}'" for o in LAYERS if o is not layer)
        statements.append(
            f"CREATE TRIGGER component_code_unique BEFORE INSERT OR UPDATE OF component_code, "
            f'adcode, valid_to ON "{layer.id}" FOR EACH ROW '
            f"EXECUTE FUNCTION citygrid_component_code_unique({others})"
        )
    return statements


def _backfill() -> None:
    conn = op.get_bind()
    shipped = list(csv.DictReader(io.StringIO(data_file("catalogue.csv").read_text("utf-8"))))
    pairs = [(r["code"], r["geometry"]) for r in shipped if r["kind"] == "component"]
    conn.execute(
        sa.text("""
        UPDATE case_categories AS k SET geometry = s.geometry
        FROM unnest(CAST(:codes AS text[]), CAST(:shapes AS text[])) AS s (code, geometry)
        WHERE k.code = s.code AND k.kind = 'component'
    """),
        {"codes": [c for c, _ in pairs], "shapes": [g for _, g in pairs]},
    )
    conn.execute(
        sa.text(
            "UPDATE case_categories SET geometry = 'point' "
            "WHERE kind = 'component' AND geometry IS NULL"
        )
    )


def upgrade() -> None:
    """Apply this revision."""
    op.add_column(
        "case_categories",
        sa.Column("geometry", sa.Text(), nullable=True, comment="部件几何类型（点/线/面）"),
    )
    _backfill()
    op.create_check_constraint(
        op.f("ck_case_categories_geometry"),
        "case_categories",
        "geometry IN ('point', 'line', 'area')",
    )
    op.create_check_constraint(
        op.f("ck_case_categories_geometry_kind"),
        "case_categories",
        "(kind = 'component') = (geometry IS NOT NULL)",
    )
    conn = op.get_bind()
    create_layer_table(conn, COMPONENT_LINES)
    create_layer_table(conn, COMPONENT_AREAS)
    op.execute(SQL_FUNCTION)
    for statement in _triggers():
        op.execute(statement)


def downgrade() -> None:
    """Revert this revision."""
    op.execute('DROP TRIGGER IF EXISTS component_code_unique ON "components"')
    conn = op.get_bind()
    drop_layer_table(conn, COMPONENT_AREAS)
    drop_layer_table(conn, COMPONENT_LINES)
    op.execute("DROP FUNCTION IF EXISTS citygrid_component_code_unique()")
    op.drop_constraint(op.f("ck_case_categories_geometry_kind"), "case_categories", type_="check")
    op.drop_constraint(op.f("ck_case_categories_geometry"), "case_categories", type_="check")
    op.drop_column("case_categories", "geometry")
