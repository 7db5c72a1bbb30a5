"""Cases reported at a point with their photo, by an inspector on the spot or by the command centre.

A report and its photo are written in one transaction, so a case never exists without the photo
that was sent with it, nor a photo without its case.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, text

from layers.cases import codes, routing
from layers.cases.workcalendar import Calendars
from layers.engine import access, editing
from layers.engine.editing import EditContext
from layers.errors import FeatureNotFound, InvalidFeature, PayloadTooLarge
from layers.registry import CASES, Role
from layers.store.db import BUREAU_TIMEZONE

REPORTED_FIELDS = {
    *("category_code", "description", "address", "source", "component_code", "problem"),
    *("camera_id", "merchant_id", "garbage_point_id"),  # what saw it, or the thing it concerns
}
# what the command centre takes in at its desk (an inspector's own reports are always "inspector")
DESK_SOURCES = {c.value: c.label_zh for c in CASES.field("source").codes if c.value != "inspector"}
# reports an inspector of the grid verifies on site (核实) before the centre may register them
UNVERIFIED_SOURCES = ("public", "hotline", "video", "vehicle")
VERIFY_WITHIN = timedelta(hours=2)  # the verification limit when the caller gives none


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


@dataclass(frozen=True)
class Reported:
    """A reported case: its id, and the unit routing chose for it and why."""

    id: int
    unit: str | None
    routed_by: str | None


def _on_component(
    conn: Connection, feature: dict[str, Any], given: dict[str, Any], ctx: EditContext
) -> dict[str, Any]:
    """A case naming a component: its category is the component's subclass, its point the
    component's unless given (the checks against the component are routing's, on insert)."""
    code = given.get("component_code")
    if code is None:
        if given.get("problem") is not None:
            raise InvalidFeature(
                "A problem is given only with the component (component_code) it concerns.",
                "部件问题（problem）须与所涉部件的标识码（component_code）一同填写。",
                code="problem_without_component",
                field="problem",
            )
        return feature
    if not isinstance(code, str):
        raise InvalidFeature(
            "component_code must be a 16-digit component ID.",
            "部件标识码（component_code）必须是 16 位数字。",
            code="property_bad_format",
            field="component_code",
        )
    found = routing.component(conn, code, ctx.viewer)
    given.setdefault("category_code", found.subclass_code)
    return (
        feature if feature.get("geometry") is not None else feature | {"geometry": found.geometry}
    )


def report(
    conn: Connection,
    feature: dict[str, Any],
    photo: Photo | None,
    ctx: EditContext,
    calendars: Calendars | None = None,
    verify_within: timedelta = VERIFY_WITHIN,
) -> Reported:
    """A new case at a point (or on a component), reported now by the signed-in inspector or at
    the desk, with its photo; routed to its unit. A report from the public, the hotline or a
    camera awaits verification on site, within `verify_within` of the county's working time."""
    given = feature.get("properties") or {}
    if not isinstance(given, dict):
        raise InvalidFeature(
            "properties must be an object.", "properties 必须是对象。", code="properties_not_object"
        )
    unknown = set(given) - REPORTED_FIELDS
    if unknown:
        raise InvalidFeature(
            f"A report gives only {', '.join(sorted(REPORTED_FIELDS))}; not {', '.join(sorted(unknown))}.",
            f"上报案件只填写类别、描述、地址、来源、部件标识码、部件问题和关联的视频点位、商户或投放点，不能填写：{'、'.join(sorted(unknown))}。",
            code="unknown_property",
        )
    access.require_role(ctx.viewer, Role.INSPECTOR, Role.DISPATCHER)
    given = dict(given)
    source = given.pop("source", None)
    if ctx.viewer.patrols or source is None:
        source = "inspector" if ctx.viewer.patrols else "hotline"
    elif source not in DESK_SOURCES:
        raise InvalidFeature(
            f"source must be one of {', '.join(DESK_SOURCES)}.",
            f"案件来源必须是：{'、'.join(DESK_SOURCES.values())}。",
            code="property_not_in_code_list",
        )
    if isinstance(given.get("category_code"), str):  # a former code, an alias or a name
        given["category_code"] = codes.resolve_category(conn, given["category_code"])
    feature = _on_component(conn, feature, given, ctx)
    now = datetime.now(ZoneInfo(BUREAU_TIMEZONE)).replace(microsecond=0)
    status = "unverified" if source in UNVERIFIED_SOURCES else "reported"
    properties = given | {"source": source, "status": status, "reported_at": now.isoformat()}
    case = {"type": "Feature", "geometry": feature.get("geometry"), "properties": properties}
    written = editing.insert(conn, CASES, case, ctx)
    if status == "unverified":
        adcode = conn.execute(
            text("SELECT adcode FROM cases WHERE id = :id"), {"id": written.feature_id}
        ).scalar_one()
        calendar = (calendars or Calendars()).get(conn, adcode)
        conn.execute(
            text("UPDATE cases SET verify_deadline = :by WHERE id = :id"),
            {"by": calendar.add_hours(now, verify_within), "id": written.feature_id},
        )
    routed = conn.execute(
        text("SELECT unit, routed_by FROM cases WHERE id = :id"), {"id": written.feature_id}
    ).one()
    if photo is not None:
        store_photo(conn, written.feature_id, photo, ctx, "create")
    return Reported(written.feature_id, routed.unit, routed.routed_by)


def store_photo(
    conn: Connection, case_id: int, photo: Photo, ctx: EditContext, action: str = "update"
) -> int:
    """Keep a photo with its case, audited; its id."""
    digest = hashlib.sha256(photo.data).hexdigest()
    photo_id: int = conn.execute(
        text("""
        INSERT INTO case_photos (adcode, case_id, content_type, data, size_bytes, sha256,
                                 uploaded_by)
        SELECT c.adcode, c.id, :type, :data, :size, :sha, :by FROM cases AS c WHERE c.id = :case
        RETURNING id
    """),
        {
            "case": case_id,
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
        action,
        CASES,
        case_id,
        None,
        {"photo_id": photo_id, "content_type": photo.content_type, "sha256": digest},
    )
    return photo_id


def _visible_case(conn: Connection, case_id: int, viewer: access.Viewer) -> None:
    params: dict[str, Any] = {"id": case_id}
    where = access.area_clause(CASES, viewer, params)
    found = conn.execute(text(f"SELECT 1 FROM cases AS t WHERE t.id = :id AND {where}"), params)
    if found.first() is None:
        raise access.not_visible(CASES, case_id)


def photos(conn: Connection, case_id: int, viewer: access.Viewer) -> list[dict[str, Any]]:
    """The photos of a case the viewer may read (without their bytes)."""
    _visible_case(conn, case_id, viewer)
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
    _visible_case(conn, case_id, viewer)
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
