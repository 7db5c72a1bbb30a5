"""Feature queries built from small clause helpers; PostGIS serialises the GeoJSON.

Identifiers come from the registry only and are quoted; every value is a bound parameter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, text

from layers.errors import BadQuery, FeatureNotFound, UnknownLayer
from layers.registry import LAYERS, STORAGE_SRID, Field, FieldType, Layer

MAX_LIMIT = 10_000
COORDINATE_DECIMALS = 7  # about 1 cm


@dataclass(frozen=True)
class Page:
    """A page of features: the GeoJSON text PostGIS built, and how many features it holds."""

    body: str
    returned: int

    def with_member(self, name: str, json_value: str) -> str:
        """The GeoJSON text with one more top-level member, without parsing it."""
        return f'{self.body[: self.body.rindex("}")]}, "{name}" : {json_value}}}'


@dataclass(frozen=True)
class BBox:
    """A longitude/latitude box in CGCS2000 (≈ CRS84 at map scale)."""

    west: float
    south: float
    east: float
    north: float


@dataclass
class ItemsQuery:
    """What `/collections/{id}/items` asks for."""

    layer: Layer
    bbox: BBox | None = None
    limit: int = 100
    offset: int = 0
    equals: dict[str, Any] = field(default_factory=dict)
    sortby: list[tuple[str, bool]] = field(default_factory=list)  # (field, descending)


def get_layer(layer_id: str) -> Layer:
    """The registry layer `layer_id`, or a 404-style error naming it."""
    try:
        return LAYERS[layer_id]
    except KeyError:
        raise UnknownLayer(
            f"There is no collection {layer_id!r}; see /collections.",
            f"不存在名为 {layer_id!r} 的图层，请查看 /collections。",
        ) from None


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def parse_value(f: Field, raw: str) -> Any:
    """Turn a query-string value into the field's type, refusing what does not fit."""
    try:
        if f.type is FieldType.INTEGER:
            return int(raw)
        if f.type is FieldType.REAL:
            return float(raw)
        if f.type is FieldType.DATE:
            return date.fromisoformat(raw)
        if f.type is FieldType.TIMESTAMP:
            return datetime.fromisoformat(raw)
        if f.type is FieldType.BOOLEAN:
            return {"true": True, "false": False}[raw.lower()]
    except (ValueError, KeyError):
        raise BadQuery(
            f"The value {raw!r} of {f.name} is not a {f.type.value}.",
            f"{f.label_zh}（{f.name}）的取值 {raw!r} 不是有效的{f.type.value}。",
        ) from None
    if f.codes and raw not in f.code_values:
        allowed = ", ".join(f.code_values)
        raise BadQuery(
            f"{raw!r} is not a code of {f.name}; allowed: {allowed}.",
            f"{raw!r} 不是{f.label_zh}（{f.name}）的有效代码，可选：{allowed}。",
        )
    return raw


def _properties(layer: Layer) -> str:
    pairs = ", ".join(f"'{f.name}', t.{_q(f.name)}" for f in layer.fields)
    return f"json_build_object({pairs})"


def _where(query: ItemsQuery, params: dict[str, Any]) -> str:
    clauses = ["TRUE"]
    if query.bbox is not None and query.layer.geometry is not None:
        clauses.append(f"t.geom && ST_MakeEnvelope(:west, :south, :east, :north, {STORAGE_SRID})")
        params.update(vars(query.bbox))
    for i, (name, value) in enumerate(sorted(query.equals.items())):
        query.layer.field(name)  # only registry names reach the SQL
        clauses.append(f"t.{_q(name)} = :eq_{i}")
        params[f"eq_{i}"] = value
    return " AND ".join(clauses)


def _order(query: ItemsQuery) -> str:
    terms = [f"t.{_q(name)} {'DESC' if desc else 'ASC'} NULLS LAST" for name, desc in query.sortby]
    return ", ".join([*terms, "t.id"])


def _feature(layer: Layer) -> str:
    geometry = (
        f"ST_AsGeoJSON(t.geom, {COORDINATE_DECIMALS}, 0)::json" if layer.geometry else "NULL::json"
    )
    return (
        f"json_build_object('type', 'Feature', 'id', t.id, 'geometry', {geometry}, "
        f"'properties', {_properties(layer)})"
    )


def items_sql(query: ItemsQuery) -> tuple[str, dict[str, Any]]:
    """SQL returning one text value: the page as a GeoJSON FeatureCollection."""
    params: dict[str, Any] = {"limit": query.limit, "offset": query.offset}
    sql = f"""
        SELECT json_build_object(
            'type', 'FeatureCollection',
            'features', coalesce(json_agg(page.feature ORDER BY page.n), '[]'::json),
            'numberReturned', count(*)
        )::text, count(*)
        FROM (
            SELECT row_number() OVER (ORDER BY {_order(query)}) AS n, {_feature(query.layer)} AS feature
            FROM {_q(query.layer.id)} AS t
            WHERE {_where(query, params)}
            ORDER BY {_order(query)}
            LIMIT :limit OFFSET :offset
        ) AS page
    """
    return sql, params


def fetch_items(conn: Connection, query: ItemsQuery) -> Page:
    """The page of features as GeoJSON text, serialised by PostGIS."""
    sql, params = items_sql(query)
    body, returned = conn.execute(text(sql), params).one()
    return Page(str(body), int(returned))


def fetch_item(conn: Connection, layer: Layer, feature_id: int) -> str:
    """One feature as GeoJSON text."""
    sql = f"SELECT {_feature(layer)}::text FROM {_q(layer.id)} AS t WHERE t.id = :feature_id"
    row = conn.execute(text(sql), {"feature_id": feature_id}).first()
    if row is None:
        raise FeatureNotFound(
            f"{layer.id} has no feature {feature_id}.",
            f"图层 {layer.title_zh} 中没有编号为 {feature_id} 的要素。",
        )
    return str(row[0])


def county_outline(conn: Connection, adcode: str | None = None) -> str:
    """The outline of the county: the union of today's street grids, as a GeoJSON Feature."""
    row = conn.execute(
        text(f"""
            SELECT json_build_object(
                'type', 'Feature', 'id', min(adcode),
                'geometry', ST_AsGeoJSON(ST_Union(geom), {COORDINATE_DECIMALS}, 0)::json,
                'properties', json_build_object('adcode', min(adcode))
            )::text
            FROM grids
            WHERE level = 'street' AND valid_to IS NULL AND (CAST(:adcode AS text) IS NULL OR adcode = :adcode)
        """),
        {"adcode": adcode},
    ).scalar_one()
    return str(row)
