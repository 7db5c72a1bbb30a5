"""Statistics tables as CSV: Chinese headers, empty cells for nulls, a byte-order mark."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any


def table_csv(columns: Sequence[tuple[str, str]], rows: Iterable[dict[str, Any]]) -> str:
    """The rows as CSV under the columns' Chinese labels ((name, label) pairs), with a byte-order
    mark so spreadsheets read UTF-8."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([label for _, label in columns])
    for row in rows:
        writer.writerow(["" if row[name] is None else row[name] for name, _ in columns])
    return "\ufeff" + out.getvalue()
