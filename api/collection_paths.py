"""Each collection's items path spelled out in the OpenAPI document, with its queryables declared
as query parameters.

OGC API - Features Part 3 (queryables-query-parameters) lets a client filter by `field=value`.
GDAL's OAPIF driver learns which fields it may send from the parameters of the items operation
at `/collections/<id>/items` (and `filter-lang=cql-text` from its enum); the fields differ per
layer, so the templated path cannot state them. The concrete paths copy every operation of the
templated one, so the document stays true of every method on them.
"""

from __future__ import annotations

import copy
from typing import Any

from layers.engine.schemas import field_values
from layers.registry import LAYERS, Field, Layer

ITEMS = "/collections/{collectionId}/items"


def _field_parameter(f: Field) -> dict[str, Any]:
    return {
        "name": f.name,
        "in": "query",
        "required": False,
        "description": f"{f.label_zh} ({f.label_en}): features whose {f.name} equals this value",
        "schema": field_values(f),
    }


def _operation(generic: dict[str, Any], layer: Layer, method: str) -> dict[str, Any]:
    operation = copy.deepcopy(generic)
    operation["parameters"] = [
        p for p in operation.get("parameters", []) if p.get("name") != "collectionId"
    ]
    if method in ("get", "head"):
        operation["parameters"] += [_field_parameter(f) for f in layer.fields]
    if "operationId" in operation:
        operation["operationId"] = f"{operation['operationId']}_{layer.id}"
    operation["summary"] = f"{operation.get('summary', '')} ({layer.id})".strip()
    return operation


def add_collection_paths(document: dict[str, Any]) -> None:
    """Add `/collections/<id>/items` for every layer, after the templated path's operations."""
    generic = document["paths"].get(ITEMS)
    if generic is None:
        return
    for layer in LAYERS.values():
        document["paths"][f"/collections/{layer.id}/items"] = {
            method: _operation(operation, layer, method) for method, operation in generic.items()
        }
