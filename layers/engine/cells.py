"""Spreadsheet cells that cannot run: text starting like a formula is neutralised (CSV injection)."""

from __future__ import annotations

import re
from typing import Any

# Excel, LibreOffice and Google Sheets start a formula (or a DDE call) with these characters.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def neutral(value: Any) -> Any:
    """A text value that a spreadsheet shows as text: a leading quote before a formula start.

    Anything else (numbers, None, dates, text that is just a signed number) is returned as it is.
    """
    if not isinstance(value, str) or not value.startswith(FORMULA_STARTS):
        return value
    if _NUMBER.fullmatch(value):
        return value
    return "'" + value
