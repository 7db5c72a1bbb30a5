"""Create, replace, update and delete features (OGC API - Features Part 4)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Request, Response

from api.auth import ViewerDep, current_viewer
from api.deps import BodyDep, EditContextDep, EngineDep, FeatureEditDep, LayerDep
from layers.engine import editing
from layers.engine.editing import quoted_etag

router = APIRouter(dependencies=[Depends(current_viewer)])
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description="The ETag read; if sent and stale, 412. Without it the last writer wins.",
    ),
]
ALLOW_ANSWER = {
    204: {
        "description": "The methods this user may use here, in Allow",
        "headers": {
            "Allow": {
                "description": "e.g. GET, HEAD, OPTIONS, POST",
                "schema": {"type": "string"},
            }
        },
    }
}


def _allow(methods: list[str]) -> Response:
    return Response(status_code=204, headers={"Allow": ", ".join(methods)})


@router.options(
    "/collections/{collectionId}/items",
    status_code=204,
    summary="What this user may do on the items / 可执行的操作",
    response_class=Response,
    responses=ALLOW_ANSWER,  # type: ignore[arg-type]
)
def items_options(layer: LayerDep, viewer: ViewerDep) -> Response:
    """Allow: the methods this user may use on the collection's items (POST if they may add)."""
    return _allow(editing.allowed_methods(layer, viewer, one_item=False))


@router.options(
    "/collections/{collectionId}/items/{feature_id}",
    status_code=204,
    summary="What this user may do on a feature / 可对要素执行的操作",
    response_class=Response,
    responses=ALLOW_ANSWER,  # type: ignore[arg-type]
)
def item_options(
    layer: LayerDep,
    viewer: ViewerDep,
    feature_id: Annotated[str, Path(max_length=100, pattern=r"^[^\x00]*$")],
) -> Response:
    """Allow: the methods this user's role may use on the layer's features (PUT, PATCH, DELETE).

    Any id is answered alike, so the answer tells nothing of which features exist; whether a
    given feature lies in an inspector's area is checked when it is changed."""
    del feature_id  # the rights are the role's on the layer
    return _allow(editing.allowed_methods(layer, viewer, one_item=True))


@router.post(
    "/collections/{collectionId}/items",
    status_code=201,
    summary="Create a feature / 新增要素",
    response_class=Response,
)
def create_item(
    layer: LayerDep, body: BodyDep, engine: EngineDep, ctx: FeatureEditDep, request: Request
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
    ctx: FeatureEditDep,
    if_match: IfMatch = None,
) -> Response:
    """Replace a feature whole (If-Match, when sent, must be its current ETag)."""
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
    ctx: FeatureEditDep,
    if_match: IfMatch = None,
) -> Response:
    """Change some properties and/or the geometry (If-Match, when sent, must be current)."""
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
    """Delete a feature (If-Match, when sent, must be its current ETag)."""
    with engine.begin() as conn:
        editing.delete(conn, layer, feature_id, if_match, ctx)
    return Response(status_code=204)
