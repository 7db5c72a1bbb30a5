"""The formats a bulletin is rendered in, their media types and the file names it is sent as."""

from __future__ import annotations

from urllib.parse import quote

from layers.errors import BadQuery
from layers.reports import pdffile, wordfile
from layers.reports.document import Document
from layers.reports.fonts import CjkFont

MEDIA_TYPES = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "pdf": "application/pdf",
}


def check_format(raw: str) -> str:
    """docx or pdf, else a clear error."""
    if raw not in MEDIA_TYPES:
        raise BadQuery(
            f"format must be docx or pdf (got {raw!r}).",
            f"格式（format）必须是 docx 或 pdf（收到 {raw!r}）。",
            code="report_format",
        )
    return raw


def render(document: Document, fmt: str, font: CjkFont) -> bytes:
    """The document's bytes in the format."""
    if check_format(fmt) == "pdf":
        return pdffile.render(document, font)
    return wordfile.render(document)


def file_name(document: Document, fmt: str) -> str:
    """The Chinese file name: the title without spaces."""
    return f"{document.title.replace(' ', '')}.{fmt}"


def disposition(document: Document, fmt: str, fallback: str) -> str:
    """Content-Disposition with an ASCII name and the Chinese one (RFC 5987/6266)."""
    return (
        f'attachment; filename="{fallback}.{fmt}"; '
        f"filename*=UTF-8''{quote(file_name(document, fmt), safe='')}"
    )
