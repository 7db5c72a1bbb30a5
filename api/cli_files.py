"""`citygrid import` and `citygrid export`: layers from and to the files people hand over."""

from __future__ import annotations

import getpass
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from api import cli_cases, cli_grids
from api.console import console, friendly, print_bad_rows, say
from api.settings import DatabaseSettings, EditingSettings
from gis.validate import Limits
from layers.engine import filein, fileout
from layers.engine.access import Viewer
from layers.engine.crs import parse_crs
from layers.engine.editing import EditContext
from layers.engine.features import ItemsQuery, get_layer
from layers.engine.importing import ImportRefused, import_rows, parse_mapping
from layers.engine.importkeys import ImportMode
from layers.places import counties
from layers.registry import FileImport, Role
from layers.store import db


@friendly
def import_file(
    layer_id: Annotated[str, typer.Argument(metavar="LAYER", help="Layer id, e.g. billboards")],
    paths: Annotated[
        list[Path],
        typer.Argument(
            metavar="FILE...",
            exists=True,
            dir_okay=False,
            help="GeoPackage, Shapefile (.shp or .zip), GeoJSON, KML, CSV, XLSX "
            "(grids: one file or several holding every level)",
        ),
    ],
    crs: Annotated[
        str | None,
        typer.Option(help="Source CRS when the file names none: EPSG:4549, gcj02, …"),
    ] = None,
    valid_from: Annotated[
        str | None,
        typer.Option(
            metavar="YYYY-MM-DD",
            help="Grids: the day the file's grids take effect (the grids they replace end then); "
            "components: the day of the update (the versions it changes end then; default today)",
        ),
    ] = None,
    map_: Annotated[
        list[str] | None,
        typer.Option("--map", metavar="COLUMN=FIELD", help="Map a source column to a field"),
    ] = None,
    encoding: Annotated[
        str | None,
        typer.Option(
            help="Text encoding: UTF-8, GBK (cp936, gb2312) or GB18030, any case "
            "(default: the .cpg, else detected)"
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Check every row and report how many are new, changed and unchanged; write nothing",
        ),
    ] = False,
    mode: Annotated[
        ImportMode,
        typer.Option(
            help="append: add rows, refuse rows whose id is already stored; upsert: update the "
            "stored rows (matched by id, or the layer's natural key) that changed and add the "
            "others; copy: add every row as new, whatever its id"
        ),
    ] = ImportMode.APPEND,
    errors_csv: Annotated[
        Path | None, typer.Option(help="Write the bad rows to this CSV when refused")
    ] = None,
    county: Annotated[
        str | None,
        typer.Option(
            metavar="ADCODE",
            help="The county the rows belong to (6-digit code): rows elsewhere are refused with "
            "their row numbers; default: each row goes to the county it lies in (cases: the only "
            "county stored; grids: required, the county whose hierarchy the files are)",
        ),
    ] = None,
    remove_missing: Annotated[
        bool,
        typer.Option(
            "--remove-missing",
            help="components (a yearly update, with --mode upsert --county): mark the county's "
            "components the file no longer holds as removed (移除), their versions kept",
        ),
    ] = False,
    category_map: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="cases: a CSV of bureau-name,category-code for the bureau's own category names",
        ),
    ] = None,
) -> None:
    """Import a file into a layer: every row checked first and stamped with the county it lies
    in; all rows go in, or none.

    `citygrid import grids FILE... --county ADCODE --valid-from DATE` reads a county's whole grid
    hierarchy (level from 层级, parent from 上级编码, 责任人/责任单位/联系电话 kept), checks it against
    the county's boundary and replaces the county's grids as of that day.

    `citygrid import cases FILE --county ADCODE` reads a former 数字城管 system's cases (CSV in
    UTF-8 or GBK, or XLSX): case numbers kept, statuses, sources and categories by their labels,
    every stage time, deadlines from the category's limit when the file has none; rows already
    imported (same case number) are skipped.

    `citygrid import components FILE --county ADCODE` reads a component census (部件普查:
    GeoPackage, Shapefile, XLSX, CSV with 部件标识码, 小类代码 or 小类名称, 状态, 主管部门, 权属单位,
    养护单位 …): IDs kept when valid, assigned when missing; a yearly update is `--mode upsert
    --valid-from DAY [--remove-missing]`, the versions it changes kept.
    """
    layer = get_layer(layer_id)
    if layer.file_import is FileImport.GRID_HIERARCHY:
        cli_grids.import_grids(paths, county, valid_from, crs, map_ or [], encoding, dry_run)
        return
    if len(paths) != 1:
        raise typer.BadParameter(f"{layer.id} is imported from one file at a time")
    path = paths[0]
    if layer.file_import is FileImport.CASE_HISTORY:
        try:
            cli_cases.import_history(
                path, county, crs, parse_mapping(map_ or [], "="), encoding, category_map, dry_run
            )
        except ImportRefused as refused:
            _print_refusal(refused, errors_csv)
            raise typer.Exit(1) from None
        return
    as_of = _day(valid_from)
    limits = EditingSettings()
    say(f"reading {path}")
    named = fileout.encoding_name(encoding) if encoding is not None else None
    source = filein.read(path, filein.FileLimits(), named)
    settings = DatabaseSettings()
    engine = db.make_engine(settings.url(), settings.gk_epsg)
    ctx = EditContext(
        Viewer(f"cli:{getpass.getuser()}", Role.ADMIN, counties=(county,) if county else None),
        Limits(limits.max_vertices, limits.county_tolerance_m),
    )
    try:
        db.check_connection(engine)
        with (
            Progress(
                TextColumn("{task.description:<10}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
            ) as progress,
            engine.begin() as conn,
        ):
            if county is not None:
                counties.get(conn, county)
            task = progress.add_task("writing", total=len(source))
            report = import_rows(
                conn,
                layer,
                source,
                ctx,
                crs,
                parse_mapping(map_ or [], "="),
                dry_run,
                lambda n: progress.advance(task, n),
                mode,
                as_of,
                remove_missing,
            )
    except ImportRefused as refused:
        _print_refusal(refused, errors_csv)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    for note in report.notes:
        say(note)
    verb = "checked (dry run, nothing written)" if dry_run else "imported"
    say(
        f"{report.rows:,} rows {verb} into {layer.id}; columns {report.mapping}; "
        f"encoding {report.encoding or '—'}; CRS {report.crs}"
    )
    c = report.counts
    say(
        f"matched by {report.key or 'nothing (every row is new)'}: {c['new']:,} new, "
        f"{c['changed']:,} changed, {c['unchanged']:,} unchanged"
        + ("" if dry_run else f"; {report.imported:,} added, {report.updated:,} updated")
        + (f"; {report.removed:,} removed" if report.removed else "")
    )
    if report.unused_columns:
        say(f"columns not used: {', '.join(report.unused_columns)}")


def _day(value: str | None) -> date | None:
    """A --valid-from day, checked."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r}: write the day as YYYY-MM-DD") from None


def _print_refusal(refused: ImportRefused, errors_csv: Path | None) -> None:
    report = refused.report
    bad = len({e.row for e in report.errors})
    print_bad_rows(f"导入被拒绝：{bad} 行有问题，未写入任何数据", report.errors, shown=30)
    for note in report.notes:
        say(note)
    console.print(f"[red]citygrid: {refused.message_en}[/]\n[red]citygrid：{refused.message_zh}[/]")
    if errors_csv is not None:
        errors_csv.write_text(report.errors_csv(), encoding="utf-8")
        console.print(f"bad rows written to {errors_csv}")


SUFFIX_FORMATS = {".gpkg": "gpkg", ".zip": "shp", ".geojson": "geojson", ".json": "geojson",
                  ".kml": "kml", ".csv": "csv", ".xlsx": "xlsx"}  # fmt: skip


@friendly
def export_file(
    layer_id: Annotated[str, typer.Argument(metavar="LAYER", help="Layer id, e.g. billboards")],
    path: Annotated[
        Path, typer.Argument(help="Output: .gpkg, .zip (Shapefile), .geojson, .kml, .csv, .xlsx")
    ],
    bbox: Annotated[
        str | None, typer.Option(help="west,south,east,north in longitude/latitude")
    ] = None,
    filter_: Annotated[str | None, typer.Option("--filter", help="CQL2 text filter")] = None,
    encoding: Annotated[
        str,
        typer.Option(
            help="Shapefile text: UTF-8, GBK (also cp936, gb2312) or GB18030, any case; "
            "the .cpg and the .dbf's language byte say which"
        ),
    ] = "UTF-8",
    crs: Annotated[
        str | None,
        typer.Option(
            help="Output CRS: EPSG:4490 (default), EPSG:4326, a Gauss-Krüger zone such as EPSG:4549"
        ),
    ] = None,
    raw_codes: Annotated[
        bool,
        typer.Option("--raw-codes", help="Write stored codes (shop_sign) instead of labels (店招)"),
    ] = False,
) -> None:
    """Export a layer (all of it, or what --bbox and --filter select) as a file, with each row's
    id, so that the file can be imported back with --mode upsert."""
    from api.deps import parse_bbox  # the API's dependencies bring FastAPI, slow to load

    layer = get_layer(layer_id)
    name = SUFFIX_FORMATS.get(path.suffix.lower())
    if name is None:
        raise typer.BadParameter(
            f"{path.suffix or 'no suffix'}: use one of {', '.join(SUFFIX_FORMATS)}"
        )
    options = fileout.ExportOptions(
        fileout.encoding_name(encoding), raw_codes, parse_crs(crs, "--crs")
    )
    box = parse_bbox(bbox, None) if bbox else None
    query = ItemsQuery(layer, box, limit=0, filter=filter_)
    settings = DatabaseSettings()
    engine = db.make_engine(settings.url(), settings.gk_epsg)
    try:
        db.check_connection(engine)
        with (
            Progress(
                TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), console=console,
            ) as progress,
            engine.connect() as conn,
        ):  # fmt: skip
            task = progress.add_task("writing", total=None)
            written = fileout.write(
                conn, query, fileout.FORMATS[name], path, options,
                progress=lambda n: progress.advance(task, n),
            )  # fmt: skip
    finally:
        engine.dispose()
    say(f"{written:,} features of {layer.id} written to {path}")
