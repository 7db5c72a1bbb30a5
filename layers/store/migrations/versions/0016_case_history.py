"""Case categories are reference data stored at migration (not by the demo), with the aliases a
bureau's former system calls them by; an imported case keeps its number in that system.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 04:00:00
"""

from __future__ import annotations

import csv
import io

import sqlalchemy as sa
from alembic import op
from citygrid_data import data_file

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def _shipped(name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data_file(name).read_text(encoding="utf-8"))))


def _seed() -> None:
    """The shipped categories and aliases, where the bureau has none of its own yet."""
    conn = op.get_bind()
    for row in _shipped("case_categories.csv"):
        conn.execute(
            sa.text("""
            INSERT INTO case_categories
                (code, kind, major_code, major_name, minor_name, time_limit, time_unit)
            VALUES (:code, :kind, :major_code, :major_name, :minor_name, :time_limit, :time_unit)
            ON CONFLICT (code) DO NOTHING
        """),
            {**row, "time_limit": int(row["time_limit"])},
        )
    for row in _shipped("case_category_aliases.csv"):
        conn.execute(
            sa.text("""
            INSERT INTO case_category_aliases (alias, category_code)
            SELECT :alias, code FROM case_categories WHERE code = :code
            ON CONFLICT (alias) DO NOTHING
        """),
            row,
        )


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "case_category_aliases",
        sa.Column("alias", sa.Text(), nullable=False, comment="别名（原系统中的类别名称）"),
        sa.Column("category_code", sa.String(5), nullable=False, comment="案件类别"),
        sa.CheckConstraint(
            "alias = btrim(alias) AND length(alias) BETWEEN 1 AND 100",
            name=op.f("ck_case_category_aliases_alias_format"),
        ),
        sa.ForeignKeyConstraint(
            ["category_code"],
            ["case_categories.code"],
            name=op.f("fk_case_category_aliases_category_code_case_categories"),
            onupdate="CASCADE",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("alias", name=op.f("pk_case_category_aliases")),
        comment="案件类别别名（导入原系统案件时按名称对应）",
    )
    op.create_index(
        op.f("ix_case_category_aliases_category_code"),
        "case_category_aliases",
        ["category_code"],
        unique=False,
    )
    op.add_column(
        "cases",
        sa.Column("external_ref", sa.Text(), nullable=True, comment="原系统案件编号"),
    )
    op.create_index(
        "uq_cases_adcode_external_ref",
        "cases",
        ["adcode", "external_ref"],
        unique=True,
        postgresql_where=sa.text("external_ref IS NOT NULL"),
    )
    _seed()


def downgrade() -> None:
    """Revert this revision (the categories stay: the demo and the cases refer to them)."""
    op.drop_index("uq_cases_adcode_external_ref", table_name="cases")
    op.drop_column("cases", "external_ref")
    op.drop_index(
        op.f("ix_case_category_aliases_category_code"), table_name="case_category_aliases"
    )
    op.drop_table("case_category_aliases")
