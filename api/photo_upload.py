"""Uploads carrying a photo: their declared length checked before reading, the photo sniffed."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile

from layers.cases import casework
from layers.cases.casework import Photo
from layers.errors import InvalidFeature, LengthRequired, PayloadTooLarge


def too_large(limit: int) -> PayloadTooLarge:
    """The error of an upload over `limit` bytes."""
    return PayloadTooLarge(
        f"The upload is larger than {limit:,} bytes.", f"上传内容超过 {limit:,} 字节的上限。"
    )


def declared_length(request: Request, limit: int) -> None:
    """Refuse an upload without a Content-Length, or declaring more than `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is None or not declared.isdigit():
        raise LengthRequired(
            "Send the upload with a Content-Length header.", "上传请求需要 Content-Length 头。"
        )
    if int(declared) > limit:
        raise too_large(limit)


async def uploaded_photo(upload: Any, max_bytes: int) -> Photo | None:
    """The photo of a form's file field (None when the field is absent or empty)."""
    if upload is None or (isinstance(upload, str) and not upload):
        return None
    if not isinstance(upload, UploadFile):
        raise InvalidFeature(
            "photo must be a file.", "照片（photo）必须是文件。", code="photo_not_image"
        )
    data = await upload.read(max_bytes + 1)
    return casework.sniff_photo(data, max_bytes) if data else None
