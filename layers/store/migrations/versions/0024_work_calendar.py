"""The bureau's working calendar: statutory holidays (法定节假日) and weekend working days (调休上班)
per county or for the whole deployment, seeded from the `chinese-calendar` package for every year it
knows, and each county's office hours. Deadlines are counted on it.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-02 10:40:00
"""

from __future__ import annotations

from importlib.metadata import version

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

# The package's English festival names, in Chinese (a snapshot: the package as of this revision).
NAMES = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "Mid-autumn Festival": "中秋节",
    "National Day": "国庆节",
    "Anti-Fascist 70th Day": "中国人民抗日战争暨世界反法西斯战争胜利70周年纪念日",
}
BUMP = (
    "CREATE TRIGGER bump_layer_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
    "FOR EACH STATEMENT EXECUTE FUNCTION citygrid_bump_layer_version()"
)


def _seed() -> None:
    from chinese_calendar import constants

    source = f"chinese-calendar {version('chinese-calendar')}"
    rows = [
        {"day": d, "kind": kind, "name": NAMES.get(name, name), "source": source}
        for kind, days in (("holiday", constants.holidays), ("workday", constants.workdays))
        for d, name in sorted(days.items())
    ]
    table = sa.table(
        "calendar_days",
        sa.column("day", sa.Date()),
        sa.column("kind", sa.Text()),
        sa.column("name", sa.Text()),
        sa.column("source", sa.Text()),
    )
    op.bulk_insert(table, rows)


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "calendar_days",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("adcode", sa.String(6), nullable=True, comment="县级行政区；空 = 全部署默认"),
        sa.Column("day", sa.Date(), nullable=False, comment="日期"),
        sa.Column("kind", sa.Text(), nullable=False, comment="类型：holiday 放假 / workday 上班"),
        sa.Column("name", sa.Text(), nullable=False, comment="名称"),
        sa.Column("source", sa.Text(), nullable=False, comment="来源"),
        sa.Column(
            "changed_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("now()"),
        ),
        sa.CheckConstraint("kind IN ('holiday', 'workday')", name=op.f("ck_calendar_days_kind")),
        sa.ForeignKeyConstraint(
            ["adcode"],
            ["counties.adcode"],
            name=op.f("fk_calendar_days_adcode_counties"),
            onupdate="CASCADE",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_days")),
        comment="工作日历：法定节假日与调休上班日",
    )
    # one row per day and county, and one per day for the deployment (NULLs are distinct)
    op.create_index(
        "uq_calendar_days_adcode_day",
        "calendar_days",
        ["adcode", "day"],
        unique=True,
        postgresql_where=sa.text("adcode IS NOT NULL"),
    )
    op.create_index(
        "uq_calendar_days_day_default",
        "calendar_days",
        ["day"],
        unique=True,
        postgresql_where=sa.text("adcode IS NULL"),
    )
    op.create_table(
        "county_working_hours",
        sa.Column("adcode", sa.String(6), nullable=False, comment="县级行政区"),
        sa.Column(
            "periods", sa.Text(), nullable=False, comment="上班时段，如 08:30-12:00,13:30-17:30"
        ),
        sa.Column(
            "changed_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("now()"),
        ),
        sa.ForeignKeyConstraint(
            ["adcode"],
            ["counties.adcode"],
            name=op.f("fk_county_working_hours_adcode_counties"),
            onupdate="CASCADE",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("adcode", name=op.f("pk_county_working_hours")),
        comment="各县级行政区的上班时段（无记录 = 部署默认）",
    )
    for table in ("calendar_days", "county_working_hours"):
        op.execute(f"INSERT INTO layer_versions (layer) VALUES ('{table}') ON CONFLICT DO NOTHING")
        op.execute(BUMP.format(table=table))
    _seed()


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("county_working_hours")
    op.drop_table("calendar_days")
    op.execute(
        "DELETE FROM layer_versions WHERE layer IN ('calendar_days', 'county_working_hours')"
    )
