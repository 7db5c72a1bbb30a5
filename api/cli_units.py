"""`citygrid units`: the handling units cases may be dispatched to, from the server's command line."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from api.cli_db import actor, transaction
from api.console import friendly, stdout
from layers import units

app = typer.Typer(
    help="Handling units (处置单位): grids' responsible units and those declared here.",
    no_args_is_help=True,
)
SOURCE_LABELS = {"grid": "网格责任单位", "declared": "管理员登记"}


@app.command("add")
@friendly
def add(
    name: Annotated[str, typer.Argument(help=f"The unit's name (1-{units.MAX_NAME} characters)")],
) -> None:
    """Declare a unit, so cases may be dispatched to it (a grid's responsible unit needs none)."""
    with transaction() as conn:
        unit = units.add(conn, name, actor())
    stdout.print(f"declared {unit.name}")


@app.command("list")
@friendly
def list_units() -> None:
    """Every unit cases may be dispatched to, and where it comes from."""
    with transaction() as conn:
        found = units.list_units(conn)
    table = Table(title="处置单位")
    table.add_column("名称")
    table.add_column("来源")
    for unit in found:
        table.add_row(unit.name, "、".join(SOURCE_LABELS[s] for s in unit.sources))
    stdout.print(table)
