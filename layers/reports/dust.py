"""The quarterly dust-control bulletin (扬尘治理督查通报) as a document: the quarter's
inspections, problems and work orders in total, by site type and by street, the worst sites and a
chart, with a summary written from the figures."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Connection

from layers.engine.access import Viewer
from layers.reports import charts, periods
from layers.reports import wording as w
from layers.reports.document import Document, Figure, Heading, Paragraph, Table
from layers.reports.dustfigures import MEASURES, SITE_TYPES, DustFigures, gather
from layers.reports.fonts import CjkFont
from layers.reports.monthfigures import one_county
from layers.reports.periods import Period


def title(county: str, quarter: Period) -> str:
    """某县城市管理局 2023年第二季度扬尘治理督查通报."""
    return f"{county}城市管理局 {quarter.name}扬尘治理督查通报"


def summary(f: DustFigures) -> str:
    """The opening paragraph, written from the figures."""
    t = f.total
    if not (t["inspections"] or t["issued"]):
        return f"{f.period.name}，{f.county.name}在册扬尘现场{t['sites']}个，本季度无督查记录和交办单。"
    text = (
        f"{f.period.name}，共督查扬尘现场{t['inspected_sites']}个（在册{t['sites']}个）"
        f"{t['inspections']}次，发现问题{t['problems']}个，下发交办单{t['issued']}份，"
        f"已整改{t['rectified']}份（其中按期{t['on_time']}份），逾期{t['overdue']}份。"
    )
    if t["issued"]:
        text += f"整改率{w.rate(t['rectified'] / t['issued'])}。"
    if f.worst:
        top = f.worst[0]
        text += f"发现问题最多的是{top['name']}（{top['problems']}个），请责任单位加强管控。"
    return text


def _table(caption: str, first: str, rows: list[dict[str, Any]], total: dict[str, Any]) -> Table:
    body = [(str(r["label"]), *(str(r[n]) for n, _ in MEASURES)) for r in rows]
    body.append(("合计", *(str(total[n]) for n, _ in MEASURES)))
    return Table(caption, (first, *(label for _, label in MEASURES)), tuple(body))


def _worst(f: DustFigures) -> Table:
    rows = tuple(
        (
            str(n),
            str(r["name"]),
            SITE_TYPES.get(r["site_type"], str(r["site_type"])),
            str(r["street_name"] or w.NONE),
            str(r["inspections"]),
            str(r["problems"]),
            str(r["issued"]),
            str(r["overdue"]),
        )
        for n, r in enumerate(f.worst, start=1)
    )
    header = (
        "序号",
        "项目名称",
        "现场类型",
        "街道/镇",
        "督查次数",
        "发现问题数",
        "交办单数",
        "逾期数",
    )
    return Table(f"表3 问题较多的{len(rows)}个现场", header, rows)


def build(
    conn: Connection, viewer: Viewer, quarter: Period, font: CjkFont, issued: date | None = None
) -> Document:
    """The dust-control bulletin of the viewer's one county."""
    county, limited = one_county(conn, viewer)
    f = gather(conn, county, limited, quarter)
    issued = issued or periods.today(county.time_zone)
    doc = Document(
        title=title(county.name, quarter),
        period=f"督查时段：{periods.day_zh(quarter.start)}至{periods.day_zh(quarter.end)}",
        issuer=f"{county.name}城市管理局　{periods.day_zh(issued)}印发",
    )
    doc.add(Heading("一、总体情况"), Paragraph(summary(f)))
    doc.add(
        Heading("二、按现场类型"), _table("表1 各类现场督查情况", "现场类型", f.by_type, f.total)
    )
    if f.by_type:
        png = charts.grouped_bars(
            font,
            [r["label"] for r in f.by_type],
            {
                "督查次数": [r["inspections"] for r in f.by_type],
                "发现问题数": [r["problems"] for r in f.by_type],
                "交办单数": [r["issued"] for r in f.by_type],
            },
            f"{quarter.name}各类现场督查情况",
        )
        doc.add(Figure("图1 各类现场督查次数、发现问题数和交办单数", png, 15.5))
    doc.add(
        Heading("三、按街道（镇）"),
        _table("表2 各街道（镇）督查情况", "街道/镇", f.by_street, f.total),
    )
    doc.add(Heading("四、重点现场"))
    if f.worst:
        doc.add(_worst(f))
    else:
        doc.add(Paragraph("本季度无督查或交办的现场。"))
    doc.add(
        Paragraph(
            "督查按督查日期、交办单按交办日期计入本季度；已整改指交办单已完成整改，逾期指逾期整改或"
            f"截至{periods.day_zh(issued)}超过整改期限仍未整改。",
            note=True,
        )
    )
    return doc
