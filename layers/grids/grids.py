"""Grid families (a parent and its current children, in metres) and their topology reports."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, text

from gis.hierarchy import tolerate_boundary
from gis.partition import polygonal
from gis.topology import CHILD_LEVEL, KIND_LABELS, KINDS, CheckOptions, Report, check_children
from gis.zones import from_gk
from layers.errors import FeatureNotFound, GridEditRefused
from layers.registry import GRIDS
from layers.store.versions import is_current

COUNTY_TAIL = "0" * 9
GRID_COLUMNS = (
    "id, level, code, name, parent_code, adcode, responsible_person, responsible_unit, phone, "
    "valid_from"
)


@dataclass(frozen=True)
class StoredGrid:
    """A current grid row, its geometry in metres of its family's zone."""

    id: int
    level: str
    code: str
    name: str
    parent_code: str | None
    adcode: str
    responsible_person: str | None
    responsible_unit: str | None
    phone: str | None
    valid_from: date
    geom: BaseGeometry


@dataclass(frozen=True)
class Family:
    """A parent grid (or the county) and its current children, in metres of one GK zone."""

    parent_code: str
    parent_level: str
    parent_name: str
    adcode: str
    parent: BaseGeometry
    epsg: int
    children: list[StoredGrid] = field(default_factory=list)

    @property
    def child_level(self) -> str:
        """The level of the children."""
        return CHILD_LEVEL[self.parent_level]


def county_code(adcode: str) -> str:
    """The code standing for the whole county as the parent of its streets."""
    return adcode + COUNTY_TAIL


def not_found(code: str) -> FeatureNotFound:
    """The error for a grid code with no current grid."""
    return FeatureNotFound(
        f"There is no current grid with code {code}.",
        f"不存在编码为 {code} 的现行网格。",
        code="grid_not_found",
    )


Counties = tuple[str, ...] | None  # the counties a change may touch; None: every county
IN_COUNTIES = "(CAST(:counties AS text[]) IS NULL OR adcode = ANY(:counties))"
CURRENT = is_current(GRIDS)  # the grids in force, not the versions they replaced


def _counties(counties: Counties) -> list[str] | None:
    return None if counties is None else list(counties)


def _parent_row(
    conn: Connection, code: str, lock: bool, counties: Counties
) -> tuple[str, str, str, bytes, int]:
    if counties is not None and code[:6] not in counties:
        raise not_found(code)  # another county's grids look absent
    if code.endswith(COUNTY_TAIL) and len(code) == 15:
        # the streets' parent is the county's official boundary, not the union of the streets
        row = conn.execute(
            text("""
            SELECT name, gk_srid, ST_AsBinary(ST_Transform(boundary, gk_srid))
            FROM counties WHERE adcode = :adcode
        """),
            {"adcode": code[:6]},
        ).first()
        if row is None:
            raise not_found(code)
        return "county", code[:6], str(row[0]), bytes(row[2]), int(row[1])
    # A change closing the parent (FOR UPDATE) waits for the changes of its children, and the
    # other way round: no child is added under a parent that a concurrent change closes.
    share = "FOR SHARE" if lock else ""
    row = conn.execute(
        text(f"""
        SELECT level, adcode, name, citygrid_gk_srid(geom) AS epsg,
               ST_AsBinary(ST_Transform(geom, citygrid_gk_srid(geom)))
        FROM grids WHERE code = :code AND {CURRENT} AND {IN_COUNTIES} {share}
    """),
        {"code": code, "counties": _counties(counties)},
    ).first()
    if row is None:
        raise not_found(code)
    return row[0], row[1], row[2], bytes(row[4]), int(row[3])


def load_family(
    conn: Connection, parent_code: str, lock: bool = False, counties: Counties = None
) -> Family:
    """A parent (of one of `counties`) and its current children; `lock` serialises changes."""
    if lock:
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:code))"), {"code": parent_code})
    level, adcode, name, wkb, epsg = _parent_row(conn, parent_code, lock, counties)
    if level == "section":
        raise GridEditRefused(
            f"Grid {parent_code} is a section grid: it has no child grids.",
            f"网格 {parent_code} 是片区网格，没有下级网格。",
            code="grid_has_no_children",
        )
    where = "level = 'street' AND adcode = :adcode" if level == "county" else "parent_code = :code"
    rows = conn.execute(
        text(f"""
        SELECT {GRID_COLUMNS}, ST_AsBinary(ST_Transform(geom, :epsg)) AS wkb
        FROM grids WHERE {where} AND {CURRENT} ORDER BY code
    """),
        {"adcode": adcode, "code": parent_code, "epsg": epsg},
    ).all()
    children = [
        StoredGrid(
            **{k: v for k, v in r._mapping.items() if k != "wkb"},
            geom=_projected(bytes(r.wkb)),
        )
        for r in rows
    ]
    return Family(parent_code, level, name, adcode, _projected(wkb), epsg, children)


