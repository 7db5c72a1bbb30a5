"""The demo city: grids that tile 启东 exactly, and layers at the scale of the bureau's report."""

from __future__ import annotations

import gc
from collections import Counter
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from api.settings import DatabaseSettings, DemoSettings
from gis import zones
from gis.coverage import summarize_coverage
from layers.accounts import users
from layers.cases import evaluation, routing, workcalendar
from layers.cases.casework import UNVERIFIED_SOURCES
from layers.cases.codes import read_case_categories
from layers.cases.units import check_credit_code
from layers.cases.workflow import MOVES, STAYS
from layers.demo import accounts as demo_accounts
from layers.demo import cases as demo_cases
from layers.demo import components as demo_components
from layers.demo import load as demo_city
from layers.demo import owners
from layers.demo import routing as demo_routing
from layers.demo.features import DemoContext
from layers.demo.names import NameBook
from layers.demo.owners import TELECOM
from layers.demo.streets import street_plan
from layers.registry import LAYERS, Role
from layers.store import db
from tests.accounts import TEST_AUTH, bearer, ensure_account

pytestmark = pytest.mark.usefixtures("demo")

REPORT_CASES = {"E0501": 12063, "E0107": 4064, "E0502": 11946, "E0503": 115340, "E0201": 239}


def scalar(engine: Engine, sql: str) -> object:
    with engine.connect() as conn:
        return conn.execute(text(sql)).scalar_one()


def rows(engine: Engine, sql: str) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql))]


@pytest.fixture(scope="module")
def grids(engine: Engine) -> dict[str, dict[str, object]]:
    """Every grid by code, geometry in metres of the county's zone."""
    with engine.connect() as conn:
        result = conn.execute(
            text("SELECT code, level, parent_code, ST_AsBinary(geom) AS wkb FROM grids")
        ).all()
    geoms = zones.to_gk(shapely.from_wkb([r.wkb for r in result]), 4550)
    return {
        r.code: {"level": r.level, "parent": r.parent_code, "geom": g}
        for r, g in zip(result, geoms, strict=True)
    }


def test_three_grid_levels_in_the_reported_numbers(engine: Engine) -> None:
    assert dict(rows(engine, "SELECT level, count(*) FROM grids GROUP BY level")) == {
        "street": 7,
        "community": 66,
        "section": 349,
    }


def test_grid_codes_follow_the_15_digit_scheme(grids: dict[str, dict[str, object]]) -> None:
    for code, g in grids.items():
        assert len(code) == 15 and code.startswith("320681")
        street, community, seq = code[6:9], code[9:12], code[12:]
        if g["level"] == "street":
            assert g["parent"] is None and 100 <= int(street) <= 199 and community == seq == "000"
        elif g["level"] == "community":
            assert g["parent"] == code[:9] + "000000" and int(community) > 0 and seq == "000"
        else:
            assert g["parent"] == code[:12] + "000" and int(seq) > 0


def test_county_is_covered_with_no_gap_or_overlap(grids: dict[str, dict[str, object]]) -> None:
    county = zones.to_gk([demo_city.qidong().boundary], 4550)[0]
    streets = [g["geom"] for g in grids.values() if g["level"] == "street"]
    summary = summarize_coverage(county, streets)
    assert summary.ok(tolerance_m2=1.0), summary


def test_children_tile_their_parents(grids: dict[str, dict[str, object]]) -> None:
    children: dict[str, list[object]] = {}
    for g in grids.values():
        if g["parent"]:
            children.setdefault(str(g["parent"]), []).append(g["geom"])
    assert len(children) == 7 + 66
    failures = {}
    for parent, kids in children.items():
        summary = summarize_coverage(grids[parent]["geom"], kids)
        if not summary.ok(tolerance_m2=1.0):
            failures[parent] = summary
    assert failures == {}


def test_grid_codes_run_north_to_south(grids: dict[str, dict[str, object]]) -> None:
    by_community: dict[str, list[tuple[str, float]]] = {}
    for code, g in grids.items():
        if g["level"] == "section":
            by_community.setdefault(str(g["parent"]), []).append(
                (code, shapely.point_on_surface(g["geom"]).y)
            )
    correlations = []
    for sections in by_community.values():
        if len(sections) >= 4:
            ranks = np.argsort(np.argsort([-y for _, y in sorted(sections)]))
            correlations.append(np.corrcoef(np.arange(len(sections)), ranks)[0, 1])
    assert np.median(correlations) > 0.6  # numbered in rows from north to south


def test_areas_are_in_square_metres_in_gauss_kruger(
    engine: Engine, grids: dict[str, dict[str, object]]
) -> None:
    stored = dict(rows(engine, "SELECT code, area_m2 FROM grids WHERE level = 'street'"))
    for code, area in stored.items():
        assert area == pytest.approx(grids[code]["geom"].area, rel=1e-3)
    total = scalar(engine, "SELECT sum(area_m2) FROM grids WHERE level = 'section'")
    assert 1.5e9 < float(total) < 1.8e9  # 启东's land boundary: about 1,672 km²


def test_every_row_carries_the_county_code(engine: Engine) -> None:
    for table in LAYERS:
        assert rows(engine, f"SELECT DISTINCT adcode FROM {table}") == [("320681",)]


