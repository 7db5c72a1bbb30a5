"""Versions kept on edit (`Versioning.kept_on_edit`): before a row of such a layer changes, the
version it is now is kept as a row of its own, ended on the day of the change, and the row
itself starts that day. The row keeps its id, so clients go on editing the same feature; the
layer read as of an earlier day (`datetime=` on items, `valid_on`) shows what was then.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, text

from layers.errors import StateConflict
from layers.registry import Layer
from layers.store.db import BUREAU_TIMEZONE
from layers.store.tables import layer_table

_BOOKKEEPING = ("id", "created_at", "updated_at")


def today() -> date:
    """The bureau's date now."""
    return datetime.now(ZoneInfo(BUREAU_TIMEZONE)).date()


def keeps_versions(layer: Layer) -> bool:
    """Whether changes to the layer's rows keep the versions they replace."""
    return layer.versioned is not None and layer.versioned.kept_on_edit


def refuse_ended(conn: Connection, layer: Layer, ids: list[int]) -> None:
    """Refuse a change to an ended version of a layer keeping versions: it is history."""
    versioning = layer.versioned
    if versioning is None or not versioning.kept_on_edit or not ids:
        return
    ended = conn.execute(
        text(
            f'SELECT min(id) FROM "{layer.id}" WHERE id = ANY(:ids) '
            f'AND "{versioning.end}" IS NOT NULL'
        ),
        {"ids": ids},
    ).scalar()
    if ended is not None:
        raise StateConflict(
            f"Feature {ended} of {layer.id} is an ended version (history): change the current one.",
            f"要素 {ended} 是{layer.title_zh}的历史版本，不能修改：请修改其当前版本。",
            code="version_ended",
        )


def keep(conn: Connection, layer: Layer, ids: list[int], day: date | None = None) -> None:
    """Keep the current version of each row as an ended one and start the row on `day` (today);
    a row started on that day already changes in place. An ended version is history: refused."""
    versioning = layer.versioned
    if versioning is None or not versioning.kept_on_edit or not ids:
        return
    refuse_ended(conn, layer, ids)
    start, end = f'"{versioning.start}"', f'"{versioning.end}"'
    table = f'"{layer.id}"'
    params = {"ids": ids, "day": day or today()}
    columns = [
        f'"{c.name}"'
        for c in layer_table(layer).columns
        if c.name not in _BOOKKEEPING and c.name != versioning.end
    ]
    listed = ", ".join(columns)
    conn.execute(
        text(f"""
        INSERT INTO {table} ({listed}, {end})
        SELECT {listed}, :day FROM {table} WHERE id = ANY(:ids) AND {start} < :day
    """),
        params,
    )
    conn.execute(
        text(f"UPDATE {table} SET {start} = :day WHERE id = ANY(:ids) AND {start} < :day"), params
    )
