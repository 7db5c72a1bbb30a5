"""Layers out as files: GeoPackage, zipped Shapefile, GeoJSON, KML, CSV and XLSX, written by GDAL.

An export takes the same query as `/items` (bbox, datetime, CQL2, field values, properties) and
the caller's rights, reads the rows in batches from a server-side cursor and appends each batch to
the file, so a large export never sits whole in memory. Chinese labels go where the format has a
place for them: the header of CSV and XLSX, the column titles (aliases) of a GeoPackage, and a
Shapefile's column names where the label fits dBASE's 10 bytes in the chosen encoding (else the
field's declared short name). Every file carries the row's `id`, so it can be imported back as an
update; code values are written as their Chinese labels unless raw codes are asked for.
"""

from __future__ import annotations

import sqlite3
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from sqlalchemy import Connection, text

from layers.engine.cells import neutral
from layers.engine.crs import STORAGE, Crs
from layers.engine.features import ItemsQuery, where_sql
from layers.errors import BadQuery
from layers.registry import STORAGE_SRID, Field, FieldType, GeometryKind, Layer

WKT_COLUMN = "WKT"
ID_COLUMN = "id"
LON, LAT = "经度", "纬度"
EAST, NORTH = "X", "Y"  # projected coordinates: easting, northing


@dataclass(frozen=True)
class Format:
    """How one file format is written and sent."""

    driver: str
    suffix: str
    media_type: str
    labels: bool  # Chinese labels as column names
    table: bool  # no geometry type of its own: points as lon/lat, shapes as WKT


FORMATS = {
    "gpkg": Format("GPKG", ".gpkg", "application/geopackage+sqlite3", False, False),
    "shp": Format("ESRI Shapefile", ".zip", "application/zip", False, False),
    "geojson": Format("GeoJSON", ".geojson", "application/geo+json", False, False),
    "kml": Format("KML", ".kml", "application/vnd.google-earth.kml+xml", False, False),
    "csv": Format("CSV", ".csv", "text/csv; charset=utf-8", True, True),
    "xlsx": Format(
        "XLSX",
        ".xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        True,
        True,
    ),
}
ENCODINGS = {
    "utf-8": "UTF-8",
    "utf8": "UTF-8",
    "gbk": "GBK",
    "cp936": "GBK",
    "936": "GBK",
    "gb2312": "GBK",
    "gb18030": "GB18030",
}
CODECS = {"UTF-8": "utf-8", "GBK": "gbk", "GB18030": "gb18030"}
GDAL_ENCODINGS = {"UTF-8": "UTF-8", "GBK": "CP936", "GB18030": "GB18030"}
# dBASE language driver byte: 0x4D is Chinese (CP936), read when the .cpg is lost; GB18030 files
# get it too, their GBK part being the same bytes. UTF-8 has no language driver id.
DBF_LANGUAGE = {"GBK": 0x4D, "GB18030": 0x4D}
DBF_LANGUAGE_OFFSET = 29
DBF_NAME_BYTES = 10


@dataclass(frozen=True)
class ExportOptions:
    """How an export writes what it selects: text encoding, code values, coordinate system."""

    encoding: str = "UTF-8"  # one of CODECS (see encoding_name)
    raw_codes: bool = False  # stored codes (shop_sign) instead of labels (店招)
    crs: Crs = STORAGE


def encoding_name(value: str) -> str:
    """The encoding a name stands for (case-insensitive: utf8, UTF-8, gbk, cp936, gb18030, …)."""
    try:
        return ENCODINGS[value.strip().lower()]
    except KeyError:
        raise BadQuery(
            f"encoding={value} is not supported; use UTF-8, GBK (CP936) or GB18030.",
            f"不支持的编码 encoding={value}；可用 UTF-8、GBK（CP936）或 GB18030。",
        ) from None


def encoding_pattern() -> str:
    """A regular expression (for the API's schema) matching every name encoding_name accepts."""
    anycase = (
        "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in name)
        for name in ENCODINGS
    )
    return f"^({'|'.join(anycase)})$"


