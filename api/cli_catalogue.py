"""`citygrid catalogue`: the catalogue of components and events of a county, as a CSV or XLSX file
a bureau edits (its own limits, criteria and departments; its local subclasses)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli_db import actor, transaction
from api.console import friendly, refuse_rows, say
from layers.cases import catalogue

app = typer.Typer(
    help="The catalogue of components and events (管理部件和事件): export and import per county.",
    no_args_is_help=True,
)

CountyOption = Annotated[
    str | None, typer.Option("--county", help="The county (6-digit code) whose catalogue it is")
]


@app.command("export")
@friendly
def export(
    path: Annotated[
        Path, typer.Argument(help="The file to write: .xlsx, or .csv (UTF-8 with BOM)")
    ],
    county: CountyOption = None,
) -> None:
    """Write the catalogue (with the county's own edits and local subclasses when --county is
    given, else the standard one) with Chinese headings."""
    with transaction() as conn:
        if county is not None:
            catalogue.known_county(conn, county)
        data = catalogue.export_file(conn, county, path.suffix.lower() == ".xlsx")
    path.write_bytes(data)
    say(f"catalogue{f' of {county}' if county else ''} written to {path}")


@app.command("import")
@friendly
def import_(
    path: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, help="A .csv or .xlsx as `export` writes it"),
    ],
    county: Annotated[
        str, typer.Option("--county", help="The county (6-digit code) whose catalogue it is")
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check every row and tell what would change")
    ] = False,
) -> None:
    """Keep the county's limits, criteria and departments of standard subclasses and add or
    update its local subclasses, after checking every row; nothing changes unless all are good.
    Standard codes and names cannot change; a new code is a local subclass."""
    try:
        with transaction() as conn:
            report = catalogue.import_file(
                conn, county, path.read_bytes(), path.suffix.lower() == ".xlsx", actor(), dry_run
            )
    except catalogue.CatalogueRefused as refused:
        refuse_rows(refused)
    verb = "would change (dry run)" if dry_run else "changed"
    say(
        f"{report.rows} rows: {len(report.added)} local subclasses added, "
        f"{len(report.changed)} {verb}, {report.unchanged} unchanged"
        + (f"; {', '.join(report.changed)}" if report.changed else "")
    )
