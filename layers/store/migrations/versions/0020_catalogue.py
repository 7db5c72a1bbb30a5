"""The standard catalogue of components (部件) and events (事件): classes become a table, subclasses
carry urgent limits, 立案/结案 criteria and a default department, counties add local subclasses and
edit their own copy of a standard one.

The home-made categories of 0016 move to the catalogue. Event codes keep their meaning. The nine
component categories were problems (井盖破损 …), the catalogue's component subclasses are things
numbered as the published code tables number them, so their cases and aliases move to the subclass
of the thing (C0101 井盖破损 → C0113 无主井盖 …) and the old names become aliases; a row the bureau
had renamed is left as it is. The downgrade removes the new tables and columns and keeps the rows.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-02 07:00:00
"""

from __future__ import annotations

import csv
import io

import sqlalchemy as sa
from alembic import op
from citygrid_data import data_file

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

# old component code → (its name as shipped by 0016, the catalogue subclass its cases move to)
MOVED = {
    "C0101": ("井盖破损", "C0113"),
    "C0102": ("路灯损坏", "C0117"),
    "C0201": ("停车场设施损坏", "C0211"),
    "C0202": ("交通护栏损坏", "C0206"),
    "C0301": ("广告牌匾破损", "C0303"),
    "C0302": ("垃圾箱破损", "C0306"),
    "C0401": ("行道树倒伏", "C0402"),
    "C0501": ("危房隐患", "C0503"),
    "C0601": ("其他设施损坏", "C0607"),
}


def _shipped(name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data_file(name).read_text(encoding="utf-8"))))


