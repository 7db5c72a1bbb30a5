"""After migration: every registry layer is a table with SRID 4490, GIST and B-tree indexes."""

from __future__ import annotations

import numpy as np
import pytest
from pyproj import Transformer
from shapely.geometry import Polygon
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from layers.registry import LAYERS, STORAGE_SRID, spatial_layers
from layers.store import db, migrate


def _indexes(engine: Engine, table: str) -> dict[str, tuple[str, list[str]]]:
    sql = text("""
        SELECT i.relname, am.amname, array_agg(a.attname ORDER BY a.attnum)
        FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid
        JOIN pg_class t ON t.oid = x.indrelid
        JOIN pg_am am ON am.oid = i.relam
        JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ANY(x.indkey)
        WHERE t.relname = :table
        GROUP BY i.relname, am.amname
    """)
    with engine.connect() as conn:
        return {name: (method, cols) for name, method, cols in conn.execute(sql, {"table": table})}


def test_registry_and_migrations_agree(engine: Engine) -> None:
    assert migrate.current_revision(engine) == migrate.head_revision()
    assert migrate.schema_drift(engine) == []


def test_geometry_columns_have_storage_srid_and_type(engine: Engine) -> None:
    with engine.connect() as conn:
        rows = {
            (r.f_table_name, r.f_geometry_column): (r.srid, r.type)
            for r in conn.execute(
                text("SELECT f_table_name, f_geometry_column, srid, type FROM geometry_columns")
            )
        }
    expected = {
        (layer.id, "geom"): (STORAGE_SRID, layer.geometry.value)
        for layer in spatial_layers()
        if layer.geometry
    } | {
        ("counties", "boundary"): (STORAGE_SRID, "MULTIPOLYGON"),
        ("counties", "centre"): (STORAGE_SRID, "POINT"),
        ("latest_positions", "geom"): (STORAGE_SRID, "POINT"),
        ("positions", "geom"): (STORAGE_SRID, "POINT"),
        ("alarms", "geom"): (STORAGE_SRID, "POINT"),
        ("alarms", "track"): (STORAGE_SRID, "LINESTRING"),
    }
    assert rows == expected


@pytest.mark.parametrize("layer_id", list(LAYERS))
def test_indexes(engine: Engine, layer_id: str) -> None:
    layer = LAYERS[layer_id]
    indexes = _indexes(engine, layer_id).values()
    if layer.geometry:
        assert ("gist", ["geom"]) in indexes
    for column in ["adcode", *(f.name for f in layer.fields if f.indexed)]:
        assert ("btree", [column]) in indexes, f"{layer_id}.{column} has no B-tree index"


def test_the_heatmap_index_leads_with_the_county(engine: Engine) -> None:
    # a county's period must be one range of it: the database may hold many counties
    with engine.connect() as conn:
        found = conn.execute(
            text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_cases_heatmap'")
        ).scalar_one()
    assert "(adcode, reported_at) INCLUDE (gk_srid, cell_x, cell_y, category_code, geom)" in found


def test_every_layer_row_carries_a_stored_county(engine: Engine) -> None:
    with engine.connect() as conn:
        nullable = (
            conn.execute(
                text("""
            SELECT table_name FROM information_schema.columns
            WHERE column_name = 'adcode' AND is_nullable = 'NO' AND table_schema = 'public'
        """)
            )
            .scalars()
            .all()
        )
        referring = (
            conn.execute(
                text("""
            SELECT c.conrelid::regclass::text FROM pg_constraint AS c
            WHERE c.contype = 'f' AND c.confrelid = 'counties'::regclass
              AND c.conkey = ARRAY[(SELECT attnum FROM pg_attribute
                                    WHERE attrelid = c.conrelid AND attname = 'adcode')]
        """)
            )
            .scalars()
            .all()
        )
    county_tables = {
        "user_counties",
        "units",
        "case_category_edits",
        "routing_rules",
        "component_photos",
        "county_working_hours",
        "fume_limits",
        "fume_readings",
    }
    with engine.connect() as conn:  # a partition holds its table's rows and keys
        partitions = set(
            conn.execute(text("SELECT relname FROM pg_class WHERE relispartition")).scalars()
        )
    nullable = [t for t in nullable if t not in partitions]
    referring = [t for t in referring if t not in partitions]
    case_rows = {"case_events", "case_photos"}  # their county is their case's (one key)
    # counts derived from the cases by their triggers follow the cases' county, not one of theirs
    derived = {"case_cell_days", "case_cell_months"}
    assert set(nullable) == {*LAYERS, "counties", *county_tables, *case_rows, *derived}
    assert set(referring) == {
        *LAYERS,
        *county_tables,
        "case_categories",
        "calendar_days",  # adcode NULL: the deployment's default days
    }