def _projected(wkb: bytes) -> BaseGeometry:
    """A stored (hence valid) geometry after projection; a ring touching itself at a point may
    cross itself by a rounding error in the new coordinates, which is repaired, not reported."""
    geom = shapely.from_wkb(wkb)
    return geom if geom.is_valid else polygonal(shapely.make_valid(geom))


def check_family(
    family: Family,
    geoms: list[BaseGeometry],
    codes: list[str],
    options: CheckOptions,
) -> Report:
    """The topology report of `geoms` (metres) as the children of the family's parent."""
    report = check_children(
        family.parent, family.parent_code, family.child_level, geoms, codes, options
    )
    if family.parent_level != "county":
        return report
    return tolerate_boundary(report, family.parent, options.boundary_tolerance_m)


def check_stored(
    conn: Connection, parent_code: str, options: CheckOptions, counties: Counties = None
) -> tuple[Report, int]:
    """The report of a parent's current children, with the zone its geometries are in."""
    family = load_family(conn, parent_code, counties=counties)
    report = check_family(
        family, [c.geom for c in family.children], [c.code for c in family.children], options
    )
    return report, family.epsg


def all_parents(
    conn: Connection, adcode: str | None = None, counties: Counties = None
) -> list[str]:
    """Codes of every parent with current children (of `adcode`, of `counties`): the counties,
    then streets, then communities."""
    rows = conn.execute(
        text(f"""
        SELECT DISTINCT adcode || :tail, 0 FROM grids
        WHERE level = 'street' AND {CURRENT} AND (CAST(:adcode AS text) IS NULL OR adcode = :adcode)
          AND {IN_COUNTIES}
        UNION
        SELECT DISTINCT parent_code, CASE level WHEN 'community' THEN 1 ELSE 2 END FROM grids
        WHERE level <> 'street' AND {CURRENT} AND parent_code IS NOT NULL
          AND (CAST(:adcode AS text) IS NULL OR adcode = :adcode) AND {IN_COUNTIES}
        ORDER BY 2, 1
    """),
        {"tail": COUNTY_TAIL, "adcode": adcode, "counties": _counties(counties)},
    ).all()
    return [r[0] for r in rows]


def _rounded(doc: Any) -> Any:
    if isinstance(doc, float):
        return round(doc, 7)
    if isinstance(doc, list | tuple):
        return [_rounded(v) for v in doc]
    if isinstance(doc, dict):
        return {k: _rounded(v) for k, v in doc.items()}
    return doc


def problem_features(report: Report, epsg: int) -> list[dict[str, Any]]:
    """The problems of a report as GeoJSON features in CGCS2000 longitude/latitude."""
    if not report.problems:
        return []
    geoms = from_gk([p.geom for p in report.problems], epsg)
    points = from_gk([shapely.Point(p.location) for p in report.problems], epsg)
    return [
        {
            "type": "Feature",
            "geometry": _rounded(json.loads(shapely.to_geojson(geom))),
            "properties": {
                "kind": p.kind,
                "kind_label": KIND_LABELS[p.kind],
                "parent_code": report.parent_code,
                "codes": list(p.codes),
                "area_m2": None if p.area_m2 is None else round(p.area_m2, 3),
                "location": _rounded(list(point.coords[0])),
                "message": p.message_zh,
                "message_en": p.message_en,
            },
        }
        for p, geom, point in zip(report.problems, geoms, points, strict=True)
    ]


def report_document(reports: list[tuple[Report, int]]) -> dict[str, Any]:
    """Counts and problems of one or more reports, as the API and the CLI give them."""
    counts = dict.fromkeys(KINDS, 0)
    features: list[dict[str, Any]] = []
    for report, epsg in reports:
        for kind, n in report.counts().items():
            counts[kind] += n
        features += problem_features(report, epsg)
    return {
        "ok": not features,
        "parents": [r.parent_code for r, _ in reports],
        "children": sum(r.children for r, _ in reports),
        "counts": counts,
        "problems": {"type": "FeatureCollection", "features": features},
    }
