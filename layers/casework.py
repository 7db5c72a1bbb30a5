"""Field work on cases: a case reported at a point with its photo, and the on-site check (核查).

A report and its photo are written in one transaction, so a case never exists without the photo
that was sent with it, nor a photo without its case.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, text

from layers import access, editing
from layers.db import BUREAU_TIMEZONE
from layers.editing import EditContext
from layers.errors import FeatureNotFound, InvalidFeature, PayloadTooLarge, StateConflict
from layers.registry import CASES, Role

AWAITING_CHECK = "feedback"  # handled and fed back by the unit: the inspector checks on the spot
REPORTED_FIELDS = {"category_code", "description", "address"}


@dataclass(frozen=True)
class Photo:
    """An uploaded picture whose bytes say what it is."""

    content_type: str
    data: bytes


def sniff_photo(data: bytes, max_bytes: int) -> Photo:
    """The photo, refused when it is too large or is not a JPEG, PNG or WebP image."""
    if len(data) > max_bytes:
        raise PayloadTooLarge(
            f"The photo is larger than {max_bytes:,} bytes.",
            f"照片超过 {max_bytes:,} 字节的上限，请压缩后再传。",
        )
    if data.startswith(b"\xff\xd8\xff"):
        return Photo("image/jpeg", data)
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return Photo("image/png", data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return Photo("image/webp", data)
    raise InvalidFeature(
        "The photo must be a JPEG, PNG or WebP image.",
        "照片必须是 JPEG、PNG 或 WebP 格式的图片。",
        code="photo_not_image",
    )


def report(conn: Connection, feature: dict[str, Any], photo: Photo | None, ctx: EditContext) -> int:
    """A new case at a point, reported now by the signed-in inspector, with its photo."""
    given = feature.get("properties") or {}
    if not isinstance(given, dict):
        raise InvalidFeature(
            "properties must be an object.", "properties 必须是对象。", code="properties_not_object"
        )
    unknown = set(given) - REPORTED_FIELDS
    if unknown:
        raise InvalidFeature(
            f"A report gives only {', '.join(sorted(REPORTED_FIELDS))}; not {', '.join(sorted(unknown))}.",
            f"上报案件只填写类别、描述和地址，不能填写：{'、'.join(sorted(unknown))}。",
            code="unknown_property",
        )
    now = datetime.now(ZoneInfo(BUREAU_TIMEZONE)).replace(microsecond=0)
    properties = given | {
        "source": "inspector",
        "status": "reported",
        "reported_at": now.isoformat(),
    }
    case = {"type": "Feature", "geometry": feature.get("geometry"), "properties": properties}
    written = editing.create(conn, CASES, case, ctx)
    if photo is not None:
        digest = hashlib.sha256(photo.data).hexdigest()
        photo_id = conn.execute(
            text("""
            INSERT INTO case_photos (case_id, content_type, data, size_bytes, sha256, uploaded_by)
            VALUES (:case, :type, :data, :size, :sha, :by) RETURNING id
        """),
            {
                "case": written.feature_id,
                "type": photo.content_type,
                "data": photo.data,
                "size": len(photo.data),
                "sha": digest,
                "by": ctx.actor,
            },
        ).scalar_one()
        editing.audit(
            conn,
            ctx,
            "create",
            CASES,
            written.feature_id,
            None,
            {"photo_id": photo_id, "content_type": photo.content_type, "sha256": digest},
        )
    return written.feature_id


def _visible_case(conn: Connection, case_id: int, viewer: access.Viewer, lock: bool) -> Any:
    params: dict[str, Any] = {"id": case_id}
    where = access.area_clause(CASES, viewer, params)
    row = conn.execute(
        text(
            f"SELECT t.id, t.status, to_jsonb(t) - 'geom' AS row FROM cases AS t "
            f"WHERE t.id = :id AND {where}{' FOR UPDATE OF t' if lock else ''}"
        ),
        params,
    ).first()
    if row is None:
        raise access.not_visible(CASES, case_id)
    return row


def verify(
    conn: Connection, case_id: int, passed: bool, note: str | None, ctx: EditContext
) -> dict[str, Any]:
    """Record the on-site check of a case awaiting it: passed → 核查, failed → 返工."""
    access.require_role(ctx.viewer, Role.INSPECTOR)
    before = _visible_case(conn, case_id, ctx.viewer, lock=True)
    if before.status != AWAITING_CHECK:
        labels = {c.value: c.label_zh for c in CASES.field("status").codes}
        raise StateConflict(
            f"Case {case_id} is {before.status}, not waiting for its on-site check.",
            f"案件 {case_id} 当前为“{labels[before.status]}”，不在待核查状态。",
            code="case_not_awaiting_check",
        )
    after = conn.execute(
        text("""
        UPDATE cases AS t SET status = :status, verified_at = date_trunc('second', now())
        WHERE t.id = :id RETURNING to_jsonb(t) - 'geom'
    """),
        {"id": case_id, "status": "verified" if passed else "rework"},
    ).scalar_one()
    editing.audit(conn, ctx, "update", CASES, case_id, before.row, after | {"check_note": note})
    return {"id": case_id, "status": after["status"], "verified_at": after["verified_at"]}


def photos(conn: Connection, case_id: int, viewer: access.Viewer) -> list[dict[str, Any]]:
    """The photos of a case the viewer may read (without their bytes)."""
    _visible_case(conn, case_id, viewer, lock=False)
    rows = conn.execute(
        text("""
        SELECT id, content_type, size_bytes, uploaded_by, uploaded_at FROM case_photos
        WHERE case_id = :id ORDER BY id
    """),
        {"id": case_id},
    ).mappings()
    return [dict(r) for r in rows]


def photo(conn: Connection, case_id: int, photo_id: int, viewer: access.Viewer) -> Photo:
    """One photo of a case the viewer may read."""
    _visible_case(conn, case_id, viewer, lock=False)
    row = conn.execute(
        text("SELECT content_type, data FROM case_photos WHERE id = :p AND case_id = :c"),
        {"p": photo_id, "c": case_id},
    ).first()
    if row is None:
        raise FeatureNotFound(
            f"Case {case_id} has no photo {photo_id}.",
            f"案件 {case_id} 没有编号为 {photo_id} 的照片。",
            code="photo_not_found",
        )
    return Photo(row.content_type, bytes(row.data))
