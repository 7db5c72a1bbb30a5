"""OGC API - Features: conformance, collections, queryables, items (Parts 1, 2 and 3)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from api.auth import ViewerDep, current_viewer
from api.deps import (
    CRS_PATTERN,
    FILTER_LANGS,
    BBoxDep,
    ConnectionDep,
    CrsDep,
    DatetimeDep,
    EngineDep,
    LayerDep,
)
from api.openapi import answers
from layers import features, tiles
from layers.crs import CRS84, STORAGE, parse_crs, supported_uris
from layers.errors import BadQuery
from layers.features import MAX_LIMIT, ItemsQuery
from layers.registry import LAYERS, FieldType, Layer

router = APIRouter(dependencies=[Depends(current_viewer)])
public = APIRouter()
STREAM_ABOVE = 1000  # features: larger pages are streamed
GEOJSON = "application/geo+json"
ITEM_PARAMS = {
    "bbox",
    "bbox-crs",
    "after",
    "limit",
    "offset",
    "sortby",
    "f",
    "datetime",
    "crs",
    "properties",
    "filter",
    "filter-lang",
    "filter-crs",
}
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/ogcapi-features-5/1.0/conf/sortables",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/temporal-functions",
]
JSON_SCHEMA_TYPES = {
    FieldType.TEXT: {"type": "string"},
    FieldType.INTEGER: {"type": "integer"},
    FieldType.REAL: {"type": "number"},
    FieldType.BOOLEAN: {"type": "boolean"},
    FieldType.DATE: {"type": "string", "format": "date"},
    FieldType.TIMESTAMP: {"type": "string", "format": "date-time"},
}


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@public.get("/conformance", summary="Conformance classes / 符合性声明")
def conformance() -> dict[str, list[str]]:
    """The OGC conformance classes this API implements."""
    return {"conformsTo": CONFORMANCE}


def _collection(layer: Layer, base: str, extent: dict[str, Any] | None = None) -> dict[str, Any]:
    href = f"{base}/collections/{layer.id}"
    out: dict[str, Any] = {
        "id": layer.id,
        "title": layer.title_zh,
        "description": layer.title_en,
        "itemType": "feature",
        "crs": supported_uris() if layer.geometry else [CRS84],
        "storageCrs": "http://www.opengis.net/def/crs/EPSG/0/4490",
        "links": [
            {"rel": "self", "href": href, "type": "application/json", "title": layer.title_zh},
            {"rel": "items", "href": f"{href}/items", "type": GEOJSON, "title": "要素"},
            {
                "rel": "http://www.opengis.net/def/rel/ogc/1.0/queryables",
                "href": f"{href}/queryables",
                "type": "application/schema+json",
                "title": "可查询属性",
            },
        ],
    }
    if extent is not None:
        out["extent"] = extent
    return out


@router.get("/collections", summary="Collections / 图层列表")
def collections(request: Request, conn: ConnectionDep, viewer: ViewerDep) -> dict[str, Any]:
    """Every layer of the registry as a collection, with the extent of what the viewer may read."""
    base = _base(request)
    return {
        "collections": [
            _collection(layer, base, features.extent(conn, layer, viewer))
            for layer in LAYERS.values()
        ],
        "links": [{"rel": "self", "href": f"{base}/collections", "type": "application/json"}],
    }


@router.get("/collections/{collection_id}", summary="One collection / 图层")
def collection(
    layer: LayerDep, request: Request, conn: ConnectionDep, viewer: ViewerDep
) -> dict[str, Any]:
    """One layer's description, with the extent (space, time) of what the viewer may read."""
    return _collection(layer, _base(request), features.extent(conn, layer, viewer))


@router.get(
    "/collections/{collection_id}/queryables",
    summary="Queryables / 可查询属性",
    response_class=Response,
    responses=answers("application/schema+json"),
)
def queryables(layer: LayerDep, request: Request) -> Response:
    """The properties a filter may name, as JSON Schema."""
    props: dict[str, Any] = {}
    if layer.geometry is not None:
        props["geom"] = {"title": "几何", "format": f"geometry-{layer.geometry.value.lower()}"}
    for f in layer.fields:
        entry: dict[str, Any] = {
            "title": f.label_zh,
            "description": f.label_en,
            **JSON_SCHEMA_TYPES[f.type],
        }
        if f.codes:
            entry["enum"] = list(f.code_values)
        low, high = f.bounds
        if low is not None:
            entry["minimum"] = low
        if high is not None:
            entry["maximum"] = high
        props[f.name] = entry
    body = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{_base(request)}/collections/{layer.id}/queryables",
        "type": "object",
        "title": layer.title_zh,
        "properties": props,
    }
    return Response(json.dumps(body, ensure_ascii=False), media_type="application/schema+json")


