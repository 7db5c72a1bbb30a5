"""`citygrid units`: the handling units cases of each county may be dispatched to, from the
server's command line."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from api.cli_db import actor, transaction
from api.console import friendly, stdout
from layers.cases import units
from layers.places import counties

app = typer.Typer(
    help="Handling units (处置单位) of each county: grids' responsible units and those declared "
    "here.",
    no_args_is_help=True,
)
SOURCE_LABELS = {"grid": "网格责任单位", "declared": "管理员登记"}


@app.command("add")
@friendly
def add(
    name: Annotated[str, typer.Argument(help=f"The unit's name (1-{units.MAX_NAME} characters)")],
    county: Annotated[
        str,
        typer.Option(
            "--county", help="The six-digit code of the county whose cases it handles, e.g. 350404"
        ),
    ],
) -> None:
    """Declare a unit of a county, so its cases may be dispatched to it (a grid's responsible
    unit needs none)."""
    with transaction() as conn:
        unit = units.add(conn, name, county, actor())
    stdout.print(f"declared {unit.name} in {unit.adcode} {unit.county}")


@app.command("list")
@friendly
def list_units(
    county: Annotated[
        list[str] | None,
        typer.Option("--county", help="Only this county's units (repeat for several)"),
    ] = None,
) -> None:
    """The units cases may be dispatched to, by county, and where each comes from."""
    with transaction() as conn:
        held = tuple(counties.require_known(conn, county)) if county else None
        found = units.list_units(conn, held)
    table = Table(title="处置单位")
    table.add_column("县级行政区")
    table.add_column("名称")
    table.add_column("来源")
    for unit in found:
        table.add_row(
            f"{unit.adcode} {unit.county}",
            unit.name,
            "、".join(SOURCE_LABELS[s] for s in unit.sources),
        )
    stdout.print(table)
