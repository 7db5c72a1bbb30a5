"""The bulletin as PDF (reportlab), drawn with the embedded CJK TrueType font."""

from __future__ import annotations

import io
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import cm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Image, KeepTogether, SimpleDocTemplate, Spacer, TableStyle
from reportlab.platypus import Paragraph as Para
from reportlab.platypus import Table as PdfTable

from layers.reports.document import Document, Figure, Heading, Paragraph, Table
from layers.reports.fonts import CjkFont

FONT_NAME = "CitygridCJK"


def _register(font: CjkFont) -> str:
    name = f"{FONT_NAME}-{abs(hash((str(font.path), font.index)))}"
    if name not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(name, str(font.path), subfontIndex=font.index))
    return name


def _styles(face: str) -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("body", fontName=face, fontSize=11, leading=17, wordWrap="CJK")
    return {
        "title": ParagraphStyle("title", base, fontSize=17, leading=24, alignment=TA_CENTER),
        "period": ParagraphStyle("period", base, alignment=TA_CENTER, spaceAfter=10),
        "heading": ParagraphStyle("heading", base, fontSize=13, leading=20, spaceBefore=8),
        "body": ParagraphStyle("body1", base, firstLineIndent=22),
        "note": ParagraphStyle("note", base, fontSize=8.5, leading=12),
        "cell": ParagraphStyle("cell", base, fontSize=8.5, leading=11),
        "caption": ParagraphStyle("caption", base, fontSize=9.5, alignment=TA_CENTER),
    }


def _span(text: str) -> int:
    """The printed width of a text in half-width characters (a Chinese one counts two)."""
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in text)


def _widths(block: Table) -> list[float]:
    """Column widths sharing the page by the widest cell of each column (within bounds)."""
    spans = [
        min(max(max(_span(row[k]) for row in (block.header, *block.rows)) + 2, 6), 30)
        for k in range(len(block.header))
    ]
    return [(A4[0] - 4 * cm) * s / sum(spans) for s in spans]


def _table(block: Table, styles: dict[str, ParagraphStyle], face: str) -> Any:
    cell = styles["cell"]
    data = [[Para(escape(v), cell) for v in row] for row in (block.header, *block.rows)]
    table = PdfTable(data, colWidths=_widths(block), repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef5")),
                ("FONTNAME", (0, 0), (-1, -1), face),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ]
        )
    )
    return KeepTogether([Para(escape(block.caption), styles["heading"]), table])


def render(document: Document, font: CjkFont) -> bytes:
    """The document as PDF bytes, with the issuer in the header and page numbers below."""
    face = _register(font)
    styles = _styles(face)

    def page(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(face, 8.5)
        canvas.drawString(2 * cm, A4[1] - 1.2 * cm, document.issuer)
        canvas.drawCentredString(A4[0] / 2, 1.2 * cm, f"第 {doc.page} 页")
        canvas.restoreState()

    story: list[Any] = [
        Para(escape(document.title), styles["title"]),
        Para(escape(document.period), styles["period"]),
    ]
    for block in document.blocks:
        if isinstance(block, Heading):
            story.append(Para(escape(block.text), styles["heading"]))
        elif isinstance(block, Paragraph):
            story.append(Para(escape(block.text), styles["note" if block.note else "body"]))
        elif isinstance(block, Table):
            story.append(_table(block, styles, face))
        elif isinstance(block, Figure):
            picture = Image(io.BytesIO(block.png))
            ratio = picture.imageHeight / picture.imageWidth
            picture.drawWidth = block.width_cm * cm
            picture.drawHeight = block.width_cm * cm * ratio
            story += [picture, Para(escape(block.caption), styles["caption"]), Spacer(1, 6)]
    out = io.BytesIO()
    pdf = SimpleDocTemplate(
        out, pagesize=A4, leftMargin=2 * cm, rightMargin=2 * cm, title=document.title
    )
    pdf.build(story, onFirstPage=page, onLaterPages=page)
    return out.getvalue()
