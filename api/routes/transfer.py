"""Files in and out: `POST /collections/{id}/import` and `GET /collections/{id}/export` in the
formats planners, surveyors and leaders hand over."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import StringConstraints
from sqlalchemy import Engine
from starlette.background import BackgroundTask

from api import metrics
from api.auth import ViewerDep, current_viewer
from api.deps import (
    CRS_PATTERN,
    UPLOAD_BODY,
    BBoxDep,
    DatetimeDep,
    EditContextDep,
    EngineDep,
    FilterLang,
    LayerDep,
    read_upload,
    statement_kind,
    upload_body_type,
)
from api.openapi import answers
from api.routes.features import field_equalities, property_names
from layers.engine import filein, fileout
from layers.engine.crs import STORAGE, parse_crs
from layers.engine.editing import EditContext
from layers.engine.features import ItemsQuery
from layers.engine.importing import ImportRefused, import_rows, parse_mapping
from layers.engine.importkeys import ImportMode
from layers.registry import Layer

router = APIRouter(tags=["files 文件导入导出"], dependencies=[Depends(current_viewer)])


def _import(
    engine: Engine,
    layer: Layer,
    data: bytes,
    filename: str,
    ctx: EditContext,
    crs: str | None,
    mapping: dict[str, str],
    dry_run: bool,
    limits: filein.FileLimits,
    mode: ImportMode,
    as_of: date | None = None,
    remove_missing: bool = False,
) -> dict[str, Any]:
    with filein.opened(data, filename, limits) as path:
        source = filein.read(path, limits)
    with engine.begin() as conn:
        return import_rows(
            conn, layer, source, ctx, crs, mapping, dry_run, None, mode, as_of, remove_missing
        ).document()


@router.post(
    "/collections/{collectionId}/import",
    summary="Import a file / 导入文件",
    dependencies=[Depends(upload_body_type), Depends(statement_kind("import"))],
    response_class=Response,
    responses={**answers("application/json"), **answers("text/csv", status=400)},
    openapi_extra={"requestBody": UPLOAD_BODY},
)
async def import_file(
    layer: LayerDep,
    request: Request,
    engine: EngineDep,
    ctx: EditContextDep,
    filename: Annotated[
        str, Query(max_length=200, description="e.g. signs.gpkg, signs.zip, signs.csv")
    ],
    crs: Annotated[str | None, Query(max_length=100, description="EPSG:4549, gcj02, …")] = None,
    map_: Annotated[
        list[Annotated[str, StringConstraints(pattern="^[^:\\x00]+:[^\\x00]+$")]] | None,
        Query(alias="map", description="SOURCE_COLUMN:FIELD"),
    ] = None,
    dry_run: Annotated[bool, Query(alias="dry-run")] = False,
    mode: Annotated[
        ImportMode,
        Query(
            description="append: add rows, refuse rows whose id is stored; upsert: update stored "
            "rows (by id or the layer's natural key) that changed, add the others; copy: add "
            "every row as new"
        ),
    ] = ImportMode.APPEND,
    report: Annotated[
        str, Query(pattern="^(json|csv)$", description="how bad rows are listed")
    ] = "json",
    as_of: Annotated[
        date | None,
        Query(
            alias="as-of",
            description="layers keeping versions (components): the day of the update (default today)",
        ),
    ] = None,
    remove_missing: Annotated[
        bool,
        Query(
            alias="remove-missing",
            description="components, upsert of one county: retire the rows the file lacks",
        ),
    ] = False,
) -> Response:
    """The file as the body: every row checked; all imported in one transaction, or none, with
    each bad row's number, field and reason (as JSON, or CSV with `report=csv`). The report says
    how many rows are new, changed and unchanged against the stored ones."""
    most = request.app.state.editing.max_upload_bytes
    limits = filein.FileLimits(max_bytes=most, max_unzipped_bytes=5 * most)
    data = await read_upload(request, limits.max_bytes)
    try:
        done = await run_in_threadpool(
            _import,
            engine,
            layer,
            data,
            filename,
            ctx,
            crs,
            parse_mapping(map_ or [], ":"),
            dry_run,
            limits,
            mode,
            as_of,
            remove_missing,
        )
    except ImportRefused as refused:
        metrics.IMPORT_ROWS.labels(layer.id).observe(refused.report.rows)
        if report == "csv":
            return Response(
                refused.report.errors_csv(), status_code=400, media_type="text/csv; charset=utf-8"
            )
        raise
    metrics.IMPORT_ROWS.labels(layer.id).observe(done["rows"])
    return Response(
        json.dumps(done, ensure_ascii=False, default=str), media_type="application/json"
    )


EXPORT_PARAMS = {
    "bbox", "bbox-crs", "datetime", "filter", "filter-lang", "filter-crs", "properties",
    "format", "encoding", "crs", "codes",
}  # fmt: skip


async def exported_file(
    filename: str, media_type: str, write: Callable[[Path], object]
) -> FileResponse:
    """`write(path)` run in a worker thread into a folder of its own, answered as that file and
    the folder removed once sent (at once when writing failed)."""

    def run() -> Path:
        folder = Path(tempfile.mkdtemp(prefix="citygrid-export-"))
        try:
            write(folder / filename)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return folder / filename

    path = await run_in_threadpool(run)
    return FileResponse(
        path,
        media_type=media_type,
        filename=filename,
        background=BackgroundTask(shutil.rmtree, path.parent, True),
    )


def _export(
    engine: Engine,
    query: ItemsQuery,
    fmt: fileout.Format,
    options: fileout.ExportOptions,
    path: Path,
) -> None:
    with engine.connect() as conn:
        fileout.write(conn, query, fmt, path, options)


@router.get(
    "/collections/{collectionId}/export",
    summary="Export as a file / 导出文件",
    dependencies=[Depends(statement_kind("export"))],
    response_class=Response,
    responses={
        200: {"content": {f.media_type.split(";")[0]: {} for f in fileout.FORMATS.values()}}
    },
)
async def export_file(
    layer: LayerDep,
    request: Request,
    engine: EngineDep,
    viewer: ViewerDep,
    bbox: BBoxDep,
    time: DatetimeDep,
    format_: Annotated[
        str,
        Query(
            alias="format",
            pattern="^(gpkg|shp|geojson|kml|csv|xlsx)$",
            description="gpkg | shp | geojson | kml | csv | xlsx",
        ),
    ] = "gpkg",
    encoding: Annotated[
        str,
        Query(
            pattern=fileout.encoding_pattern(),
            description="Shapefile text: UTF-8, GBK (cp936, gb2312) or GB18030, any case",
        ),
    ] = "UTF-8",
    crs: Annotated[
        str | None,
        Query(
            pattern=CRS_PATTERN,
            description="CRS of the file: EPSG:4490 (default), EPSG:4326, EPSG:3857 or a "
            "Gauss-Krüger zone EPSG:4534 to EPSG:4554 (KML is always longitude/latitude)",
        ),
    ] = None,
    codes: Annotated[
        str,
        Query(
            pattern="^(label|raw)$",
            description="code values as their Chinese labels (店招) or as stored (shop_sign)",
        ),
    ] = "label",
    properties: Annotated[str | None, Query(description="field,field")] = None,
    filter_: Annotated[str | None, Query(alias="filter", description="CQL2 filter")] = None,
    filter_lang: Annotated[FilterLang, Query(alias="filter-lang")] = "cql2-text",
    filter_crs: Annotated[str | None, Query(alias="filter-crs", pattern=CRS_PATTERN)] = None,
) -> Response:
    """The features `/items` would give for the same filters and rights, as one file."""
    fmt = fileout.get_format(format_)
    query = ItemsQuery(
        layer,
        bbox,
        limit=0,
        equals=field_equalities(layer, request, EXPORT_PARAMS),
        time=time,
        properties=property_names(layer, properties),
        filter=filter_,
        filter_lang=filter_lang,
        filter_crs=parse_crs(filter_crs, "filter-crs") if filter_crs else STORAGE,
        viewer=viewer,
    )
    options = fileout.ExportOptions(
        fileout.encoding_name(encoding), codes == "raw", parse_crs(crs, "crs")
    )
    return await exported_file(
        f"{layer.id}{fmt.suffix}",
        fmt.media_type,
        lambda path: _export(engine, query, fmt, options, path),
    )
