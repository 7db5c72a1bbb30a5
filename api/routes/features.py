"""OGC API - Features: conformance, collections, queryables, schemas, items (Parts 1, 2, 3 and 5;
writes of Part 4 are in api/routes/editing.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from api.auth import ViewerDep, current_viewer
from api.deps import (
    CRS_PATTERN,
    BBoxDep,
    ConnectionDep,
    CountyViewerDep,
    CrsDep,
    DatetimeDep,
    EngineDep,
    FilterLang,
    LangDep,
    LayerDep,
)
from api.language import language_headers
from api.openapi import answers
from api.streaming import ClosingStream
from layers.engine import features, fieldvalues, schemas, tiles
from layers.engine.crs import CRS84, STORAGE, Crs, parse_crs, supported_uris
from layers.engine.features import MAX_LIMIT, ItemsQuery
from layers.engine.schemas import Lang, layer_title, other_language
from layers.errors import BadQuery
from layers.places import counties
from layers.registry import LAYERS, Layer

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
    # Part 4: POST, PUT, DELETE and PATCH (JSON merge patch) on items, GeoJSON features
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/update",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/features",
    "http://www.opengis.net/spec/ogcapi-features-5/1.0/conf/schemas",
    "http://www.opengis.net/spec/ogcapi-features-5/1.0/conf/core-roles-features",
    "http://www.opengis.net/spec/ogcapi-features-5/1.0/conf/sortables",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/temporal-functions",
]
SCHEMA_JSON = "application/schema+json"
LINK_TITLES = {
    "zh": {"items": "要素", "queryables": "可查询属性", "schema": "要素模式"},
    "en": {"items": "Features", "queryables": "Queryables", "schema": "Schema of the features"},
}


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@public.get("/conformance", summary="Conformance classes / 符合性声明")
def conformance() -> dict[str, list[str]]:
    """The OGC conformance classes this API implements."""
    return {"conformsTo": CONFORMANCE}


def _collection(
    layer: Layer, base: str, lang: Lang, extent: dict[str, Any] | None = None
) -> dict[str, Any]:
    href = f"{base}/collections/{layer.id}"
    words = LINK_TITLES[lang]
    out: dict[str, Any] = {
        "id": layer.id,
        "title": layer_title(layer, lang),
        "description": layer_title(layer, other_language(lang)),
        "itemType": "feature",
        "crs": supported_uris() if layer.geometry else [CRS84],
        "storageCrs": "http://www.opengis.net/def/crs/EPSG/0/4490",
        "links": [
            {
                "rel": "self",
                "href": href,
                "type": "application/json",
                "title": layer_title(layer, lang),
            },
            {"rel": "items", "href": f"{href}/items", "type": GEOJSON, "title": words["items"]},
            {
                "rel": "http://www.opengis.net/def/rel/ogc/1.0/queryables",
                "href": f"{href}/queryables",
                "type": SCHEMA_JSON,
                "title": words["queryables"],
            },
            {
                "rel": "http://www.opengis.net/def/rel/ogc/1.0/schema",
                "href": f"{href}/schema",
                "type": SCHEMA_JSON,
                "title": words["schema"],
            },
        ],
    }
    if extent is not None:
        out["extent"] = extent
    return out


@router.get("/collections", summary="Collections / 图层列表")
def collections(
    request: Request, response: Response, conn: ConnectionDep, viewer: ViewerDep, lang: LangDep
) -> dict[str, Any]:
    """Every layer of the registry as a collection, with the extent of what the viewer may read."""
    base = _base(request)
    response.headers.update(language_headers(lang))
    return {
        "collections": [
            _collection(layer, base, lang, features.extent(conn, layer, viewer))
            for layer in LAYERS.values()
        ],
        "links": [{"rel": "self", "href": f"{base}/collections", "type": "application/json"}],
    }


@router.get("/collections/{collectionId}", summary="One collection / 图层")
def collection(
    layer: LayerDep,
    request: Request,
    response: Response,
    conn: ConnectionDep,
    viewer: ViewerDep,
    lang: LangDep,
) -> dict[str, Any]:
    """One layer's description, with the extent (space, time) of what the viewer may read."""
    response.headers.update(language_headers(lang))
    return _collection(layer, _base(request), lang, features.extent(conn, layer, viewer))


def _schema_response(body: dict[str, Any], lang: Lang) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False),
        media_type=SCHEMA_JSON,
        headers=language_headers(lang),
    )


@router.get(
    "/collections/{collectionId}/queryables",
    summary="Queryables / 可查询属性",
    response_class=Response,
    responses=answers(SCHEMA_JSON),
)
def queryables(layer: LayerDep, request: Request, lang: LangDep) -> Response:
    """The properties a filter may name, as JSON Schema titled in the language asked for."""
    url = f"{_base(request)}/collections/{layer.id}/queryables"
    return _schema_response(schemas.queryables(layer, lang, url), lang)


@router.get(
    "/collections/{collectionId}/schema",
    summary="Schema of the features / 要素模式",
    response_class=Response,
    responses=answers(SCHEMA_JSON),
)
def feature_schema(layer: LayerDep, request: Request, lang: LangDep) -> Response:
    """Every property of the features (Part 5): title, type, code labels, role."""
    url = f"{_base(request)}/collections/{layer.id}/schema"
    return _schema_response(schemas.feature_schema(layer, lang, url), lang)


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
        equals[name] = fieldvalues.parse(f, raw, fieldvalues.QUERY)
    return equals