def shapefile_names(fields: list[Field], encoding: str) -> list[str]:
    """dBASE column names: the Chinese label where it fits 10 bytes in `encoding` (网格编码 is 8 in
    GBK, 12 in UTF-8) and is not taken yet, else the field's declared short name."""
    out: list[str] = []
    for f in fields:
        fits = len(f.label_zh.encode(CODECS[encoding])) <= DBF_NAME_BYTES
        out.append(f.label_zh if fits and f.label_zh not in out else f.short_name)
    return out


def get_format(name: str) -> Format:
    """The format called `name`, or a clear refusal."""
    try:
        return FORMATS[name]
    except KeyError:
        raise BadQuery(
            f"format must be one of {', '.join(FORMATS)}.",
            f"导出格式（format）必须是：{'、'.join(FORMATS)}。",
        ) from None


def _column_names(fields: list[Field], fmt: Format, encoding: str) -> list[str]:
    if fmt.labels:
        return [f.label_zh for f in fields]
    if fmt.driver == "ESRI Shapefile":
        return shapefile_names(fields, encoding)
    return [f.name for f in fields]


def _array(f: Field, values: list[Any], spreadsheet: bool = False, raw_codes: bool = True) -> Any:
    """A column for GDAL: numbers with NaN for empty, dates and times as ISO text, codes as their
    labels unless `raw_codes`; a spreadsheet's text cells neutralised so none starts a formula."""
    if f.codes and not raw_codes:
        labels = {c.value: c.label_zh for c in f.codes}
        values = [labels.get(v, v) for v in values]
    if f.type in (FieldType.INTEGER, FieldType.REAL):
        return np.array([np.nan if v is None else float(v) for v in values], dtype=float)
    if f.type in (FieldType.DATE, FieldType.TIMESTAMP):
        return np.array([None if v is None else v.isoformat() for v in values], dtype=object)
    if f.type is FieldType.BOOLEAN:
        return np.array([np.nan if v is None else int(v) for v in values], dtype=float)
    if spreadsheet:
        return np.array([neutral(v) for v in values], dtype=object)
    return np.array(values, dtype=object)


def _table_columns(layer: Layer, geoms: Any, crs: Crs) -> tuple[list[str], list[Any]]:
    """Lon/lat (or X/Y) columns for points, a WKT column for shapes (CSV and XLSX have no
    geometry)."""
    if layer.geometry is None:
        return [], []
    degrees = crs.geographic
    places = 8 if degrees else 3
    if layer.geometry is GeometryKind.POINT:
        coords = shapely.get_coordinates(geoms)
        names = [LON, LAT] if degrees else [EAST, NORTH]
        return names, [coords[:, 0].round(places), coords[:, 1].round(places)]
    wkt = shapely.to_wkt(geoms, rounding_precision=places)
    return [WKT_COLUMN], [np.array(wkt, dtype=object)]


