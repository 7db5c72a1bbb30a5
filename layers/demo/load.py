"""Build the demo city (启东市, adcode 320681) deterministically and load it with COPY."""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import numpy as np
from citygrid_data import data_file
from shapely.geometry import Point
from sqlalchemy import Connection, Engine, func, select, text

from gis.zones import from_gk, geometry_zone, to_gk
from layers.cases import units, workcalendar
from layers.cases.codes import read_case_categories, seed_case_categories
from layers.cases.units import NewUnit
from layers.cases.workcalendar import Periods
from layers.cases.worktime import DEFAULT_PERIODS, WorkCalendar
from layers.demo import (
    cases,
    features,
    fleet,
    fume,
    geofences,
    histories,
    merchants,
    owners,
    roads,
    systems,
)
from layers.demo import components as demo_components
from layers.demo import routing as demo_routing
from layers.demo.features import DemoContext
from layers.demo.grids import build_grids
from layers.demo.histories import EVENT_COLUMNS, Histories
from layers.demo.names import TOWNS, NameBook
from layers.demo.population import Population, place_towns
from layers.demo.routing import DemoRule
from layers.engine import placing
from layers.places import counties
from layers.places.boundary import County, load_county
from layers.registry import LAYERS
from layers.store.bulk import analyze, copy_rows, copy_tuples, foreign_keys_checked_after
from layers.store.tables import TABLES, audit_log, case_photos, layer_table

ADCODE = "320681"
COUNTY_NAME = "启东市"
BOUNDARY_FILE = "qidong_320681_gcj02.geojson"
COUNTY_SEAT = Point(121.657, 31.808)  # 汇龙镇, the city seat, CGCS2000
DEMO_ACTOR = "demo"

Step = Callable[[str, int], Callable[[int], None]]


@dataclass
class DemoCity:
    """Every row of the demo, by table."""

    county: County
    rows: dict[str, list[dict[str, object]]] = field(default_factory=dict)
    units: list[NewUnit] = field(default_factory=list)
    rules: list[DemoRule] = field(default_factory=list)
    histories: Histories = field(default_factory=Histories)

    def counts(self) -> dict[str, int]:
        """Rows per table."""
        return {name: len(rows) for name, rows in self.rows.items()}


def load_order() -> tuple[str, ...]:
    """Every declared layer, parents before their children (the order of declaration)."""
    return tuple(LAYERS)


def qidong() -> County:
    """The shipped boundary of 启东市, converted from GCJ-02 to CGCS2000."""
    return load_county(str(data_file(BOUNDARY_FILE)), ADCODE, COUNTY_NAME, gcj02=True)


@dataclass(frozen=True)
class Scale:
    """Multipliers of the report's numbers (benchmarks load a larger city)."""

    cases: float = 1.0
    billboards: float = 1.0
    illegal_buildings: float = 1.0
    fume_months: int = 12  # the months of hourly fume readings, from January


def _people(county: County, rng: np.random.Generator) -> tuple[Population, int]:
    epsg = int(geometry_zone([county.boundary])[0])
    region = to_gk([county.boundary], epsg)[0]
    seat = to_gk([COUNTY_SEAT], epsg)[0]
    return Population(region, place_towns(region, seat, TOWNS, rng)), epsg


def people(county: County, seed: int) -> tuple[Population, int]:
    """The people model (towns, main streets) that `build` with `seed` draws from, and its zone."""
    return _people(county, np.random.default_rng(seed))


def build(
    county: County,
    seed: int,
    year: int,
    scale: Scale = Scale(),
    calendar: WorkCalendar | None = None,
) -> DemoCity:
    """Generate the whole demo city from `seed`: same seed, same city; case deadlines on
    `calendar` (the county's working calendar)."""
    rng = np.random.default_rng(seed)
    population, epsg = _people(county, rng)
    region, towns = population.region, population.towns
    names = NameBook(rng)
    ctx = DemoContext(rng, names, population, epsg, year)
    grids = build_grids(region, towns, population, rng, names, county.adcode, date(year, 1, 1))
    grid_geoms = from_gk([g.geom for g in grids], epsg)
    grid_rows = [
        {**{k: v for k, v in vars(g).items() if k != "geom"}, "geom": geom}
        for g, geom in zip(grids, grid_geoms, strict=True)
    ]
    sections = [r for r in grid_rows if r["level"] == "section"]
    section_geoms = np.asarray([r["geom"] for r in sections], dtype=object)
    section_codes = [str(r["code"]) for r in sections]
    dust = features.dust_sites(ctx)
    categories = {c.code: c for c in read_case_categories()}
    city = DemoCity(county)
    city.rows = {
        "grids": grid_rows,
        "illegal_buildings": features.illegal_buildings(
            ctx, round(120 * scale.illegal_buildings), round(300 * scale.illegal_buildings)
        ),
        "billboards": features.billboards(ctx, scale.billboards),
        "dust_sites": dust.sites,
        "dust_inspections": dust.inspections,
        "work_orders": dust.work_orders,
        "parking_lots": features.parking_lots(ctx),
    }
    events = cases.cases(ctx, categories, section_geoms, section_codes, scale.cases)
    subclasses = {c.minor_name: c.code for c in categories.values() if c.kind == "component"}
    census = demo_components.components(ctx, subclasses, county.adcode)
    city.rows["components"] = census
    on_components = cases.component_cases(
        ctx,
        categories,
        section_geoms,
        section_codes,
        census,
        cases.component_case_count(len(events)),
    )
    # drawn after the cases, so the cases stay as they were before the census had shapes
    city.rows |= demo_components.shaped(ctx, subclasses, county.adcode)
    city.rules = demo_routing.rules(grid_rows, COUNTY_SEAT)
    demo_routing.route_events(events, grid_rows, city.rules)
    every_case = sorted(events + on_components, key=lambda r: r["reported_at"])
    for number, row in enumerate(every_case, start=1):
        row["id"] = number
    calendar = WorkCalendar() if calendar is None else calendar
    city.histories = histories.histories(every_case, grid_rows, categories, calendar, rng, year)
    city.rows["cases"] = every_case
    city.units = owners.directory(county.adcode)
    city.rows |= systems.systems(population, epsg, grid_rows, county.adcode, year, seed)
    city.rows |= merchants.merchants(population, epsg, county.adcode, year, seed)
    vehicles = fleet.fleet(population, epsg, year, seed)
    for number, vehicle in enumerate(vehicles, start=1):  # the road segments name their sweepers
        vehicle["id"] = number
    city.rows["vehicles"] = vehicles
    city.rows["road_segments"] = roads.road_segments(population, epsg, vehicles)
    city.rows["geofences"] = geofences.geofences(population, epsg, dust.sites, seed, vehicles)
    city.rows["restaurants"] = fume.restaurants(population, epsg, year, seed)
    city.rows["fume_checks"] = fume.checks(city.rows["restaurants"], seed)
    return city