@router.get(
    "/collections/{collectionId}/items",
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
    filter_lang: Annotated[FilterLang, Query(alias="filter-lang")] = "cql2-text",
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
    result = features.find_items(conn, query, STREAM_ABOVE)
    headers = {"Content-Crs": crs.header}

    def members(paging: features.Paging) -> dict[str, str]:
        return {"links": _links(request, paging), "timeStamp": json.dumps(_now())}

    if result.rows is not None:  # large pages go out as PostGIS writes them, never whole in memory
        first, rest = result.chunks(members)
        return ClosingStream(first, rest, media_type=GEOJSON, headers=headers)
    return Response(result.body(members), media_type=GEOJSON, headers=headers)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _page_url(request: Request, **changes: str) -> str:
    params = {
        k: v for k, v in request.query_params.items() if k not in ("offset", "after")
    } | changes
    return f"{_base(request)}{request.url.path}?{urlencode(params)}"


def _links(request: Request, paging: features.Paging) -> str:
    """self, and next and prev where the engine says the neighbouring pages start."""
    links = [{"rel": "self", "href": str(request.url), "type": GEOJSON, "title": "本页"}]
    for rel, changes, title in (("next", paging.next, "下一页"), ("prev", paging.prev, "上一页")):
        if changes is not None:
            href = _page_url(request, **changes)
            links.append({"rel": rel, "href": href, "type": GEOJSON, "title": title})
    return json.dumps(links, ensure_ascii=False)


@router.get(
    "/collections/{collectionId}/items/{feature_id}",
    summary="One feature / 单个要素",
    response_class=Response,
    responses=answers(GEOJSON),
)
async def item(
    layer: LayerDep,
    feature_id: int,
    engine: EngineDep,
    crs: CrsDep,
    viewer: ViewerDep,
    request: Request,
) -> Response:
    """One feature by id (404 when it lies outside what the viewer may read)."""
    # one trip to a worker thread for the connection and the query, not one per dependency
    body, etag = await run_in_threadpool(features.read_item, engine, layer, feature_id, crs, viewer)
    return item_response(request, layer, crs, body, etag)


def item_response(request: Request, layer: Layer, crs: Crs, body: bytes, etag: str) -> Response:
    """A feature's answer: its GeoJSON with the links to itself and its collection, its CRS and
    ETag (also the answer of `api.fast_item`)."""
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
    linked = features.with_members(body, {"links": json.dumps(links, ensure_ascii=False)})
    return Response(
        linked, media_type=GEOJSON, headers={"Content-Crs": crs.header, "ETag": f'"{etag}"'}
    )


for _path, _endpoint in (
    ("/collections/{collectionId}/items", items),
    ("/collections/{collectionId}/items/{feature_id}", item),
):  # HEAD: the headers of the GET, for clients that check before they read
    router.add_api_route(
        _path,
        _endpoint,
        methods=["HEAD"],
        summary="Headers of the GET / 仅响应头",
        response_class=Response,
        responses=answers(GEOJSON),
    )


@router.get(
    "/county",
    summary="County outline / 行政区轮廓",
    response_class=Response,
    responses=answers(GEOJSON),
)
def county(conn: ConnectionDep, viewer: CountyViewerDep) -> Response:
    """The official boundaries of the viewer's counties (or of those asked with `county=`)."""
    return Response(counties.outline(conn, viewer), media_type=GEOJSON)


MVT = "application/vnd.mapbox-vector-tile"


TILE = "/collections/{collectionId}/tiles/WebMercatorQuad/{z}/{x}/{y}"
TILE_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"content": {MVT: {}}},
    304: {"description": "Not modified"},
}


# Registered last, so that {y} does not take "3.pbf" for a tile row: the suffixed paths (tile
# clients such as GDAL's MVT driver recognise a tile by them) come first.
@router.get(TILE, summary="Vector tile / 矢量瓦片", response_class=Response, responses=TILE_ANSWERS)
@router.get(
    TILE + ".pbf",
    summary="Vector tile (.pbf) / 矢量瓦片",
    response_class=Response,
    responses=TILE_ANSWERS,
)
@router.get(
    TILE + ".mvt",
    summary="Vector tile (.mvt) / 矢量瓦片",
    response_class=Response,
    responses=TILE_ANSWERS,
)
async def tile(
    layer: LayerDep,
    z: Annotated[int, Path(ge=0, le=tiles.MAX_ZOOM)],
    x: Annotated[int, Path(ge=0)],
    y: Annotated[int, Path(ge=0)],
    engine: EngineDep,
    request: Request,
    viewer: ViewerDep,
) -> Response:
    """One Mapbox vector tile of the layer as the viewer may see it (ETag, 304 when current)."""
    tiles.check_tiled(layer)
    state = request.app.state
    found = tiles.cached_tile(layer, z, x, y, state.tile_cache, state.layer_versions, viewer)
    if found is None:  # built by the database, in a worker thread
        found = await run_in_threadpool(
            tiles.built_tile, engine, layer, z, x, y, state.tile_cache, state.layer_versions, viewer
        )
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
