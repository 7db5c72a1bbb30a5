"""The monthly bulletin (数字城管运行情况通报) as a document: key figures against the previous
month, the department ranking, the worst grids, a map and a trend chart, the overdue and
supervised cases, and a summary written from the figures."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection

from layers.engine.access import Viewer
from layers.reports import charts, maps, periods
from layers.reports import wording as w
from layers.reports.document import Document, Figure, Heading, Paragraph, Table
from layers.reports.fonts import CjkFont
from layers.reports.monthfigures import (
    KEY_FIGURES,
    LISTED,
    MAP_LEVEL,
    STATUS_LABELS,
    TREND_MONTHS,
    MonthFigures,
    gather,
    one_county,
)
from layers.reports.periods import Period


def title(county: str, month: Period) -> str:
    """某县城市管理局 2023年5月数字城管运行情况通报."""
    return f"{county}城市管理局 {month.name}数字城管运行情况通报"


def summary(f: MonthFigures) -> str:
    """The opening paragraph, written from the figures."""
    k, b = f.key, f.key_before
    if not any(k[name] for name in ("received", "registered", "closed", "due")):
        return f"{f.period.name}，{f.county.name}无案件数据：本月未受理、立案或结案案件，各项指标为零。"
    text = (
        f"{f.period.name}，{f.county.name}共受理案件{k['received']}件，"
        f"{w.trend_words(k['received'], b['received'])}；立案{k['registered']}件，"
        f"{w.trend_words(k['registered'], b['registered'])}；结案{k['closed']}件。"
        f"本月应结案{k['due']}件，结案率{w.rate(k['closed_rate'])}，"
        f"按期结案率{w.rate(k['on_time_rate'])}，超期{k['overdue']}件。"
    )
    graded = [r for r in f.departments if r["grade"]]
    if graded:
        counts = Counter(r["grade"] for r in graded)
        spread = "，".join(f"{g}级{counts[g]}个" for g in "ABCDE" if counts[g])
        text += f"参加考核的处置单位{len(graded)}个，其中{spread}。"
        failing = [str(r["label"]) for r in graded if r["grade"] == "E"]
        if failing:
            text += f"{'、'.join(failing)}评为E级，请限期整改。"
    if f.supervised["count"]:
        text += f"本月督办案件{f.supervised['count']}件。"
    return text


def _key_table(f: MonthFigures) -> Table:
    rows = []
    for name, label in KEY_FIGURES:
        is_rate = name.endswith("_rate")
        shown = w.rate if is_rate else (w.number if name.endswith("_hours") else w.count)
        now, before = f.key[name], f.key_before[name]
        rows.append((label, shown(now), shown(before), w.change(now, before, is_rate)))
    return Table(
        "表1 主要指标",
        ("指标", f.period.name, f"上月（{f.previous.name}）", "环比"),
        tuple(rows),
    )


def _ranking(f: MonthFigures) -> Table:
    rows = tuple(
        (
            str(n),
            str(r["label"]),
            w.count(r["due"]),
            w.count(r["handled"]),
            w.rate(r["on_time_handled_rate"]),
            w.rate(r["rework_rate"]),
            w.count(r["supervised"]),
            w.number(r["score"]),
            r["grade"] or w.NONE,
        )
        for n, r in enumerate(f.departments, start=1)
    )
    header = (
        "排名",
        "处置单位",
        "应处置数",
        "处置数",
        "按期处置率",
        "返工率",
        "督办数",
        "综合得分",
        "等级",
    )
    return Table("表2 处置部门考核排名", header, rows)


def _worst(f: MonthFigures) -> Table:
    rows = tuple(
        (
            str(r["key"]),
            str(r["label"] or ""),
            w.count(r["received"]),
            w.count(r["due"]),
            w.rate(r["closed_rate"]),
            w.rate(r["on_time_closed_rate"]),
            w.number(r["score"]),
            r["grade"] or w.NONE,
        )
        for r in f.worst_grids
    )
    header = (
        "网格编码",
        "网格名称",
        "受理数",
        "应结案数",
        "结案率",
        "按期结案率",
        "综合得分",
        "等级",
    )
    return Table(f"表3 综合得分最低的{len(rows)}个单元网格", header, rows)


def _day_time(value: datetime | str | None) -> str:
    """A moment (or its ISO text, as /stats/overdue gives it) to the minute, as printed."""
    if value is None:
        return w.NONE
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.strftime("%Y-%m-%d %H:%M")


def _case_list(caption: str, cases: list[dict[str, Any]], moment: str, label: str) -> Table:
    rows = tuple(
        (
            str(c["id"]),
            str(c.get("category") or ""),
            str(c.get("address") or ""),
            str(c.get("unit") or ""),
            STATUS_LABELS.get(str(c["status"]), str(c["status"])),
            _day_time(c[moment]),
        )
        for c in cases
    )
    return Table(caption, ("案件编号", "案件类别", "地址", "处置单位", "状态", label), rows)


def _more(total: int, shown: int) -> list[Paragraph]:
    return [Paragraph(f"另有{total - shown}件未列出。", note=True)] if total > shown else []


def _trend_picture(f: MonthFigures, font: CjkFont) -> Figure:
    span = periods.months_back(f.period, TREND_MONTHS)
    months: list[date] = []
    day = span.start
    while day <= f.period.start:
        months.append(day)
        day = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    series: dict[str, list[int]] = defaultdict(lambda: [0] * len(months))
    index = {m.isoformat(): n for n, m in enumerate(months)}
    for row in f.trend:
        if row["period"] in index:
            series[str(row["class_name"] or row["class"])][index[row["period"]]] += int(
                row["cases"]
            )
    png = charts.trend(
        font,
        [f"{m.year % 100:02d}年{m.month}月" for m in months],
        dict(series),
        "近12个月案件数（按大类）",
    )
    return Figure(f"图1 {span.name}案件趋势", png, 15.5)


def _map_picture(conn: Connection, f: MonthFigures, viewer: Viewer, font: CjkFont) -> Figure:
    shapes = maps.grid_shapes(conn, MAP_LEVEL, f.period.end, viewer)
    areas = [(shape, float(f.map_values.get(code, 0))) for code, shape in shapes.items()]
    png = charts.choropleth(
        font,
        areas,
        maps.county_outline(conn, viewer),
        f"{f.county.name}各社区立案数",
        "立案数（件）",
    )
    return Figure(f"图2 {f.period.name}各社区网格立案数分布", png, 14.0)


def build(
    conn: Connection,
    viewer: Viewer,
    month: Period,
    font: CjkFont,
    weights: dict[str, Any],
    issued: date | None = None,
) -> Document:
    """The monthly bulletin of the viewer's one county, scored with the deployment's weights."""
    county, limited = one_county(conn, viewer)
    f = gather(conn, county, limited, month, weights)
    issued = issued or periods.today(county.time_zone)
    doc = Document(
        title=title(f.county.name, month),
        period=f"统计时段：{periods.day_zh(month.start)}至{periods.day_zh(month.end)}",
        issuer=f"{f.county.name}城市管理局　{periods.day_zh(issued)}印发",
    )
    doc.add(Heading("一、总体情况"), Paragraph(summary(f)), _key_table(f))
    doc.add(_trend_picture(f, font))
    doc.add(Heading("二、处置部门考核"))
    if f.departments:
        doc.add(_ranking(f))
    else:
        doc.add(Paragraph("本月无应处置或督办案件，处置部门不参加排名。"))
    doc.add(
        Paragraph(
            "综合得分按 GB/T 30428.4 的考核指标加权计算：A级≥90分，B级≥75分，C级≥60分，D级≥40分，"
            "其余为E级。",
            note=True,
        )
    )
    doc.add(Heading("三、区域情况"), _map_picture(conn, f, limited, font))
    if f.worst_grids:
        doc.add(_worst(f))
    else:
        doc.add(Paragraph("本月各单元网格均无可考核的案件。"))
    overdue = f.overdue
    doc.add(Heading("四、超期未结案件"))
    doc.add(Paragraph(f"截至{periods.day_zh(issued)}，超期未结案件共{overdue['count']}件。"))
    if overdue["cases"]:
        doc.add(
            _case_list(
                "表4 超期未结案件（超期时间最长的在前）", overdue["cases"], "deadline", "处置时限"
            )
        )
        doc.add(*_more(overdue["count"], len(overdue["cases"])))
    sup = f.supervised
    doc.add(Heading("五、督办案件"))
    doc.add(Paragraph(f"{month.name}共督办案件{sup['count']}件。"))
    if sup["cases"]:
        doc.add(_case_list("表5 本月督办案件", sup["cases"], "at", "督办时间"))
        doc.add(*_more(sup["count"], len(sup["cases"])))
    doc.add(
        Paragraph(
            f"数据来源：{f.county.name}数字城管平台；指标口径与统计接口（/stats/indicators、"
            f"/stats/evaluation、/stats/overdue）一致。列表最多列出{LISTED}件。",
            note=True,
        )
    )
    return doc
