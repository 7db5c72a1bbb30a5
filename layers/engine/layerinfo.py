"""Read-side summaries of the registry's layers (titles, geometry, row counts)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from layers.engine.access import Viewer, area_clause
from layers.registry import LAYERS


def row_counts(conn: Connection, viewer: Viewer | None = None) -> dict[str, int]:
    """Exact number of rows in every layer table that the viewer may read."""
    counts = {}
    for layer in LAYERS.values():
        params: dict[str, Any] = {}
        where = area_clause(layer, viewer, params)
        sql = f'SELECT count(*) FROM "{layer.id}" AS t WHERE {where}'
        counts[layer.id] = int(conn.execute(text(sql), params).scalar_one())
    return counts


def layer_summaries(conn: Connection, viewer: Viewer | None = None) -> list[dict[str, Any]]:
    """One dictionary per layer: id, titles, geometry type, parent and the rows the viewer may read."""
    counts = row_counts(conn, viewer)
    return [
        {
            "id": layer.id,
            "title": layer.title_zh,
            "title_en": layer.title_en,
            "geometry": layer.geometry.value if layer.geometry else None,
            "parent": layer.parent,
            "count": counts[layer.id],
        }
        for layer in LAYERS.values()
    ]
