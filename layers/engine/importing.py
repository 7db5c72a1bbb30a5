"""Importing a file into a layer: all rows or none, with a report of every bad row.

Source columns map to the layer's fields by name, by Chinese label or by an explicit mapping;
code values may be given as their labels (高炮 → pole). Geometries come to CGCS2000 from the
file's CRS, from one given (an EPSG code, a Gauss-Krüger zone, or `gcj02` for data traced on
Amap), and are checked as the spatial API checks them, vectorised. Nothing is written unless
every row is good; then all of them go in with one COPY inside one transaction.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, text

from gis.gcj02 import gcj02_to_wgs84
from gis.validate import GeometryProblem, Limits, accepted_type_ids, check_shape, promote
from layers.cases import units
from layers.engine import (
    access,
    editing,
    fieldvalues,
    history,
    idcodes,
    importkeys,
    jsonin,
    placing,
    uniques,
)
from layers.engine.cells import neutral
from layers.engine.editing import EditContext
from layers.engine.filein import SourceData, refuse
from layers.engine.importkeys import ImportMode
from layers.errors import BadQuery, InvalidFeature, InvalidValue
from layers.registry import LAYERS, STORAGE_SRID, Field, Layer
from layers.store.bulk import Progress, copy_rows
from layers.store.db import BUREAU_TIMEZONE
from layers.store.tables import layer_table
from layers.store.versions import is_current

MAX_REPORTED = 1000  # rows listed in a refusal; the count says how many more
CELLS = fieldvalues.FILE.reading(BUREAU_TIMEZONE)  # a time without a zone is the bureau's


@dataclass(frozen=True)
class RowError:
    """One problem of one row (numbered from 1, as a spreadsheet shows data rows)."""

    row: int
    field: str
    value: str
    code: str
    message: str


@dataclass
class ImportReport:
    """What an import found and did."""

    layer: str
    rows: int
    mapping: dict[str, str]
    unused_columns: list[str]
    encoding: str | None
    crs: str
    notes: list[str] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    imported: int = 0
    dry_run: bool = False
    mode: str = "append"
    key: str | None = None  # how rows were matched to stored ones: "id", a natural key, or none
    counts: dict[str, int] = field(default_factory=dict)  # new, changed, unchanged
    updated: int = 0
    removed: int = 0  # stored rows the file no longer holds, retired (update imports)

    @property
    def ok(self) -> bool:
        """Whether every row is good."""
        return not self.errors

    def document(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {
            "ok": self.ok,
            "layer": self.layer,
            "rows": self.rows,
            "imported": self.imported,
            "updated": self.updated,
            "removed": self.removed,
            "dry_run": self.dry_run,
            "mode": self.mode,
            "key": self.key,
            **{k: self.counts.get(k) for k in ("new", "changed", "unchanged")},
            "mapping": self.mapping,
            "unused_columns": self.unused_columns,
            "encoding": self.encoding,
            "crs": self.crs,
            "notes": self.notes,
            "bad_rows": len({e.row for e in self.errors}),
            "errors": [vars(e) for e in self.errors[:MAX_REPORTED]],
        }

    def errors_csv(self) -> str:
        """The bad rows as CSV (with a byte-order mark so spreadsheets read the Chinese), each text
        cell neutralised so that a value echoed from the file cannot start a formula."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["行号", "字段", "取值", "问题代码", "问题"])
        for e in self.errors:
            writer.writerow([e.row, *(neutral(v) for v in (e.field, e.value, e.code, e.message))])
        return "\ufeff" + out.getvalue()


class ImportRefused(InvalidFeature):
    """A file with bad rows: nothing was written; the body carries the report."""

    code = "import_refused"

    def __init__(self, report: ImportReport) -> None:
        bad = len({e.row for e in report.errors})
        super().__init__(
            f"{bad} of {report.rows} rows are bad; nothing was imported.",
            f"{report.rows} 行中有 {bad} 行有问题，未导入任何数据。",
            report=report.document(),
        )
        self.report = report


