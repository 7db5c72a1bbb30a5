"""A second county beside the demo one: rows of every layer written straight into a test database.

三明市三元区 (350404) lies in Gauss-Krüger zone EPSG:4548, the demo county (320681) in EPSG:4549.
`fill_county` stores (or reuses) a county row and puts into it one street, two communities, four
sections and a few rows of every layer, each with its county's adcode, placed by metres in the
county's own zone. The rows are few and written with plain SQL, so a module sets two counties up in
well under a second.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import LineString, MultiPolygon, Point, box
from sqlalchemy import Connection, Engine, text

from layers.places import counties
from layers.places.boundary import County
from tests.accounts import ROLES, ensure_account
from tests.world import SPATIAL

SANYUAN = "350404"
SANYUAN_NAME = "三元区"
SANYUAN_CENTRE = (117.61, 26.23)  # lon, lat (CGCS2000)
SANYUAN_ZONE = 4548
DEMO = "320681"
DEMO_CENTRE = (121.657, 31.808)  # the demo county's seat
DEMO_ZONE = 4549
PNG = (  # the smallest PNG: one transparent pixel
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f"
    b"\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00"
    b"\x00IEND\xaeB`\x82"
)
# (category, status, reported, registered, dispatched, closed, deadline): local times, 2026
CASES = (
    ("E0101", "closed", "03-02 09:00", "03-02 09:30", "03-02 10:00", "03-02 12:00", "03-02 14:00"),
    ("E0102", "closed", "03-03 09:00", "03-03 09:20", "03-03 09:40", "03-04 16:00", "03-03 13:40"),
    ("E0201", "dispatched", "03-05 10:00", "03-05 10:10", "03-05 10:30", None, "03-05 12:30"),
    ("E0101", "rejected", "03-06 11:00", None, None, None, None),
)


@dataclass
class CountyRows:
    """What `fill_county` wrote: the county, its grid codes and the ids of its rows per layer."""

    adcode: str
    epsg: int
    street: str
    communities: tuple[str, str]
    sections: tuple[str, ...]
    ids: dict[str, list[int]] = field(default_factory=dict)
    photo: int = 0

    def lonlat(self, x: float, y: float) -> tuple[float, float]:
        """A point given in metres from the county's centre, as lon/lat."""
        return _to_lonlat(self.epsg, *_from_centre(self, x, y))


def _to_lonlat(epsg: int, x: float, y: float) -> tuple[float, float]:
    lon, lat = Transformer.from_crs(epsg, 4490, always_xy=True).transform(x, y)
    return float(lon), float(lat)


_CENTRES: dict[str, tuple[float, float]] = {}


def _from_centre(rows: CountyRows, x: float, y: float) -> tuple[float, float]:
    cx, cy = _CENTRES[rows.adcode]
    return cx + x, cy + y


def _geo(epsg: int, geom: shapely.Geometry) -> shapely.Geometry:
    to = Transformer.from_crs(epsg, 4490, always_xy=True)
    return shapely.transform(geom, lambda xy: np.column_stack(to.transform(xy[:, 0], xy[:, 1])))


def sanyuan(epsg: int = SANYUAN_ZONE) -> County:
    """三元区 with a generated boundary: 8 km × 6 km around its centre, in CGCS2000."""
    cx, cy = Transformer.from_crs(4490, epsg, always_xy=True).transform(*SANYUAN_CENTRE)
    outline = box(cx - 4000, cy - 3000, cx + 4000, cy + 3000)
    return County(SANYUAN, SANYUAN_NAME, MultiPolygon([_geo(epsg, outline)]))


def _insert(conn: Connection, table: str, values: dict[str, Any], wkb: bytes | None = None) -> int:
    names = [*values, *(["geom"] if wkb is not None else [])]
    holders = [f":{n}" for n in values]
    if wkb is not None:
        holders.append("ST_GeomFromWKB(:wkb, 4490)")
    sql = f'INSERT INTO "{table}" ({", ".join(names)}) VALUES ({", ".join(holders)}) RETURNING id'
    return int(conn.execute(text(sql), {**values, "wkb": wkb}).scalar_one())


def _wkb(rows: CountyRows, geom: shapely.Geometry) -> bytes:
    return shapely.to_wkb(_geo(rows.epsg, geom))


def _point(rows: CountyRows, x: float, y: float) -> bytes:
    return _wkb(rows, Point(*_from_centre(rows, x, y)))


def _square(rows: CountyRows, x: float, y: float, half: float = 25.0) -> bytes:
    cx, cy = _from_centre(rows, x, y)
    return _wkb(rows, MultiPolygon([box(cx - half, cy - half, cx + half, cy + half)]))