def test_dust_sites_inspections_and_work_orders_match_the_report(engine: Engine) -> None:
    assert scalar(engine, "SELECT count(*) FROM dust_sites") == 226
    assert scalar(engine, "SELECT count(*) FROM dust_inspections") == 724
    assert scalar(engine, "SELECT sum(problems_found) FROM dust_inspections") == 144
    assert scalar(engine, "SELECT count(*) FROM work_orders") == 104
    assert (
        scalar(
            engine,
            """
        SELECT count(*) FROM work_orders w JOIN dust_inspections i ON i.id = w.inspection_id
        WHERE i.problems_found > 0 AND w.issued_on >= i.inspected_on AND w.dust_site_id = i.dust_site_id
    """,
        )
        == 104
    )
    assert scalar(engine, "SELECT count(DISTINCT site_type) FROM dust_sites") == 6


def test_billboards_match_the_report(engine: Engine) -> None:
    total = scalar(engine, "SELECT count(*) FROM billboards")
    assert 1700 < total < 2000
    assert (
        scalar(
            engine,
            "SELECT count(*) FROM billboards WHERE type = 'shop_sign' AND risk_grade IS NOT NULL",
        )
        >= 1700
    )
    removed = dict(
        rows(
            engine,
            """
        SELECT CASE WHEN type IN ('pole', 'window_cover') THEN type ELSE 'other_ads' END,
               round(sum(removed_area_m2)::numeric, 2)
        FROM billboards WHERE removed_on IS NOT NULL GROUP BY 1
    """,
        )
    )
    counts = dict(
        rows(
            engine,
            """
        SELECT CASE WHEN type IN ('pole', 'window_cover') THEN type ELSE 'other_ads' END, count(*)
        FROM billboards WHERE removed_on IS NOT NULL GROUP BY 1
    """,
        )
    )
    assert counts == {"pole": 5, "other_ads": 57, "window_cover": 26}
    assert {k: float(v) for k, v in removed.items()} == {
        "pole": 1629.05,
        "other_ads": 1442.61,
        "window_cover": 1305.05,
    }


def test_illegal_buildings_demolished_as_reported(engine: Engine) -> None:
    total = scalar(engine, "SELECT count(*) FROM illegal_buildings")
    assert 200 <= total <= 900
    got = {
        c: (n, float(a))
        for c, n, a in rows(
            engine,
            """
        SELECT category, count(*), round(sum(area_m2)::numeric, 4)
        FROM illegal_buildings WHERE status = 'demolished' AND demolished_on >= '2023-01-01' GROUP BY category
    """,
        )
    }
    assert got["new"][0] == 46 and got["new"][1] == pytest.approx(497.7675, abs=0.01)
    assert got["existing"][0] == 38 and got["existing"][1] == pytest.approx(2897.571, abs=0.01)
    assert (
        scalar(
            engine,
            "SELECT count(*) FROM illegal_buildings WHERE abs(area_m2 - demolished_area_m2) > 0.01",
        )
        == 0
    )


def test_parking_lots(engine: Engine) -> None:
    by_category = dict(rows(engine, "SELECT category, count(*) FROM parking_lots GROUP BY 1"))
    assert set(by_category) == {"public", "dedicated", "temporary", "on_street"}
    assert 100 <= sum(by_category.values()) <= 900
    assert (
        scalar(engine, "SELECT count(*) FROM parking_lots WHERE spaces <= 0 OR area_m2 <= 0") == 0
    )


def test_cases_in_the_reports_proportions(engine: Engine) -> None:
    events = "SELECT category_code, count(*) FROM cases WHERE component_code IS NULL GROUP BY 1"
    assert dict(rows(engine, events)) == REPORT_CASES


def test_cases_are_inside_the_county_and_in_their_grid(engine: Engine) -> None:
    assert scalar(engine, "SELECT count(*) FROM cases WHERE grid_code IS NULL") == 0
    misplaced = scalar(
        engine,
        """
        SELECT count(*) FROM (SELECT * FROM cases ORDER BY id LIMIT 5000) c
        JOIN grids g ON g.code = c.grid_code
        WHERE NOT ST_Intersects(g.geom, c.geom)
    """,
    )
    assert misplaced == 0


def test_cases_concentrate_where_people_are(
    engine: Engine, grids: dict[str, dict[str, object]]
) -> None:
    seat = zones.to_gk([demo_city.COUNTY_SEAT], 4550)[0]
    county = zones.to_gk([demo_city.qidong().boundary], 4550)[0]
    near_seat = shapely.intersection(seat.buffer(3000), county)
    share_of_area = near_seat.area / county.area
    share_of_cases = float(
        scalar(
            engine,
            f"""
        SELECT avg((ST_DWithin(ST_Transform(geom, 4550), ST_SetSRID(ST_MakePoint({seat.x}, {seat.y}), 4550), 3000))::int)
        FROM cases
    """,
        )
    )
    assert share_of_area < 0.02 and share_of_cases > 10 * share_of_area
    density = np.array(
        [
            d
            for (d,) in rows(
                engine,
                """
        SELECT count(*) / g.area_m2 FROM cases c JOIN grids g ON g.code = c.grid_code GROUP BY g.code, g.area_m2
    """,
            )
        ]
    )
    low, high = np.quantile(density, [0.1, 0.9])
    assert high > 20 * low  # town sections against country ones: not uniform noise


