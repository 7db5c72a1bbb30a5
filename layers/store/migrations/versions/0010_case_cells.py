"""Cases keep their Gauss-Krüger position and 250 m cell, so heatmaps bin without projecting;
a covering index lets them read nothing else.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

CELL_M = 250  # the base cell; heatmap bins are 250 m times a power of two

FUNCTION = f"""
CREATE FUNCTION citygrid_set_gk_point() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  projected geometry;
BEGIN
  NEW.gk_srid := citygrid_gk_srid(NEW.geom);
  projected := ST_Transform(NEW.geom, NEW.gk_srid);
  NEW.gk_x := ST_X(projected);
  NEW.gk_y := ST_Y(projected);
  NEW.cell_x := floor(NEW.gk_x / {CELL_M});
  NEW.cell_y := floor(NEW.gk_y / {CELL_M});
  RETURN NEW;
END
$$;
"""
COLUMNS = (
    ("gk_srid", sa.SmallInteger(), "高斯-克吕格投影带 EPSG"),
    ("gk_x", sa.Double(), "投影坐标X（米）"),
    ("gk_y", sa.Double(), "投影坐标Y（米）"),
    ("cell_x", sa.Integer(), "250米格网列号"),
    ("cell_y", sa.Integer(), "250米格网行号"),
)


def upgrade() -> None:
    """Apply this revision."""
    for name, kind, comment in COLUMNS:
        op.add_column("cases", sa.Column(name, kind, nullable=True, comment=comment))
    op.execute(FUNCTION)
    op.execute(
        "CREATE TRIGGER cases_gk_point BEFORE INSERT OR UPDATE OF geom ON cases "
        "FOR EACH ROW EXECUTE FUNCTION citygrid_set_gk_point()"
    )
    op.execute("UPDATE cases SET geom = geom")  # fills the new columns through the trigger
    for name, _, _ in COLUMNS:
        op.alter_column("cases", name, nullable=False)
    op.create_index(
        "ix_cases_heatmap",
        "cases",
        ["reported_at"],
        postgresql_include=["gk_srid", "cell_x", "cell_y", "category_code", "geom"],
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_cases_heatmap", table_name="cases")
    op.execute("DROP TRIGGER IF EXISTS cases_gk_point ON cases")
    op.execute("DROP FUNCTION IF EXISTS citygrid_set_gk_point()")
    for name, _, _ in reversed(COLUMNS):
        op.drop_column("cases", name)
