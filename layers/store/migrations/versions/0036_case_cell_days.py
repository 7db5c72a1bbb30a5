"""Cases counted per county, China-time day or month, subclass and 250 m cell, kept current by
statement triggers, so a heatmap over a year sums counts instead of reading every case
(layers/cases/heatmap.py says when it may, layers/cases/cellcounts.py why days and months).

Each statement on `cases` adds what it wrote and takes away what it dropped, netted per day and
cell first: a bulk load of a million cases is one grouped upsert per table, and an update that
moves no case (placing cases in grids, a change of status) nets to nothing and writes nothing.
Months hold, besides a row per subclass, one per cell for all subclasses (`category_code` '*').
Two transactions writing the same cell add to one row (`n = n + excluded.n`, in one order of keys
so that they cannot deadlock): no count is lost; a row brought to 0 is deleted. (No CHECK on n:
PostgreSQL checks the row an upsert proposes, the delta, before it finds the row to add it to.)

Revision ID: 0036
Revises: 0035
Create Date: 2026-12-03 05:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0036"
down_revision = "0035"
branch_labels = None
depends_on = None

DAYS, MONTHS = "case_cell_days", "case_cell_months"
CELL = ("gk_srid", "cell_x", "cell_y")
# the statistics' days are China-time days: the API's sessions run in the bureau's time zone
DAY = "(reported_at AT TIME ZONE 'Asia/Shanghai')::date"
ALL = "'*'"  # the category of a month's row counting every subclass
# Keys in the order the heatmap reads them, with n beside them for index-only scans: days by a
# few edge days, months by the subclasses ('*' most often), then one county's run of months (a
# county's year stays one range of the index however many counties the database holds).
DAY_KEY = ("day", "adcode", "category_code", *CELL)
MONTH_KEY = ("category_code", "adcode", "month", *CELL)


def _key(period: str) -> str:
    return ", ".join(("adcode", period, "category_code", *CELL))


def _delta(*sources: tuple[str, int]) -> str:
    """One statement adding `sign` per row of each transition table to the days and the months."""
    rows = " UNION ALL ".join(
        f"SELECT adcode, {DAY}, category_code, {', '.join(CELL)}, {sign} FROM {name}"
        for name, sign in sources
    )
    days, months, cell = _key("day"), _key("month"), ", ".join(CELL)
    return f"""
    WITH delta ({days}, n) AS MATERIALIZED (
      SELECT {days}, sum(n) FROM ({rows}) AS d ({days}, n)
      GROUP BY {days} HAVING sum(n) <> 0
    ), by_month AS (
      INSERT INTO {MONTHS} AS c ({months}, n)
      SELECT adcode, month, coalesce(category_code, {ALL}) AS category_code, {cell}, sum(n)
      FROM (
        SELECT adcode, CAST(date_trunc('month', CAST(day AS timestamp)) AS date) AS month,
               category_code, {cell}, n
        FROM delta
      ) AS d
      GROUP BY GROUPING SETS ((adcode, month, category_code, {cell}), (adcode, month, {cell}))
      HAVING sum(n) <> 0
      ORDER BY {months}  -- one order for every writer: two upserts of the same cells cannot deadlock
      ON CONFLICT ({months}) DO UPDATE SET n = c.n + excluded.n
    )
    INSERT INTO {DAYS} AS c ({days}, n) SELECT {days}, n FROM delta ORDER BY {days}
    ON CONFLICT ({days}) DO UPDATE SET n = c.n + excluded.n;"""


DROP_EMPTY = f"DELETE FROM {DAYS} WHERE n = 0; DELETE FROM {MONTHS} WHERE n = 0;"

FUNCTION = f"""
CREATE FUNCTION citygrid_count_case_cells() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    {_delta(("written", 1))}
  ELSIF TG_OP = 'UPDATE' THEN
    {_delta(("written", 1), ("dropped", -1))}
    {DROP_EMPTY}
  ELSIF TG_OP = 'DELETE' THEN
    {_delta(("dropped", -1))}
    {DROP_EMPTY}
  ELSE
    TRUNCATE {DAYS}, {MONTHS};
  END IF;
  RETURN NULL;
END
$$;
"""

# transition tables take no column list: an update of any column fires, and nets to nothing
TRIGGERS = (
    ("insert", "INSERT", "REFERENCING NEW TABLE AS written"),
    ("update", "UPDATE", "REFERENCING OLD TABLE AS dropped NEW TABLE AS written"),
    ("delete", "DELETE", "REFERENCING OLD TABLE AS dropped"),
    ("truncate", "TRUNCATE", ""),
)


def _create(
    table: str, period: str, key: tuple[str, ...], comment: str, period_comment: str
) -> None:
    op.create_table(
        table,
        sa.Column("adcode", sa.String(6), nullable=False, comment="县级行政区划代码"),
        sa.Column(period, sa.Date(), nullable=False, comment=period_comment),
        sa.Column("category_code", sa.Text(), nullable=False, comment="案件小类（* 为全部）"),
        sa.Column("gk_srid", sa.SmallInteger(), nullable=False, comment="高斯-克吕格投影带 EPSG"),
        sa.Column("cell_x", sa.Integer(), nullable=False, comment="250米格网列号"),
        sa.Column("cell_y", sa.Integer(), nullable=False, comment="250米格网行号"),
        sa.Column("n", sa.Integer(), nullable=False, comment="案件数"),
        sa.PrimaryKeyConstraint(*key, name=op.f(f"pk_{table}"), postgresql_include=["n"]),
        comment=comment,
    )
    # the rows an update or a delete brought to 0, found without a scan
    op.create_index(op.f(f"ix_{table}_n"), table, ["n"], postgresql_where=sa.text("n = 0"))


def upgrade() -> None:
    """Apply this revision."""
    _create(
        DAYS,
        "day",
        DAY_KEY,
        "案件按县、日、小类与250米格网计数（由 cases 的触发器维护）",
        "上报日期",
    )
    _create(
        MONTHS,
        "month",
        MONTH_KEY,
        "案件按县、月、小类与250米格网计数（由 cases 的触发器维护）",
        "上报月份",
    )
    op.execute(FUNCTION)
    op.execute(_delta(("cases", 1)))  # every case stored, as if written now
    for name, event, referencing in TRIGGERS:
        op.execute(
            f"CREATE TRIGGER count_case_cells_{name} AFTER {event} ON cases {referencing} "
            "FOR EACH STATEMENT EXECUTE FUNCTION citygrid_count_case_cells()"
        )


def downgrade() -> None:
    """Revert this revision."""
    for name, _, _ in TRIGGERS:
        op.execute(f"DROP TRIGGER count_case_cells_{name} ON cases")
    op.execute("DROP FUNCTION citygrid_count_case_cells()")
    op.drop_table(MONTHS)
    op.drop_table(DAYS)