def write(
    conn: Connection,
    query: ItemsQuery,
    fmt: Format,
    path: Path,
    options: ExportOptions = ExportOptions(),
    batch: int = 50_000,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write the rows `query` selects to `path` (a .zip for Shapefile); returns how many."""
    layer = query.layer
    fields = [f for f in layer.fields if query.properties is None or f.name in query.properties]
    params: dict[str, Any] = {}
    where = where_sql(query, params)
    geometry = "NULL"
    if layer.geometry is not None:
        srid = options.crs.srid
        moved = "t.geom" if srid == STORAGE_SRID else f"ST_Transform(t.geom, {int(srid)})"
        geometry = f"ST_AsBinary({moved})"
    columns = ", ".join(f't."{f.name}"' for f in fields)
    sql = f'SELECT {geometry}, t.id, {columns} FROM "{layer.id}" AS t WHERE {where} ORDER BY t.id'
    target = path.with_suffix(".shp") if fmt.driver == "ESRI Shapefile" else path
    rows = conn.execution_options(stream_results=True, yield_per=batch).execute(text(sql), params)
    written = 0
    for chunk in rows.partitions(batch):
        written += _append(layer, fields, fmt, target, chunk, options, first=written == 0)
        if progress:
            progress(len(chunk))
    if written == 0:
        _append(layer, fields, fmt, target, [], options, first=True)
    if fmt.driver == "GPKG" and not fmt.labels:
        _gpkg_titles(target, layer, fields)
    if fmt.driver == "ESRI Shapefile":
        _mark_language(target, options.encoding)
        _zip_shapefile(target, path)
    return written


def _append(
    layer: Layer,
    fields: list[Field],
    fmt: Format,
    target: Path,
    chunk: Any,
    options: ExportOptions,
    first: bool,
) -> int:
    import pyogrio.raw  # GDAL loads slowly: only reading/writing files needs it

    geoms = shapely.from_wkb([row[0] for row in chunk]) if layer.geometry else None
    ids = np.array([row[1] for row in chunk], dtype="int64")
    data = [
        _array(f, [row[i + 2] for row in chunk], fmt.table, options.raw_codes)
        for i, f in enumerate(fields)
    ]
    names = [ID_COLUMN, *_column_names(fields, fmt, options.encoding)]
    data = [ids, *data]
    if fmt.table and geoms is not None:
        extra_names, extra = _table_columns(layer, geoms, options.crs)
        names, data, geoms = [*names, *extra_names], [*data, *extra], None
    gdal: dict[str, Any] = {}
    if fmt.driver == "ESRI Shapefile":
        gdal["encoding"] = GDAL_ENCODINGS[options.encoding]
    kind = None
    if geoms is not None and layer.geometry is not None:
        kind = layer.geometry.geojson
    pyogrio.raw.write(
        str(target),
        shapely.to_wkb(geoms) if geoms is not None else None,
        data,
        names,
        layer=layer.id,
        driver=fmt.driver,
        crs=f"EPSG:{options.crs.srid}" if geoms is not None else None,
        geometry_type=kind,
        append=not first,
        **gdal,
    )
    return len(chunk)


def _gpkg_titles(path: Path, layer: Layer, fields: list[Field]) -> None:
    """Chinese labels as the columns' titles (the GeoPackage schema extension's aliases)."""
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE IF NOT EXISTS gpkg_data_columns (table_name TEXT NOT NULL, "
            "column_name TEXT NOT NULL, name TEXT, title TEXT, description TEXT, mime_type TEXT, "
            "constraint_name TEXT, CONSTRAINT pk_gdc PRIMARY KEY (table_name, column_name))"
        )
        db.execute(
            "CREATE TABLE IF NOT EXISTS gpkg_extensions (table_name TEXT, column_name TEXT, "
            "extension_name TEXT NOT NULL, definition TEXT NOT NULL, scope TEXT NOT NULL)"
        )
        db.execute(
            "INSERT INTO gpkg_extensions VALUES ('gpkg_data_columns', NULL, 'gpkg_schema', "
            "'http://www.geopackage.org/spec121/#extension_schema', 'read-write')"
        )
        db.executemany(
            "INSERT OR REPLACE INTO gpkg_data_columns (table_name, column_name, name, title, "
            "description) VALUES (?, ?, ?, ?, ?)",
            [
                (layer.id, ID_COLUMN, "编号", "编号", "Feature id"),
                *((layer.id, f.name, f.label_zh, f.label_zh, f.label_en) for f in fields),
            ],
        )


def _mark_language(shp: Path, encoding: str) -> None:
    """Set the .dbf's language driver byte, which readers use when the .cpg is missing."""
    language = DBF_LANGUAGE.get(encoding)
    if language is None:
        return
    with shp.with_suffix(".dbf").open("r+b") as dbf:
        dbf.seek(DBF_LANGUAGE_OFFSET)
        dbf.write(bytes([language]))


def _zip_shapefile(shp: Path, out: Path) -> None:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for part in sorted(shp.parent.glob(f"{shp.stem}.*")):
            if part.suffix.lower() != ".zip":
                archive.write(part, part.name)
