"""Photos of components (部件照片), kept by county and component ID: a component's status changes
make new versions of its row, and its photos stay with the ID across them."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import Connection, text

from layers.cases.casework import Photo
from layers.engine import access, editing
from layers.engine.editing import EditContext
from layers.errors import FeatureNotFound
from layers.inventory import lookup
from layers.registry import COMPONENTS

PHOTOS_PER_COMPONENT = 20  # a census photo and the changes after it, not an album


def _component(conn: Connection, code: str, viewer: access.Viewer) -> Any:
    """The current component with this ID the viewer may read (others look absent), in
    whichever component layer holds it."""
    row = lookup.find(conn, code, viewer)
    if row is None:
        raise FeatureNotFound(
            f"There is no current component {code} you may read.",
            f"没有部件标识码为 {code} 的现有部件，或不在您的查看范围内。",
            code="component_not_found",
        )
    return row


def _missing(code: str, photo_id: int) -> FeatureNotFound:
    return FeatureNotFound(
        f"Component {code} has no photo {photo_id}.",
        f"部件 {code} 没有编号为 {photo_id} 的照片。",
        code="photo_not_found",
    )


def listed(conn: Connection, code: str, viewer: access.Viewer) -> list[dict[str, Any]]:
    """The photos of a component the viewer may read (without their bytes), oldest first."""
    found = _component(conn, code, viewer)
    rows = conn.execute(
        text("""
        SELECT id, content_type, size_bytes, sha256, uploaded_by, uploaded_at
        FROM component_photos WHERE adcode = :adcode AND component_code = :code ORDER BY id
    """),
        {"adcode": found.adcode, "code": code},
    ).mappings()
    return [dict(r) for r in rows]


def one(conn: Connection, code: str, photo_id: int, viewer: access.Viewer) -> Photo:
    """One photo of a component the viewer may read."""
    found = _component(conn, code, viewer)
    row = conn.execute(
        text("""
        SELECT content_type, data FROM component_photos
        WHERE id = :id AND adcode = :adcode AND component_code = :code
    """),
        {"id": photo_id, "adcode": found.adcode, "code": code},
    ).first()
    if row is None:
        raise _missing(code, photo_id)
    return Photo(row.content_type, bytes(row.data))


def add(conn: Connection, code: str, photo: Photo, ctx: EditContext) -> int:
    """Store a photo of a component the signed-in keeper of the inventory may edit; audited."""
    access.check_create(COMPONENTS, ctx.viewer)  # the component layers share their editors
    found = _component(conn, code, ctx.viewer)
    if not access.may_write_county(ctx.viewer, found.adcode):
        raise access.outside_counties()
    kept = conn.execute(
        text(
            "SELECT count(*) FROM component_photos WHERE adcode = :adcode AND component_code = :code"
        ),
        {"adcode": found.adcode, "code": code},
    ).scalar_one()
    if kept >= PHOTOS_PER_COMPONENT:
        raise access.forbidden(
            f"Component {code} has {kept} photos already; remove one first.",
            f"部件 {code} 已有 {kept} 张照片，达到上限，请先删除旧照片。",
            code="too_many_photos",
        )
    digest = hashlib.sha256(photo.data).hexdigest()
    photo_id: int = conn.execute(
        text("""
        INSERT INTO component_photos
            (adcode, component_code, content_type, data, size_bytes, sha256, uploaded_by)
        VALUES (:adcode, :code, :type, :data, :size, :sha, :by) RETURNING id
    """),
        {
            "adcode": found.adcode,
            "code": code,
            "type": photo.content_type,
            "data": photo.data,
            "size": len(photo.data),
            "sha": digest,
            "by": ctx.actor,
        },
    ).scalar_one()
    after = {"photo_id": photo_id, "content_type": photo.content_type, "sha256": digest}
    editing.audit(conn, ctx, "update", lookup.layer_of(found.layer_id), found.id, None, after)
    return photo_id


def remove(conn: Connection, code: str, photo_id: int, ctx: EditContext) -> None:
    """Delete a photo of a component the signed-in keeper of the inventory may edit; audited."""
    access.check_replace_or_delete(COMPONENTS, ctx.viewer)
    found = _component(conn, code, ctx.viewer)
    if not access.may_write_county(ctx.viewer, found.adcode):
        raise access.outside_counties()
    gone = conn.execute(
        text("""
        DELETE FROM component_photos
        WHERE id = :id AND adcode = :adcode AND component_code = :code
        RETURNING content_type, sha256
    """),
        {"id": photo_id, "adcode": found.adcode, "code": code},
    ).first()
    if gone is None:
        raise _missing(code, photo_id)
    before = {"photo_id": photo_id, "content_type": gone.content_type, "sha256": gone.sha256}
    editing.audit(conn, ctx, "update", lookup.layer_of(found.layer_id), found.id, before, None)
