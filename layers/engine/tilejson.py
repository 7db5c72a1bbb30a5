"""A layer's vector tiles described for tile clients: TileJSON 3.0 and the MBTiles-style
`metadata.json` that GDAL's MVT driver reads beside a `{z}/{x}/{y}.pbf` tile tree."""

from __future__ import annotations

import json
from typing import Any

from layers.engine.tiles import MAX_ZOOM
from layers.registry import FieldType, Layer

WORLD = (-180.0, -85.0511287798066, 180.0, 85.0511287798066)
MVT_TYPES = {FieldType.INTEGER: "Number", FieldType.REAL: "Number", FieldType.BOOLEAN: "Boolean"}


def vector_layer(layer: Layer) -> dict[str, Any]:
    """The one source layer of a collection's tiles, with the attributes a tile may carry."""
    fields = {"id": "Number"}
    for name in layer.popup_fields:
        fields[name] = MVT_TYPES.get(layer.field(name).type, "String")
    if layer.cluster_below_zoom is not None:
        fields["count"] = "Number"  # below that zoom, points come as counted cells
    return {
        "id": layer.id,
        "description": layer.title_zh,
        "minzoom": 0,
        "maxzoom": MAX_ZOOM,
        "fields": fields,
    }


def _bounds(extent: dict[str, Any]) -> list[float]:
    boxes = extent.get("spatial", {}).get("bbox") or [WORLD]
    return [float(v) for v in boxes[0]]


def tilejson(layer: Layer, tileset_url: str, extent: dict[str, Any]) -> dict[str, Any]:
    """TileJSON 3.0.0 of a collection's tiles at `tileset_url` (…/tiles/WebMercatorQuad)."""
    bounds = _bounds(extent)
    return {
        "tilejson": "3.0.0",
        "name": layer.id,
        "description": f"{layer.title_zh} / {layer.title_en}",
        "scheme": "xyz",
        "tiles": [f"{tileset_url}/{{z}}/{{x}}/{{y}}.pbf"],
        "minzoom": 0,
        "maxzoom": MAX_ZOOM,
        "bounds": bounds,
        "center": [(bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2, 14],
        "vector_layers": [vector_layer(layer)],
    }


def mbtiles_metadata(layer: Layer, extent: dict[str, Any]) -> dict[str, Any]:
    """The same as MBTiles metadata: bounds as text and the vector layers as a JSON string."""
    bounds = _bounds(extent)
    return {
        "name": layer.id,
        "description": f"{layer.title_zh} / {layer.title_en}",
        "format": "pbf",
        "minzoom": "0",
        "maxzoom": str(MAX_ZOOM),
        "bounds": ",".join(f"{v:.7f}" for v in bounds),
        "center": f"{(bounds[0] + bounds[2]) / 2:.7f},{(bounds[1] + bounds[3]) / 2:.7f},14",
        "json": json.dumps({"vector_layers": [vector_layer(layer)]}, ensure_ascii=False),
    }
