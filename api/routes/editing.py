"""Create, replace, update and delete features (OGC API - Features Part 4)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response

from api.auth import current_viewer
from api.deps import BodyDep, EditContextDep, EngineDep, LayerDep
from layers import editing
from layers.editing import quoted_etag

router = APIRouter(dependencies=[Depends(current_viewer)])
IfMatch = Annotated[str | None, Header(alias="If-Match")]


@router.post(
    "/collections/{collectionId}/items",
    status_code=201,
    summary="Create a feature / 新增要素",
    response_class=Response,
)
def create_item(
    layer: LayerDep, body: BodyDep, engine: EngineDep, ctx: EditContextDep, request: Request
) -> Response:
    """Add a GeoJSON Feature to the collection."""
    feature = editing.parse_body(body)
    with engine.begin() as conn:
        written = editing.create(conn, layer, feature, ctx)
    location = (
        f"{str(request.base_url).rstrip('/')}/collections/{layer.id}/items/{written.feature_id}"
    )
    return Response(
        status_code=201, headers={"Location": location, "ETag": quoted_etag(written.etag or "")}
    )


@router.put(
    "/collections/{collectionId}/items/{feature_id}",
    status_code=204,
    summary="Replace a feature / 替换要素",
    response_class=Response,
)
def replace_item(
    layer: LayerDep,
    feature_id: int,
    body: BodyDep,
    engine: EngineDep,
    ctx: EditContextDep,
    if_match: IfMatch = None,
) -> Response:
    """Replace a feature whole; needs its current ETag in If-Match."""
    feature = editing.parse_body(body)
    with engine.begin() as conn:
        written = editing.replace(conn, layer, feature_id, feature, if_match, ctx)
    return Response(status_code=204, headers={"ETag": quoted_etag(written.etag or "")})


@router.patch(
    "/collections/{collectionId}/items/{feature_id}",
    status_code=204,
    summary="Update a feature / 修改要素",
    response_class=Response,
)
def update_item(
    layer: LayerDep,
    feature_id: int,
    body: BodyDep,
    engine: EngineDep,
    ctx: EditContextDep,
    if_match: IfMatch = None,
) -> Response:
    """Change some properties (and/or the geometry); needs the current ETag in If-Match."""
    patch = editing.parse_body(body)
    with engine.begin() as conn:
        written = editing.update(conn, layer, feature_id, patch, if_match, ctx)
    return Response(status_code=204, headers={"ETag": quoted_etag(written.etag or "")})


@router.delete(
    "/collections/{collectionId}/items/{feature_id}",
    status_code=204,
    summary="Delete a feature / 删除要素",
    response_class=Response,
)
def delete_item(
    layer: LayerDep,
    feature_id: int,
    engine: EngineDep,
    ctx: EditContextDep,
    if_match: IfMatch = None,
) -> Response:
    """Delete a feature; needs its current ETag in If-Match."""
    with engine.begin() as conn:
        editing.delete(conn, layer, feature_id, if_match, ctx)
    return Response(status_code=204)
