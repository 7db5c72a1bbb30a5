"""Cases counted per county, China-time day, subclass and 250 m cell, kept current by statement
triggers, so a heatmap over a year reads the counts instead of every case (layers/cases/heatmap.py
says when it may).

Each statement on `cases` adds what it wrote and takes away what it dropped, grouped by key first:
a bulk load of a million cases is one grouped upsert, and an update that moves no case (placing
cases in grids, a status change) nets to nothing and writes nothing. Two transactions writing the
same cell add to one row (`n = n + excluded.n`), so no count is lost; a row reaching 0 is deleted.

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

TABLE = "case_cell_days"
KEY = ("adcode", "day", "category_code", "gk_srid", "cell_x", "cell_y")
# the statistics' days are China-time days: the API's sessions run in the bureau's time zone
DAY = "(reported_at AT TIME ZONE 'Asia/Shanghai')::date"
ROWS = f"adcode, {DAY}, category_code, gk_srid, cell_x, cell_y"
KEYS = ", ".join(KEY)
ORDINALS = ", ".join(str(i) for i in range(1, len(KEY) + 1))


def _delta(*sources: tuple[str, int]) -> str:
    """The upsert adding `sign` per row of each transition table, netted per key."""
    rows = " UNION ALL ".join(f"SELECT {ROWS}, {sign} FROM {name}" for name, sign in sources)
    return f"""
    INSERT INTO {TABLE} AS c ({KEYS}, n)
    SELECT {KEYS}, sum(n) FROM ({rows}) AS d ({KEYS}, n)
    GROUP BY {KEYS} HAVING sum(n) <> 0
    ORDER BY {KEYS}  -- one order for every writer: two upserts of the same cells cannot deadlock
    ON CONFLICT ({KEYS}) DO UPDATE SET n = c.n + excluded.n;"""


FUNCTION = f"""
CREATE FUNCTION citygrid_count_case_cells() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    {_delta(("written", 1))}
  ELSIF TG_OP = 'UPDATE' THEN
    {_delta(("written", 1), ("dropped", -1))}
    DELETE FROM {TABLE} WHERE n = 0;
  ELSIF TG_OP = 'DELETE' THEN
    {_delta(("dropped", -1))}
    DELETE FROM {TABLE} WHERE n = 0;
  ELSE
    TRUNCATE {TABLE};
  END IF;
  RETURN NULL;
END
$$;
"""

TRIGGERS = (
    ("insert", "INSERT", "REFERENCING NEW TABLE AS written"),
    ("update", "UPDATE", "REFERENCING OLD TABLE AS dropped NEW TABLE AS written"),
    ("delete", "DELETE", "REFERENCING OLD TABLE AS dropped"),
    ("truncate", "TRUNCATE", ""),
)


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        TABLE,
        sa.Column("adcode", sa.String(6), nullable=False, comment="县级行政区划代码"),
        sa.Column("day", sa.Date(), nullable=False, comment="上报日期（北京时间）"),
        sa.Column("category_code", sa.Text(), nullable=False, comment="案件小类"),
        sa.Column("gk_srid", sa.SmallInteger(), nullable=False, comment="高斯-克吕格投影带 EPSG"),
        sa.Column("cell_x", sa.Integer(), nullable=False, comment="250米格网列号"),
        sa.Column("cell_y", sa.Integer(), nullable=False, comment="250米格网行号"),
        sa.Column("n", sa.Integer(), nullable=False, comment="案件数"),
        sa.CheckConstraint("n >= 0", name=op.f(f"ck_{TABLE}_n_counted")),
        sa.PrimaryKeyConstraint(*KEY, name=op.f(f"pk_{TABLE}")),
        comment="案件按县、日、小类与250米格网计数（由 cases 的触发器维护）",
    )
    # the rows an update or delete brought to 0, found without a scan
    op.create_index(
        op.f(f"ix_{TABLE}_n"), TABLE, ["n"], postgresql_where=sa.text("n = 0")
    )
    op.execute(
        f"INSERT INTO {TABLE} ({KEYS}, n) SELECT {ROWS}, count(*) FROM cases "
        f"GROUP BY {ORDINALS} ORDER BY {ORDINALS}"
    )
    op.execute(FUNCTION)
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
    op.drop_table(TABLE)
