"""Layers out as files: GeoPackage, zipped Shapefile, GeoJSON, KML, CSV and XLSX, written by GDAL.

An export takes the same query as `/items` (bbox, datetime, CQL2, field values, properties) and
the caller's rights, reads the rows in batches from a server-side cursor and appends each batch to
the file, so a large export never sits whole in memory. Chinese labels go where the format has a
place for them: the header of CSV and XLSX, the column titles (aliases) of a GeoPackage.
"""

from __future__ import annotations

import sqlite3
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio.raw
import shapely
from sqlalchemy import Connection, text

from layers.cells import neutral
from layers.errors import BadQuery
from layers.features import ItemsQuery, where_sql
from layers.registry import Field, FieldType, Layer

WKT_COLUMN = "WKT"
LON, LAT = "经度", "纬度"


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
ENCODINGS = ("UTF-8", "GBK")


def get_format(name: str) -> Format:
    """The format called `name`, or a clear refusal."""
    try:
        return FORMATS[name]
    except KeyError:
        raise BadQuery(
            f"format must be one of {', '.join(FORMATS)}.",
            f"导出格式（format）必须是：{'、'.join(FORMATS)}。",
        ) from None


def _column_names(fields: list[Field], fmt: Format) -> list[str]:
    return [f.label_zh if fmt.labels else f.name for f in fields]


def _array(f: Field, values: list[Any], spreadsheet: bool = False) -> Any:
    """A column for GDAL: numbers with NaN for empty, dates and times as ISO text; a spreadsheet's
    text cells neutralised so none starts a formula."""
    if f.type in (FieldType.INTEGER, FieldType.REAL):
        return np.array([np.nan if v is None else float(v) for v in values], dtype=float)
    if f.type in (FieldType.DATE, FieldType.TIMESTAMP):
        return np.array([None if v is None else v.isoformat() for v in values], dtype=object)
    if f.type is FieldType.BOOLEAN:
        return np.array([np.nan if v is None else int(v) for v in values], dtype=float)
    if spreadsheet:
        return np.array([neutral(v) for v in values], dtype=object)
    return np.array(values, dtype=object)


def _table_columns(layer: Layer, geoms: Any) -> tuple[list[str], list[Any]]:
    """Lon/lat columns for points, a WKT column for shapes (CSV and XLSX have no geometry)."""
    if layer.geometry is None:
        return [], []
    if layer.geometry.value == "POINT":
        coords = shapely.get_coordinates(geoms)
        return [LON, LAT], [coords[:, 0].round(8), coords[:, 1].round(8)]
    return [WKT_COLUMN], [np.array(shapely.to_wkt(geoms, rounding_precision=8), dtype=object)]


def write(
    conn: Connection,
    query: ItemsQuery,
    fmt: Format,
    path: Path,
    encoding: str = "UTF-8",
    batch: int = 50_000,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write the rows `query` selects to `path` (a .zip for Shapefile); returns how many."""
    layer = query.layer
    fields = [f for f in layer.fields if query.properties is None or f.name in query.properties]
    params: dict[str, Any] = {}
    where = where_sql(query, params)
    geometry = "ST_AsBinary(t.geom)" if layer.geometry is not None else "NULL"
    columns = ", ".join(f't."{f.name}"' for f in fields)
    sql = f'SELECT {geometry}, {columns} FROM "{layer.id}" AS t WHERE {where} ORDER BY t.id'
    target = path.with_suffix(".shp") if fmt.driver == "ESRI Shapefile" else path
    rows = conn.execution_options(stream_results=True, yield_per=batch).execute(text(sql), params)
    written = 0
    for chunk in rows.partitions(batch):
        written += _append(layer, fields, fmt, target, chunk, encoding, first=written == 0)
        if progress:
            progress(len(chunk))
    if written == 0:
        _append(layer, fields, fmt, target, [], encoding, first=True)
    if fmt.driver == "GPKG" and not fmt.labels:
        _gpkg_titles(target, layer, fields)
    if fmt.driver == "ESRI Shapefile":
        _zip_shapefile(target, path)
    return written


def _append(
    layer: Layer,
    fields: list[Field],
    fmt: Format,
    target: Path,
    chunk: Any,
    encoding: str,
    first: bool,
) -> int:
    geoms = shapely.from_wkb([row[0] for row in chunk]) if layer.geometry else None
    data = [_array(f, [row[i + 1] for row in chunk], fmt.table) for i, f in enumerate(fields)]
    names = _column_names(fields, fmt)
    if fmt.table and geoms is not None:
        extra_names, extra = _table_columns(layer, geoms)
        names, data, geoms = [*names, *extra_names], [*data, *extra], None
    options: dict[str, Any] = {}
    if fmt.driver == "ESRI Shapefile":
        options["encoding"] = "CP936" if encoding == "GBK" else "UTF-8"
    kind = None
    if geoms is not None and layer.geometry is not None:
        kind = "Point" if layer.geometry.value == "POINT" else "MultiPolygon"
    pyogrio.raw.write(
        str(target),
        shapely.to_wkb(geoms) if geoms is not None else None,
        data,
        names,
        layer=layer.id,
        driver=fmt.driver,
        crs="EPSG:4490" if geoms is not None else None,
        geometry_type=kind,
        append=not first,
        **options,
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
            [(layer.id, f.name, f.label_zh, f.label_zh, f.label_en) for f in fields],
        )


def _zip_shapefile(shp: Path, out: Path) -> None:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for part in sorted(shp.parent.glob(f"{shp.stem}.*")):
            if part.suffix.lower() != ".zip":
                archive.write(part, part.name)
