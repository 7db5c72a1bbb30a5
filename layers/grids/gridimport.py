"""A county's whole grid hierarchy imported from files, as of a day: checked first, all or nothing.

The file's grids replace the county's current ones on `valid_from`: a grid whose code, level,
parent, name, people and shape (within a few centimetres) are unchanged is left as it is; the
others are closed that day and their successors opened, so history stays and statistics of
earlier days keep their grids. Inspectors are kept by code; cases keep their grid codes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, text

from gis.hierarchy import KIND_LABELS, Finding, GridRow, check_hierarchy
from gis.topology import CheckOptions
from gis.zones import from_gk
from layers.engine.filein import SourceData
from layers.errors import GridEditRefused
from layers.grids.grids import CURRENT, _projected, county_code
from layers.grids.gridsource import ReadRows, read_rows
from layers.places import counties

SAME_SHAPE_M = 0.05  # a stored shape within this of the file's is the same grid
MAX_LISTED = 500
COMPARED = ("level", "name", "parent_code", "responsible_person", "responsible_unit", "phone")


@dataclass(frozen=True)
class Stored:
    """A current grid of the county, its shape in metres of the county's zone."""

    id: int
    valid_from: date
    values: dict[str, str | None]
    geom: BaseGeometry


@dataclass
class GridImport:
    """What an import of a county's grids found and did (or, in a dry run, would do)."""

    adcode: str
    valid_from: date
    rows: int
    files: list[dict[str, Any]]
    dry_run: bool
    created: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    unchanged: int = 0
    units_added: list[str] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        """The outcome as JSON-ready data."""
        return {
            "ok": True,
            "county": self.adcode,
            "valid_from": self.valid_from.isoformat(),
            "rows": self.rows,
            "files": self.files,
            "dry_run": self.dry_run,
            "new": len(self.created),
            "closed": len(self.closed),
            "unchanged": self.unchanged,
            "created_codes": self.created[:MAX_LISTED],
            "closed_codes": self.closed[:MAX_LISTED],
            "units_added": self.units_added,
        }


def _problem(f: Finding, read: ReadRows, epsg: int) -> dict[str, Any]:
    """A finding with its place in longitude/latitude and in its file's CRS, and its rows."""
    source = f.sources[0] if f.sources else 0
    place = read.places[source]
    out: dict[str, Any] = {
        "code": f.kind,
        "kind_label": KIND_LABELS[f.kind],
        "file": read.names[source],
        "rows": list(f.rows),
        "codes": list(f.codes),
        "parent_code": f.parent_code,
        "area_m2": None if f.area_m2 is None else round(f.area_m2, 2),
    }
    where_en = where_zh = ""
    if f.point is not None:
        point = from_gk([shapely.Point(f.point)], epsg)[0]
        lon, lat = float(point.x), float(point.y)
        in_file_en, in_file_zh, x, y = place.describe(lon, lat)
        lon, lat = round(lon, 6), round(lat, 6)
        out |= {"lon": lon, "lat": lat, "x": round(x, 3), "y": round(y, 3)}
        out["crs"] = place.label_en
        where_en = f" at lon {lon:.6f}, lat {lat:.6f}; {in_file_en}"
        where_zh = f"，位置：经度 {lon:.6f}，纬度 {lat:.6f}；{in_file_zh}"
    rows_en = rows_zh = ""
    if f.rows:
        listed = ", ".join(str(r) for r in f.rows)
        rows_en = f" ({read.names[source]}, row {listed})"
        rows_zh = f"（{read.names[source]} 第 {listed} 行）"
    out["message"] = f"{f.message_zh}{rows_zh}{where_zh}"
    out["message_en"] = f"{f.message_en}{rows_en}{where_en}"
    return out


