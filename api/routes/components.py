"""Photos of components: listed and shown to whoever may read the component, added and removed by
the keepers of the inventory."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.concurrency import run_in_threadpool

from api.auth import ViewerDep, current_viewer
from api.deps import ConnectionDep, EditContextDep, EngineDep, require_media_type
from api.photo_upload import declared_length, uploaded_photo
from layers.cases.casework import Photo
from layers.engine.editing import EditContext
from layers.errors import InvalidFeature
from layers.inventory import photos

router = APIRouter(
    prefix="/components",
    tags=["components 城市管理部件"],
    dependencies=[Depends(current_viewer)],
)
ComponentCode = Annotated[str, Path(pattern=r"^[0-9]{16,17}$", description="部件标识码")]
FORM_OVERHEAD = 4 * 1024  # the multipart boundaries around the photo
PHOTO_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["photo"],
                "additionalProperties": False,
                "properties": {
                    "photo": {"type": "string", "format": "binary", "description": "部件照片"}
                },
            }
        }
    },
}


@router.get("/{code}/photos", summary="Photos of a component / 部件照片")
def component_photos(
    code: ComponentCode, conn: ConnectionDep, viewer: ViewerDep
) -> list[dict[str, Any]]:
    """The photos of a component (without their bytes), oldest first."""
    return photos.listed(conn, code, viewer)


@router.get(
    "/{code}/photos/{photo_id}",
    summary="One photo of a component / 部件照片",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}}}},
)
def component_photo(
    code: ComponentCode, photo_id: int, conn: ConnectionDep, viewer: ViewerDep
) -> Response:
    """The picture itself."""
    found = photos.one(conn, code, photo_id, viewer)
    return Response(
        found.data, media_type=found.content_type, headers={"X-Content-Type-Options": "nosniff"}
    )


def _add(engine: Any, code: str, photo: Photo, ctx: EditContext) -> int:
    with engine.begin() as conn:
        return photos.add(conn, code, photo, ctx)


@router.post(
    "/{code}/photos",
    status_code=201,
    summary="Add a photo of a component / 上传部件照片",
    openapi_extra={"requestBody": PHOTO_BODY},
)
async def add_component_photo(
    code: ComponentCode, request: Request, engine: EngineDep, ctx: EditContextDep
) -> Response:
    """multipart/form-data with one `photo` (JPEG, PNG or WebP)."""
    max_photo = request.app.state.editing.max_photo_bytes
    declared_length(request, max_photo + FORM_OVERHEAD)
    require_media_type(request, ("multipart/form-data",), "the photo", "照片")
    async with request.form(max_files=1, max_fields=1, max_part_size=FORM_OVERHEAD) as form:
        photo = await uploaded_photo(form.get("photo"), max_photo)
    if photo is None:
        raise InvalidFeature(
            "Send the picture as the form's photo file.",
            "请以表单文件字段 photo 上传照片。",
            code="missing_photo",
        )
    photo_id = await run_in_threadpool(_add, engine, code, photo, ctx)
    location = f"{str(request.base_url).rstrip('/')}/components/{code}/photos/{photo_id}"
    return Response(
        content=f'{{"id": {photo_id}}}',
        status_code=201,
        media_type="application/json",
        headers={"Location": location},
    )


def _remove(engine: Any, code: str, photo_id: int, ctx: EditContext) -> None:
    with engine.begin() as conn:
        photos.remove(conn, code, photo_id, ctx)


@router.delete(
    "/{code}/photos/{photo_id}", status_code=204, summary="Remove a photo / 删除部件照片"
)
async def remove_component_photo(
    code: ComponentCode, photo_id: int, engine: EngineDep, ctx: EditContextDep
) -> Response:
    """Remove one photo of a component."""
    await run_in_threadpool(_remove, engine, code, photo_id, ctx)
    return Response(status_code=204)
