"""The move to a cluster distributed by county (docs/SCALING.md): every table has a place, a
table that could lose its county is refused, and after the plan's plain PostgreSQL part every key
of a distributed table holds the county; the script names every step."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, Engine, text

from layers.errors import UnplacedTable
from layers.registry import LAYERS
from layers.store import distribution
from layers.store.distribution import DISTRIBUTION_COLUMN, Placement
from tests.databases import PgServer
from tests.keyed import keys_by_county
from tests.support import citygrid


def _tables(conn: Connection) -> set[str]:
    return set(
        conn.execute(
            text("""
            SELECT c.relname FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
        """)
        ).scalars()
    )


def test_every_table_has_its_place(engine: Engine) -> None:
    with engine.connect() as conn:
        places = distribution.placements(conn)
        tables = _tables(conn)
    assert set(places) == tables - distribution.OUTSIDE
    assert tables >= distribution.REFERENCE | distribution.COORDINATOR, "a stale name"
    distributed = {t for t, p in places.items() if p is Placement.DISTRIBUTED}
    assert set(LAYERS) <= distributed
    assert {"case_events", "case_photos", "component_photos", "fume_readings"} <= distributed
    assert places["counties"] is Placement.REFERENCE
    assert places["positions"] is Placement.COORDINATOR


@pytest.mark.parametrize(
    "columns", ["id bigint PRIMARY KEY", "id bigint PRIMARY KEY, adcode varchar(6)"]
)
def test_a_table_that_could_lose_its_county_is_refused(scratch_owner: Engine, columns: str) -> None:
    with scratch_owner.begin() as conn:
        conn.execute(text(f"CREATE TABLE notebook ({columns})"))
        with pytest.raises(UnplacedTable) as refused:
            distribution.placements(conn)
        conn.execute(text("DROP TABLE notebook"))
    assert refused.value.code == "table_unplaced"
    assert "notebook" in refused.value.message_en and "notebook" in refused.value.message_zh


def _keys_without_county(conn: Connection, tables: list[str]) -> list[str]:
    """Unique indexes and foreign keys among `tables` that leave the county out."""
    unique = conn.execute(
        text("""
        SELECT i.relname FROM pg_index AS x
        JOIN pg_class AS i ON i.oid = x.indexrelid JOIN pg_class AS t ON t.oid = x.indrelid
        WHERE x.indisunique AND t.relname = ANY(:tables) AND NOT EXISTS (
            SELECT 1 FROM pg_attribute AS a WHERE a.attrelid = t.oid AND a.attname = :c
              AND a.attnum = ANY(x.indkey))
    """),
        {"tables": tables, "c": DISTRIBUTION_COLUMN},
    ).scalars()
    links = conn.execute(
        text("""
        SELECT k.conname FROM pg_constraint AS k
        JOIN pg_class AS t ON t.oid = k.conrelid JOIN pg_class AS r ON r.oid = k.confrelid
        WHERE k.contype = 'f' AND t.relname = ANY(:tables) AND r.relname = ANY(:tables)
          AND NOT EXISTS (SELECT 1 FROM pg_attribute AS a WHERE a.attrelid = t.oid
                          AND a.attname = :c AND a.attnum = ANY(k.conkey))
    """),
        {"tables": tables, "c": DISTRIBUTION_COLUMN},
    ).scalars()
    return [*unique, *links]


def test_after_the_move_every_key_of_a_distributed_table_holds_the_county(
    pg_server: PgServer, scratch_url: str, scratch_owner: Engine
) -> None:
    with scratch_owner.connect() as conn:
        places = distribution.placements(conn)
        distributed = [t for t, p in places.items() if p is Placement.DISTRIBUTED]
        assert _keys_without_county(conn, distributed), "nothing to move: the check is void"
    moved = keys_by_county(pg_server, scratch_url)
    with scratch_owner.connect() as conn:
        assert _keys_without_county(conn, distributed) == []
        again = distribution.plan(conn)
        links_to_distributed = [
            k.name
            for k in distribution.foreign_keys(conn)
            if places[k.target] is Placement.DISTRIBUTED
            and places[k.table] is not Placement.DISTRIBUTED
        ]
    assert again.keys == [] and again.dropped_links == []  # the move is done once
    assert links_to_distributed == []
    assert any("PRIMARY KEY (adcode, id)" in s and "pk_cases" in s for s in moved)


def test_the_script_names_every_step(scratch_url: str, scratch_owner: Engine) -> None:
    answer = citygrid("db", "distribution-plan", env={"CITYGRID_DATABASE_URL": scratch_url})
    assert answer.returncode == 0, answer.stderr
    script = answer.stdout
    with scratch_owner.connect() as conn:
        places = distribution.placements(conn)
    for table, place in places.items():
        if place is Placement.REFERENCE:
            assert f"SELECT create_reference_table('{table}');" in script
        elif place is Placement.DISTRIBUTED:
            assert f"SELECT create_distributed_table('{table}', 'adcode'" in script
        else:
            assert f"'{table}'" not in script
    assert script.index("BEGIN;") < script.index("COMMIT;") < script.index("CREATE EXTENSION")
    assert "--   alarms(case_id) -> cases(id)" in script
    colocated = script.index("create_distributed_table('grids', 'adcode')")
    assert colocated < script.index("colocate_with => 'grids'")
    assert script.index("create_reference_table('counties')") < colocated