def parse_mapping(pairs: list[str], separator: str) -> dict[str, str]:
    """`COLUMN<separator>FIELD` pairs as given on the command line or in a query string."""
    out = {}
    for pair in pairs:
        source, sep, target = pair.partition(separator)
        if not sep or not source or not target:
            raise BadQuery(
                f"{pair!r}: write SOURCE_COLUMN{separator}FIELD.",
                f"{pair!r} 应写作“源列名{separator}字段名”。",
            )
        out[source] = target
    return out


def field_mapping(
    layer: Layer, columns: list[str], explicit: dict[str, str] | None = None
) -> tuple[dict[str, str], list[str]]:
    """Source column → layer field (explicit first, then by name, then by Chinese label)."""
    explicit = explicit or {}
    writable = {f.name: f for f in layer.fields if not f.derived}
    unknown = sorted(set(explicit.values()) - set(writable) - {layer.parent_key or ""})
    if unknown or set(explicit) - set(columns):
        bad = unknown or sorted(set(explicit) - set(columns))
        raise BadQuery(
            f"The mapping names {', '.join(bad)}, which the file or {layer.id} does not have.",
            f"字段对应中的 {'、'.join(bad)} 不在文件或图层 {layer.title_zh} 中。",
        )
    labels = {f.label_zh: f.name for f in writable.values()}
    labels |= {name: f.name for f in writable.values() for name in f.column_names}
    shorts = {f.short_name: f.name for f in writable.values()}  # our own Shapefiles' columns
    out: dict[str, str] = {}
    for column in columns:
        key = column.strip()
        target = (
            explicit.get(column)
            or (key.lower() if key.lower() in writable or key.lower() == layer.parent_key else None)
            or labels.get(key)
            or shorts.get(key.lower())
            or _shapefile_name(key.lower(), writable)
        )
        if target and target not in out.values():
            out[column] = target
    unused = [c for c in columns if c not in out]
    return out, unused


def _shapefile_name(column: str, writable: dict[str, Field]) -> str | None:
    """The field a Shapefile cut to its 10-character column name, when only one fits."""
    if len(column) != 10:
        return None
    fits = [name for name in writable if name.startswith(column)]
    return fits[0] if len(fits) == 1 else None


def _to_storage(source: SourceData, crs: str | None) -> tuple[list[BaseGeometry | None], str]:
    """Geometries in CGCS2000 longitude/latitude, and the name of the CRS they came from."""
    given = crs or source.crs
    geoms = np.asarray(source.geometries, dtype=object)
    present = np.array([g is not None for g in geoms])
    if given is None or given.lower() in ("gcj02", "gcj-02"):
        if given is None:
            bounds = shapely.total_bounds(geoms[present]) if present.any() else None
            if bounds is not None and not (
                -180 <= bounds[0] <= bounds[2] <= 180 and -90 <= bounds[1] <= bounds[3] <= 90
            ):
                raise refuse(
                    "import_crs_unknown",
                    "The file names no coordinate system and its coordinates are not degrees: give --crs.",
                    "文件未说明坐标系，且坐标不是经纬度：请指定坐标系（crs）。",
                )
            return list(geoms), "EPSG:4490（未声明，按经纬度读取）"
        moved = [
            shapely.transform(g, lambda xy: np.column_stack(gcj02_to_wgs84(xy[:, 0], xy[:, 1])))
            if g is not None
            else None
            for g in geoms
        ]
        return moved, "GCJ-02（高德/腾讯），已纠偏"
    try:
        source_crs = CRS.from_user_input(given)
    except CRSError:
        raise refuse(
            "import_crs_unknown",
            f"Unknown coordinate system {given!r}.",
            f"无法识别的坐标系 {given!r}。",
        ) from None
    if source_crs.equals(CRS.from_epsg(STORAGE_SRID)) or source_crs.equals(CRS.from_epsg(4326)):
        return list(geoms), source_crs.name
    to_storage = Transformer.from_crs(source_crs, STORAGE_SRID, always_xy=True)
    moved = shapely.transform(
        geoms[present], lambda xy: np.column_stack(to_storage.transform(xy[:, 0], xy[:, 1]))
    )
    out = list(geoms)
    for i, g in zip(np.flatnonzero(present), moved, strict=True):
        out[int(i)] = g
    return out, source_crs.name