def is_loaded(conn: Connection) -> bool:
    """Whether the database already holds grids (the demo or real data)."""
    return bool(conn.execute(select(func.count()).select_from(TABLES["grids"])).scalar_one())


def write(conn: Connection, city: DemoCity, step: Step | None = None) -> dict[str, int]:
    """COPY the demo into empty tables inside the caller's transaction."""
    seed_case_categories(conn)
    if counties.find(conn, city.county.adcode) is None:
        counties.add(conn, city.county, COUNTY_SEAT)
    for entry in city.units:  # before the components that name them
        if units.find(conn, entry.name, city.county.adcode) is None:
            units.add(conn, entry, city.county.adcode, DEMO_ACTOR)
    demo_routing.write_rules(conn, city.county.adcode, city.rules, DEMO_ACTOR)
    written = {}
    for name in load_order():
        rows = city.rows.get(name, [])  # a layer without demo data starts empty
        advance = step(name, len(rows)) if step else None
        stamped = [{**row, "adcode": city.county.adcode} for row in rows]
        table = layer_table(LAYERS[name])
        written[name] = copy_rows(conn, table, stamped, advance)
        if written[name]:
            # the triggers of the next layers and the placing below query these rows: planned
            # without their statistics, rating the merchants near the cases took 50 s, not 1 s
            analyze(conn, table.name)
    _write_histories(conn, city, step)  # not layers: `written` counts the layers' rows
    for layer in LAYERS.values():  # rows placed in grids get the grid (and more) under them
        placing.place_unplaced(conn, layer)
    return written


def _write_histories(conn: Connection, city: DemoCity, step: Step | None) -> dict[str, int]:
    """COPY the cases' events, the photos of cases fixed on the spot and the audit records of
    the inspectors' reports."""
    found, adcode = city.histories, city.county.adcode
    advance = step("case_events", len(found.events)) if step else None
    columns = (("adcode", "varchar"), *EVENT_COLUMNS)
    with foreign_keys_checked_after(conn, "case_events"):
        rows = [(adcode, *event) for event in found.events]
        events = copy_tuples(conn, "case_events", columns, rows, advance)
    written = {"case_events": events}
    photos = [{**photo, "adcode": adcode} for photo in found.photos]
    written["case_photos"] = copy_rows(conn, case_photos, photos)
    reports = [{**row, "adcode": adcode} for row in found.reports]
    written["audit_log"] = copy_rows(conn, audit_log, reports)
    return written


def load(
    engine: Engine,
    seed: int,
    year: int,
    step: Step | None = None,
    force: bool = False,
    scale: Scale = Scale(),
    default_hours: Periods = DEFAULT_PERIODS,
) -> dict[str, int] | None:
    """Load the demo unless data is present (then None); `force` replaces what is there; case
    deadlines on the county's working calendar (`default_hours` where it has no hours)."""
    with engine.begin() as conn:
        if is_loaded(conn):
            if not force:
                return None
            tables = ", ".join(layer_table(LAYERS[n]).name for n in load_order())
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
            # the ids start again from 1: records of the rows replaced would name the new ones
            conn.execute(
                text("DELETE FROM audit_log WHERE layer = ANY(:layers)"),
                {"layers": list(load_order())},
            )
    with engine.connect() as conn:
        calendar = workcalendar.load(conn, ADCODE, default_hours)
    generated = step("generating", 1) if step else None
    gc.disable()  # a million small rows, none of them cyclic: the collector would only slow it
    try:
        city = build(qidong(), seed, year, scale, calendar)
    finally:
        gc.enable()
    if generated:
        generated(1)
    with engine.begin() as conn:
        conn.execute(text("LOCK TABLE grids IN EXCLUSIVE MODE"))
        if is_loaded(conn):
            return None
        written = write(conn, city, step)
        written["fume_readings"] = fume.write_readings(
            conn, city.county.adcode, year, seed, scale.fume_months
        )
    with engine.connect() as conn:
        # VACUUM too: index-only scans (the heatmap's) need the pages marked all-visible
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    return written
