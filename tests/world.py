"""The shared world: two neighbouring communities of the test street, "west" patrolled by the
inspector and "east" not, each holding one row of every layer, and one account per role."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import mapbox_vector_tile
import shapely
from fastapi.testclient import TestClient
from shapely.geometry import box, mapping
from sqlalchemy import Engine, text

from api.app import create_app
from api.settings import DatabaseSettings
from layers.cases import units
from layers.cases.codes import seed_case_categories
from layers.registry import LAYERS
from layers.store import db
from tests.accounts import TEST_AUTH, bearer, ensure_account
from tests.databases import PgServer, fresh_database
from tests.street import COMMUNITIES, SIDE, STREET, family_box, insert_grid, lonlat

WEST, EAST = COMMUNITIES[1], COMMUNITIES[2]
EAST_UNIT = "东片城管中队"
SYSTEMS = (  # the reports' other systems: plain rows read by the same scope
    "residential_compounds",
    "garbage_points",
    "stations",
    "cameras",
    "bike_parking_points",
    "bike_parking_lines",
    "merchants",
)
SPATIAL = ("illegal_buildings", "billboards", "dust_sites", "parking_lots", "cases", *SYSTEMS)
CHILDREN = ("dust_inspections", "work_orders")


def middle(community: int) -> tuple[float, float]:
    """Centre (metres) of a community of the test street."""
    x0, y0 = family_box(community - 1, 0)
    return x0 + 2 * SIDE, y0 + 1.5 * SIDE


def point(community: int, dx: float = 0.0) -> dict[str, Any]:
    x, y = middle(community)
    return mapping(lonlat(shapely.Point(x + dx, y)))


def square(community: int, dx: float = 0.0) -> dict[str, Any]:
    x, y = middle(community)
    return mapping(lonlat(shapely.MultiPolygon([box(x + dx - 20, y - 20, x + dx + 20, y + 20)])))


PROPERTIES = {
    "illegal_buildings": {"category": "new", "found_by": "patrol", "status": "pending"},
    "billboards": {"type": "pole", "face_area_m2": 12.0},
    "dust_sites": {"name": "测试工地", "site_type": "construction", "status": "active"},
    "parking_lots": {
        "name": "测试停车场",
        "category": "public",
        "spaces": 40,
        "registration": "registered",
    },
    "cases": {
        "category_code": "E0101",
        "source": "inspector",
        "status": "reported",
        "reported_at": "2026-11-20T09:30:00+08:00",
    },
    "residential_compounds": {"name": "测试小区", "households": 300},
    "garbage_points": {"name": "测试投放点", "kind": "sorting_point", "build_status": "built"},
    "stations": {"name": "测试城管驿站"},
    "cameras": {"source": "police", "direction_deg": 90.0, "view_angle_deg": 60.0},
    "bike_parking_points": {"capacity": 20},
    "merchants": {"name": "测试商户", "contact": "甄测试"},
    "bike_parking_lines": {"road": "测试路"},
}


def segment(community: int, dx: float = 0.0) -> dict[str, Any]:
    x, y = middle(community)
    return mapping(lonlat(shapely.LineString([(x + dx - 20, y), (x + dx + 20, y)])))


def per_community(layer: str, community: int) -> dict[str, Any]:
    """Values no two rows of a county share: a camera's device ID."""
    return {"device_id": f"320681000013205{community:05d}"} if layer == "cameras" else {}


GEOMETRY = {
    "illegal_buildings": square,
    "parking_lots": square,
    "residential_compounds": square,
    "bike_parking_lines": segment,
}


@dataclass(frozen=True)
class World:
    """The database, and the ids of each layer's row in the west and in the east."""

    url: str
    engine: Engine
    west: dict[str, int]
    east: dict[str, int]


def _create(client: TestClient, layer: str, feature: dict[str, Any]) -> int:
    answer = client.post(f"/collections/{layer}/items", json=feature, headers=bearer("admin"))
    assert answer.status_code == 201, answer.text
    return int(answer.headers["location"].rsplit("/", 1)[1])