def _check_geometries(
    layer: Layer,
    geoms: list[BaseGeometry | None],
    limits: Limits,
    errors: list[RowError],
) -> list[BaseGeometry | None]:
    """Valid geometries of the layer's type; problems go to `errors` (the county comes after)."""
    if layer.geometry is None:
        return [None] * len(geoms)
    expected = layer.geometry.geojson
    arr = np.asarray(geoms, dtype=object)
    present = np.array([g is not None for g in arr])
    fine = present.copy()
    fine[present] &= shapely.is_valid(arr[present])
    fine[present] &= shapely.get_num_coordinates(arr[present]) <= limits.max_vertices
    kinds = np.full(len(arr), -1)
    kinds[present] = shapely.get_type_id(arr[present])
    fine &= np.isin(kinds, accepted_type_ids(expected))
    lines = np.isin(kinds, [1, 5])  # a line must not cross itself: the reason comes below
    fine[lines] &= shapely.is_simple(arr[lines])
    out: list[BaseGeometry | None] = []
    for i, g in enumerate(arr):
        if fine[i]:
            out.append(promote(g, expected))
            continue
        if g is None:
            errors.append(RowError(i + 1, "geometry", "", "geometry_missing", "缺少几何或坐标"))
            out.append(None)
            continue
        try:  # the API's own check, with the reason when refused
            out.append(check_shape(g, expected, None, limits))
        except GeometryProblem as problem:
            errors.append(RowError(i + 1, "geometry", g.wkt[:60], problem.code, problem.message_zh))
            out.append(None)
    return out


def _place_rows(
    conn: Connection,
    geoms: list[BaseGeometry | None],
    viewer: access.Viewer,
    limits: Limits,
    errors: list[RowError],
) -> list[str | None]:
    """The county of each good geometry, found by the database for all rows at once; rows
    outside every county, or in one the viewer may not write, go to `errors`."""
    present = [(i, g) for i, g in enumerate(geoms) if g is not None]
    found = placing.places(conn, [g for _, g in present], limits.county_tolerance_m)
    out: list[str | None] = [None] * len(geoms)
    for (i, geom), place in zip(present, found, strict=True):
        value = geom.wkt[:60]
        if place.adcode is None:
            code, _, message = placing.refusal(place, limits.county_tolerance_m)
            errors.append(RowError(i + 1, "geometry", value, code, message))
        elif not access.may_write_county(viewer, place.adcode):
            errors.append(
                RowError(
                    i + 1,
                    "geometry",
                    value,
                    "outside_county",
                    f"位于县级行政区 {place.adcode}，不在您可写入的范围内",
                )
            )
        else:
            out[i] = place.adcode
    return out


def _check_values(
    layer: Layer, source: SourceData, columns: dict[str, str], errors: list[RowError]
) -> list[dict[str, Any]]:
    fields = {f.name: f for f in layer.fields}
    if layer.parent_key:
        fields[layer.parent_key] = fieldvalues.parent_field(layer)
    index = {target: source.columns.index(column) for column, target in columns.items()}
    required = [f for f in layer.fields if f.required and not f.derived]
    missing_columns = [f for f in required if f.name not in index]
    if missing_columns or (layer.parent_key and layer.parent_key not in index):
        names = [f"{f.label_zh}（{f.name}）" for f in missing_columns] or [layer.parent_key or ""]
        raise refuse(
            "import_missing_columns",
            f"The file has no column for the required field(s) {', '.join(f.name for f in missing_columns) or layer.parent_key}.",
            f"文件中缺少必填字段对应的列：{'、'.join(names)}。",
        )
    rows = []
    # a census repeats its statuses, units and dates: each distinct cell of a column is read once
    seen: dict[str, dict[tuple[type, Any], tuple[Any, tuple[str, str] | None]]] = {
        name: {} for name in index
    }
    for r in range(len(source)):
        row: dict[str, Any] = {}
        for name, i in index.items():
            raw = source.values[i][r]
            try:
                value, problem = seen[name][(type(raw), raw)]
            except KeyError:
                value, problem = seen[name][(type(raw), raw)] = _cell(fields[name], raw)
            except TypeError:  # an unhashable cell
                value, problem = _cell(fields[name], raw)
            if problem is None:
                row[name] = value
            else:
                errors.append(RowError(r + 1, name, str(source.values[i][r])[:60], *problem))
        rows.append(row)
    return rows