def _gk_square(epsg: int, x: float, y: float, side: float) -> tuple[Polygon, float]:
    """A square drawn in GK metres, in CGCS2000 degrees, and its hand-computed area."""
    corners = np.array([[x, y], [x + side, y], [x + side, y + side], [x, y + side]])
    to_deg = Transformer.from_crs(epsg, 4490, always_xy=True)
    lon, lat = to_deg.transform(corners[:, 0], corners[:, 1])
    return Polygon(zip(lon, lat, strict=True)), side * side


INSERT_GRID = text("""
    INSERT INTO grids (adcode, geom, level, code, name, valid_from)
    VALUES ('320681', ST_Multi(ST_GeomFromText(:wkt, 4490)), 'section', :code, '测试网格', '2024-01-01')
    RETURNING id, area_m2
""")


def test_area_is_computed_in_the_gauss_kruger_zone(scratch_owner: Engine) -> None:
    square, hand = _gk_square(4550, 550_000.0, 3_520_000.0, 100.0)
    bigger, hand_bigger = _gk_square(4550, 550_000.0, 3_520_000.0, 250.0)
    with scratch_owner.begin() as conn:
        grid_id, area = conn.execute(
            INSERT_GRID, {"wkt": square.wkt, "code": "320681100001001"}
        ).one()
        assert area == pytest.approx(hand, rel=1e-3)
        updated = conn.execute(
            text(
                "UPDATE grids SET geom = ST_Multi(ST_GeomFromText(:wkt, 4490)) WHERE id = :id RETURNING area_m2"
            ),
            {"wkt": bigger.wkt, "id": grid_id},
        ).scalar_one()
        assert updated == pytest.approx(hand_bigger, rel=1e-3)


def test_zone_can_be_forced(scratch_url: str) -> None:
    square, _ = _gk_square(4550, 550_000.0, 3_520_000.0, 100.0)
    forced = db.make_engine(scratch_url, gk_epsg=4549)
    try:
        with forced.begin() as conn:
            _, area = conn.execute(
                INSERT_GRID, {"wkt": square.wkt, "code": "320681100001002"}
            ).one()
    finally:
        forced.dispose()
    to_4549 = Transformer.from_crs(4490, 4549, always_xy=True)
    x, y = to_4549.transform(*np.array(square.exterior.coords).T)
    hand_4549 = Polygon(zip(x, y, strict=True)).area
    assert area == pytest.approx(hand_4549, rel=1e-6)
    assert abs(area - 10_000.0) > 0.01  # measured in the other zone: not the same number


def test_code_lists_and_formats_are_enforced(scratch_owner: Engine) -> None:
    square, _ = _gk_square(4550, 550_000.0, 3_520_000.0, 100.0)
    with pytest.raises(IntegrityError), scratch_owner.begin() as conn:
        conn.execute(INSERT_GRID, {"wkt": square.wkt, "code": "32068110000100"})  # 14 digits
    with pytest.raises(IntegrityError), scratch_owner.begin() as conn:
        conn.execute(
            text("""
            INSERT INTO billboards (adcode, geom, type, face_area_m2)
            VALUES ('320681', ST_SetSRID(ST_MakePoint(121.6, 31.8), 4490), 'zeppelin', 3)
        """)
        )


def test_migrations_go_down_and_up_again(scratch_owner: Engine) -> None:
    migrate.downgrade(scratch_owner)
    with scratch_owner.connect() as conn:
        left = conn.execute(
            text("SELECT count(*) FROM information_schema.tables WHERE table_name = ANY(:names)"),
            {"names": list(LAYERS)},
        ).scalar_one()
    assert left == 0
    migrate.upgrade(scratch_owner)
    assert migrate.schema_drift(scratch_owner) == []


def test_every_migration_steps_down_and_up_again(scratch_owner: Engine) -> None:
    """Each revision's downgrade works on its own, and each upgrade after it, one at a time."""
    shipped = migrate.all_revisions()
    assert shipped[-1] == migrate.head_revision()
    for expected in [*reversed(shipped[:-1]), None]:
        migrate.downgrade(scratch_owner, "-1")
        assert migrate.current_revision(scratch_owner) == expected
    assert migrate.pending_revisions(scratch_owner) == shipped
    assert migrate.upgrade_each(scratch_owner) == shipped
    assert migrate.schema_drift(scratch_owner) == []
