"""The directory of units: every unit cases go to, with its credit code, type, contact and state.

`units` keeps one row per county a unit serves (its adcode on every row, so each read is limited by
county in SQL and the table shards by county like every other), and gains a surrogate `id`, the
统一社会信用代码 (unique in a county), a type, a contact person and phone, an active flag and a
version for If-Match. Every current grid's responsible unit not yet declared is adopted into the
directory: a street grid's unit as a 街道, a community's as a 社区, a section's as a department,
recorded in the audit log (actor `migration 0019`). From then on the trigger `adopt_unit` on
`grids` keeps it so for every grid written, whoever writes it (the application refuses an unknown
unit on a single grid's edit before writing; a whole county's grid import and SQL loads adopt
theirs). The downgrade drops the trigger and the new columns and keeps the adopted rows as
declared units, which is what they were used as before.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02 07:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

ACTOR = "migration 0019"
TYPES = ("department", "enterprise", "street", "community", "other")

# The highest level naming a unit decides its type: a street office also named by its sections
# is still the 街道.
ADOPT = f"""
    WITH named AS (
        SELECT g.adcode, g.responsible_unit AS name,
               min(CASE g.level WHEN 'street' THEN 1 WHEN 'community' THEN 2 ELSE 3 END) AS rank
        FROM grids AS g
        WHERE g.valid_to IS NULL AND g.responsible_unit IS NOT NULL
          AND g.responsible_unit = btrim(g.responsible_unit)
          AND length(g.responsible_unit) BETWEEN 1 AND 200
        GROUP BY g.adcode, g.responsible_unit
    ), added AS (
        INSERT INTO units (adcode, name, type, added_by)
        SELECT n.adcode, n.name,
               CASE n.rank WHEN 1 THEN 'street' WHEN 2 THEN 'community' ELSE 'department' END,
               '{ACTOR}'
        FROM named AS n
        WHERE EXISTS (SELECT 1 FROM counties AS k WHERE k.adcode = n.adcode)
        ON CONFLICT (adcode, name) DO NOTHING
        RETURNING adcode, name, type
    )
    INSERT INTO audit_log (actor, action, layer, adcode, after)
    SELECT '{ACTOR}', 'create', 'units', a.adcode,
           jsonb_build_object('name', a.name, 'adcode', a.adcode, 'type', a.type,
                              'reason', 'a current grid names this unit')
    FROM added AS a
"""

TRIGGER = """
CREATE FUNCTION citygrid_adopt_unit() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  -- a name the directory cannot hold stays unknown: dispatching to it is refused
  IF NEW.responsible_unit = btrim(NEW.responsible_unit)
     AND length(NEW.responsible_unit) BETWEEN 1 AND 200 THEN
    INSERT INTO units (adcode, name, type, added_by)
    VALUES (NEW.adcode, NEW.responsible_unit,
            CASE NEW.level WHEN 'street' THEN 'street' WHEN 'community' THEN 'community'
                           ELSE 'department' END,
            'grid ' || NEW.code)
    ON CONFLICT (adcode, name) DO NOTHING;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER adopt_unit AFTER INSERT OR UPDATE OF responsible_unit, adcode ON grids
FOR EACH ROW EXECUTE FUNCTION citygrid_adopt_unit();
"""


def upgrade() -> None:
    """Apply this revision."""
    op.add_column("units", sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False))
    op.create_unique_constraint(op.f("uq_units_id"), "units", ["id"])
    op.add_column(
        "units", sa.Column("credit_code", sa.String(18), nullable=True, comment="统一社会信用代码")
    )
    op.add_column(
        "units",
        sa.Column("type", sa.Text(), nullable=False, server_default="other", comment="单位类型"),
    )
    op.add_column("units", sa.Column("contact_person", sa.Text(), nullable=True, comment="联系人"))
    op.add_column("units", sa.Column("contact_phone", sa.Text(), nullable=True, comment="联系电话"))
    op.add_column(
        "units",
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true(), comment="启用"),
    )
    op.add_column("units", sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
    op.create_check_constraint(
        op.f("ck_units_type"), "units", f"type IN ({', '.join(repr(t) for t in TYPES)})"
    )
    op.create_check_constraint(
        op.f("ck_units_credit_code_format"),
        "units",
        "credit_code ~ '^[0-9A-HJ-NP-RTUWXY]{2}[0-9]{6}[0-9A-HJ-NP-RTUWXY]{10}$'",
    )
    op.create_unique_constraint(
        op.f("uq_units_adcode_credit_code"), "units", ["adcode", "credit_code"]
    )
    # Units declared before this revision were handling units of a bureau: departments.
    op.execute("UPDATE units SET type = 'department'")
    op.execute(ADOPT)
    op.execute(TRIGGER)


def downgrade() -> None:
    """Revert this revision (adopted units stay, as declared units)."""
    op.execute("DROP TRIGGER adopt_unit ON grids")
    op.execute("DROP FUNCTION citygrid_adopt_unit()")
    op.drop_constraint(op.f("uq_units_adcode_credit_code"), "units", type_="unique")
    op.drop_constraint(op.f("ck_units_credit_code_format"), "units", type_="check")
    op.drop_constraint(op.f("ck_units_type"), "units", type_="check")
    op.drop_constraint(op.f("uq_units_id"), "units", type_="unique")
    for column in ("version", "active", "contact_phone", "contact_person", "type", "credit_code"):
        op.drop_column("units", column)
    op.drop_column("units", "id")