def _cell(f: Field, raw: Any) -> tuple[Any, tuple[str, str] | None]:
    """One source value as the field stores it, or the (code, message) of why it cannot be."""
    try:
        value = fieldvalues.parse(f, raw, CELLS)
    except InvalidValue as refused:
        return None, (refused.code, refused.message_zh)
    unstorable = jsonin.unstorable_text(value)
    if unstorable is not None:
        return None, (unstorable.code, unstorable.message_zh)
    return value, None


def _check_references(
    conn: Connection,
    layer: Layer,
    rows: list[dict[str, Any]],
    viewer: access.Viewer,
    errors: list[RowError],
) -> list[str | None]:
    """Refuse rows naming what does not exist (a parent the viewer may not read does not);
    the county of each row of a child layer, its parent's."""
    targets = [(f.name, f.references, "TRUE") for f in layer.fields if f.references]
    params: dict[str, Any] = {}
    if layer.parent and layer.parent_key:
        visible = access.area_clause(LAYERS[layer.parent], viewer, params)
        targets.append((layer.parent_key, f"{layer.parent}.id", visible))
    adcodes: list[str | None] = [None] * len(rows)
    for name, target, visible in targets:
        assert target is not None
        wanted = sorted({r[name] for r in rows if r.get(name) is not None}, key=str)
        if not wanted:
            continue
        table, column = target.split(".")
        county = "t.adcode" if name == layer.parent_key else "NULL"
        sql = f'SELECT t."{column}", {county} FROM "{table}" AS t WHERE t."{column}" = ANY(:v) AND {visible}'
        # a list of rows, not the result: a result has keys(), so dict() would read it as a mapping
        found: dict[Any, str | None] = {
            key: adcode for key, adcode in conn.execute(text(sql), params | {"v": wanted}).all()
        }
        for i, row in enumerate(rows):
            if row.get(name) is None:
                continue
            if row[name] not in found:
                errors.append(
                    RowError(
                        i + 1,
                        name,
                        str(row[name]),
                        "reference_not_found",
                        f"{table} 中不存在 {row[name]}",
                    )
                )
            elif name == layer.parent_key:
                adcodes[i] = found[row[name]]
    return adcodes


