"""The OpenAPI document in version 3.0, as OGC API - Features (conformance class oas30) asks,
with every error an operation can answer.

FastAPI writes OpenAPI 3.1, whose 3.1-only constructs here are `null` as a type (3.0 says
`nullable: true`) and numeric exclusive bounds (3.0 pairs `minimum` with a boolean flag).
FastAPI also documents 422 for invalid requests, which the error handler answers with 400; the
errors documented here come from the one error table instead, so a status added there is
documented on every operation without touching a route.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from api.collection_paths import add_collection_paths
from api.deps import JSON_TYPES, read_json_body
from api.errors import STATUS_BY_ERROR

DOCUMENT_PATH = "/api"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"  # the type OGC API clients look for
NULL = {"type": "null"}
ERROR_REF = {"$ref": "#/components/schemas/Error"}
ERROR_SCHEMA = {
    "type": "object",
    "required": ["code", "message", "message_en"],
    "properties": {
        "code": {"type": "string", "description": "machine code, e.g. invalid_parameter"},
        "message": {"type": "string", "description": "中文说明"},
        "message_en": {"type": "string", "description": "the same in English"},
    },
    "additionalProperties": True,
}
FRAMEWORK_STATUSES = {400, 401, 404}  # an invalid request, no credentials, an unknown resource
BODY_STATUSES = {411, 413, 415}  # only where a body is read
IF_MATCH_STATUSES = {412, 428}  # only where If-Match is read (428 only where it is required)
NO_NUL = "^[^\\x00]*$"  # text holding NUL is refused wherever it is sent
TEXT = {"type": "string", "pattern": NO_NUL}  # storable text
GEOMETRY_TYPES = ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon")


def _coordinates(depth: int) -> dict[str, Any]:
    """Numbers nested up to `depth` arrays deep (a MultiPolygon's are 4)."""
    inner: dict[str, Any] = {"type": "number"}
    for _ in range(depth):
        inner = {"type": "array", "items": {"anyOf": [{"type": "number"}, inner]}}
    return inner


def geometry_schema(*kinds: str) -> dict[str, Any]:
    """A GeoJSON geometry of one of these types (any type without arguments)."""
    return {
        "type": "object",
        "required": ["type", "coordinates"],
        "additionalProperties": False,
        "properties": {
            "type": {"type": "string", "enum": list(kinds or GEOMETRY_TYPES)},
            "coordinates": _coordinates(4),
        },
    }


def described_as(exact: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    """`json_schema_extra` replacing a free-form field's schema by `exact` (keeping its text)."""

    def document(schema: dict[str, Any]) -> None:
        description = schema.get("description")
        schema.clear()
        schema.update(exact, **({"description": description} if description else {}))

    return document


def as_geometry(*kinds: str) -> Callable[[dict[str, Any]], None]:
    """`json_schema_extra` of a model field holding a GeoJSON geometry of these types."""
    return described_as(geometry_schema(*kinds))


FEATURE = {
    "type": "object",
    "required": ["type"],
    "additionalProperties": False,
    "properties": {
        "type": {"type": "string", "enum": ["Feature"]},
        "geometry": {**geometry_schema(), "nullable": True},
        "properties": {
            "type": "object",
            "additionalProperties": {
                "nullable": True,
                "anyOf": [TEXT, {"type": "number"}, {"type": "boolean"}],
            },
        },
    },
}


def text(pattern: str = NO_NUL, nullable: bool = True, **more: Any) -> dict[str, Any]:
    """A text property of a body schema (nullable unless told)."""
    return {"type": "string", "pattern": pattern, "nullable": nullable, **more}


def json_body(schema: dict[str, Any]) -> dict[str, Any]:
    """A required request body in any of the JSON media types the server reads."""
    return {"required": True, "content": {t: {"schema": schema} for t in JSON_TYPES}}


FEATURE_COLLECTION = {
    "type": "object",
    "required": ["type", "features"],
    "properties": {
        "type": {"type": "string", "enum": ["FeatureCollection"]},
        "features": {"type": "array", "items": FEATURE},
    },
    "additionalProperties": False,
}
JSON_BODY = json_body(FEATURE)  # unless the route declares its own


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


def answers(*media_types: str, status: int = 200) -> dict[int | str, dict[str, Any]]:
    """The `responses` of a route whose body is built by hand, in one of these media types."""
    return {status: {"content": {m: {"schema": _body_schema(m)} for m in media_types}}}


def _body_schema(media_type: str) -> dict[str, Any]:
    if media_type.endswith(("/json", "+json")):
        return {"type": "object"}
    if media_type.startswith("text/"):
        return {"type": "string"}
    return {"type": "string", "format": "binary"}


def error_statuses() -> set[int]:
    """Every status an error can answer with: the error table's and the framework's (no 500)."""
    return {
        s for s in {*STATUS_BY_ERROR.values(), *FRAMEWORK_STATUSES} if s < 500 or s in (503, 504)
    }


def _reads_json_body(dependant: Dependant) -> bool:
    stack = [dependant]
    while stack:
        current = stack.pop()
        if current.call is read_json_body:
            return True
        stack.extend(current.dependencies)
    return False


def _if_match_parameters(operation: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        p
        for p in operation.get("parameters", [])
        if p.get("in") == "header" and str(p.get("name", "")).lower() == "if-match"
    ]


def _text_without_nul(node: Any) -> None:
    """Every free text in the document excludes NUL, which the server refuses everywhere."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, list):
            stack.extend(current)
        elif isinstance(current, dict):
            free = not ({"pattern", "enum", "format"} & set(current))
            if current.get("type") == "string" and free:
                current["pattern"] = NO_NUL
            stack.extend(current.values())


def _if_match_header(operation: dict[str, Any], required: bool) -> None:
    for parameter in _if_match_parameters(operation):
        parameter["required"] = required  # when required, a change without it is 428
        parameter["schema"] = {"type": "string", "minLength": 1, "pattern": NO_NUL}


def document_errors(
    operation: dict[str, Any], statuses: set[int], if_match_required: bool = False
) -> None:
    """Replace FastAPI's 422 by the errors the operation can answer, each with the error body."""
    responses = operation.setdefault("responses", {})
    responses.pop("422", None)
    for status in sorted(statuses):
        if status in BODY_STATUSES and "requestBody" not in operation:
            continue
        if status in IF_MATCH_STATUSES and not _if_match_parameters(operation):
            continue
        if status == 428 and not if_match_required:
            continue
        entry = responses.setdefault(str(status), {"description": HTTPStatus(status).phrase})
        entry.setdefault("content", {}).setdefault("application/json", {"schema": ERROR_REF})


def complete(app: FastAPI, document: dict[str, Any]) -> dict[str, Any]:
    """The document with raw JSON bodies declared and every operation's errors."""
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute):
            continue
        item = document["paths"].get(getattr(route, "path_format", ""), {})
        if not _reads_json_body(route.original_route.dependant):
            continue
        for method in getattr(route, "methods", None) or ():
            operation = item.get(method.lower())
            if operation is not None and "requestBody" not in operation:
                operation["requestBody"] = JSON_BODY
    statuses = error_statuses()
    required = bool(getattr(app.state, "editing", None) and app.state.editing.require_if_match)
    for item in document["paths"].values():
        for operation in item.values():
            _if_match_header(operation, required)
            document_errors(operation, statuses, required)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    add_collection_paths(document)
    _text_without_nul(document["paths"])
    _text_without_nul(schemas)
    schemas["Error"] = ERROR_SCHEMA
    return document


def install(app: FastAPI) -> None:
    """Serve the 3.0 document at /api (to /docs and OGC clients) in the OpenAPI media type."""
    build = app.openapi

    def openapi_30() -> dict[str, Any]:
        if app.openapi_schema is None or app.openapi_schema.get("openapi") != "3.0.3":
            app.openapi_schema = complete(app, as_openapi_30(build()))
        return app.openapi_schema

    app.openapi = openapi_30  # type: ignore[method-assign]

    def document() -> Response:
        body = json.dumps(app.openapi(), ensure_ascii=False, separators=(",", ":"))
        return Response(body, media_type=OPENAPI)

    app.add_api_route(DOCUMENT_PATH, document, include_in_schema=False)