def _tables() -> None:
    op.create_table(
        "case_category_classes",
        sa.Column("kind", sa.Text(), nullable=False, comment="事件 event / 部件 component"),
        sa.Column("code", sa.String(2), nullable=False, comment="大类代码"),
        sa.Column("name", sa.Text(), nullable=False, comment="大类名称"),
        sa.Column(
            "local",
            sa.Boolean(),
            server_default=sa.text("false"),
            nullable=False,
            comment="扩展大类",
        ),
        sa.CheckConstraint(
            "kind IN ('event', 'component')", name=op.f("ck_case_category_classes_kind")
        ),
        sa.CheckConstraint(
            "code ~ '^[0-9]{2}$'", name=op.f("ck_case_category_classes_code_format")
        ),
        sa.CheckConstraint(
            "length(name) BETWEEN 1 AND 100", name=op.f("ck_case_category_classes_name_format")
        ),
        sa.PrimaryKeyConstraint("kind", "code", name=op.f("pk_case_category_classes")),
        comment="管理部件和事件的大类",
    )
    for name, column in (
        ("urgent_limit", sa.Column("urgent_limit", sa.Integer(), nullable=True,
                                   comment="紧急时限（与处置时限同单位）")),
        ("register_criteria", sa.Column("register_criteria", sa.Text(), server_default="",
                                        nullable=False, comment="立案标准")),
        ("close_criteria", sa.Column("close_criteria", sa.Text(), server_default="",
                                     nullable=False, comment="结案标准")),
        ("department", sa.Column("department", sa.Text(), server_default="", nullable=False,
                                 comment="默认责任部门")),
        ("local", sa.Column("local", sa.Boolean(), server_default=sa.text("false"),
                            nullable=False, comment="本地扩展小类")),
        ("adcode", sa.Column("adcode", sa.String(6), nullable=True,
                             comment="扩展小类所属县级行政区（标准小类为空）")),
    ):  # fmt: skip
        assert column.name == name
        op.add_column("case_categories", column)
    op.create_foreign_key(
        op.f("fk_case_categories_adcode_counties"),
        "case_categories",
        "counties",
        ["adcode"],
        ["adcode"],
        ondelete="CASCADE",
    )
    op.create_index(op.f("ix_case_categories_adcode"), "case_categories", ["adcode"])
    op.create_check_constraint(
        op.f("ck_case_categories_urgent_limit"), "case_categories", "urgent_limit > 0"
    )
    op.create_check_constraint(
        op.f("ck_case_categories_local_county"), "case_categories", "local = (adcode IS NOT NULL)"
    )
    op.create_table(
        "case_category_edits",
        sa.Column("adcode", sa.String(6), nullable=False, comment="县级行政区"),
        sa.Column("code", sa.String(5), nullable=False, comment="标准小类代码"),
        sa.Column("time_limit", sa.Integer(), nullable=False),
        sa.Column("urgent_limit", sa.Integer(), nullable=True),
        sa.Column("time_unit", sa.Text(), nullable=False),
        sa.Column("register_criteria", sa.Text(), nullable=False),
        sa.Column("close_criteria", sa.Text(), nullable=False),
        sa.Column("department", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "time_unit IN ('working_hours', 'working_days')",
            name=op.f("ck_case_category_edits_time_unit"),
        ),
        sa.CheckConstraint("time_limit > 0", name=op.f("ck_case_category_edits_time_limit")),
        sa.CheckConstraint("urgent_limit > 0", name=op.f("ck_case_category_edits_urgent_limit")),
        sa.ForeignKeyConstraint(
            ["adcode"],
            ["counties.adcode"],
            name=op.f("fk_case_category_edits_adcode_counties"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["code"],
            ["case_categories.code"],
            name=op.f("fk_case_category_edits_code_case_categories"),
            onupdate="CASCADE",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("adcode", "code", name=op.f("pk_case_category_edits")),
        comment="县级对标准小类的本地修改（时限、标准、责任部门）",
    )


def _seed() -> None:
    """The shipped classes and subclasses; cases and aliases of the old component codes moved."""
    conn = op.get_bind()
    classes = _shipped("catalogue_classes.csv")
    for row in classes:
        conn.execute(
            sa.text("""
            INSERT INTO case_category_classes (kind, code, name, local)
            VALUES (:kind, :code, :name, CAST(:local AS boolean)) ON CONFLICT DO NOTHING
        """),
            row,
        )
    # a bureau's own class codes (from its earlier imports) become classes of their own
    conn.execute(
        sa.text("""
        INSERT INTO case_category_classes (kind, code, name, local)
        SELECT DISTINCT ON (kind, major_code) kind, major_code, major_name, true
        FROM case_categories ORDER BY kind, major_code, code
        ON CONFLICT DO NOTHING
    """)
    )
    names = {(r["kind"], r["code"]): r["name"] for r in classes}
    former = _shipped("case_categories.csv")
    as_shipped = set(  # the rows 0016 stored that the bureau has not edited since
        conn.execute(
            sa.text("""
            SELECT k.code FROM case_categories AS k
            JOIN unnest(CAST(:codes AS text[]), CAST(:names AS text[]), CAST(:limits AS int[]),
                        CAST(:units AS text[])) AS f (code, name, time_limit, time_unit)
              ON f.code = k.code AND f.name = k.minor_name AND f.time_limit = k.time_limit
                 AND f.time_unit = k.time_unit
        """),
            {
                "codes": [r["code"] for r in former],
                "names": [r["minor_name"] for r in former],
                "limits": [int(r["time_limit"]) for r in former],
                "units": [r["time_unit"] for r in former],
            },
        ).scalars()
    )
    for row in _shipped("catalogue.csv"):
        values = {
            **row,
            "major_name": names[(row["kind"], row["class_code"])],
            "time_limit": int(row["time_limit"]),
            "urgent_limit": int(row["urgent_limit"]) if row["urgent_limit"] else None,
            "pristine": row["code"] in as_shipped,
        }
        # a row still as 0016 shipped it takes the catalogue's values; the bureau's edits stay
        conn.execute(
            sa.text("""
            INSERT INTO case_categories (code, kind, major_code, major_name, minor_name,
                time_limit, urgent_limit, time_unit, register_criteria, close_criteria, department)
            VALUES (:code, :kind, :class_code, :major_name, :name, :time_limit, :urgent_limit,
                :time_unit, :register_criteria, :close_criteria, :department)
            ON CONFLICT (code) DO UPDATE SET
                register_criteria = excluded.register_criteria,
                close_criteria = excluded.close_criteria, department = excluded.department,
                urgent_limit = CASE WHEN :pristine
                    THEN excluded.urgent_limit ELSE case_categories.urgent_limit END,
                time_limit = CASE WHEN :pristine
                    THEN excluded.time_limit ELSE case_categories.time_limit END,
                time_unit = CASE WHEN :pristine
                    THEN excluded.time_unit ELSE case_categories.time_unit END,
                minor_name = CASE WHEN :pristine
                    THEN excluded.minor_name ELSE case_categories.minor_name END
        """),
            values,
        )
    _move_old_components(conn, as_shipped)
    for row in _shipped("catalogue.csv"):
        for alias in filter(None, (a.strip() for a in row["aliases"].split("、"))):
            conn.execute(
                sa.text("""
                INSERT INTO case_category_aliases (alias, category_code)
                VALUES (:alias, :code) ON CONFLICT (alias) DO NOTHING
            """),
                {"alias": alias, "code": row["code"]},
            )


def _move_old_components(conn: sa.Connection, as_shipped: set[str]) -> None:
    """Cases and aliases of a home-made component category still as shipped go to the subclass of
    its thing."""
    for old, (_, new) in MOVED.items():
        if old not in as_shipped:
            continue
        for table in ("cases", "case_category_aliases"):
            conn.execute(
                sa.text(f"UPDATE {table} SET category_code = :new WHERE category_code = :old"),
                {"old": old, "new": new},
            )


def upgrade() -> None:
    """Apply this revision."""
    _tables()
    _seed()
    op.create_foreign_key(
        op.f("fk_case_categories_kind_case_category_classes"),
        "case_categories",
        "case_category_classes",
        ["kind", "major_code"],
        ["kind", "code"],
        onupdate="CASCADE",
    )
    op.create_check_constraint(
        op.f("ck_case_categories_major_code"), "case_categories", "major_code = substr(code, 2, 2)"
    )


def downgrade() -> None:
    """Revert this revision (the catalogue's rows stay, without the columns 0016 did not have)."""
    op.drop_table("case_category_edits")
    op.drop_constraint(
        op.f("fk_case_categories_kind_case_category_classes"), "case_categories", type_="foreignkey"
    )
    op.drop_constraint(op.f("ck_case_categories_major_code"), "case_categories", type_="check")
    op.drop_constraint(op.f("ck_case_categories_local_county"), "case_categories", type_="check")
    op.drop_constraint(op.f("ck_case_categories_urgent_limit"), "case_categories", type_="check")
    op.drop_index(op.f("ix_case_categories_adcode"), table_name="case_categories")
    op.drop_constraint(
        op.f("fk_case_categories_adcode_counties"), "case_categories", type_="foreignkey"
    )
    for name in (
        "adcode", "local", "department", "close_criteria", "register_criteria", "urgent_limit",
    ):  # fmt: skip
        op.drop_column("case_categories", name)
    op.drop_table("case_category_classes")
