"""Code tables seeded from `data/`: the catalogue of components and events (classes, subclasses,
time limits, criteria) and the aliases of its subclasses."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from typing import Any

from citygrid_data import data_file
from sqlalchemy import Connection, func, select, text
from sqlalchemy.dialects.postgresql import insert

from layers.errors import BadQuery, DataFileError
from layers.store.tables import case_categories, case_category_classes

CATALOGUE_FILE = "catalogue.csv"
CLASSES_FILE = "catalogue_classes.csv"


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
    urgent_limit: int | None = None
    register_criteria: str = ""
    close_criteria: str = ""
    department: str = ""
    local: bool = False
    aliases: tuple[str, ...] = ()
    geometry: str | None = None  # a component subclass's layer: point, line or area


@dataclass(frozen=True)
class CategoryClass:
    """One 大类 of the catalogue."""

    kind: str
    code: str
    name: str
    local: bool


def _data_rows(name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data_file(name).read_text(encoding="utf-8"))))


def read_classes() -> list[CategoryClass]:
    """The catalogue's classes shipped in `data/catalogue_classes.csv`."""
    return [
        CategoryClass(r["kind"], r["code"], r["name"], r["local"] == "true")
        for r in _data_rows(CLASSES_FILE)
    ]


def read_case_categories() -> list[CaseCategory]:
    """The catalogue's subclasses shipped in `data/catalogue.csv`."""
    names = {(c.kind, c.code): c.name for c in read_classes()}
    try:
        return [
            CaseCategory(
                code=row["code"],
                kind=row["kind"],
                major_code=row["class_code"],
                major_name=names[(row["kind"], row["class_code"])],
                minor_name=row["name"],
                time_limit=int(row["time_limit"]),
                time_unit=row["time_unit"],
                urgent_limit=int(row["urgent_limit"]) if row["urgent_limit"] else None,
                register_criteria=row["register_criteria"],
                close_criteria=row["close_criteria"],
                department=row["department"],
                aliases=tuple(a for a in row["aliases"].split("、") if a),
                geometry=row["geometry"] or None,
            )
            for row in _data_rows(CATALOGUE_FILE)
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise DataFileError(
            f"{CATALOGUE_FILE} is corrupt: {exc}", f"{CATALOGUE_FILE} 文件损坏：{exc}"
        ) from exc


def read_former_categories() -> list[dict[str, Any]]:
    """citygrid's former category list (`data/case_categories.csv`), as migration 0016 seeded it."""
    return [
        {**row, "time_limit": int(row["time_limit"])} for row in _data_rows("case_categories.csv")
    ]


def stored_case_categories(conn: Connection) -> list[CaseCategory]:
    """The standard case categories as the bureau keeps them (its edits included), by code."""
    rows = conn.execute(
        select(
            case_categories.c.code,
            case_categories.c.kind,
            case_categories.c.major_code,
            case_categories.c.major_name,
            case_categories.c.minor_name,
            case_categories.c.time_limit,
            case_categories.c.time_unit,
        )
        .where(case_categories.c.adcode.is_(None))
        .order_by(case_categories.c.code)
    ).all()
    return [CaseCategory(*row) for row in rows]


def read_shipped_aliases() -> list[tuple[str, str]]:
    """(alias, category code) pairs shipped in the catalogue's `aliases` column."""
    return [(alias, c.code) for c in read_case_categories() for alias in c.aliases]


def seed_case_categories(conn: Connection) -> int:
    """Add the shipped classes, subclasses and aliases the tables lack (a bureau's own edits
    stay); returns how many categories the table holds."""
    conn.execute(
        insert(case_category_classes)
        .values([vars(c) for c in read_classes()])
        .on_conflict_do_nothing()
    )
    rows = [{k: v for k, v in vars(c).items() if k != "aliases"} for c in read_case_categories()]
    conn.execute(insert(case_categories).values(rows).on_conflict_do_nothing())
    shipped = read_shipped_aliases()
    conn.execute(
        text("""
        INSERT INTO case_category_aliases (alias, category_code)
        SELECT a.alias, a.code FROM unnest(CAST(:aliases AS text[]), CAST(:codes AS text[]))
            AS a (alias, code)
        JOIN case_categories AS k ON k.code = a.code
        ON CONFLICT (alias) DO NOTHING
    """),
        {
            "aliases": [alias for alias, _ in shipped],
            "codes": [code for _, code in shipped],
        },
    )
    return int(conn.execute(select(func.count()).select_from(case_categories)).scalar_one())


CATEGORY_PATTERN = re.compile(r"[EC][0-9]{2}(?:[0-9]{2})?")


def parse_categories(raw: str | None, *more: str | None) -> tuple[str, ...]:
    """Case sub-category codes (E0101) or whole classes (E01), comma separated; `more` are the
    `class` and `subclass` asked for beside them."""
    joined = ",".join(r for r in (raw, *more) if r)
    if not joined:
        return ()
    requested = tuple(c.strip().upper() for c in joined.split(",") if c.strip())
    bad = [c for c in requested if not CATEGORY_PATTERN.fullmatch(c)]
    if bad:
        raise BadQuery(
            f"category {', '.join(bad)}: give codes like E0101 or classes like E01.",
            f"案件类别 {'、'.join(bad)} 无效：应为小类代码（如 E0101）或大类代码（如 E01）。",
        )
    return requested


def category_clause(
    conn: Connection, requested: tuple[str, ...], params: dict[str, Any], alias: str
) -> str:
    """A condition on `alias.category_code`: the requested codes, classes spelled out as codes
    (a plain list the planner can estimate, unlike a function of every row)."""
    if not requested:
        return "TRUE"
    codes = (
        conn.execute(
            text(
                "SELECT code FROM case_categories WHERE code = ANY(:codes) "
                "OR left(code, 3) = ANY(:codes) ORDER BY code"
            ),
            {"codes": list(requested)},
        )
        .scalars()
        .all()
    )
    if not codes:
        raise BadQuery(
            f"No case category is {', '.join(requested)}.",
            f"没有案件类别 {'、'.join(requested)}。",
            code="unknown_category",
        )
    params["category_codes"] = list(codes)
    return f"{alias}.category_code = ANY(CAST(:category_codes AS text[]))"


def resolve_category(conn: Connection, given: str) -> str:
    """The code a category is given by: its code, an alias (a former code or name) or its name
    when one subclass has it; anything else as given, for the field check to refuse."""
    found = conn.execute(
        text("""
        SELECT code FROM case_categories WHERE code = upper(:given)
        UNION ALL
        SELECT category_code FROM case_category_aliases WHERE alias = :given
        UNION ALL
        SELECT code FROM case_categories WHERE minor_name = :given
    """),
        {"given": given.strip()},
    ).scalars()
    first = next(iter(found), None)
    return first if first is not None else given