def _sortby(layer: Layer, raw: str | None) -> list[tuple[str, bool]]:
    terms = []
    for term in filter(None, (raw or "").split(",")):
        name = term.strip().lstrip("+-")
        _field_or_400(layer, name, "sortby")
        terms.append((name, term.strip().startswith("-")))
    return terms


def _field_or_400(layer: Layer, name: str, parameter: str) -> None:
    try:
        layer.field(name)
    except KeyError:
        raise BadQuery(
            f"{parameter} names {name!r}, which {layer.id} does not have.",
            f"{parameter} 中的 {name!r} 不是图层 {layer.id} 的字段。",
            code="unknown_property",
        ) from None


def property_names(layer: Layer, raw: str | None) -> list[str] | None:
    if raw is None:
        return None
    names = [n.strip() for n in raw.split(",") if n.strip()]
    for name in names:
        _field_or_400(layer, name, "properties")
    return names


def field_equalities(
    layer: Layer, request: Request, known: set[str] = ITEM_PARAMS
) -> dict[str, Any]:
    equals = {}
    for name, raw in request.query_params.items():
        if name in known:
            continue
        try:
            f = layer.field(name)
        except KeyError:
            raise BadQuery(
                f"Unknown parameter {name!r}: {layer.id} has no such field.",
                f"未知参数 {name!r}：图层 {layer.id} 没有该字段。",
            ) from None
        equals[name] = features.parse_value(f, raw)
    return equals


