"""Counties as data: the `counties` rows every stored row's adcode refers to."""

from __future__ import annotations

from dataclasses import dataclass, replace

import shapely
from shapely.geometry import MultiPolygon, Point
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, text

from gis.zones import geometry_zone
from layers.engine.access import Viewer, county_condition, outside_counties
from layers.errors import AccountError, FeatureNotFound, InvalidFeature
from layers.places.boundary import County
from layers.registry import GRIDS, LAYERS
from layers.store.versions import is_current

ZONE_SQL = "citygrid_gk_srid"


@dataclass(frozen=True)
class CountyRecord:
    """A stored county as pages and checks read it (the boundary stays in the database)."""

    adcode: str
    name: str
    gk_srid: int
    centre: tuple[float, float]  # lon, lat in CGCS2000
    bounds: tuple[float, float, float, float]
    time_zone: str


_SELECT = """
    SELECT adcode, name, gk_srid, ST_X(centre) AS lon, ST_Y(centre) AS lat,
           ST_XMin(boundary) AS minx, ST_YMin(boundary) AS miny,
           ST_XMax(boundary) AS maxx, ST_YMax(boundary) AS maxy, time_zone
    FROM counties
"""


def _record(row: object) -> CountyRecord:
    r = row._mapping  # type: ignore[attr-defined]
    return CountyRecord(
        r["adcode"],
        r["name"],
        int(r["gk_srid"]),
        (float(r["lon"]), float(r["lat"])),
        (float(r["minx"]), float(r["miny"]), float(r["maxx"]), float(r["maxy"])),
        r["time_zone"],
    )


def unknown(adcode: str) -> FeatureNotFound:
    """The error of a county code no row describes."""
    return FeatureNotFound(
        f"There is no county {adcode}: add it first (citygrid county add {adcode}).",
        f"不存在县级行政区 {adcode}：请先添加（citygrid county add {adcode}）。",
        code="unknown_county",
    )


def find(conn: Connection, adcode: str) -> CountyRecord | None:
    """The county with this code, if stored."""
    row = conn.execute(text(f"{_SELECT} WHERE adcode = :a"), {"a": adcode}).first()
    return _record(row) if row else None


def get(conn: Connection, adcode: str) -> CountyRecord:
    """The county with this code, or a clear error."""
    found = find(conn, adcode)
    if found is None:
        raise unknown(adcode)
    return found


def all_counties(conn: Connection, adcodes: tuple[str, ...] | None = None) -> list[CountyRecord]:
    """Every stored county (or those of `adcodes`), by code."""
    rows = conn.execute(
        text(
            f"{_SELECT} WHERE CAST(:codes AS text[]) IS NULL OR adcode = ANY(:codes) ORDER BY adcode"
        ),
        {"codes": list(adcodes) if adcodes is not None else None},
    ).all()
    return [_record(r) for r in rows]


def require_known(conn: Connection, adcodes: list[str]) -> list[str]:
    """The codes, each of a stored county, or an error naming those that are not."""
    stored = {c.adcode for c in all_counties(conn, tuple(adcodes))}
    missing = sorted(set(adcodes) - stored)
    if missing:
        raise AccountError(
            f"No county has the code(s) {', '.join(missing)}.",
            f"不存在县级行政区：{'、'.join(missing)}。",
            code="unknown_county",
        )
    return sorted(set(adcodes))


def _centre(boundary: MultiPolygon, centre: Point | None) -> Point:
    return centre if centre is not None else boundary.representative_point()


def add(conn: Connection, county: County, centre: Point | None = None) -> CountyRecord:
    """Store a county (its zone from its boundary, its map centre given or inside it)."""
    zone = int(geometry_zone([county.boundary])[0])
    conn.execute(
        text("""
        INSERT INTO counties (adcode, name, boundary, gk_srid, centre)
        VALUES (:a, :n, ST_GeomFromWKB(:b, 4490), :z, ST_GeomFromWKB(:c, 4490))
    """),
        {
            "a": county.adcode,
            "n": county.name,
            "b": shapely.to_wkb(county.boundary),
            "z": zone,
            "c": shapely.to_wkb(_centre(county.boundary, centre)),
        },
    )
    return get(conn, county.adcode)


def set_boundary(
    conn: Connection, adcode: str, boundary: MultiPolygon, centre: Point | None = None
) -> CountyRecord:
    """Replace a county's official boundary (and with it its zone and, unless given, centre)."""
    get(conn, adcode)
    conn.execute(
        text("""
        UPDATE counties SET boundary = ST_GeomFromWKB(:b, 4490), gk_srid = :z,
                            centre = ST_GeomFromWKB(:c, 4490)
        WHERE adcode = :a
    """),
        {
            "a": adcode,
            "b": shapely.to_wkb(boundary),
            "z": int(geometry_zone([boundary])[0]),
            "c": shapely.to_wkb(_centre(boundary, centre)),
        },
    )
    return get(conn, adcode)


