"""Where each table goes when one PostgreSQL becomes a Citus cluster distributed by county, and
the DDL that moves it (docs/SCALING.md).

A county's rows are distributed by `adcode` and co-located, so one county's reads and writes run
on one worker and a city's fan out; the small tables every query joins are reference tables,
copied to every worker; the tracking tables (written per position, keyed by tracker, some
trackers without a county yet) and the records of the deployment itself stay on the coordinator.
Before the Citus calls, plain PostgreSQL DDL puts `adcode` into every key of a distributed table
and into the foreign keys between them; that part runs, and is tested, on PostGIS alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import Connection, text

from layers.errors import UnplacedTable
from layers.store.bulk import quote_name

DISTRIBUTION_COLUMN = "adcode"
ANCHOR = "grids"  # the first distributed table: the others are co-located with it


class Placement(StrEnum):
    """Where a table's rows live in a distributed deployment."""

    DISTRIBUTED = "distributed"
    REFERENCE = "reference"
    COORDINATOR = "coordinator"


REFERENCE = frozenset(
    {
        "counties",
        "case_category_classes",
        "case_categories",
        "case_category_aliases",
        "case_category_edits",
        "calendar_days",
        "county_working_hours",
        "fume_limits",
        "units",
        "routing_rules",
        "users",
        "user_counties",
        "grid_inspectors",
        "layer_versions",
    }
)
COORDINATOR = frozenset(
    {
        "alembic_version",
        "deployment",
        "audit_log",  # some records name no county (accounts, the catalogue)
        "sessions",
        "login_failures",
        "terminals",
        "latest_positions",
        "tracker_states",
        "positions",
        "alarms",
    }
)
OUTSIDE = frozenset({"spatial_ref_sys"})  # PostGIS's own, which Citus keeps on every node


@dataclass(frozen=True)
class ForeignKey:
    """One foreign key as the catalogue describes it."""

    name: str
    table: str
    columns: tuple[str, ...]
    target: str
    target_columns: tuple[str, ...]
    on_update: str
    on_delete: str


@dataclass(frozen=True)
class Plan:
    """The move: DDL for plain PostgreSQL first, then the Citus calls, and the links given up."""

    keys: list[str]
    citus: list[str]
    dropped_links: list[ForeignKey]


ACTIONS = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}


def placements(conn: Connection) -> dict[str, Placement]:
    """Every table of the schema with its place; refuses a table not placed, or a distributed
    one whose county may be empty."""
    rows = conn.execute(
        text("""
        SELECT c.relname, a.attnotnull
        FROM pg_class AS c
        JOIN pg_namespace AS n ON n.oid = c.relnamespace AND n.nspname = current_schema()
        LEFT JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attname = :column
                                   AND NOT a.attisdropped
        WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
        ORDER BY c.relname
    """),
        {"column": DISTRIBUTION_COLUMN},
    ).all()
    found: dict[str, Placement] = {}
    for name, county_required in rows:
        if name in OUTSIDE:
            continue
        if name in REFERENCE:
            found[name] = Placement.REFERENCE
        elif name in COORDINATOR:
            found[name] = Placement.COORDINATOR
        elif county_required:
            found[name] = Placement.DISTRIBUTED
        else:
            raise UnplacedTable(
                f"Table {name} has no place in a distributed deployment: give it a NOT NULL "
                f"{DISTRIBUTION_COLUMN}, or list it as a reference or coordinator table.",
                f"数据表 {name} 在分布式部署中没有归属：请为其增加非空的 {DISTRIBUTION_COLUMN}，"
                "或将其列为参照表或协调节点表。",
            )
    return found


def foreign_keys(conn: Connection) -> list[ForeignKey]:
    """The schema's foreign keys, partitions left out (they follow their table)."""
    rows = conn.execute(
        text("""
        SELECT k.conname, t.relname, r.relname, k.confupdtype, k.confdeltype,
               ARRAY(SELECT a.attname FROM unnest(k.conkey) WITH ORDINALITY AS u (n, i)
                     JOIN pg_attribute AS a ON a.attrelid = k.conrelid AND a.attnum = u.n
                     ORDER BY u.i)::text[],
               ARRAY(SELECT a.attname FROM unnest(k.confkey) WITH ORDINALITY AS u (n, i)
                     JOIN pg_attribute AS a ON a.attrelid = k.confrelid AND a.attnum = u.n
                     ORDER BY u.i)::text[]
        FROM pg_constraint AS k
        JOIN pg_class AS t ON t.oid = k.conrelid
        JOIN pg_class AS r ON r.oid = k.confrelid
        JOIN pg_namespace AS n ON n.oid = t.relnamespace AND n.nspname = current_schema()
        WHERE k.contype = 'f' AND NOT t.relispartition AND k.conparentid = 0
        ORDER BY t.relname, k.conname
    """)
    ).all()
    return [
        ForeignKey(name, table, tuple(cols), target, tuple(tcols), ACTIONS[upd], ACTIONS[dele])
        for name, table, target, upd, dele, cols, tcols in rows
    ]


