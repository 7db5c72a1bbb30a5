"""Collections and their items (OGC API - Features, Part 1 core), GeoJSON built by PostGIS."""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response

from api.deps import BBoxDep, ConnectionDep, LayerDep
from layers import features
from layers.errors import BadQuery
from layers.features import MAX_LIMIT, ItemsQuery
from layers.registry import LAYERS, Layer

router = APIRouter()
GEOJSON = "application/geo+json"
RESERVED = {"bbox", "limit", "offset", "sortby", "f"}


def _collection(layer: Layer, base: str) -> dict[str, Any]:
    href = f"{base}/collections/{layer.id}"
    return {
        "id": layer.id,
        "title": layer.title_zh,
        "description": layer.title_en,
        "itemType": "feature",
        "crs": ["http://www.opengis.net/def/crs/OGC/1.3/CRS84"],
        "links": [
            {"rel": "self", "href": href, "type": "application/json", "title": layer.title_zh},
            {"rel": "items", "href": f"{href}/items", "type": GEOJSON, "title": "要素"},
        ],
    }


@router.get("/collections", summary="Collections / 图层列表")
def collections(request: Request) -> dict[str, Any]:
    """Every layer of the registry as a collection."""
    base = str(request.base_url).rstrip("/")
    return {
        "collections": [_collection(layer, base) for layer in LAYERS.values()],
        "links": [{"rel": "self", "href": f"{base}/collections", "type": "application/json"}],
    }


@router.get("/collections/{collection_id}", summary="One collection / 图层")
def collection(layer: LayerDep, request: Request) -> dict[str, Any]:
    """One layer's description."""
    return _collection(layer, str(request.base_url).rstrip("/"))


def _sortby(layer: Layer, raw: str | None) -> list[tuple[str, bool]]:
    terms = []
    for term in filter(None, (raw or "").split(",")):
        name = term.lstrip("+-")
        try:
            layer.field(name)
        except KeyError:
            raise BadQuery(
                f"sortby names {name!r}, which {layer.id} does not have.",
                f"sortby 中的 {name!r} 不是图层 {layer.id} 的字段。",
            ) from None
        terms.append((name, term.startswith("-")))
    return terms


def _equals(layer: Layer, request: Request) -> dict[str, Any]:
    equals = {}
    for name, raw in request.query_params.items():
        if name in RESERVED:
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
    "/collections/{collection_id}/items", summary="Features / 要素", response_class=Response
)
def items(
    layer: LayerDep,
    conn: ConnectionDep,
    request: Request,
    bbox: BBoxDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
    sortby: Annotated[str | None, Query(description="field,-field")] = None,
) -> Response:
    """Features in `bbox`, filtered by field=value, one page at a time."""
    query = ItemsQuery(layer, bbox, limit, offset, _equals(layer, request), _sortby(layer, sortby))
    page = features.fetch_items(conn, query)
    return Response(
        page.with_member("links", _links(request, limit, offset, page.returned)), media_type=GEOJSON
    )


def _links(request: Request, limit: int, offset: int, returned: int) -> str:
    links = [{"rel": "self", "href": str(request.url), "type": GEOJSON}]
    if returned == limit:
        params = dict(request.query_params) | {"offset": str(offset + limit), "limit": str(limit)}
        next_url = f"{str(request.base_url).rstrip('/')}{request.url.path}?{urlencode(params)}"
        links.append({"rel": "next", "href": next_url, "type": GEOJSON})
    return json.dumps(links, ensure_ascii=False)


@router.get(
    "/collections/{collection_id}/items/{feature_id}",
    summary="One feature / 单个要素",
    response_class=Response,
)
def item(layer: LayerDep, feature_id: int, conn: ConnectionDep) -> Response:
    """One feature by id."""
    return Response(features.fetch_item(conn, layer, feature_id), media_type=GEOJSON)


@router.get("/county", summary="County outline / 行政区轮廓", response_class=Response)
def county(conn: ConnectionDep) -> Response:
    """The county's outline (union of the current street grids)."""
    return Response(features.county_outline(conn), media_type=GEOJSON)