def import_rows(
    conn: Connection,
    layer: Layer,
    source: SourceData,
    ctx: EditContext,
    crs: str | None = None,
    explicit: dict[str, str] | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
    mode: ImportMode = ImportMode.APPEND,
    as_of: date | None = None,
    remove_missing: bool = False,
) -> ImportReport:
    """Check every row; when all are good (and this is no dry run) add the new rows and, in
    upsert mode, update the stored rows that changed. A layer keeping versions keeps the ones
    changed rows had, ended `as_of` (today); with `remove_missing`, an upsert retires the
    current rows of the viewer's county its file no longer holds."""
    _may_import(layer, ctx.viewer)
    columns, unused = field_mapping(layer, source.columns, explicit)
    if importkeys.id_column(source.columns) is not None:
        unused = [c for c in unused if c.strip().lower() != importkeys.ID]
    geoms, crs_name = _to_storage(source, crs) if layer.geometry else ([None] * len(source), "—")
    report = ImportReport(
        layer.id, len(source), columns, unused, source.encoding, crs_name, list(source.notes)
    )
    report.dry_run, report.mode = dry_run, mode.value
    checked = _check_geometries(layer, geoms, ctx.limits, report.errors)
    rows = _check_values(layer, source, columns, report.errors)
    if layer.id_scheme is not None:
        idcodes.names_to_codes(conn, layer.id_scheme, rows)
    parents = _check_references(conn, layer, rows, ctx.viewer, report.errors)
    counties = (
        _place_rows(conn, checked, ctx.viewer, ctx.limits, report.errors)
        if layer.geometry is not None
        else parents
    )
    _check_units(conn, layer, rows, counties, report.errors)
    report.errors.extend(RowError(*p) for p in idcodes.row_problems(conn, layer, rows, counties))
    matches = _match(conn, layer, source, rows, checked, mode, report, ctx.viewer)
    taken = uniques.row_problems(conn, layer, rows, counties, matches.stored, matches.key)
    report.errors.extend(RowError(*p) for p in taken)
    retiring = _retiring(conn, layer, matches, remove_missing, mode, ctx.viewer)
    report.errors.sort(key=lambda e: (e.row, e.field))
    if not report.ok:
        raise ImportRefused(report)
    report.removed = len(retiring)
    if dry_run:
        return report
    for row, geom, adcode in zip(rows, checked, counties, strict=True):
        if geom is not None:
            row["geom"] = geom
        row["adcode"] = adcode
    new = _new_rows(conn, layer, rows, matches, as_of, report)
    report.imported = copy_rows(conn, layer_table(layer), new, progress)
    stamped = sorted({a for a in counties if a is not None})
    changed = [
        (fid, {k: v for k, v in row.items() if k != "geom"}, row.get("geom"))
        for row, fid, differs in zip(rows, matches.stored, matches.changed, strict=True)
        if fid is not None and differs
    ]
    history.keep(conn, layer, [fid for fid, _, _ in changed], as_of)
    report.updated = importkeys.update(conn, layer, changed)
    _retire(conn, layer, retiring, as_of)
    placing.place_unplaced(conn, layer)
    editing.audit(
        conn,
        ctx,
        "create",
        layer,
        None,
        None,
        {
            "imported": report.imported,
            "mapping": columns,
            "mode": mode.value,
            "counties": stamped,
            "adcode": stamped[0] if len(stamped) == 1 else None,
        },
    )
    if changed:
        editing.audit(
            conn, ctx, "update", layer, None, None, {"updated": [fid for fid, _, _ in changed]}
        )
    return report


def _may_import(layer: Layer, viewer: access.Viewer) -> None:
    """Refuse an import into grids (imported whole) or by a role that may not edit the layer."""
    if layer.item_edits_only is not None:
        raise refuse(
            "use_grid_operations",
            "A county's grids are imported whole, checked first: citygrid import grids FILE "
            "--county ADCODE --valid-from DATE, or POST /grids/import.",
            "全县网格需整体导入并先行检查：citygrid import grids 文件 --county 县级代码 "
            "--valid-from 生效日期，或 POST /grids/import。",
        )
    if not access.may_edit_anywhere(layer, viewer):
        raise access.forbidden(
            f"Your role may not import into {layer.id}.",
            f"您的角色无权向{layer.title_zh}导入数据。",
        )


def _new_rows(
    conn: Connection,
    layer: Layer,
    rows: list[dict[str, Any]],
    matches: importkeys.Matches,
    as_of: date | None,
    report: ImportReport,
) -> list[dict[str, Any]]:
    """The rows to add, with their coded IDs assigned where missing and their versions started."""
    new = [row for row, fid in zip(rows, matches.stored, strict=True) if fid is None]
    if assigned := idcodes.assign_missing(conn, layer, new, [r["adcode"] for r in new]):
        report.notes.append(f"{assigned} 行未填标识码，已按县级代码与小类顺序编号")
    if layer.placed_in_grid is not None:
        placing.placements(conn, layer.placed_in_grid, new)
    if history.keeps_versions(layer) and layer.versioned is not None:
        start = layer.versioned.start
        for row in new:
            row.setdefault(start, as_of or history.today())
    return new