def refusal(findings: list[Finding], read: ReadRows, epsg: int) -> GridEditRefused:
    """The error of a file with mistakes, listing each (nothing was written)."""
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.kind] = counts.get(f.kind, 0) + 1
    summary = "、".join(f"{KIND_LABELS[k]} {n}" for k, n in counts.items())
    return GridEditRefused(
        f"The grids have {len(findings)} problem(s) ({', '.join(f'{k} {n}' for k, n in counts.items())}); "
        "nothing was imported.",
        f"网格文件有 {len(findings)} 处问题（{summary}），未导入任何网格。",
        code="grid_import_refused",
        counts=counts,
        problems=[_problem(f, read, epsg) for f in findings[:MAX_LISTED]],
    )


def _boundary(conn: Connection, adcode: str, epsg: int) -> BaseGeometry:
    wkb = conn.execute(
        text("SELECT ST_AsBinary(ST_Transform(boundary, :epsg)) FROM counties WHERE adcode = :a"),
        {"a": adcode, "epsg": epsg},
    ).scalar_one()
    return _projected(bytes(wkb))


def _current(conn: Connection, adcode: str, epsg: int) -> dict[str, Stored]:
    rows = conn.execute(
        text(f"""
        SELECT id, code, valid_from, level, name, parent_code, responsible_person,
               responsible_unit, phone, ST_AsBinary(ST_Transform(geom, :epsg)) AS wkb
        FROM grids WHERE adcode = :a AND {CURRENT} ORDER BY id FOR UPDATE
    """),
        {"a": adcode, "epsg": epsg},
    ).all()
    return {
        r.code: Stored(
            r.id,
            r.valid_from,
            {k: getattr(r, k) for k in COMPARED},
            _projected(bytes(r.wkb)),
        )
        for r in rows
    }


def _values(row: GridRow, cells: dict[str, str | None]) -> dict[str, str | None]:
    return {
        "level": row.level,
        "name": cells.get("name") or row.code,
        "parent_code": None if row.level == "street" else row.parent_code,
        "responsible_person": cells.get("responsible_person"),
        "responsible_unit": cells.get("responsible_unit"),
        "phone": cells.get("phone"),
    }


def _unchanged(stored: Stored | None, values: dict[str, str | None], geom: BaseGeometry) -> bool:
    if stored is None or stored.values != values:
        return False
    return bool(shapely.hausdorff_distance(stored.geom, geom) <= SAME_SHAPE_M)


def _too_early(closing: list[tuple[str, Stored]], valid_from: date) -> GridEditRefused | None:
    late = [(code, s.valid_from) for code, s in closing if s.valid_from >= valid_from]
    if not late:
        return None
    latest = max(day for _, day in late)
    return GridEditRefused(
        f"{len(late)} current grid(s) (e.g. {late[0][0]}) are valid from {latest} on; the new "
        f"grids must start after that, not on {valid_from}.",
        f"有 {len(late)} 个现行网格（如 {late[0][0]}）自 {latest} 起生效；新网格的生效日期必须晚于该日，"
        f"不能是 {valid_from}。",
        code="grid_import_too_early",
        latest_valid_from=latest.isoformat(),
    )


