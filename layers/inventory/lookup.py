"""Finding a component by its ID in whichever layer holds it: points, lines or areas
(`registry.COMPONENT_LAYERS`). Routing, indicators and photos read components through these
subqueries only, so a new component layer is found everywhere at once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from layers.engine import access
from layers.engine.access import Viewer
from layers.registry import COMPONENT_LAYERS, COMPONENTS, Layer
from layers.store.versions import is_current

# the columns every component layer has (the shared standard attributes)
COLUMNS = ("id", "adcode", "geom", *(f.name for f in COMPONENTS.fields))


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _branch(layer: Layer, where: str) -> str:
    columns = ", ".join(f"t.{_q(c)}" for c in COLUMNS)
    return f"SELECT CAST('{layer.id}' AS text) AS layer_id, {columns} FROM {_q(layer.id)} AS t WHERE {where}"


def current(viewer: Viewer | None, params: dict[str, Any]) -> str:
    """A subquery of the current components of every component layer that `viewer` may read
    (None: every one), with `layer_id` naming the layer of each row."""
    return " UNION ALL ".join(
        _branch(
            layer,
            f"{is_current(layer, 't')} AND "
            + (access.area_clause(layer, viewer, params) if viewer is not None else "TRUE"),
        )
        for layer in COMPONENT_LAYERS
    )


def versions() -> str:
    """A subquery of every version of every component (as reported cases name them, by county
    and ID: a case keeps the unit its component had then)."""
    return " UNION ALL ".join(_branch(layer, "TRUE") for layer in COMPONENT_LAYERS)


def layer_of(layer_id: str) -> Layer:
    """The component layer called `layer_id` (as `layer_id` of a subquery row names it)."""
    return next(layer for layer in COMPONENT_LAYERS if layer.id == layer_id)


def find(conn: Connection, code: str, viewer: Viewer | None) -> Any:
    """The current component with this ID that `viewer` may read (None: any), or None: its id,
    county, layer, subclass and geometry (GeoJSON)."""
    params: dict[str, Any] = {"code": code}
    return conn.execute(
        text(f"""
        SELECT t.id, t.adcode, t.layer_id, t.component_code, t.subclass_code,
               ST_AsGeoJSON(t.geom, 9)::jsonb AS geometry
        FROM ({current(viewer, params)}) AS t
        WHERE t.component_code = :code
        ORDER BY t.id DESC LIMIT 1
    """),
        params,
    ).first()
