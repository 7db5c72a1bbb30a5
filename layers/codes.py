"""Code tables seeded from `data/` (case categories and their time limits)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from citygrid_data import data_file
from sqlalchemy import Connection, func, select
from sqlalchemy.dialects.postgresql import insert

from layers.errors import DataFileError
from layers.tables import case_categories

CASE_CATEGORIES_FILE = "case_categories.csv"


@dataclass(frozen=True)
class CaseCategory:
    """One 大类/小类 of the case code table."""

    code: str
    kind: str
    major_code: str
    major_name: str
    minor_name: str
    time_limit: int
    time_unit: str


def read_case_categories() -> list[CaseCategory]:
    """The case categories shipped in `data/case_categories.csv`."""
    text = data_file(CASE_CATEGORIES_FILE).read_text(encoding="utf-8")
    try:
        return [
            CaseCategory(**{**row, "time_limit": int(row["time_limit"])})  # type: ignore[arg-type]
            for row in csv.DictReader(io.StringIO(text))
        ]
    except (TypeError, ValueError) as exc:
        raise DataFileError(
            f"{CASE_CATEGORIES_FILE} is corrupt: {exc}", f"{CASE_CATEGORIES_FILE} 文件损坏：{exc}"
        ) from exc


def seed_case_categories(conn: Connection) -> int:
    """Insert or refresh the shipped case categories; returns how many rows the table holds."""
    rows = [vars(c) for c in read_case_categories()]
    stmt = insert(case_categories).values(rows)
    stmt = stmt.on_conflict_do_update(
        index_elements=[case_categories.c.code],
        set_={c: stmt.excluded[c] for c in rows[0] if c != "code"},
    )
    conn.execute(stmt)
    return int(conn.execute(select(func.count()).select_from(case_categories)).scalar_one())