def test_cases_have_daily_and_weekly_rhythms(engine: Engine) -> None:
    hours = Counter(
        dict(
            rows(
                engine,
                """
        SELECT extract(hour FROM reported_at AT TIME ZONE 'Asia/Shanghai')::int, count(*)
        FROM cases WHERE category_code = 'E0501' GROUP BY 1
    """,
            )
        )
    )
    assert hours[18] > 10 * hours[3] and hours[7] > 10 * hours[14]
    weekend, weekday = rows(
        engine,
        """
        SELECT extract(isodow FROM reported_at AT TIME ZONE 'Asia/Shanghai') >= 6, count(*) / count(DISTINCT reported_at::date)::float
        FROM cases WHERE category_code = 'E0501' GROUP BY 1 ORDER BY 1 DESC
    """,
    )
    assert weekend[1] > 1.2 * weekday[1]  # street vendors work weekends


def test_case_workflow_timestamps_are_consistent(engine: Engine) -> None:
    statuses = dict(rows(engine, "SELECT status, count(*) FROM cases GROUP BY 1"))
    ended = statuses.get("rejected", 0) + statuses.get("cancelled", 0)
    closed_rate = statuses["closed"] / (sum(statuses.values()) - ended)
    assert 0.98 < closed_rate < 1.0
    assert (
        scalar(
            engine,
            """
        SELECT count(*) FROM cases WHERE status = 'closed' AND self_handled IS NULL AND NOT (
            reported_at < registered_at AND registered_at < dispatched_at AND dispatched_at < handled_at
            AND handled_at < feedback_at AND feedback_at < verified_at AND verified_at < closed_at
            AND deadline > dispatched_at)
    """,
        )
        == 0
    )
    assert (
        scalar(
            engine,
            "SELECT count(*) FROM cases WHERE status IN ('rejected', 'cancelled') "
            "AND (registered_at IS NOT NULL OR closed_at IS NULL)",
        )
        == 0
    )
    on_time = float(
        scalar(
            engine,
            "SELECT avg((handled_at <= deadline)::int) FROM cases "
            "WHERE status = 'closed' AND self_handled IS NULL",
        )
    )
    assert 0.8 < on_time < 0.97


def test_case_deadlines_follow_the_working_calendar(engine: Engine) -> None:
    """No 2023 deadline on a statutory holiday or an ordinary weekend; some on 调休 days."""
    found = rows(
        engine,
        """
        WITH due AS (
            SELECT (deadline AT TIME ZONE 'Asia/Shanghai')::date AS day FROM cases
            WHERE deadline IS NOT NULL
        )
        SELECT coalesce(k.kind, CASE WHEN extract(isodow FROM due.day) > 5 THEN 'weekend'
                                     ELSE 'weekday' END), count(*)
        FROM due LEFT JOIN calendar_days AS k ON k.adcode IS NULL AND k.day = due.day
        GROUP BY 1
        """,
    )
    counts = dict(found)
    assert "holiday" not in counts and "weekend" not in counts, counts
    assert int(counts["workday"]) > 0 and int(counts["weekday"]) > 1000  # type: ignore[call-overload]
    on_holidays = scalar(
        engine,
        "SELECT count(*) FROM cases WHERE (deadline AT TIME ZONE 'Asia/Shanghai')::date "
        "IN ('2023-05-02', '2023-06-23', '2023-10-03', '2023-10-04')",
    )
    on_national_day_saturday = scalar(
        engine,
        "SELECT count(*) FROM cases "
        "WHERE (deadline AT TIME ZONE 'Asia/Shanghai')::date = '2023-10-07'",
    )
    assert on_holidays == 0 and on_national_day_saturday > 0  # type: ignore[operator]


def test_demo_is_deterministic() -> None:
    county = demo_city.qidong()
    gc.disable()  # as the loader builds: a million small rows, none cyclic (a third faster)
    try:
        first, second = demo_city.build(county, 11, 2023), demo_city.build(county, 11, 2023)
    finally:
        gc.enable()
    assert first.counts() == second.counts()
    for table in ("grids", "billboards", "components"):
        a = shapely.to_wkb([r["geom"] for r in first.rows[table]])
        b = shapely.to_wkb([r["geom"] for r in second.rows[table]])
        assert list(a) == list(b)
    assert [r["reported_at"] for r in first.rows["cases"][:1000]] == [
        r["reported_at"] for r in second.rows["cases"][:1000]
    ]
    assert [r["status"] for r in first.rows["cases"]] == [r["status"] for r in second.rows["cases"]]
    assert first.histories.events == second.histories.events


# --- the component census ---------------------------------------------------------------------

SUBCLASS = {c.minor_name: c.code for c in read_case_categories() if c.kind == "component"}


def test_component_census_has_real_density_and_valid_ids(engine: Engine) -> None:
    by_subclass = dict(rows(engine, "SELECT subclass_code, count(*) FROM components GROUP BY 1"))
    assert sum(by_subclass.values()) >= 20_000
    for name in ("路灯", "行道树", "果皮箱", "上水井盖", "污水井盖", "雨水井盖", "电力井盖"):
        assert by_subclass[SUBCLASS[name]] >= 500, name
    for name in ("公共厕所", "公交站亭", "交通标志牌", "路名牌", "消防栓", "通信交接箱"):
        assert by_subclass[SUBCLASS[name]] >= 50, name
    # the ID: county, the subclass's class and subclass digits, a serial from 000001 without gaps
    assert rows(
        engine,
        """
        SELECT count(*), count(DISTINCT component_code),
               count(*) FILTER (WHERE component_code !~ '^[0-9]{16}$'
                   OR left(component_code, 6) <> adcode
                   OR substr(component_code, 7, 4) <> substr(subclass_code, 2, 4)),
               count(*) FILTER (WHERE grid_code IS NULL OR street IS NULL)
        FROM components
    """,
    ) == [(sum(by_subclass.values()), sum(by_subclass.values()), 0, 0)]
    serials = rows(
        engine,
        """
        SELECT subclass_code, min(right(component_code, 6)::int), max(right(component_code, 6)::int),
               count(*)
        FROM components GROUP BY 1
    """,
    )
    assert all(low == 1 and high == n for _, low, high, n in serials)