def _keys_without_county(conn: Connection, tables: list[str]) -> list[tuple[str, str, bool, str]]:
    """Primary keys and unique indexes of `tables` that leave the county out: (table, index,
    is primary, the DDL of the same key with the county first)."""
    rows = conn.execute(
        text("""
        SELECT t.relname, i.relname, x.indisprimary,
               ARRAY(SELECT pg_get_indexdef(x.indexrelid, k, true)
                     FROM generate_series(1, x.indnkeyatts) AS k ORDER BY k)::text[],
               pg_get_expr(x.indpred, x.indrelid)
        FROM pg_index AS x
        JOIN pg_class AS i ON i.oid = x.indexrelid
        JOIN pg_class AS t ON t.oid = x.indrelid
        JOIN pg_namespace AS n ON n.oid = t.relnamespace AND n.nspname = current_schema()
        WHERE x.indisunique AND t.relname = ANY(:tables) AND NOT t.relispartition
          AND NOT EXISTS (SELECT 1 FROM pg_attribute AS a
                          WHERE a.attrelid = t.oid AND a.attname = :column
                            AND a.attnum = ANY(x.indkey))
        ORDER BY t.relname, i.relname
    """),
        {"tables": tables, "column": DISTRIBUTION_COLUMN},
    ).all()
    out = []
    for table, index, primary, columns, predicate in rows:
        keyed = ", ".join([DISTRIBUTION_COLUMN, *columns])
        t, i = quote_name(conn, table), quote_name(conn, index)
        if primary:
            ddl = f"ALTER TABLE {t} ADD CONSTRAINT {i} PRIMARY KEY ({keyed})"
        else:
            where = f" WHERE {predicate}" if predicate else ""
            ddl = f"CREATE UNIQUE INDEX {i} ON {t} ({keyed}){where}"
        out.append((table, index, primary, ddl))
    return out


def _with_county(conn: Connection, key: ForeignKey) -> str:
    """The foreign key again, reaching its row by county and id."""
    cols = ", ".join(quote_name(conn, c) for c in key.columns)
    targets = ", ".join(quote_name(conn, c) for c in key.target_columns)
    on_delete = key.on_delete
    if on_delete in ("SET NULL", "SET DEFAULT"):  # the county stays: only the link is cleared
        on_delete = f"{on_delete} ({cols})"
    return (
        f"ALTER TABLE {quote_name(conn, key.table)} ADD CONSTRAINT {quote_name(conn, key.name)} "
        f"FOREIGN KEY ({DISTRIBUTION_COLUMN}, {cols}) "
        f"REFERENCES {quote_name(conn, key.target)} ({DISTRIBUTION_COLUMN}, {targets}) "
        f"ON UPDATE {key.on_update} ON DELETE {on_delete}"
    )


def _parents_first(tables: list[str], keys: list[ForeignKey]) -> list[str]:
    """`tables` ordered so a referenced table comes before the tables referring to it."""
    ordered: list[str] = []
    pending = set(tables)
    while pending:
        ready = sorted(
            t
            for t in pending
            if not any(k.table == t and k.target in pending and k.target != t for k in keys)
        )
        if not ready:  # a cycle: the rest in name order
            ready = sorted(pending)
        ordered += ready
        pending -= set(ready)
    return ordered


def plan(conn: Connection) -> Plan:
    """The DDL that makes this database distributable by county, then the Citus calls."""
    places = placements(conn)
    distributed = [t for t, p in places.items() if p is Placement.DISTRIBUTED]
    keys = foreign_keys(conn)
    between = [
        k
        for k in keys
        if places.get(k.table) is Placement.DISTRIBUTED
        and places.get(k.target) is Placement.DISTRIBUTED
        and DISTRIBUTION_COLUMN not in k.columns
    ]
    given_up = [
        k
        for k in keys
        if places.get(k.table) is not Placement.DISTRIBUTED
        and places.get(k.target) is Placement.DISTRIBUTED
    ]
    unkeyed = _keys_without_county(conn, distributed)
    ddl = [
        f"ALTER TABLE {quote_name(conn, k.table)} DROP CONSTRAINT {quote_name(conn, k.name)}"
        for k in [*between, *given_up]
    ]
    for table, index, primary, _ in unkeyed:
        ddl.append(
            f"ALTER TABLE {quote_name(conn, table)} DROP CONSTRAINT {quote_name(conn, index)}"
            if primary
            else f"DROP INDEX {quote_name(conn, index)}"
        )
    ddl += [statement for *_, statement in unkeyed]
    ddl += [_with_county(conn, k) for k in between]
    reference = _parents_first([t for t, p in places.items() if p is Placement.REFERENCE], keys)
    anchored = [t for t in _parents_first(distributed, keys) if t != ANCHOR]
    citus = ["CREATE EXTENSION IF NOT EXISTS citus"]
    citus += [f"SELECT create_reference_table('{t}')" for t in reference]
    citus.append(f"SELECT create_distributed_table('{ANCHOR}', '{DISTRIBUTION_COLUMN}')")
    citus += [
        f"SELECT create_distributed_table('{t}', '{DISTRIBUTION_COLUMN}', "
        f"colocate_with => '{ANCHOR}')"
        for t in anchored
    ]
    return Plan(ddl, citus, given_up)


def script(conn: Connection) -> str:
    """The move as one SQL script to read and run on the coordinator (docs/SCALING.md)."""
    moves = plan(conn)
    lines = [
        "-- 1. Keys by county: plain PostgreSQL, in one transaction",
        "BEGIN;",
        *(f"{s};" for s in moves.keys),
        "COMMIT;",
        "-- links kept by the application alone from here (a coordinator or reference table",
        "-- cannot hold a foreign key to a distributed one):",
        *(
            f"--   {k.table}({', '.join(k.columns)}) -> {k.target}({', '.join(k.target_columns)})"
            for k in moves.dropped_links
        ),
        "-- 2. Citus: reference tables, then the county-distributed tables, co-located",
        *(f"{s};" for s in moves.citus),
    ]
    return "\n".join(lines) + "\n"