def _feature(layer: str, community: int) -> dict[str, Any]:
    geometry = GEOMETRY.get(layer, point)(community)
    properties = PROPERTIES[layer] | per_community(layer, community)
    return {"type": "Feature", "geometry": geometry, "properties": properties}


def make_world(pg_server: PgServer, suffix: str) -> Iterator[World]:
    """A fresh database holding the two communities, their rows and one account per role."""
    databases = fresh_database(pg_server, suffix)
    url = next(databases)
    engine = db.make_engine(url)
    with engine.begin() as conn:
        seed_case_categories(conn)
        x0, y0 = family_box(0, 0)
        street = box(x0, y0, x0 + 8 * SIDE, y0 + 3 * SIDE)
        insert_grid(conn, "street", STREET, None, street, "2020-01-01")
        for n in (1, 2):
            cx, cy = family_box(n - 1, 0)
            code = COMMUNITIES[n]
            insert_grid(
                conn,
                "community",
                code,
                STREET,
                box(cx, cy, cx + 4 * SIDE, cy + 3 * SIDE),
                "2020-01-01",
            )
            for k in range(2):  # two sections, west and east halves
                half = box(cx + k * 2 * SIDE, cy, cx + (k + 1) * 2 * SIDE, cy + 3 * SIDE)
                insert_grid(conn, "section", f"{code[:12]}{k + 1:03d}", code, half, "2020-01-01")
    for role in ("admin", "planner", "leader"):
        ensure_account(url, role, role)
    ensure_account(url, "inspector", "inspector", (WEST,))
    ensure_account(url, "dispatcher", "dispatcher")
    with engine.begin() as conn:  # a unit of its own, not a grid's: declared, as an admin would
        units.add(conn, EAST_UNIT, STREET[:6], "tests")
    ensure_account(url, "handler", "handler", unit=EAST_UNIT)
    app = create_app(DatabaseSettings(database_url=url), auth_settings=TEST_AUTH)
    west: dict[str, int] = {}
    east: dict[str, int] = {}
    with TestClient(app) as client:
        for ids, n in ((west, 1), (east, 2)):
            for layer in SPATIAL:
                ids[layer] = _create(client, layer, _feature(layer, n))
            site = ids["dust_sites"]
            ids["dust_inspections"] = _create(
                client,
                "dust_inspections",
                {
                    "type": "Feature",
                    "geometry": None,
                    "properties": {
                        "dust_site_id": site,
                        "inspected_on": "2026-11-20",
                        "inspector": "张三",
                        "problems_found": 1,
                    },
                },
            )
            ids["work_orders"] = _create(
                client,
                "work_orders",
                {
                    "type": "Feature",
                    "geometry": None,
                    "properties": {
                        "dust_site_id": site,
                        "issued_on": "2026-11-20",
                        "deadline": "2026-11-27",
                        "result": "open",
                    },
                },
            )
    yield World(url, engine, west, east)
    engine.dispose()
    next(databases, None)


def as_role(role: str | None) -> dict[str, str]:
    return bearer(role) if role else {}


def snapshot(engine: Engine) -> dict[str, Any]:
    """Every row of every layer: what a refused write must leave unchanged."""
    with engine.connect() as conn:
        return {
            layer: conn.execute(
                text(
                    f"SELECT md5(coalesce(string_agg(to_jsonb(t)::text, '' ORDER BY id), '')) FROM \"{layer}\" AS t"
                )
            ).scalar_one()
            for layer in LAYERS
        }


def ids_in(body: dict[str, Any]) -> set[int]:
    return {int(f["id"]) for f in body["features"]}


# --- reading ------------------------------------------------------------------------------


def tile_index(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def tile_ids(client: TestClient, layer: str, z: int, x: int, y: int, role: str) -> set[int]:
    answer = client.get(
        f"/collections/{layer}/tiles/WebMercatorQuad/{z}/{x}/{y}", headers=as_role(role)
    )
    assert answer.status_code == 200
    assert answer.headers["cache-control"].startswith("private")
    decoded = mapbox_vector_tile.decode(answer.content)
    return {int(f["id"]) for f in decoded.get(layer, {}).get("features", [])}