def test_the_census_keeps_each_subclass_in_the_layer_of_its_geometry(engine: Engine) -> None:
    """Points in `components`, railings as lines, green spaces as areas, as the catalogue says;
    IDs of each subclass numbered from 000001 and their length, area and grid derived."""
    found = rows(
        engine,
        """
        SELECT l.layer, k.geometry, count(*), min(right(l.component_code, 6)::int),
               max(right(l.component_code, 6)::int), count(*) FILTER (WHERE l.grid_code IS NULL)
        FROM (SELECT 'point' AS layer, subclass_code, component_code, grid_code FROM components
              UNION ALL SELECT 'line', subclass_code, component_code, grid_code
              FROM component_lines
              UNION ALL SELECT 'area', subclass_code, component_code, grid_code
              FROM component_areas) AS l
        JOIN case_categories AS k ON k.code = l.subclass_code
        GROUP BY l.layer, k.geometry ORDER BY l.layer
    """,
    )
    assert [(layer, geometry) for layer, geometry, *_ in found] == [
        ("area", "area"),
        ("line", "line"),
        ("point", "point"),
    ]
    by_layer = {layer: (n, low, high, unplaced) for layer, _, n, low, high, unplaced in found}
    assert by_layer["line"] == (12, 1, 12, 0) and by_layer["area"] == (40, 1, 40, 0)
    measured = rows(
        engine,
        "SELECT min(length_m), max(length_m), (SELECT min(area_m2) FROM component_areas) "
        "FROM component_lines",
    )[0]
    assert 100 < measured[0] <= measured[1] <= 601 and 1_100 < measured[2] < 1_300


def test_component_units_are_active_units_of_the_county_directory(engine: Engine) -> None:
    assert (
        scalar(
            engine,
            """
        SELECT count(*) FROM components AS c, unnest(ARRAY[department, owner_unit, maintainer_unit]) AS u(name)
        WHERE u.name IS NULL OR NOT EXISTS (
            SELECT 1 FROM units AS d WHERE d.adcode = c.adcode AND d.name = u.name AND d.active)
    """,
        )
        == 0
    )
    named = rows(
        engine,
        """
        SELECT d.name, d.type, d.credit_code, d.contact_person, d.contact_phone FROM units AS d
        WHERE d.name IN (SELECT owner_unit FROM components UNION SELECT maintainer_unit FROM components
                         UNION SELECT department FROM components)
    """,
    )
    assert len(named) >= 20
    for name, kind, code, person, phone in named:
        assert check_credit_code(code) == code and code[2:8] == "320681", name
        assert kind in {"department", "enterprise"} and person and phone, name


def test_owners_match_their_subclass_and_share_some(engine: Engine) -> None:
    owners: dict[str, set[str]] = {}
    for code, owner in rows(engine, "SELECT DISTINCT subclass_code, owner_unit FROM components"):
        owners.setdefault(str(code), set()).add(str(owner))
    assert owners[SUBCLASS["上水井盖"]] == {"启东市自来水有限公司"}
    assert owners[SUBCLASS["污水井盖"]] == owners[SUBCLASS["雨水井盖"]] == {"启东市排水管理处"}
    assert owners[SUBCLASS["电力井盖"]] == {"国网江苏省电力有限公司启东市供电分公司"}
    assert owners[SUBCLASS["燃气井盖"]] == {"启东港华燃气有限公司"}
    assert owners[SUBCLASS["路灯"]] == {"启东市路灯管理所"}
    assert owners[SUBCLASS["通信井盖"]] == {name for name, _ in TELECOM}  # several owners
    ((maintainers, contracted),) = rows(
        engine,
        f"""
        SELECT count(DISTINCT maintainer_unit), count(*) FILTER (WHERE maintainer_unit <> owner_unit)
        FROM components WHERE subclass_code = '{SUBCLASS["路灯"]}'
    """,
    )
    assert maintainers == 2 and contracted > 0  # lights partly contracted out
    assert (
        scalar(
            engine,
            f"""
        SELECT count(*) FROM components WHERE subclass_code = '{SUBCLASS["上水井盖"]}'
        AND maintainer_unit <> owner_unit
    """,
        )
        == 0
    )


def test_components_lie_along_the_streets_of_the_towns(engine: Engine) -> None:
    population, epsg = demo_city.people(demo_city.qidong(), DemoSettings().seed)
    plan = street_plan(population)
    result = rows(engine, "SELECT ST_AsBinary(geom), name, subclass_code FROM components")
    points = zones.to_gk(shapely.from_wkb([bytes(r[0]) for r in result]), epsg)
    lines = plan.lines()
    near = shapely.STRtree(lines).query_nearest(points, max_distance=50.0)[0]
    corridor = shapely.intersection(
        shapely.union_all(shapely.buffer(lines, 50.0)), population.region
    )
    assert corridor.area / population.region.area < 0.03  # scattered evenly, few would be near
    assert len(np.unique(near)) / len(points) >= 0.95
    xy = shapely.get_coordinates(points)
    in_towns = sum(
        shapely.contains_xy(shapely.Point(t.x, t.y).buffer(t.radius_m), xy[:, 0], xy[:, 1]).sum()
        for t in population.towns
    )
    assert in_towns / len(points) >= 0.6  # most where people live, the rest on the main roads
    streets = {s.name for s in plan.streets}
    toilets = [str(name) for _, name, code in result if code == SUBCLASS["公共厕所"]]
    assert toilets and all(
        n.endswith("号公厕") and any(n.startswith(s) for s in streets) for n in toilets
    )


