"""The OpenAPI document in version 3.0, as OGC API - Features (conformance class oas30) asks.

FastAPI writes OpenAPI 3.1, whose 3.1-only constructs here are `null` as a type (3.0 says
`nullable: true`) and numeric exclusive bounds (3.0 pairs `minimum` with a boolean flag).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

NULL = {"type": "null"}


def _convert(node: Any) -> Any:
    if isinstance(node, list):
        return [_convert(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = {key: _convert(value) for key, value in node.items()}
    for key in ("anyOf", "oneOf"):
        options = node.get(key)
        if isinstance(options, list) and NULL in options:
            rest = [o for o in options if o != NULL]
            del node[key]
            if len(rest) == 1 and "$ref" in rest[0]:
                node["allOf"] = rest
            elif len(rest) == 1:
                node.update(rest[0])
            else:
                node[key] = rest
            node["nullable"] = True
    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        value = node.get(bound)
        if isinstance(value, int | float) and not isinstance(value, bool):
            node[limit] = value
            node[bound] = True
    if isinstance(node.get("type"), list) and "null" in node["type"]:
        kinds = [k for k in node["type"] if k != "null"]
        node["type"] = kinds[0] if len(kinds) == 1 else kinds
        node["nullable"] = True
    return node


def as_openapi_30(document: dict[str, Any]) -> dict[str, Any]:
    """A FastAPI (3.1) document rewritten as OpenAPI 3.0.3."""
    converted: dict[str, Any] = _convert(document)
    converted["openapi"] = "3.0.3"
    return converted


def install(app: FastAPI) -> None:
    """Serve the 3.0 document at the app's openapi_url (and to /docs)."""
    build = app.openapi

    def openapi_30() -> dict[str, Any]:
        if app.openapi_schema is None or app.openapi_schema.get("openapi") != "3.0.3":
            app.openapi_schema = as_openapi_30(build())
        return app.openapi_schema

    app.openapi = openapi_30  # type: ignore[method-assign]
