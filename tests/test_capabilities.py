"""What a layer does is declared with it: the engine reads the declaration, never the layer's id.

Each check takes a built-in layer and a copy declaring otherwise (same table, other capability)
and shows that reads, tiles, pages and grid placement follow the copy's declaration.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import mapbox_vector_tile
import pytest
import shapely
from shapely.geometry import box
from sqlalchemy import Engine, text

from layers.demo.load import ADCODE
from layers.engine.access import ReadLimit, Viewer, read_limit
from layers.engine.placing import grid_under
from layers.engine.tiles import tile_sql
from layers.grids import gridhistory
from layers.registry import (
    BILLBOARDS,
    CASES,
    COMPONENT_AREAS,
    COMPONENT_LAYERS,
    COMPONENT_LINES,
    COMPONENTS,
    GRIDS,
    LAYERS,
    DrawLevel,
    Field,
    FieldType,
    FileImport,
    GeometryKind,
    GridPlacement,
    Layer,
    PatrolReach,
    ReadScope,
    Role,
    Versioning,
)
from layers.store import db
from layers.store.versions import is_current, valid_on
from tests.accounts import ensure_account
from tests.databases import PgServer, fresh_database
from webmap.layers import api_layer

STEP = 0.01  # degrees: a community is a square of about 1 km
WEST, EAST = "320681100001000", "320681100002000"
STREET = "320681100000000"
SECTIONS = ("320681100001001", "320681100001002")
UNIT = "西片城管中队"


@dataclass(frozen=True)
class World:
    """A street of two communities; the west one split in two sections and patrolled."""

    engine: Engine
    inspector: Viewer


def _grid(conn: Any, level: str, code: str, parent: str | None, shape: Any, **more: Any) -> None:
    conn.execute(
        text("""
        INSERT INTO grids (adcode, geom, level, code, name, parent_code, responsible_unit,
                           valid_from, valid_to)
        VALUES (:adcode, ST_Multi(ST_GeomFromWKB(:wkb, 4490)), :level, :code, :name, :parent,
                :unit, :since, :until)
    """),
        {
            "adcode": ADCODE,
            "wkb": shapely.to_wkb(shape),
            "level": level,
            "code": code,
            "name": f"测试{code[-6:]}",
            "parent": parent,
            "unit": more.get("unit"),
            "since": more.get("since", "2020-01-01"),
            "until": more.get("until"),
        },
    )


def _square(col: float, width: float = 1.0) -> Any:
    return box(121.65 + col * STEP, 31.80, 121.65 + (col + width) * STEP, 31.80 + STEP)


@pytest.fixture(scope="module")
def world(pg_server: PgServer) -> Iterator[World]:
    databases = fresh_database(pg_server, "capabilities")
    url = next(databases)
    engine = db.make_engine(url)
    with engine.begin() as conn:
        _grid(conn, "street", STREET, None, _square(0, 2))
        _grid(conn, "community", WEST, STREET, _square(0), unit=UNIT)
        _grid(conn, "community", EAST, STREET, _square(1))
        # the east community as it was drawn before: retired, never shown as current
        _grid(conn, "community", EAST, STREET, _square(1, 0.5), until="2021-01-01")
        for k, code in enumerate(SECTIONS):
            _grid(conn, "section", code, WEST, _square(k / 2, 0.5))
    ensure_account(url, "insp-west", "inspector", (WEST,))
    yield World(engine, Viewer("insp-west", Role.INSPECTOR, counties=(ADCODE,)))
    engine.dispose()
    next(databases, None)


def _codes(world: World, layer: Layer, viewer: Viewer) -> list[str]:
    limit = read_limit(layer, viewer)
    with world.engine.connect() as conn:
        rows = conn.execute(
            text(
                f"SELECT t.code FROM grids AS t WHERE {limit.sql} AND {is_current(GRIDS, 't')} "
                "ORDER BY t.code"
            ),
            dict(limit.params),
        ).scalars()
        return list(rows)


def test_the_built_in_layers_declare_what_they_do() -> None:
    assert GRIDS.versioned == Versioning("valid_from", "valid_to")
    assert GRIDS.scope.patrol is PatrolReach.INSIDE and GRIDS.draw_level is DrawLevel.FRAME
    assert GRIDS.file_import is FileImport.GRID_HIERARCHY
    assert CASES.scope.unit_field == "unit" and CASES.placed_in_grid == GridPlacement()
    assert CASES.file_import is FileImport.CASE_HISTORY
    assert COMPONENTS.versioned == Versioning(kept_on_edit=True, retired=("status", "removed"))
    assert COMPONENTS.placed_in_grid is not None and COMPONENTS.placed_in_grid.unit_field is None
    assert COMPONENTS.id_scheme is not None and COMPONENTS.id_scheme.pattern == "^[0-9]{16}$"
    # lines and areas of the inventory: the same attributes, versions, placement and IDs
    for shaped, measure in ((COMPONENT_LINES, "length_m"), (COMPONENT_AREAS, "area_m2")):
        assert shaped.fields[: len(COMPONENTS.fields)] == COMPONENTS.fields
        assert shaped.fields[-1].name == measure and shaped.fields[-1].derived
        assert (shaped.versioned, shaped.placed_in_grid, shaped.id_scheme) == (
            COMPONENTS.versioned,
            COMPONENTS.placed_in_grid,
            COMPONENTS.id_scheme,
        )
    assert [layer.geometry.shape for layer in COMPONENT_LAYERS if layer.geometry] == [
        "point",
        "line",
        "area",
    ]
    built_in = (GRIDS, CASES, *COMPONENT_LAYERS)
    plain = [layer for layer in LAYERS.values() if layer not in built_in]
    assert all(layer.versioned is None and layer.scope == ReadScope() for layer in plain)
    assert gridhistory.COUNTED_LAYERS == (
        "illegal_buildings",
        "billboards",
        "dust_sites",
        "parking_lots",
    )


def test_a_capability_naming_a_field_the_layer_lacks_is_refused() -> None:
    fields = (Field("name", FieldType.TEXT, "名称", "Name"),)
    plain = Layer("things", "东西", "Things", fields, GeometryKind.POINT)
    assert plain.versioned is None and plain.file_import is FileImport.ROWS
    with pytest.raises(ValueError, match="lacks"):
        Layer("things", "东西", "Things", fields, versioned=Versioning())
    with pytest.raises(ValueError, match="lacks"):
        Layer("things", "东西", "Things", fields, scope=ReadScope(unit_field="unit"))
    with pytest.raises(ValueError, match="versioned"):
        Layer("things", "东西", "Things", fields, unique_current=("name",))
    with pytest.raises(ValueError, match="geometry"):  # lines and areas are placed; tables not
        replace(CASES, geometry=None)


def test_current_and_as_of_a_day_versions(world: World) -> None:
    rows = """(VALUES (1, DATE '2020-01-01', NULL::date), (2, DATE '2020-01-01', DATE '2024-06-01'),
                       (3, DATE '2024-06-01', NULL::date)) AS g(n, valid_from, valid_to)"""
    with world.engine.connect() as conn:

        def kept(condition: str, day: str | None = None) -> list[int]:
            sql = f"SELECT coalesce(array_agg(n ORDER BY n), '{{}}') FROM {rows} WHERE {condition}"
            return list(conn.execute(text(sql), {"day": day}).scalar_one())

        assert kept(is_current(GRIDS, "g")) == [1, 3]
        on = valid_on(GRIDS, "g", "CAST(:day AS date)")
        assert kept(on, "2024-05-31") == [1, 2]
        assert kept(on, "2024-06-01") == [1, 3]
        assert kept(on, "2019-12-31") == []
    with pytest.raises(ValueError, match="no versions"):
        is_current(BILLBOARDS)


def test_an_inspector_reads_the_grids_the_scope_declares(world: World) -> None:
    """Grids: the patrol area's own grids and those inside; declared to read what touches the
    area, the same table yields the street and the neighbour too."""
    assert _codes(world, GRIDS, world.inspector) == [WEST, *SECTIONS]
    touching = replace(GRIDS, scope=ReadScope())
    assert _codes(world, touching, world.inspector) == sorted([STREET, WEST, EAST, *SECTIONS])


def test_a_handling_unit_reads_only_its_rows_where_the_layer_is_scoped_by_unit() -> None:
    unit = Viewer("unit", Role.HANDLER, unit=UNIT)
    assert read_limit(CASES, unit).kind == "unit"
    assert read_limit(replace(CASES, scope=ReadScope()), unit).kind == "all"
    by_owner = read_limit(replace(BILLBOARDS, scope=ReadScope(unit_field="owner")), unit)
    assert by_owner.kind == "unit" and '"owner" = :viewer_unit' in by_owner.sql


def _tile_codes(world: World, layer: Layer) -> list[str]:
    z = 12
    lon, lat = 121.65 + STEP, 31.80 + STEP / 2
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    sql, params = tile_sql(layer, z, ReadLimit("all", "TRUE"))
    with world.engine.connect() as conn:
        tile = conn.execute(text(sql), {**params, "z": z, "x": x, "y": y}).scalar_one()
    features = mapbox_vector_tile.decode(bytes(tile))["grids"]["features"]
    return sorted(f["properties"]["code"] for f in features)


def test_tiles_of_a_versioned_layer_hold_its_current_rows_only(world: World) -> None:
    current = sorted([STREET, WEST, EAST, *SECTIONS])
    assert _tile_codes(world, GRIDS) == current
    every_version = replace(GRIDS, versioned=None, unique_current=())
    assert _tile_codes(world, every_version) == sorted([*current, EAST])


def test_a_page_draws_a_layer_at_its_declared_level() -> None:
    def pane(layer: Layer) -> Any:
        return api_layer(layer).options["pane"]

    assert [pane(GRIDS), pane(LAYERS["parking_lots"]), pane(BILLBOARDS)] == [
        "cgGrids",
        "cgAreas",
        "cgPoints",
    ]
    assert pane(replace(BILLBOARDS, draw_level=DrawLevel.FRAME)) == "cgGrids"
    assert pane(replace(GRIDS, draw_level=None)) == "cgAreas"


def test_a_point_is_placed_in_the_declared_level_of_grid(world: World) -> None:
    """The section under the point, and the nearest unit up its family (here: the community's)."""
    inside = shapely.Point(121.65 + STEP / 4, 31.80 + STEP / 2)
    with world.engine.connect() as conn:
        assert grid_under(conn, GridPlacement(), inside, ADCODE) == (SECTIONS[0], UNIT)
        community = GridPlacement(level="community")
        assert grid_under(conn, community, inside, ADCODE) == (WEST, UNIT)
        outside = shapely.Point(121.60, 31.80)
        assert grid_under(conn, GridPlacement(), outside, ADCODE) is None
