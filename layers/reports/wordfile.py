"""The bulletin as a Word document (python-docx): the title, tables, pictures, page numbers."""

from __future__ import annotations

import io

import docx
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Cm, Pt
from docx.text.paragraph import Paragraph as DocxParagraph
from docx.text.run import Run

from layers.reports.document import Document, Figure, Heading, Paragraph, Table

FONT = "微软雅黑"  # what Word on a bureau's PC shows; any CJK font stands in elsewhere
TITLE_FONT = "方正小标宋简体"


def _east_asian(run: Run, name: str, size: float) -> None:
    run.font.name = name
    run.font.size = Pt(size)
    fonts = run._element.get_or_add_rPr().get_or_add_rFonts()
    fonts.set(qn("w:eastAsia"), name)


def _text(paragraph: DocxParagraph, text: str, size: float = 12, bold: bool = False) -> None:
    run = paragraph.add_run(text)
    run.bold = bold
    _east_asian(run, FONT, size)


def _page_number(paragraph: DocxParagraph) -> None:
    """第 N 页 with Word's PAGE field."""
    paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
    _text(paragraph, "第 ", 9)
    field = OxmlElement("w:fldSimple")
    field.set(qn("w:instr"), "PAGE")
    inner = OxmlElement("w:r")
    shown = OxmlElement("w:t")
    shown.text = "1"
    inner.append(shown)
    field.append(inner)
    paragraph._p.append(field)
    _text(paragraph, " 页", 9)


def _table(doc: object, block: Table) -> None:
    caption = doc.add_paragraph()  # type: ignore[attr-defined]
    _text(caption, block.caption, 11, bold=True)
    table = doc.add_table(rows=1, cols=len(block.header))  # type: ignore[attr-defined]
    table.style = "Table Grid"
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    for cell, name in zip(table.rows[0].cells, block.header, strict=True):
        _text(cell.paragraphs[0], name, 10, bold=True)
    for row in block.rows:
        cells = table.add_row().cells
        for cell, value in zip(cells, row, strict=True):
            _text(cell.paragraphs[0], value, 10)


def render(document: Document) -> bytes:
    """The document as DOCX bytes."""
    doc = docx.Document()
    section = doc.sections[0]
    section.page_width, section.page_height = Cm(21), Cm(29.7)
    section.left_margin = section.right_margin = Cm(2.5)
    _text(section.header.paragraphs[0], document.issuer, 9)
    _page_number(section.footer.paragraphs[0])
    title = doc.add_paragraph()
    title.alignment = WD_ALIGN_PARAGRAPH.CENTER
    run = title.add_run(document.title)
    run.bold = True
    _east_asian(run, TITLE_FONT, 18)
    period = doc.add_paragraph()
    period.alignment = WD_ALIGN_PARAGRAPH.CENTER
    _text(period, document.period, 12)
    for block in document.blocks:
        if isinstance(block, Heading):
            _text(doc.add_paragraph(), block.text, 14, bold=True)
        elif isinstance(block, Paragraph):
            paragraph = doc.add_paragraph()
            if not block.note:
                paragraph.paragraph_format.first_line_indent = Pt(24)
            _text(paragraph, block.text, 9 if block.note else 12)
        elif isinstance(block, Table):
            _table(doc, block)
        elif isinstance(block, Figure):
            doc.add_picture(io.BytesIO(block.png), width=Cm(block.width_cm))
            doc.paragraphs[-1].alignment = WD_ALIGN_PARAGRAPH.CENTER
            caption = doc.add_paragraph()
            caption.alignment = WD_ALIGN_PARAGRAPH.CENTER
            _text(caption, block.caption, 10)
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()
