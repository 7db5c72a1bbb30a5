"""Read-side summaries of the registry's layers (titles, geometry, row counts)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from layers.registry import LAYERS
from layers.tables import TABLES


def row_counts(conn: Connection) -> dict[str, int]:
    """Exact number of rows in every layer table."""
    return {
        layer_id: int(conn.execute(select(func.count()).select_from(TABLES[layer_id])).scalar_one())
        for layer_id in LAYERS
    }


def layer_summaries(conn: Connection) -> list[dict[str, Any]]:
    """One dictionary per layer: id, titles, geometry type, parent and row count."""
    counts = row_counts(conn)
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
