"""`citygrid units`: the directory of units cases of each county are dispatched to, from the
server's command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from api.cli_db import actor, transaction
from api.console import friendly, refuse_rows, say, stdout
from layers.cases import unitimport, units
from layers.places import counties

app = typer.Typer(
    help="The directory of units (单位名录) of each county: departments, enterprises, 街道 and "
    "社区 that receive cases.",
    no_args_is_help=True,
)
SOURCE_LABELS = {"grid": "网格责任单位", "declared": "管理员登记"}
CountyOption = Annotated[
    str,
    typer.Option(
        "--county", help="The six-digit code of the county whose cases it handles, e.g. 350404"
    ),
]


@app.command("add")
@friendly
def add(
    name: Annotated[str, typer.Argument(help=f"The unit's name (1-{units.MAX_NAME} characters)")],
    county: CountyOption,
    unit_type: Annotated[
        str,
        typer.Option(
            "--type",
            help="department/主管部门, enterprise/企业, street/街道, community/社区 or other/其他",
        ),
    ] = "department",
    credit_code: Annotated[
        str | None, typer.Option("--credit-code", help="统一社会信用代码 (18 characters)")
    ] = None,
    contact: Annotated[str | None, typer.Option("--contact", help="Contact person")] = None,
    phone: Annotated[str | None, typer.Option("--phone", help="Contact phone")] = None,
) -> None:
    """Add a unit to a county's directory, so its cases may be dispatched to it."""
    entry = units.NewUnit(name, unit_type, credit_code, contact, phone)
    with transaction() as conn:
        unit = units.add(conn, entry, county, actor())
    stdout.print(f"declared {unit.name} in {unit.adcode} {unit.county} (id {unit.id})")


@app.command("list")
@friendly
def list_units(
    county: Annotated[
        list[str] | None,
        typer.Option("--county", help="Only this county's units (repeat for several)"),
    ] = None,
) -> None:
    """The directory: every unit by county, with its type, credit code and contact."""
    with transaction() as conn:
        held = tuple(counties.require_known(conn, county)) if county else None
        found = units.list_units(conn, held)
    table = Table(title="单位名录")
    for column in (
        "编号",
        "县级行政区",
        "名称",
        "类型",
        "统一社会信用代码",
        "联系人",
        "联系电话",
        "状态",
    ):
        table.add_column(column)
    for unit in found:
        table.add_row(
            str(unit.id),
            f"{unit.adcode} {unit.county}",
            unit.name,
            units.TYPES[unit.type],
            unit.credit_code or "",
            unit.contact_person or "",
            unit.contact_phone or "",
            "启用" if unit.active else "停用",
            "、".join(SOURCE_LABELS[s] for s in unit.sources),
        )
    stdout.print(table)


@app.command("import")
@friendly
def import_(
    path: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            help="An XLSX or CSV with the headings 单位名称, 统一社会信用代码, 类型, 联系人, 联系电话",
        ),
    ],
    county: CountyOption,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check every row and tell what would change")
    ] = False,
) -> None:
    """Add the county's units a spreadsheet lists, or update those it names (by name or credit
    code); nothing changes unless every row is good."""
    try:
        with transaction() as conn:
            report = unitimport.import_units(conn, path, county, actor(), dry_run)
    except unitimport.UnitsRefused as refused:
        refuse_rows(refused)
    verb = "would change (dry run)" if dry_run else "changed"
    say(
        f"{report.rows} rows: {len(report.added)} added, {len(report.changed)} {verb}, "
        f"{report.unchanged} unchanged"
    )
