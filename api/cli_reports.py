"""`citygrid report`: the bulletins (通报) as Word or PDF files, as the API gives them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli_db import actor, transaction
from api.console import friendly, say

app = typer.Typer(
    help="The bulletins (通报) a bureau circulates: the monthly case bulletin and the quarterly "
    "dust-control bulletin, as Word (docx) or PDF files.",
    no_args_is_help=True,
)
CountyOption = Annotated[
    str | None,
    typer.Option(
        "--county",
        help="Six-digit code of the county (needed when the deployment holds several)",
    ),
]
FormatOption = Annotated[str, typer.Option("--format", help="docx (Word) or pdf")]
OutOption = Annotated[
    Path | None,
    typer.Option("--out", help="The file to write (default: the bulletin's Chinese title)"),
]


def _write(kind: str, raw_period: str, county: str | None, fmt: str, out: Path | None) -> None:
    """Build one bulletin for the deployment's operator and write it."""
    # the rendering libraries load slowly: only this command imports them
    from api.settings import EvaluationSettings, ReportSettings
    from layers.cases import evalweights
    from layers.engine.access import Viewer
    from layers.places import counties
    from layers.registry import Role
    from layers.reports import dust, fonts, monthly, output, periods

    period = periods.month(raw_period) if kind == "monthly" else periods.quarter(raw_period)
    output.check_format(fmt)
    font = fonts.find(ReportSettings().font)
    with transaction() as conn:
        viewer = counties.narrow(conn, Viewer(actor(), Role.ADMIN), counties.parse_codes(county))
        if kind == "monthly":
            weights = evalweights.load(EvaluationSettings().evaluation_weights)
            document = monthly.build(conn, viewer, period, font, weights)
        else:
            document = dust.build(conn, viewer, period, font)
    target = out or Path(output.file_name(document, fmt))
    target.write_bytes(output.render(document, fmt, font))
    say(f"写入 / wrote {target}（{document.title}）")


@app.command("monthly")
@friendly
def monthly_report(
    month: Annotated[str, typer.Option("--month", help="The month, YYYY-MM, e.g. 2023-05")],
    county: CountyOption = None,
    fmt: FormatOption = "docx",
    out: OutOption = None,
) -> None:
    """The monthly bulletin (数字城管运行情况通报): key figures against the previous month, the
    department ranking with grades, the worst grids, a map, a trend chart, the overdue and
    supervised cases."""
    _write("monthly", month, county, fmt, out)


@app.command("dust")
@friendly
def dust_report(
    quarter: Annotated[str, typer.Option("--quarter", help="The quarter, YYYY-Qn, e.g. 2023-Q2")],
    county: CountyOption = None,
    fmt: FormatOption = "docx",
    out: OutOption = None,
) -> None:
    """The quarterly dust-control bulletin (扬尘治理督查通报): inspections, problems and work
    orders by site type and by street, the sites with most problems and a chart."""
    _write("dust", quarter, county, fmt, out)
