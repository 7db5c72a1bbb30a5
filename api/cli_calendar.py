"""`citygrid calendar`: the working calendar deadlines are counted on — statutory holidays, 调休
working days and office hours, per county or for the whole deployment."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from api.cli_db import actor, transaction
from api.console import console, friendly, print_bad_rows, say, stdout
from api.settings import CalendarSettings
from layers.cases import workcalendar
from layers.cases.worktime import format_periods
from layers.places import counties

app = typer.Typer(
    help="The working calendar (工作日历): statutory holidays (放假) and 调休 working days (上班) "
    "that every case deadline counts, and each county's office hours.",
    no_args_is_help=True,
)
WEEKDAYS = "一二三四五六日"
CountyOption = Annotated[
    str | None,
    typer.Option(
        "--county",
        help="Six-digit code of a county whose own calendar this is (default: the deployment's)",
    ),
]


def _scope(county: str | None) -> str:
    return "全部署默认" if county is None else f"县级行政区 {county}"


@app.command("show")
@friendly
def show(
    year: Annotated[int, typer.Option("--year", min=1949, max=2200, help="The year, e.g. 2023")],
    county: CountyOption = None,
) -> None:
    """The holidays and 调休 working days of a year, and the office hours, in Chinese."""
    with transaction() as conn:
        if county is not None:
            counties.get(conn, county)
        days = workcalendar.listed(conn, year, county)
        periods = workcalendar.county_periods(conn, county, CalendarSettings().periods())
    table = Table(title=f"{year} 年工作日历（{_scope(county)}）")
    for column in ("日期", "星期", "类型", "名称", "来源"):
        table.add_column(column)
    for d in days:
        own = "本县" if d.adcode else "默认"
        table.add_row(
            d.day.isoformat(),
            f"周{WEEKDAYS[d.day.weekday()]}",
            workcalendar.KIND_LABELS[d.kind],
            d.name,
            f"{d.source}（{own}）",
        )
    stdout.print(table)
    stdout.print(f"上班时段：{format_periods(periods).replace(',', '，')}", highlight=False)
    if not days:
        console.print(
            f"[yellow]{year} 年未知：日历中没有该年的节假日，按周一至周五上班计算；"
            f"请用 citygrid calendar import 导入国务院办公厅的放假通知。[/]\n"
            f"[yellow]{year} is unknown: no holidays listed, Monday to Friday assumed.[/]"
        )


@app.command("import")
@friendly
def import_file(
    path: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            help="UTF-8 CSV with the headings 日期,类型,名称 — 类型 is 放假 or 上班, e.g. "
            "2023-10-02,放假,国庆节 and 2023-10-07,上班,国庆节",
        ),
    ],
    county: CountyOption = None,
) -> None:
    """Replace the holidays and 调休 working days of every year in the file (all or nothing)."""
    try:
        content = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        console.print(f"[red]citygrid: {path} is not UTF-8 / 文件不是 UTF-8 编码[/]")
        raise typer.Exit(1) from None
    try:
        with transaction() as conn:
            source = f"文件 {path.name}（{actor()}，{date.today().isoformat()}）"
            years = workcalendar.import_days(conn, content, source, county)
    except workcalendar.CalendarRefused as refused:
        print_bad_rows(refused.message_zh, refused.errors)
        console.print(f"[red]citygrid: {refused.message_en}[/]")
        raise typer.Exit(1) from None
    say(f"imported {', '.join(map(str, years))} into the calendar of {_scope(county)}")


@app.command("export")
@friendly
def export(
    county: CountyOption = None,
    year: Annotated[int | None, typer.Option("--year", help="Only this year")] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here (default: print)")
    ] = None,
) -> None:
    """The calendar in effect as a CSV that `citygrid calendar import` reads back."""
    with transaction() as conn:
        if county is not None:
            counties.get(conn, county)
        content = workcalendar.export_days(conn, county, year)
    if output is None:
        sys.stdout.write(content)
    else:
        output.write_text(content, encoding="utf-8")
        say(f"wrote {output}")


@app.command("hours")
@friendly
def hours(
    county: Annotated[str, typer.Option("--county", help="Six-digit code of the county")],
    periods: Annotated[
        str, typer.Argument(help="Office periods, e.g. 08:30-12:00,13:30-17:30 (summer hours)")
    ],
) -> None:
    """Set a county's office hours (working-hour deadlines count only these)."""
    with transaction() as conn:
        parsed = workcalendar.set_hours(conn, county, periods)
    say(f"office hours of {county}: {format_periods(parsed)}")