def _grids(conn: Connection, rows: CountyRows, unit: str) -> None:
    """One street 3 km × 2 km around the centre, two communities (west, east), four sections."""
    cx, cy = _CENTRES[rows.adcode]
    shapes: list[tuple[str, str, str | None, shapely.Geometry]] = [
        ("street", rows.street, None, box(cx - 1500, cy - 1000, cx + 1500, cy + 1000))
    ]
    for n, community in enumerate(rows.communities):
        x0 = cx - 1500 + n * 1500
        shapes.append(
            ("community", community, rows.street, box(x0, cy - 1000, x0 + 1500, cy + 1000))
        )
        for k in range(2):
            section = rows.sections[2 * n + k]
            part = box(x0 + k * 750, cy - 1000, x0 + (k + 1) * 750, cy + 1000)
            shapes.append(("section", section, community, part))
    for level, code, parent, geom in shapes:
        conn.execute(
            text("""
            INSERT INTO grids (adcode, geom, level, code, name, parent_code, responsible_unit,
                               responsible_person, valid_from)
            VALUES (:adcode, ST_Multi(ST_GeomFromWKB(:wkb, 4490)), :level, :code, :name, :parent,
                    :unit, '测试责任人', '2020-01-01')
        """),
            {
                "adcode": rows.adcode,
                "wkb": _wkb(rows, geom),
                "level": level,
                "code": code,
                "name": f"{rows.adcode}测试{code[-6:]}",
                "parent": parent,
                "unit": unit,
            },
        )


_SYSTEM_ROWS: dict[str, dict[str, Any]] = {  # one row of each of the reports' other systems
    "residential_compounds": {"name": "测试小区", "households": 300},
    "garbage_points": {"name": "测试投放点", "kind": "sorting_room", "build_status": "planned"},
    "stations": {"name": "测试城管驿站", "opening_hours": "08:00-20:00"},
    "cameras": {"device_id": "32068100001320000001", "source": "police"},
    "bike_parking_points": {"capacity": 20},
    "bike_parking_lines": {"road": "测试路"},
    "merchants": {"name": "测试商户", "contact_phone": "13900000000"},
}


def _layers(conn: Connection, rows: CountyRows) -> None:
    """One row of every spatial layer in the west section, a dust site with its children."""
    a = {"adcode": rows.adcode}
    ids = rows.ids
    ids["billboards"] = [
        _insert(
            conn,
            "billboards",
            {**a, "type": "pole", "face_area_m2": 12.0},
            _point(rows, -1100, 300),
        )
    ]
    ids["dust_sites"] = [
        _insert(
            conn,
            "dust_sites",
            {**a, "name": "测试工地", "site_type": "construction", "status": "active"},
            _point(rows, -1100, -300),
        )
    ]
    ids["illegal_buildings"] = [
        _insert(
            conn,
            "illegal_buildings",
            {**a, "category": "new", "found_by": "patrol", "status": "pending"},
            _square(rows, -700, 300),
        )
    ]
    ids["parking_lots"] = [
        _insert(
            conn,
            "parking_lots",
            {**a, "name": "测试停车场", "category": "public", "spaces": 40}
            | {"registration": "registered"},
            _square(rows, -700, -300),
        )
    ]
    for n, (layer, values) in enumerate(_SYSTEM_ROWS.items()):
        if conn.execute(text("SELECT to_regclass(:t)"), {"t": layer}).scalar() is None:
            continue  # a database at a revision before these layers
        x, y = -1300 + 120 * n, 600
        shape = {"residential_compounds": _square(rows, x, y, 20.0)}.get(layer, _point(rows, x, y))
        if layer == "bike_parking_lines":
            shape = _wkb(
                rows, LineString([_from_centre(rows, x - 20, y), _from_centre(rows, x + 20, y)])
            )
        ids[layer] = [_insert(conn, layer, {**a, **values}, shape)]
    site = ids["dust_sites"][0]
    ids["dust_inspections"] = [
        _insert(
            conn,
            "dust_inspections",
            {**a, "dust_site_id": site, "inspected_on": "2026-03-02", "inspector": "张三"}
            | {"problems_found": 1},
        )
    ]
    ids["work_orders"] = [
        _insert(
            conn,
            "work_orders",
            {**a, "dust_site_id": site, "issued_on": "2026-03-02", "deadline": "2026-03-09"}
            | {"result": "open"},
        )
    ]


def _at(day_time: str | None) -> str | None:
    return f"2026-{day_time}:00+08:00" if day_time else None


def _cases(conn: Connection, rows: CountyRows, unit: str) -> None:
    ids: list[int] = []
    for n, (code, status, reported, registered, dispatched, closed, deadline) in enumerate(CASES):
        section = rows.sections[n % len(rows.sections)]
        x = -1125 + 750 * (n % 4)  # the middle of section n
        ids.append(
            _insert(
                conn,
                "cases",
                {
                    "adcode": rows.adcode,
                    "category_code": code,
                    "source": "inspector",
                    "status": status,
                    "reported_at": _at(reported),
                    "registered_at": _at(registered),
                    "dispatched_at": _at(dispatched),
                    "closed_at": _at(closed),
                    "deadline": _at(deadline),
                    "grid_code": section,
                    "unit": unit if dispatched else None,
                },
                _point(rows, x, 500),
            )
        )
    rows.ids["cases"] = ids
    # the migration tests fill counties at older revisions, before a photo carried its county
    county = conn.execute(
        text(
            "SELECT count(*) FROM information_schema.columns "
            "WHERE table_name = 'case_photos' AND column_name = 'adcode'"
        )
    ).scalar_one()
    columns, values = ("adcode, ", ":adcode, ") if county else ("", "")
    rows.photo = int(
        conn.execute(
            text(f"""
            INSERT INTO case_photos ({columns}case_id, content_type, data, size_bytes, sha256,
                                     uploaded_by)
            VALUES ({values}:case, 'image/png', :data, :size, :sha, 'tests') RETURNING id
        """),
            {
                "adcode": rows.adcode,
                "case": ids[0],
                "data": PNG,
                "size": len(PNG),
                "sha": hashlib.sha256(PNG).hexdigest(),
            },
        ).scalar_one()
    )