def test_picking_components_for_cases_prefers_damaged_and_lost_ones() -> None:
    population, epsg = demo_city.people(demo_city.qidong(), 7)
    rng = np.random.default_rng(7)
    ctx = DemoContext(rng, NameBook(rng), population, epsg, 2023)
    census = demo_components.components(ctx, SUBCLASS, "320681")
    by_code = {r["component_code"]: r for r in census}
    picked = demo_components.pick_for_cases(census, 800, rng)
    assert len(picked) == 800 and len({p.component_code for p in picked}) == 800
    statuses = Counter(by_code[p.component_code]["status"] for p in picked)
    census_share = sum(r["status"] in {"damaged", "lost"} for r in census) / len(census)
    assert census_share < 0.15 and (statuses["damaged"] + statuses["lost"]) / 800 > 0.5
    assert statuses["abandoned"] == 0
    for p in picked:
        row = by_code[p.component_code]
        assert (p.subclass_code, p.maintainer_unit) == (
            row["subclass_code"],
            row["maintainer_unit"],
        )
        assert p.point.equals(row["geom"])
    damaged = [r for r in census if r["status"] != "intact"][:30]
    assert len(demo_components.pick_for_cases(damaged, 100, rng)) == sum(
        r["status"] != "abandoned" for r in damaged
    )


# --- cases on components, and the routing table --------------------------------------------------

NEAR = f"""
    ST_Distance(ST_Transform(c.geom, {zones.zone_epsg(121.657)}),
                ST_Transform(k.geom, {zones.zone_epsg(121.657)}))
"""


def test_a_share_of_the_cases_is_raised_on_components(engine: Engine) -> None:
    on_components, total, kinds = rows(
        engine,
        """
        SELECT count(c.component_code), count(*),
               array_agg(DISTINCT k.kind) FILTER (WHERE c.component_code IS NOT NULL)
        FROM cases AS c JOIN case_categories AS k ON k.code = c.category_code
    """,
    )[0]
    assert 0.05 <= int(on_components) / int(total) <= 0.08
    assert kinds == ["component"]
    assert scalar(engine, "SELECT count(DISTINCT component_code) FROM cases") == on_components
    by_status = dict(
        rows(
            engine,
            """
        SELECT k.status, count(*) FROM cases AS c JOIN components AS k USING (component_code)
        GROUP BY 1
    """,
        )
    )
    assert "abandoned" not in by_status and by_status["lost"] + by_status["damaged"] > 1000


def test_component_cases_go_to_the_maintainer_at_the_component(engine: Engine) -> None:
    cases = rows(
        engine,
        f"""
        SELECT c.category_code = k.subclass_code, c.unit = k.maintainer_unit, c.routed_by,
               {NEAR} AS metres, c.problem, k.status, c.grid_code IS NOT NULL
        FROM cases AS c JOIN components AS k USING (component_code)
        WHERE k.valid_to IS NULL
    """,
    )
    assert len(cases) == scalar(engine, "SELECT count(component_code) FROM cases")
    for same_subclass, same_unit, routed_by, metres, problem, status, in_grid in cases:
        assert same_subclass and same_unit and routed_by == "component" and in_grid
        assert float(str(metres)) <= demo_cases.NEAR_M + 0.01
        assert problem == "lost" if status == "lost" else problem != "lost"
    problems = {problem for *_, problem, _, _ in cases}
    assert problems == {"damaged", "lost", "displaced", "soiled", "occupied", "other"}


def test_event_cases_go_by_the_demos_rules_else_to_their_grid(engine: Engine) -> None:
    stored = set(
        rows(engine, "SELECT subclass_code, area_code, area_level, unit FROM routing_rules")
    )
    built = demo_routing.rules(
        [{**g, "geom": shapely.from_wkb(g["wkb"])} for g in _grid_rows(engine)],
        demo_city.COUNTY_SEAT,
    )
    assert stored == {(r.subclass_code, r.area_code, r.area_level, r.unit) for r in built}
    assert len(stored) == len(demo_routing.COUNTY_RULES) + 1
    by_reason = dict(
        rows(
            engine,
            "SELECT routed_by, count(*) FROM cases WHERE component_code IS NULL GROUP BY 1",
        )
    )
    assert set(by_reason) == {"rule", "territory"}
    assert by_reason["rule"] == REPORT_CASES["E0107"] + int(
        str(
            scalar(
                engine,
                """
        SELECT count(*) FROM cases AS c JOIN grids AS g ON g.code = c.grid_code
        JOIN routing_rules AS r ON r.area_code = g.parent_code AND r.subclass_code = c.category_code
    """,
            )
        )
    )
    wrong = scalar(
        engine,
        """
        SELECT count(*) FROM cases AS c
        JOIN grids AS g ON g.code = c.grid_code
        LEFT JOIN routing_rules AS r ON r.subclass_code = c.category_code
             AND (r.area_code IS NULL OR r.area_code = g.parent_code)
        WHERE c.component_code IS NULL AND CASE WHEN r.id IS NULL
              THEN (c.routed_by, c.unit) IS DISTINCT FROM ('territory', g.responsible_unit)
              ELSE (c.routed_by, c.unit) IS DISTINCT FROM ('rule', r.unit) END
    """,
    )
    assert wrong == 0


