"""`citygrid routing`: a county's routing table (派遣规则) to and from a CSV file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli_db import actor, transaction
from api.console import friendly, refuse_rows, say
from layers.cases import routingrules

app = typer.Typer(
    help="Routing rules (派遣规则): which unit cases of a subclass in an area go to.",
    no_args_is_help=True,
)
CountyOption = Annotated[
    str, typer.Option("--county", help="The six-digit code of the county (GB/T 2260), e.g. 350404")
]


@app.command("import")
@friendly
def import_(
    path: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            help="A CSV (UTF-8, BOM welcome, or GBK) with the headings 小类 (code, name or "
            "alias), 区域网格编码 (a grid of any level; empty: the whole county), 处置单位, 说明",
        ),
    ],
    county: CountyOption,
) -> None:
    """Replace the county's routing rules with the file's; nothing changes unless every row is
    good (a known subclass, a current grid of the county, an active unit of its directory)."""
    try:
        with transaction() as conn:
            report = routingrules.import_rules(conn, path, county, actor())
    except routingrules.RulesRefused as refused:
        refuse_rows(refused)
    say(f"{report.rows} rules of {county} imported; {report.replaced} former rules replaced")


@app.command("export")
@friendly
def export(
    path: Annotated[Path, typer.Argument(dir_okay=False, help="The CSV file to write")],
    county: CountyOption,
) -> None:
    """Write the county's routing rules as a CSV (UTF-8 with BOM) that `import` reads back."""
    with transaction() as conn:
        table = routingrules.export_rules(conn, county)
    path.write_text(table, encoding="utf-8-sig")
    say(f"{table.count(chr(10)) - 1} rules of {county} written to {path}")
