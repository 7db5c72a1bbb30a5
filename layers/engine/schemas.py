"""JSON Schemas of the registry's layers, titled in Chinese or English: the queryables
(OGC API - Features Part 3) and the schema of the returned features (Part 5)."""

from __future__ import annotations

from typing import Any, Literal

from layers.registry import LAYERS, Code, Field, FieldType, Layer

Lang = Literal["zh", "en"]
LANGUAGES: tuple[Lang, ...] = ("zh", "en")
DEFAULT_LANGUAGE: Lang = "zh"  # the bureaus read Chinese
JSON_SCHEMA = "https://json-schema.org/draft/2020-12/schema"
JSON_SCHEMA_TYPES: dict[FieldType, dict[str, str]] = {
    FieldType.TEXT: {"type": "string"},
    FieldType.INTEGER: {"type": "integer"},
    FieldType.REAL: {"type": "number"},
    FieldType.BOOLEAN: {"type": "boolean"},
    FieldType.DATE: {"type": "string", "format": "date"},
    FieldType.TIMESTAMP: {"type": "string", "format": "date-time"},
}
GEOMETRY_TITLE = {"zh": "几何", "en": "Geometry"}
ID_TITLE = {"zh": "编号", "en": "Id"}
PARENT_TITLE = {"zh": "所属{}", "en": "Parent ({})"}
TEMPORAL_ROLES = {1: ("primary-instant",), 2: ("primary-interval-start", "primary-interval-end")}


def other_language(lang: Lang) -> Lang:
    """The other of the two languages (descriptions carry the title in it)."""
    return "en" if lang == "zh" else "zh"


def layer_title(layer: Layer, lang: Lang) -> str:
    """The layer's title in `lang`."""
    return layer.title_zh if lang == "zh" else layer.title_en


def field_title(field: Field, lang: Lang) -> str:
    """The field's title in `lang`."""
    return field.label_zh if lang == "zh" else field.label_en


def code_label(code: Code, lang: Lang) -> str:
    """The label of a code value in `lang`."""
    return code.label_zh if lang == "zh" else code.label_en


def field_values(field: Field) -> dict[str, Any]:
    """The JSON Schema of a field's values: type, code list, pattern and bounds."""
    schema: dict[str, Any] = dict(JSON_SCHEMA_TYPES[field.type])
    if field.codes:
        schema["enum"] = list(field.code_values)
    if field.pattern:
        schema["pattern"] = field.pattern
    low, high = field.bounds
    if low is not None:
        schema["minimum"] = low
    if high is not None:
        schema["maximum"] = high
    return schema


def field_property(field: Field, lang: Lang) -> dict[str, Any]:
    """One field as a JSON Schema property: type, title, bounds and its code list with labels."""
    entry: dict[str, Any] = {
        "title": field_title(field, lang),
        "description": field_title(field, other_language(lang)),
        **field_values(field),
    }
    if field.codes:
        entry["oneOf"] = [{"const": c.value, "title": code_label(c, lang)} for c in field.codes]
    return entry


def _geometry(layer: Layer, lang: Lang) -> dict[str, Any]:
    assert layer.geometry is not None
    return {
        "title": GEOMETRY_TITLE[lang],
        "format": f"geometry-{layer.geometry.value.lower()}",
    }


def _document(layer: Layer, lang: Lang, url: str, props: dict[str, Any]) -> dict[str, Any]:
    return {
        "$schema": JSON_SCHEMA,
        "$id": url,
        "type": "object",
        "title": layer_title(layer, lang),
        "description": layer_title(layer, other_language(lang)),
        "properties": props,
    }


def queryables(layer: Layer, lang: Lang, url: str) -> dict[str, Any]:
    """The properties a filter may name (Part 3), titled in `lang`."""
    props: dict[str, Any] = {}
    if layer.geometry is not None:
        props["geom"] = _geometry(layer, lang)
    for f in layer.fields:
        props[f.name] = field_property(f, lang)
    return _document(layer, lang, url, props)


def _roles(layer: Layer) -> dict[str, dict[str, Any]]:
    """The `x-ogc-role` of the fields that have one (time and references to other layers)."""
    out: dict[str, dict[str, Any]] = dict(
        zip(
            layer.temporal,
            ({"x-ogc-role": r} for r in TEMPORAL_ROLES.get(len(layer.temporal), ())),
            strict=False,
        )
    )
    for f in layer.fields:
        target = (f.references or "").split(".")[0]
        if target in LAYERS:
            out[f.name] = {"x-ogc-role": "reference", "x-ogc-collectionId": target}
    return out


def feature_schema(layer: Layer, lang: Lang, url: str) -> dict[str, Any]:
    """The schema of the layer's features (Part 5): every property with its title and role."""
    props: dict[str, Any] = {
        "id": {"title": ID_TITLE[lang], "type": "integer", "x-ogc-role": "id", "readOnly": True}
    }
    if layer.geometry is not None:
        props["geom"] = _geometry(layer, lang) | {"x-ogc-role": "primary-geometry"}
    if layer.parent and layer.parent_key:
        parent = LAYERS[layer.parent]
        props[layer.parent_key] = {
            "title": PARENT_TITLE[lang].format(layer_title(parent, lang)),
            "description": PARENT_TITLE[other_language(lang)].format(
                layer_title(parent, other_language(lang))
            ),
            "type": "integer",
            "minimum": 1,
            "x-ogc-role": "reference",
            "x-ogc-collectionId": layer.parent,
        }
    roles = _roles(layer)
    for f in layer.fields:
        entry = field_property(f, lang) | roles.get(f.name, {})
        if f.derived:
            entry["readOnly"] = True
        props[f.name] = entry
    for seq, entry in enumerate(props.values(), start=1):
        entry["x-ogc-propertySeq"] = seq
    body = _document(layer, lang, url, props)
    body["required"] = [f.name for f in layer.fields if f.required]
    return body