def _grid_rows(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        return [
            dict(r._mapping)
            for r in conn.execute(
                text("SELECT code, level, parent_code, ST_AsBinary(geom) AS wkb FROM grids")
            )
        ]


def test_routing_a_sample_of_cases_again_gives_their_stored_unit(engine: Engine) -> None:
    with engine.connect() as conn:
        sample = conn.execute(
            text("""
            SELECT adcode, category_code, grid_code, component_code, unit, routed_by FROM (
                SELECT *, row_number() OVER (PARTITION BY routed_by, category_code ORDER BY id) AS n
                FROM cases) AS c
            WHERE n <= 8 ORDER BY id
        """)
        ).all()
        assert {s.routed_by for s in sample} == {"component", "rule", "territory"}
        for case in sample:
            again = routing.route(
                conn, case.adcode, case.category_code, case.grid_code, case.component_code
            )
            assert (again.unit, again.rule) == (case.unit, case.routed_by), case


def test_the_units_cases_are_routed_to_have_demo_handlers(engine: Engine) -> None:
    with engine.connect() as conn:  # never committed: rolled back on close
        logins = demo_accounts.ensure_accounts(conn)
        receiving = set(
            conn.execute(
                text("SELECT DISTINCT unit FROM cases WHERE routed_by IN ('component', 'rule')")
            ).scalars()
        )
        accounts = {a.username: a for a in users.list_accounts(conn)}
    maintainers = {x.username: x for x in logins if x.username.startswith("maint-")}
    assert len(receiving) >= 10
    assert {x.display_name for x in maintainers.values()} == receiving
    for username, login in maintainers.items():
        assert username == demo_accounts.maintainer_name(login.display_name)
        assert accounts[username].role.value == "handler"
        assert accounts[username].unit == login.display_name
    assert len({x.password for x in logins if x.role.value == "handler"}) == 1


@pytest.mark.parametrize("unit", [owners.DRAINAGE, owners.SANITATION, demo_routing.BUREAU])
def test_a_maintainer_reads_exactly_the_cases_of_its_unit(
    engine: Engine, database_url: str, unit: str
) -> None:
    username = f"maint-test-{owners.UNITS.index(next(u for u in owners.UNITS if u.name == unit))}"
    ensure_account(database_url, username, "handler", unit=unit, counties=("320681",))
    with engine.connect() as conn:
        expected = set(
            conn.execute(text("SELECT id FROM cases WHERE unit = :u"), {"u": unit}).scalars()
        )
    assert 0 < len(expected) < 10_000
    settings = DatabaseSettings(database_url=database_url)
    with TestClient(create_app(settings, auth_settings=TEST_AUTH)) as client:
        answer = client.get(
            "/collections/cases/items", params={"limit": 10_000}, headers=bearer(username)
        )
    assert answer.status_code == 200
    assert {f["id"] for f in answer.json()["features"]} == expected


# --- every workflow step, in a bureau's proportions ---------------------------------------------


def _share(engine: Engine, part: str, whole: str) -> float:
    return float(str(scalar(engine, f"SELECT ({part})::float / ({whole})")))


CASES_WITH = "SELECT count(DISTINCT case_id) FROM case_events WHERE action = '{}'"


def test_each_step_happens_in_a_bureaus_proportions(engine: Engine) -> None:
    """The shares layers/demo/lifecycle.py states, within bands."""
    everything = "SELECT count(*) FROM cases"
    desk = "SELECT count(*) FROM cases WHERE source IN ('public', 'hotline', 'video')"
    verified = "SELECT count(*) FROM case_events WHERE action = 'verify'"
    dispatched = CASES_WITH.format("dispatch")
    # 核实: every desk report verified (but the last hours' of the year), a few not found
    assert _share(engine, verified, desk) > 0.99
    not_found = (
        "SELECT count(*) FROM case_events WHERE action = 'verify' AND to_status = 'cancelled'"
    )
    assert 0.03 < _share(engine, not_found, verified) < 0.07
    late = """SELECT count(*) FROM case_events AS e JOIN cases AS c ON c.id = e.case_id
               WHERE e.action = 'verify' AND e.at > c.verify_deadline"""
    assert 0.05 < _share(engine, late, verified) < 0.2
    # 作废, 合并 and 不予立案 by the centre
    assert 0.01 < _share(engine, CASES_WITH.format("cancel"), everything) < 0.025
    assert 0.005 < _share(engine, CASES_WITH.format("merge"), everything) < 0.015
    assert 0.002 < _share(engine, CASES_WITH.format("reject"), everything) < 0.007
    # 自行处置: of the inspectors' own reports, closed with their photos before and after
    own = "SELECT count(*) FROM cases WHERE source = 'inspector'"
    assert 0.02 < _share(engine, CASES_WITH.format("self_handle"), own) < 0.04
    assert (
        rows(
            engine,
            """
        SELECT count(*) FILTER (WHERE c.status <> 'closed' OR c.handled_at <> c.closed_at
                                OR (SELECT count(*) FROM case_photos AS p WHERE p.case_id = c.id) <> 2),
               count(*)
        FROM cases AS c WHERE c.self_handled
    """,
        )[0][0]
        == 0
    )
    # 延期: asked on a few percent of the dispatched cases, most granted
    assert 0.02 < _share(engine, CASES_WITH.format("request_extension"), dispatched) < 0.06
    granted = CASES_WITH.format("approve_extension")
    decided = (
        "SELECT count(*) FROM case_events WHERE action IN ('approve_extension', 'reject_extension')"
    )
    assert 0.7 < _share(engine, granted, decided) < 0.9
    assert scalar(engine, "SELECT count(*) FROM cases WHERE extensions > 0") == scalar(
        engine, granted
    )
    # 返工 after failed checks (and unsatisfied callers)
    reworked = "SELECT count(DISTINCT case_id) FROM case_events WHERE to_status = 'rework'"
    assert 0.02 < _share(engine, reworked, dispatched) < 0.08
    # 督办: a share of the cases left unhandled past their deadline
    overdue = """SELECT count(*) FROM cases WHERE deadline < '2024-01-01'
                 AND (handled_at > deadline OR (handled_at IS NULL AND status <> 'parked'))"""
    assert 0.2 < _share(engine, CASES_WITH.format("supervise"), overdue) < 0.5
    assert (
        scalar(
            engine,
            """SELECT count(*) FROM cases WHERE supervisions > 0
           AND (supervise_deadline IS NULL OR deadline IS NULL OR supervise_deadline <= deadline)""",
        )
        == 0
    )
    # 回访: mostly satisfied, some unreachable, a few unsatisfied
    results = dict(
        rows(
            engine,
            "SELECT detail->>'result', count(*) FROM case_events WHERE action = 'callback' GROUP BY 1",
        )
    )
    total = sum(int(str(n)) for n in results.values())
    assert 0.84 < int(str(results["satisfied"])) / total < 0.92
    assert 0.05 < int(str(results["unreachable"])) / total < 0.11
    assert 0.02 < int(str(results["unsatisfied"])) / total < 0.06


def test_callbacks_only_on_hotline_and_public_cases_and_on_all_of_them(engine: Engine) -> None:
    by_source = dict(
        rows(
            engine,
            """
        SELECT c.source, count(*) FROM case_events AS e JOIN cases AS c ON c.id = e.case_id
        WHERE e.action = 'callback' GROUP BY 1
    """,
        )
    )
    assert set(by_source) == {"hotline", "public"}
    uncalled = scalar(
        engine,
        """
        SELECT count(*) FROM cases AS c WHERE c.source IN ('hotline', 'public')
        AND c.status = 'closed' AND c.callback_result IS NULL
    """,
    )
    assert uncalled == 0


def _roles(engine: Engine) -> dict[str, users.Account]:
    with engine.connect() as conn:  # never committed: rolled back on close
        demo_accounts.ensure_accounts(conn)
        return {a.username: a for a in users.list_accounts(conn)}


def _by_whom(
    action: object, actor: object, account: users.Account | None, grid_code: object, unit: object
) -> list[str]:
    """Wrong when the actor's role may not make the move, or is not the case's inspector or unit."""
    move = MOVES[str(action)]
    if account is None or account.role not in move.roles:
        return [f"{action} by {actor}"]
    if account.role is Role.INSPECTOR and f"{str(grid_code)[:12]}000" not in account.grids:
        return [f"{action} by {actor}, not the grid's inspector"]
    if account.role is Role.HANDLER and account.unit != unit:
        return [f"{action} by {actor} of {account.unit}"]
    return []


def _leads_to(action: object, now: str, detail: object) -> str:
    """The state a move leaves a case in, its outcome included (核实 not found, 回访 unsatisfied)."""
    move = MOVES[str(action)]
    outcome = detail if isinstance(detail, dict) else {}
    if action == "verify" and outcome.get("verified") is False:
        return "cancelled"
    if action == "callback" and outcome.get("result") == "unsatisfied":
        return "rework"
    return now if move.target == STAYS else move.target


def _replay(
    case: tuple[object, ...], events: list[tuple[object, ...]], accounts: dict[str, users.Account]
) -> list[str]:
    """What is wrong with one case's history, replayed by the moves the API makes."""
    _id, source, status, grid_code, unit, merged_into = case
    now = "unverified" if source in UNVERIFIED_SOURCES else "reported"
    wrong: list[str] = []
    last: object = None
    for at, action, before, after, actor, detail in events:
        if last is not None and at < last:  # type: ignore[operator]
            wrong.append(f"{action} at {at} before {last}")
        last = at
        if before != now:
            wrong.append(f"{action} from {before} while {now}")
        if action == "merged_from":
            wrong += [] if after == before else [f"merged_from changed {before} to {after}"]
            continue
        if now not in MOVES[str(action)].sources:
            wrong.append(f"{action} from {now}")
        wrong += _by_whom(action, actor, accounts.get(str(actor)), grid_code, unit)
        if action == "merge" and isinstance(detail, dict) and detail.get("into") != merged_into:
            wrong.append(f"merged into {detail.get('into')}, case says {merged_into}")
        if after != _leads_to(action, now, detail):
            wrong.append(f"{action} to {after}, expected {_leads_to(action, now, detail)}")
        now = str(after)
    if now != status:
        wrong.append(f"ends {now}, case is {status}")
    return wrong


def test_every_case_history_is_legal_by_the_workflows_moves(engine: Engine) -> None:
    """Replayed by `layers.cases.workflow.MOVES` (the API's table): each move from a state it
    starts from, by an account of its role (the grid's inspector, the unit's handler), to the
    state it leads to, in time order, ending in the case's state."""
    accounts = _roles(engine)
    with engine.connect() as conn:
        cases = conn.execute(
            text("SELECT id, source, status, grid_code, unit, merged_into FROM cases ORDER BY id")
        ).all()
        events: dict[int, list[tuple[object, ...]]] = {}
        for row in conn.execute(
            text("""
            SELECT case_id, at, action, from_status, to_status, actor, detail FROM case_events
            ORDER BY case_id, at, id
        """)
        ):
            events.setdefault(row[0], []).append(tuple(row[1:]))
    wrong = {}
    for case in cases:
        found = _replay(tuple(case), events.get(case.id, []), accounts)
        if found:
            wrong[case.id] = found
    assert len(wrong) == 0, list(wrong.items())[:10]
    actions = Counter(e[1] for history in events.values() for e in history)
    assert set(actions) == set(MOVES) - {"return", "resume"} | {"merged_from"}


def test_deadlines_of_every_step_fall_on_working_days(engine: Engine) -> None:
    """Deadlines, verify limits, moved deadlines and supervision deadlines on the calendar."""
    with engine.connect() as conn:
        calendar = workcalendar.load(conn, "320681")
        stored = conn.execute(
            text("""
            SELECT deadline, verify_deadline, supervise_deadline FROM cases
            WHERE deadline IS NOT NULL OR verify_deadline IS NOT NULL
        """)
        ).all()
        moved = conn.execute(
            text("SELECT detail FROM case_events WHERE action = 'approve_extension'")
        ).scalars()
        moved = list(moved)
    local = ZoneInfo("Asia/Shanghai")
    days = {t.astimezone(local).date() for row in stored for t in row if t is not None}
    assert {d for d in days if not calendar.is_working_day(d)} == set()
    assert len(moved) > 100
    for detail in moved:
        before, after = (datetime.fromisoformat(detail[k]) for k in ("deadline_before", "deadline"))
        assert after == calendar.add_days(before, detail["days"]), detail
        assert calendar.is_working_day(after.date()) and after.time() == time(17, 30)


def test_the_evaluation_of_a_demo_month_is_not_all_a(engine: Engine) -> None:
    """Departments spread over at least three grades; regions and posts are not all alike."""
    june = (date(2023, 6, 1), date(2023, 6, 30))
    with engine.connect() as conn:
        found = {
            kind: evaluation.rows(conn, evaluation.EvaluationQuery(kind, *june))
            for kind in evaluation.OBJECTS
        }
    departments = Counter(r["grade"] for r in found["department"])
    assert len(departments) >= 3 and departments["A"] < len(found["department"]), departments
    busy = [r["rework_rate"] for r in found["department"] if r["due"] >= 100]
    assert all(rate < 0.3 for rate in busy) and sum(rate > 0 for rate in busy) > 0.8 * len(busy)
    assert sum(r["supervised"] for r in found["department"]) > 50
    assert sum(r["extended"] for r in found["department"]) > 50
    regions = found["region"]
    assert len(regions) == 7
    assert len({r["score"] for r in regions}) == 7
    assert all(0.85 < r["registration_rate"] < 0.99 for r in regions)
    assert all(r["on_time_closed_rate"] < r["closed_rate"] for r in regions)
    inspectors = [r for r in found["post"] if r["post"] == "inspector"]
    assert len(inspectors) >= 40
    assert len({r["on_time_verify_rate"] for r in inspectors}) > 20
    assert sum(r["reports"] for r in inspectors) > 5000
    assert all(r["valid_report_rate"] < 1 for r in inspectors if r["reports"] >= 200)
    (dispatcher,) = [r for r in found["post"] if r["post"] == "dispatcher"]
    assert 0.9 < dispatcher["on_time_dispatch_rate"] < 1


def test_the_events_keep_their_foreign_key_after_the_bulk_load(engine: Engine) -> None:
    """The loader sets the key aside while it copies the events and adds it back, checked."""
    assert rows(
        engine,
        """
        SELECT pg_get_constraintdef(oid), convalidated FROM pg_constraint
        WHERE conrelid = 'case_events'::regclass AND contype = 'f'
    """,
    ) == [
        (
            "FOREIGN KEY (adcode, case_id) REFERENCES cases(adcode, id) "
            "ON UPDATE CASCADE ON DELETE CASCADE",
            True,
        )
    ]


def test_a_forced_reload_leaves_no_records_of_the_rows_it_replaced(
    scratch_url: str, scratch_owner: Engine
) -> None:
    """Ids start again from 1 on a reload: the audit log keeps only the new reports' records.
    The first load is the API's role's (an external database given one URL): it owns no table,
    so it loads with every key checked row by row."""
    small = demo_city.Scale(cases=0.01, fume_months=1)
    api_role = db.make_engine(scratch_url)
    try:
        assert demo_city.load(api_role, 5, 2023, scale=small) is not None
    finally:
        api_role.dispose()
    assert demo_city.load(scratch_owner, 6, 2023, force=True, scale=small) is not None
    ((reports, audited, matching),) = rows(
        scratch_owner,
        """
        SELECT (SELECT count(*) FROM cases WHERE source = 'inspector'),
               (SELECT count(*) FROM audit_log WHERE layer = 'cases'),
               (SELECT count(*) FROM audit_log AS a JOIN cases AS c ON c.id = a.feature_id
                WHERE a.layer = 'cases' AND c.source = 'inspector' AND a.at = c.reported_at)
    """,
    )
    assert reports == audited == matching and int(str(reports)) > 500