def import_grids(
    conn: Connection,
    sources: list[tuple[str, SourceData]],
    adcode: str,
    valid_from: date,
    options: CheckOptions,
    actor: str,
    crs: str | None = None,
    mapping: dict[str, str] | None = None,
    dry_run: bool = False,
) -> GridImport:
    """Check the files' hierarchy against the county's boundary; unless refused or a dry run,
    make it the county's grids from `valid_from` on."""
    county = counties.get(conn, adcode)
    epsg = county.gk_srid
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:c))"), {"c": county_code(adcode)})
    read = read_rows(sources, crs, mapping or {}, epsg)
    if not read.rows:
        raise GridEditRefused("The files hold no grid.", "文件中没有网格。", code="upload_empty")
    findings = check_hierarchy(read.rows, adcode, _boundary(conn, adcode, epsg), options)
    if findings:
        raise refusal(findings, read, epsg)
    current = _current(conn, adcode, epsg)
    files = [
        {"name": name, "crs": place.label_en, "encoding": source.encoding, "notes": source.notes}
        for (name, source), place in zip(sources, read.places, strict=True)
    ]
    done = GridImport(adcode, valid_from, len(read.rows), files, dry_run)
    opening: list[tuple[GridRow, dict[str, str | None]]] = []
    for row, cells in zip(read.rows, read.attributes, strict=True):
        assert row.code is not None and row.geom is not None
        values = _values(row, cells)
        if _unchanged(current.get(row.code), values, row.geom):
            done.unchanged += 1
        else:
            opening.append((row, values))
    kept = {row.code for row, _ in zip(read.rows, read.attributes, strict=True)} - {
        row.code for row, _ in opening
    }
    closing = [(code, s) for code, s in current.items() if code not in kept]
    early = _too_early(closing, valid_from)
    if early is not None:
        raise early
    done.closed = sorted(code for code, _ in closing)
    done.created = [str(row.code) for row, _ in opening]
    done.units_added = _new_units(conn, opening, adcode)
    if not dry_run:
        _close(conn, [s.id for _, s in closing], valid_from, actor)
        _open(conn, opening, adcode, epsg, valid_from, actor)
    return done


def _new_units(
    conn: Connection, opening: list[tuple[GridRow, dict[str, str | None]]], adcode: str
) -> list[str]:
    """The responsible units the files name that the county's directory lacks: a county's grid
    file is where its 街道 and 社区 offices are first written down, so the import adds them to
    the directory (trigger `adopt_unit`) and says which, rather than asking for each twice."""
    named = sorted({str(v["responsible_unit"]) for _, v in opening if v.get("responsible_unit")})
    known = set(
        conn.execute(
            text("SELECT name FROM units WHERE adcode = :a AND name = ANY(:n)"),
            {"a": adcode, "n": named},
        ).scalars()
    )
    return [str(n) for n in named if n not in known]


def _close(conn: Connection, ids: list[int], day: date, actor: str) -> None:
    if not ids:
        return
    conn.execute(
        text(f"""
        WITH closed AS (
            UPDATE grids SET valid_to = :day WHERE id = ANY(:ids) AND {CURRENT}
            RETURNING id, code, adcode
        )
        INSERT INTO audit_log (actor, action, layer, feature_id, adcode, before, after)
        SELECT :actor, 'update', 'grids', id, adcode,
               jsonb_build_object('code', code, 'valid_to', NULL),
               jsonb_build_object('code', code, 'valid_to', CAST(:day AS date), 'operation', 'import')
        FROM closed
    """),
        {"ids": ids, "day": day, "actor": actor},
    )


def _open(
    conn: Connection,
    opening: list[tuple[GridRow, dict[str, str | None]]],
    adcode: str,
    epsg: int,
    day: date,
    actor: str,
) -> None:
    for row, values in opening:
        assert row.geom is not None
        conn.execute(
            text("""
            WITH t AS (
                INSERT INTO grids (adcode, geom, level, code, name, parent_code,
                                   responsible_person, responsible_unit, phone, valid_from)
                VALUES (:adcode,
                        ST_Multi(ST_CollectionExtract(ST_MakeValid(
                            ST_Transform(ST_SetSRID(ST_GeomFromWKB(:wkb), :epsg), 4490)), 3)),
                        :level, :code, :name, :parent_code, :responsible_person,
                        :responsible_unit, :phone, :day)
                RETURNING *
            )
            INSERT INTO audit_log (actor, action, layer, feature_id, adcode, after)
            SELECT :actor, 'create', 'grids', t.id, t.adcode,
                   (to_jsonb(t) - 'geom') || CAST(:extra AS jsonb)
            FROM t
        """),
            values
            | {
                "adcode": adcode,
                "wkb": shapely.to_wkb(row.geom),
                "epsg": epsg,
                "code": row.code,
                "day": day,
                "actor": actor,
                "extra": json.dumps({"operation": "import"}),
            },
        )
