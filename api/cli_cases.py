"""`citygrid import cases` (a bureau's case history) and `citygrid categories` (the case categories,
their time limits and aliases, as a file a bureau edits)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from api.cli_db import actor, transaction
from api.console import console, friendly, refuse_rows, say
from api.settings import CalendarSettings, EditingSettings
from layers.cases import casehistory, categories, workcalendar
from layers.engine import filein, fileout
from layers.engine.access import Viewer
from layers.engine.importing import ImportReport
from layers.places import counties
from layers.registry import Role

app = typer.Typer(
    help="Case categories (案件类别): time limits and aliases, exported and imported as CSV.",
    no_args_is_help=True,
)


def _only_county(given: str | None) -> str:
    """The county named, or the only one stored."""
    if given is not None:
        return given
    with transaction() as conn:
        stored = counties.all_counties(conn)
    if len(stored) != 1:
        raise typer.BadParameter(
            "name the county the cases belong to: --county ADCODE "
            f"(stored: {', '.join(c.adcode for c in stored) or 'none'})",
            param_hint="--county",
        )
    return stored[0].adcode


def import_history(
    path: Path,
    county: str | None,
    crs: str | None,
    mapping: dict[str, str],
    encoding: str | None,
    category_map: Path | None,
    dry_run: bool,
) -> ImportReport:
    """Import a former system's cases into one county (all rows or none); the report."""
    adcode = _only_county(county)
    say(f"reading {path}")
    named = fileout.encoding_name(encoding) if encoding is not None else None
    source = filein.read(path, filein.FileLimits(), named)
    tolerance = EditingSettings().county_tolerance_m
    with (
        Progress(
            TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=console,
        ) as progress,
        transaction() as conn,
    ):  # fmt: skip
        bureau = (
            casehistory.read_category_map(conn, category_map.read_bytes()) if category_map else {}
        )
        file = casehistory.CaseFile(source, adcode, crs, bureau, mapping, tolerance)
        task = progress.add_task("writing", total=len(source))
        calendar = workcalendar.load(conn, adcode, CalendarSettings().periods())
        report = casehistory.import_cases(
            conn,
            file,
            Viewer(actor(), Role.ADMIN),
            dry_run,
            lambda n: progress.advance(task, n),
            calendar,
        )
    for note in report.notes:
        say(note)
    c = report.counts
    verb = "checked (dry run, nothing written)" if dry_run else "imported"
    say(
        f"{report.rows:,} rows {verb} into cases of {adcode}; columns {report.mapping}; "
        f"encoding {report.encoding or '—'}; CRS {report.crs}"
    )
    say(
        f"matched by external_ref: {c['new']:,} new, {c['unchanged']:,} already imported (skipped)"
        + ("" if dry_run else f"; {report.imported:,} added")
    )
    if report.unused_columns:
        say(f"columns not used: {', '.join(report.unused_columns)}")
    return report


@app.command("export")
@friendly
def export(
    path: Annotated[Path, typer.Argument(help="The CSV to write (UTF-8 with BOM, Excel opens it)")],
) -> None:
    """Write every case category with its time limit and aliases to a CSV with Chinese headings."""
    with transaction() as conn:
        written = categories.export_csv(conn)
    path.write_text(written, encoding="utf-8")
    say(f"{written.count(chr(10)) - 1} categories written to {path}")


@app.command("import")
@friendly
def import_(
    path: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="A CSV as `export` writes it")
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check every row and tell what would change")
    ] = False,
) -> None:
    """Add and update the categories a CSV lists (time limits, names, aliases separated by 、),
    after checking every row; nothing changes unless all are good."""
    try:
        with transaction() as conn:
            report = categories.import_csv(conn, path.read_bytes(), actor(), dry_run)
    except categories.CategoriesRefused as refused:
        refuse_rows(refused)
    verb = "would change (dry run)" if dry_run else "changed"
    say(
        f"{report.rows} rows: {len(report.added)} added, {len(report.changed)} {verb}, "
        f"{report.unchanged} unchanged"
        + (f"; {', '.join(report.changed)}" if report.changed else "")
    )
    if report.kept:
        say(f"not in the file, kept as stored: {', '.join(report.kept)}")