@router.get(
    "/collections/{collection_id}/items",
    summary="Features / 要素",
    response_class=Response,
    responses=answers(GEOJSON),
)
def items(
    layer: LayerDep,
    conn: ConnectionDep,
    request: Request,
    viewer: ViewerDep,
    bbox: BBoxDep,
    crs: CrsDep,
    time: DatetimeDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    after: Annotated[int | None, Query(ge=0, description="Paging cursor of next links")] = None,
    sortby: Annotated[str | None, Query(description="field,-field")] = None,
    properties: Annotated[str | None, Query(description="field,field")] = None,
    filter_: Annotated[str | None, Query(alias="filter", description="CQL2 filter")] = None,
    filter_lang: Annotated[str, Query(alias="filter-lang", pattern=FILTER_LANGS)] = "cql2-text",
    filter_crs: Annotated[str | None, Query(alias="filter-crs", pattern=CRS_PATTERN)] = None,
) -> Response:
    """Features in `bbox` and `datetime`, filtered by CQL2 and field=value, one page at a time."""
    query = ItemsQuery(
        layer,
        bbox,
        limit,
        offset,
        field_equalities(layer, request),
        _sortby(layer, sortby),
        time,
        property_names(layer, properties),
        crs,
        filter_,
        filter_lang,
        parse_crs(filter_crs, "filter-crs") if filter_crs else STORAGE,
        after,
        viewer,
    )
    matched, estimated = features.count_matched(conn, query)
    query.few_matches = matched <= features.FEW_MATCHES
    headers = {"Content-Crs": crs.header}

    def members(returned: int, last_id: int | None) -> dict[str, str]:
        out = {
            "numberMatched": str(matched),
            "links": _links(
                request, query, features.Page("", returned, last_id), matched, estimated
            ),
            "timeStamp": json.dumps(_now()),
        }
        return out | ({"numberMatchedIsEstimate": "true"} if estimated else {})

    if limit > STREAM_ABOVE:  # large pages go out as PostGIS writes them, never whole in memory
        sql, params = features.rows_sql(query)

        def tail(returned: int, last_id: int | None) -> str:
            return ", ".join(f'"{k}" : {v}' for k, v in members(returned, last_id).items())

        stream = features.stream_items(request.app.state.engine, sql, params, tail)
        return StreamingResponse(stream, media_type=GEOJSON, headers=headers)
    page = features.fetch_items(conn, query)
    return Response(
        page.with_members(members(page.returned, page.last_id)), media_type=GEOJSON, headers=headers
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _page_url(request: Request, **changes: str) -> str:
    params = {
        k: v for k, v in request.query_params.items() if k not in ("offset", "after")
    } | changes
    return f"{_base(request)}{request.url.path}?{urlencode(params)}"


def _links(
    request: Request, query: ItemsQuery, page: features.Page, matched: int, estimated: bool
) -> str:
    """self, next and prev: keyset cursors in id order (fast at any depth), offsets when sorted."""
    links = [{"rel": "self", "href": str(request.url), "type": GEOJSON, "title": "本页"}]
    more = page.returned == query.limit and (estimated or query.offset + page.returned < matched)
    limit = str(query.limit)
    if more and not query.sortby and query.offset == 0:
        links.append(
            {
                "rel": "next",
                "href": _page_url(request, after=str(page.last_id), limit=limit),
                "type": GEOJSON,
                "title": "下一页",
            }
        )
    elif more:
        links.append(
            {
                "rel": "next",
                "href": _page_url(request, offset=str(query.offset + query.limit), limit=limit),
                "type": GEOJSON,
                "title": "下一页",
            }
        )
    if query.offset > 0:
        links.append(
            {
                "rel": "prev",
                "href": _page_url(
                    request, offset=str(max(0, query.offset - query.limit)), limit=limit
                ),
                "type": GEOJSON,
                "title": "上一页",
            }
        )
    return json.dumps(links, ensure_ascii=False)


@router.get(
    "/collections/{collection_id}/items/{feature_id}",
    summary="One feature / 单个要素",
    response_class=Response,
    responses=answers(GEOJSON),
)
def item(
    layer: LayerDep,
    feature_id: int,
    conn: ConnectionDep,
    crs: CrsDep,
    viewer: ViewerDep,
    request: Request,
) -> Response:
    """One feature by id (404 when it lies outside what the viewer may read)."""
    body, etag = features.fetch_item(conn, layer, feature_id, crs, viewer)
    collection = f"{_base(request)}/collections/{layer.id}"
    links = [
        {"rel": "self", "href": str(request.url), "type": GEOJSON, "title": "本要素"},
        {
            "rel": "collection",
            "href": collection,
            "type": "application/json",
            "title": layer.title_zh,
        },
    ]
    linked = features.Page(body, 1).with_members({"links": json.dumps(links, ensure_ascii=False)})
    return Response(
        linked, media_type=GEOJSON, headers={"Content-Crs": crs.header, "ETag": f'"{etag}"'}
    )


@router.get(
    "/county",
    summary="County outline / 行政区轮廓",
    response_class=Response,
    responses=answers(GEOJSON),
)
def county(conn: ConnectionDep) -> Response:
    """The county's outline (union of the current street grids)."""
    return Response(features.county_outline(conn), media_type=GEOJSON)


MVT = "application/vnd.mapbox-vector-tile"


@router.get(
    "/collections/{collection_id}/tiles/WebMercatorQuad/{z}/{x}/{y}",
    summary="Vector tile / 矢量瓦片",
    response_class=Response,
    responses={200: {"content": {MVT: {}}}, 304: {"description": "Not modified"}},
)
def tile(
    layer: LayerDep,
    z: Annotated[int, Path(ge=0, le=tiles.MAX_ZOOM)],
    x: Annotated[int, Path(ge=0)],
    y: Annotated[int, Path(ge=0)],
    engine: EngineDep,
    request: Request,
    viewer: ViewerDep,
) -> Response:
    """One Mapbox vector tile of the layer as the viewer may see it (ETag, 304 when current)."""
    if layer.geometry is None:
        raise BadQuery(
            f"{layer.id} has no geometry, so no tiles.",
            f"图层 {layer.title_zh} 没有几何，不提供瓦片。",
        )
    state = request.app.state
    found = tiles.serve_tile(engine, layer, z, x, y, state.tile_cache, state.layer_versions, viewer)
    # What a tile holds depends on who asks, and a browser keeps it under its URL only: no-cache
    # makes it ask every time with the credentials of whoever is signed in now (a 304 only when
    # that viewer's tile has the same bytes: the ETag is a digest of them); Vary and private keep
    # it out of shared caches and apart for each sign-in.
    headers = {
        "ETag": found.etag,
        "Cache-Control": "private, no-cache",
        "Vary": "Authorization, Cookie",
    }
    if request.headers.get("if-none-match") == found.etag:
        return Response(status_code=304, headers=headers)
    return Response(found.data, media_type=MVT, headers=headers)