def fill_county(
    conn: Connection,
    adcode: str,
    centre: tuple[float, float],
    epsg: int,
    unit: str,
    county: County | None = None,
) -> CountyRows:
    """Store `county` (unless None: then its row must exist) and write its grids and rows around
    `centre` (lon, lat): codes `{adcode}001000000` (street), `…001001000`/`…001002000`
    (communities) and their sections `…001`/`…002`."""
    if county is not None:
        counties.add(conn, county, Point(*centre))
    _CENTRES[adcode] = Transformer.from_crs(4490, epsg, always_xy=True).transform(*centre)
    street = f"{adcode}001000000"
    communities = (f"{adcode}001001000", f"{adcode}001002000")
    sections = tuple(f"{c[:12]}{k:03d}" for c in communities for k in (1, 2))
    rows = CountyRows(adcode, epsg, street, communities, sections)
    _grids(conn, rows, unit)
    _layers(conn, rows)
    _cases(conn, rows, unit)
    return rows


def two_counties(conn: Connection) -> tuple[CountyRows, CountyRows]:
    """The demo county (already stored) and 三元区, each with its rows: (demo, 三元区)."""
    demo = fill_county(conn, DEMO, DEMO_CENTRE, DEMO_ZONE, "启东测试中队")
    second = fill_county(
        conn, SANYUAN, SANYUAN_CENTRE, SANYUAN_ZONE, "三元区测试中队", county=sanyuan()
    )
    return demo, second


@dataclass(frozen=True)
class Account:
    """What limits an account: its role, counties (None: every one), patrol grids and unit."""

    role: str
    counties: tuple[str, ...] | None
    grids: tuple[str, ...] = ()
    unit: str | None = None


def readable(conn: Connection, account: Account, layer: str, condition: str = "TRUE") -> set[int]:
    """The ids of `layer` the account may read and that meet `condition`, by SQL of its own."""
    where = ["(CAST(:counties AS text[]) IS NULL OR t.adcode = ANY(:counties))", condition]
    if account.role == "inspector":
        geom = (
            "t.geom"
            if layer in SPATIAL
            else "(SELECT p.geom FROM dust_sites AS p WHERE p.id = t.dust_site_id)"
        )
        where.append(
            "EXISTS (SELECT 1 FROM grids AS g WHERE g.code = ANY(:grids) AND g.valid_to IS NULL "
            f"AND ST_DWithin(g.geom::geography, {geom}::geography, 50))"
        )
    if account.role == "handler" and layer == "cases":
        where.append("t.unit = :unit")
    found = conn.execute(
        text(f'SELECT t.id FROM "{layer}" AS t WHERE {" AND ".join(where)}'),
        {
            "counties": list(account.counties) if account.counties else None,
            "grids": list(account.grids),
            "unit": account.unit,
        },
    )
    return {int(r[0]) for r in found}


# Accounts of every role over one county, the other, or both ("city"); inspectors patrol the first
# community of each of their counties, handlers answer for the grid unit of the last one.
SCOPES = {"a": (DEMO,), "b": (SANYUAN,), "city": (DEMO, SANYUAN)}
SCOPED_NAMES = ["admin", *(f"{r}-{s}" for r in ROLES for s in SCOPES)]
GRID_UNITS = {DEMO: "启东测试中队", SANYUAN: "三元区测试中队"}


def scoped_account(name: str, rows: dict[str, CountyRows]) -> Account:
    """What limits the account `name` of SCOPED_NAMES ("admin": nothing)."""
    if name == "admin":
        return Account("admin", None)
    role, scope = name.rsplit("-", 1)
    adcodes = SCOPES[scope]
    grids = tuple(rows[a].communities[0] for a in adcodes) if role == "inspector" else ()
    return Account(role, adcodes, grids, GRID_UNITS[adcodes[-1]] if role == "handler" else None)


def ensure_scoped_accounts(engine: Engine, rows: dict[str, CountyRows]) -> None:
    """Create every account of SCOPED_NAMES for the two counties' `rows`."""
    for name in SCOPED_NAMES:
        a = scoped_account(name, rows)
        ensure_account(engine, name, a.role, a.grids, a.unit, a.counties)