def held(conn: Connection, viewer: Viewer) -> list[CountyRecord]:
    """The counties the viewer reads (every stored one for the deployment's admin), by code."""
    return all_counties(conn, viewer.counties)


def narrow(conn: Connection, viewer: Viewer, requested: tuple[str, ...]) -> Viewer:
    """The viewer limited to the requested counties: each must be stored (else 404) and held by
    the viewer (else 403). Nothing requested leaves the viewer as it is."""
    if not requested:
        return viewer
    wanted = tuple(sorted(set(requested)))
    for adcode in wanted:
        get(conn, adcode)
    if viewer.counties is not None and not set(wanted) <= set(viewer.counties):
        raise outside_counties()
    return replace(viewer, counties=wanted)


def parse_codes(raw: str | None) -> tuple[str, ...]:
    """County codes from a comma-separated parameter (the pattern is checked by the route)."""
    return tuple(c.strip() for c in (raw or "").split(",") if c.strip())


def outline(conn: Connection, viewer: Viewer | None = None) -> str:
    """The official boundaries of the viewer's counties, as a GeoJSON FeatureCollection."""
    condition, bound = county_condition(viewer, "k.adcode")
    return str(
        conn.execute(
            text(f"""
            SELECT json_build_object(
                'type', 'FeatureCollection',
                'features', coalesce(json_agg(json_build_object(
                    'type', 'Feature', 'id', k.adcode,
                    'geometry', ST_AsGeoJSON(k.boundary, 7, 0)::json,
                    'properties', json_build_object('adcode', k.adcode, 'name', k.name)
                ) ORDER BY k.adcode), '[]'::json)
            )::text
            FROM counties AS k WHERE {condition}
        """),
            dict(bound),
        ).scalar_one()
    )


def each(conn: Connection, viewer: Viewer) -> list[tuple[CountyRecord, Viewer]]:
    """Each county the viewer reads, with the viewer limited to it."""
    return [(c, replace(viewer, counties=(c.adcode,))) for c in held(conn, viewer)]


def exists_already(adcode: str) -> InvalidFeature:
    """The error of adding a county that is stored."""
    return InvalidFeature(
        f"The county {adcode} exists already: use `citygrid county set-boundary` or `rename`.",
        f"县级行政区 {adcode} 已存在：请用 citygrid county set-boundary 或 rename 修改。",
        code="county_exists",
    )


def rename(conn: Connection, adcode: str, name: str) -> CountyRecord:
    """Give a county its name (pages and titles read it from here)."""
    get(conn, adcode)
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise InvalidFeature(
            "A county's name has 1 to 100 characters.",
            "县级行政区名称应为 1 至 100 个字符。",
            code="county_name",
        )
    conn.execute(text("UPDATE counties SET name = :n WHERE adcode = :a"), {"a": adcode, "n": name})
    return get(conn, adcode)


@dataclass(frozen=True)
class CountySummary:
    """What `citygrid county show` prints about one county."""

    county: CountyRecord
    area_km2: float  # in the county's own Gauss-Krüger zone
    grids: dict[str, int]  # current grids by level
    rows: dict[str, int]  # rows per layer


def summary(conn: Connection, adcode: str) -> CountySummary:
    """A county with its area, its current grids by level and its rows per layer."""
    county = get(conn, adcode)
    area = conn.execute(
        text("SELECT ST_Area(ST_Transform(boundary, gk_srid)) FROM counties WHERE adcode = :a"),
        {"a": adcode},
    ).scalar_one()
    grids: dict[str, int] = {
        level: int(n)
        for level, n in conn.execute(
            text(f"""
            SELECT level, count(*) FROM grids
            WHERE adcode = :a AND {is_current(GRIDS)} GROUP BY level
        """),
            {"a": adcode},
        )
    }
    # identifiers from the registry, never from input
    counts = " UNION ALL ".join(
        f"SELECT '{layer_id}' AS layer, count(*) AS n FROM \"{layer_id}\" WHERE adcode = :a"
        for layer_id in LAYERS
    )
    rows = {r.layer: int(r.n) for r in conn.execute(text(counts), {"a": adcode})}
    return CountySummary(county, float(area) / 1e6, grids, rows)


def street_grids(conn: Connection, adcode: str) -> BaseGeometry | None:
    """The union of a county's current street grids (what its data covers), if it has any."""
    wkb = conn.execute(
        text(f"""
        SELECT ST_AsBinary(ST_Union(geom)) FROM grids
        WHERE adcode = :a AND level = 'street' AND {is_current(GRIDS)}
    """),
        {"a": adcode},
    ).scalar_one()
    return shapely.from_wkb(bytes(wkb)) if wkb is not None else None
