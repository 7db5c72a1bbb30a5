"""Case routing: a case may name a component and its problem, records how its unit was chosen
(`routed_by`); a county's routing rules (subclass × area → unit); dispatch events record the unit
chosen and the one routing suggested.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

ROUTED_BY = "routed_by IN ('component', 'rule', 'territory', 'dispatcher')"
PROBLEMS = "problem IN ('damaged', 'lost', 'displaced', 'soiled', 'occupied', 'other')"


def upgrade() -> None:
    """Apply this revision."""
    op.add_column("cases", sa.Column("component_code", sa.Text(), comment="部件标识码"))
    op.add_column("cases", sa.Column("problem", sa.Text(), comment="部件问题"))
    op.add_column("cases", sa.Column("routed_by", sa.Text(), comment="派遣依据"))
    op.create_index(op.f("ix_cases_component_code"), "cases", ["component_code"])
    op.create_check_constraint(
        op.f("ck_cases_component_code_format"), "cases", "component_code ~ '^[0-9]{16}$'"
    )
    op.create_check_constraint(op.f("ck_cases_problem"), "cases", PROBLEMS)
    op.create_check_constraint(op.f("ck_cases_routed_by"), "cases", ROUTED_BY)
    op.add_column("case_events", sa.Column("unit", sa.Text(), comment="派遣的处置单位"))
    op.add_column(
        "case_events", sa.Column("suggested_unit", sa.Text(), comment="按规则建议的处置单位")
    )
    op.add_column("case_events", sa.Column("routed_by", sa.Text(), comment="派遣依据"))
    op.create_check_constraint(op.f("ck_case_events_routed_by"), "case_events", ROUTED_BY)
    op.create_table(
        "routing_rules",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("adcode", sa.String(6), nullable=False, comment="县级行政区"),
        sa.Column("subclass_code", sa.String(5), nullable=False, comment="小类代码"),
        sa.Column("area_code", sa.String(15), nullable=True, comment="区域网格编码（空：全县）"),
        sa.Column("area_level", sa.Text(), nullable=True, comment="区域网格层级"),
        sa.Column("unit", sa.Text(), nullable=False, comment="处置单位"),
        sa.Column("note", sa.Text(), nullable=True, comment="说明"),
        sa.Column("created_by", sa.Text(), nullable=False, comment="登记人"),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
            comment="登记时间",
        ),
        sa.CheckConstraint(
            "area_code ~ '^[0-9]{15}$'", name=op.f("ck_routing_rules_area_code_format")
        ),
        sa.CheckConstraint(
            "(area_code IS NULL) = (area_level IS NULL) AND "
            "area_level IN ('street', 'community', 'section')",
            name=op.f("ck_routing_rules_area_level"),
        ),
        sa.ForeignKeyConstraint(
            ["adcode"],
            ["counties.adcode"],
            name=op.f("fk_routing_rules_adcode_counties"),
            onupdate="CASCADE",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subclass_code"],
            ["case_categories.code"],
            name=op.f("fk_routing_rules_subclass_code_case_categories"),
            onupdate="CASCADE",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_rules")),
        sa.UniqueConstraint(
            "adcode",
            "subclass_code",
            "area_code",
            name=op.f("uq_routing_rules_adcode_subclass_code_area_code"),
        ),
        comment="派遣规则（小类 × 区域 → 处置单位）",
    )
    op.create_index(op.f("ix_routing_rules_adcode"), "routing_rules", ["adcode"])
    op.create_index(
        "uq_routing_rules_adcode_subclass_code_county",
        "routing_rules",
        ["adcode", "subclass_code"],
        unique=True,
        postgresql_where=sa.text("area_code IS NULL"),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("routing_rules")
    op.drop_constraint(op.f("ck_case_events_routed_by"), "case_events", type_="check")
    for column in ("routed_by", "suggested_unit", "unit"):
        op.drop_column("case_events", column)
    op.drop_index(op.f("ix_cases_component_code"), table_name="cases")
    for column in ("routed_by", "problem", "component_code"):
        op.drop_column("cases", column)