def _check_units(
    conn: Connection,
    layer: Layer,
    rows: list[dict[str, Any]],
    counties: list[str | None],
    errors: list[RowError],
) -> None:
    """Refuse rows naming a unit that is not one of their county's (listed per row)."""
    names = [f.name for f in layer.fields if f.handling_unit]
    wanted = {r[n] for r in rows for n in names if r.get(n) is not None}
    served = {name: set(units.counties_of(conn, name)) for name in sorted(wanted)}
    for i, (row, adcode) in enumerate(zip(rows, counties, strict=True)):
        for name in names:
            value = row.get(name)
            if value is not None and adcode is not None and adcode not in served[value]:
                errors.append(
                    RowError(
                        i + 1, name, value, "unknown_unit", f"“{value}”不是本县级行政区已登记的单位"
                    )
                )


def _retiring(
    conn: Connection,
    layer: Layer,
    matches: importkeys.Matches,
    remove_missing: bool,
    mode: ImportMode,
    viewer: access.Viewer,
) -> list[int]:
    """The current rows of the viewer's county an update import retires: those its file lacks."""
    if not remove_missing:
        return []
    versioning = layer.versioned
    if (
        versioning is None
        or versioning.retired is None
        or mode is not ImportMode.UPSERT
        or viewer.counties is None
        or len(viewer.counties) != 1
    ):
        raise refuse(
            "import_remove_refused",
            "Removing the rows a file lacks needs an upsert of one county (--county) into a layer "
            "that keeps versions and declares how rows are retired.",
            "删除文件中没有的要素须按单个县级行政区（--county）更新导入，且图层保存历史版本。",
        )
    field, value = versioning.retired
    kept = [fid for fid in matches.stored if fid is not None]
    return list(
        conn.execute(
            text(
                f'SELECT id FROM "{layer.id}" WHERE adcode = :adcode AND {is_current(layer)} '
                f'AND "{field}" IS DISTINCT FROM :value AND NOT (id = ANY(:kept)) ORDER BY id'
            ),
            {"adcode": viewer.counties[0], "value": value, "kept": kept},
        ).scalars()
    )


def _retire(conn: Connection, layer: Layer, ids: list[int], as_of: date | None) -> None:
    """Retire rows (versions kept): the layer's retired value written on them."""
    if not ids or layer.versioned is None or layer.versioned.retired is None:
        return
    field, value = layer.versioned.retired
    history.keep(conn, layer, ids, as_of)
    conn.execute(
        text(f'UPDATE "{layer.id}" SET "{field}" = :value WHERE id = ANY(:ids)'),
        {"value": value, "ids": ids},
    )


def _match(
    conn: Connection,
    layer: Layer,
    source: SourceData,
    rows: list[dict[str, Any]],
    geoms: list[BaseGeometry | None],
    mode: ImportMode,
    report: ImportReport,
    viewer: access.Viewer,
) -> importkeys.Matches:
    """Rows matched to stored ones as the mode wants; a plain append of stored rows refused."""
    if mode is ImportMode.COPY:
        matches = importkeys.Matches(None, [None] * len(rows), [False] * len(rows))
    else:
        matches = importkeys.match(conn, layer, source.columns, source.values, rows, geoms, viewer)
    report.key, report.counts = matches.key, matches.counts()
    report.errors.extend(RowError(*p) for p in matches.problems)
    if mode is ImportMode.UPSERT and matches.key is None:
        key = f"id 或 {layer.natural_key}" if layer.natural_key else "id"
        raise refuse(
            "import_no_key",
            f"An upsert needs an id column{' or ' + layer.natural_key if layer.natural_key else ''} "
            "to find the stored rows.",
            f"更新导入（upsert）需要 {key} 列来对应已有要素。",
        )
    if mode is ImportMode.APPEND:
        for r, fid in enumerate(matches.stored):
            if fid is not None:
                report.errors.append(
                    RowError(
                        r + 1,
                        matches.key or importkeys.ID,
                        str(fid),
                        "row_exists",
                        f"要素 {fid} 已存在：更新请用 mode=upsert，另存为新要素请用 mode=copy",
                    )
                )
    return matches
