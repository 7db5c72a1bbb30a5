"""Field work: report a case with its photo, check handled cases on the spot, and the patrol layers."""

from __future__ import annotations

import json
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import AwareDatetime, Field

from api.auth import ViewerDep, current_viewer
from api.deps import (
    ConnectionDep,
    Day,
    EditContextDep,
    EngineDep,
    Strict,
    media_type,
    require_media_type,
)
from api.openapi import NO_NUL, answers
from api.photo_upload import declared_length, too_large, uploaded_photo
from api.routes.editing import IfMatch
from layers.cases import casework, workflow
from layers.cases.casework import Photo, Reported
from layers.cases.steps import MAX_EXTENSION_DAYS, StepData
from layers.engine.editing import EditContext, parse_body, quoted_etag
from layers.errors import InvalidFeature
from layers.grids import patrol
from layers.sites import workorders

router = APIRouter(tags=["field work 现场工作"], dependencies=[Depends(current_viewer)])
GEOJSON = "application/geo+json"
FORM_OVERHEAD = 64 * 1024  # the feature field and the multipart boundaries around the photo


class CheckResult(Strict):
    """The outcome of an on-site check."""

    passed: bool = Field(description="核查通过")
    note: str | None = Field(default=None, max_length=500, description="核查说明")


def _report(
    request: Request, feature: dict[str, Any], photo: Photo | None, ctx: EditContext
) -> Reported:
    state = request.app.state
    with state.engine.begin() as conn:
        return casework.report(conn, feature, photo, ctx, state.calendars, state.verify_within)


FEATURE_FIELD = {
    "type": "string",
    "description": "GeoJSON Feature: Point geometry (optional on a component); properties "
    "category_code, description, address, source, component_code, problem, camera_id, "
    "merchant_id, garbage_point_id",
}
FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
FEATURE_TYPES = ("application/geo+json", "application/json")  # desk entry: a Feature, no photo
REPORT_TYPES = FORM_TYPES + FEATURE_TYPES
DESK_FEATURE = {
    "type": "object",
    "required": ["type", "properties"],
    "description": "GeoJSON Feature (desk entry, e.g. a hotline call, without a photo)",
    "properties": {
        "type": {"type": "string", "enum": ["Feature"]},
        "geometry": {"type": ["object", "null"]},
        "properties": {"type": "object"},
    },
}
REPORT_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["feature"],
                "additionalProperties": False,
                "properties": {
                    "feature": FEATURE_FIELD,
                    "photo": {"type": "string", "format": "binary", "description": "现场照片"},
                },
            }
        },
        "application/x-www-form-urlencoded": {  # a report without a photo
            "schema": {
                "type": "object",
                "required": ["feature"],
                "properties": {"feature": FEATURE_FIELD},
            }
        },
        **{media: {"schema": DESK_FEATURE} for media in FEATURE_TYPES},
    },
}


async def _form_report(request: Request, max_photo: int) -> tuple[dict[str, Any], Photo | None]:
    async with request.form(max_files=1, max_fields=2, max_part_size=FORM_OVERHEAD) as form:
        raw = form.get("feature")
        if not isinstance(raw, str):
            raise InvalidFeature(
                "The report needs its feature (GeoJSON) field.",
                "上报内容缺少 feature（GeoJSON 要素）。",
                code="missing_property",
            )
        return parse_body(raw.encode()), await uploaded_photo(form.get("photo"), max_photo)


async def _feature_report(request: Request) -> dict[str, Any]:
    """A desk entry: the body is the GeoJSON Feature itself, as large as a form's feature."""
    declared_length(request, FORM_OVERHEAD)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > FORM_OVERHEAD:
            raise too_large(FORM_OVERHEAD)
    feature = parse_body(bytes(body))
    if feature.get("type") != "Feature":
        raise InvalidFeature(
            "The body must be a GeoJSON Feature (type Feature).",
            "请求体必须是 GeoJSON 要素（type 为 Feature）。",
            code="not_a_feature",
        )
    return feature


@router.post(
    "/cases",
    status_code=201,
    summary="Report a case with a photo / 现场上报案件",
    openapi_extra={"requestBody": REPORT_BODY},
)
async def report_case(request: Request, engine: EngineDep, ctx: EditContextDep) -> Response:
    """multipart/form-data: `feature` (a GeoJSON Feature: point, category_code, description,
    address; or component_code, problem and perhaps no point) and an optional `photo` (JPEG, PNG
    or WebP); both saved, or neither. Or, entered at the desk, the Feature itself as
    application/geo+json. The answer gives the case's id and the unit it was routed to, and why."""
    max_photo = request.app.state.editing.max_photo_bytes
    declared_length(request, max_photo + FORM_OVERHEAD)
    require_media_type(request, REPORT_TYPES, "the report", "上报内容")
    photo: Photo | None = None
    if media_type(request) in FEATURE_TYPES:
        feature = await _feature_report(request)
    else:
        feature, photo = await _form_report(request, max_photo)
    case = await run_in_threadpool(_report, request, feature, photo, ctx)
    location = f"{str(request.base_url).rstrip('/')}/collections/cases/items/{case.id}"
    body = {"id": case.id, "unit": case.unit, "routed_by": case.routed_by}
    return Response(
        content=json.dumps(body, ensure_ascii=False),
        status_code=201,
        media_type="application/json",
        headers={"Location": location},
    )


class Move(Strict):
    """One move of a case through the workflow, with the data its step carries."""

    action: str = Field(
        max_length=20,
        description="register 立案 | reject 不予立案 | dispatch 派遣 | return 退回 | handle 处置 | "
        "feedback 反馈 | pass 核查通过 | fail 核查不通过 | close 结案 | park 挂账 | resume 取消挂账 | "
        "verify 核实 | cancel 作废 | merge 合并 | request_extension 申请延期 | "
        "approve_extension 批准延期 | reject_extension 不批准延期 | supervise 督办 | callback 回访 "
        "(self_handle 自行处置: POST /cases/{id}/self_handle with its photo)",
    )
    note: str | None = Field(
        default=None, max_length=500, description="说明；作废、延期、督办等须填写理由"
    )
    unit: str | None = Field(
        default=None, max_length=200, description="派遣时的处置单位（默认按网格）"
    )
    verified: bool | None = Field(default=None, description="核实：现场属实 true / 未发现 false")
    into: int | None = Field(default=None, ge=1, le=2**53, description="合并：重复的原案件编号")
    days: int | None = Field(
        default=None, ge=1, le=MAX_EXTENSION_DAYS, description="申请延期：工作日数"
    )
    until: AwareDatetime | None = Field(default=None, description="督办：督办时限")
    result: Literal["satisfied", "unsatisfied", "unreachable"] | None = Field(
        default=None, description="回访：满意 satisfied / 不满意 unsatisfied / 联系不上 unreachable"
    )

    def data(self) -> StepData:
        """The step's data."""
        return StepData(
            verified=self.verified,
            into=self.into,
            days=self.days,
            until=self.until,
            result=self.result,
        )


@router.post("/cases/{case_id}/transitions", summary="Move a case on / 案件流转")
def move_case(
    case_id: int, body: Move, engine: EngineDep, ctx: EditContextDep, request: Request
) -> dict[str, Any]:
    """One legal move by the role it belongs to; refused with the moves possible otherwise."""
    calendars = request.app.state.calendars
    with engine.begin() as conn:
        return workflow.transition(
            conn, case_id, body.action, body.note, ctx, calendars, body.unit, body.data()
        )


SELF_HANDLE_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["photo"],
                "additionalProperties": False,
                "properties": {
                    "photo": {"type": "string", "format": "binary", "description": "处置后照片"},
                    "note": {
                        "type": "string",
                        "maxLength": 500,
                        "pattern": NO_NUL,
                        "description": "处置说明",
                    },
                },
            }
        }
    },
}


async def _self_handled(request: Request, max_photo: int) -> tuple[str | None, Photo | None]:
    async with request.form(max_files=1, max_fields=1, max_part_size=FORM_OVERHEAD) as form:
        note = form.get("note")
        if note is not None and (not isinstance(note, str) or len(note) > 500 or "\x00" in note):
            raise InvalidFeature(
                "note must be text of at most 500 characters (no NUL).",
                "处置说明（note）须为不超过 500 字的文字（不含 NUL 字符）。",
                code="property_bad_format",
                field="note",
            )
        return note or None, await uploaded_photo(form.get("photo"), max_photo)


@router.post(
    "/cases/{case_id}/self_handle",
    summary="Fixed on the spot / 自行处置",
    openapi_extra={"requestBody": SELF_HANDLE_BODY},
)
async def self_handle_case(case_id: int, request: Request, ctx: EditContextDep) -> dict[str, Any]:
    """The inspector fixed their own report on the spot: multipart/form-data with the photo after
    (`photo`, beside the report's photo before) and a `note`; the case is closed, marked 自行处置."""
    max_photo = request.app.state.editing.max_photo_bytes
    declared_length(request, max_photo + FORM_OVERHEAD)
    require_media_type(request, ("multipart/form-data",), "the photo after", "处置后照片")
    note, photo = await _self_handled(request, max_photo)
    return await run_in_threadpool(_self_handle, request, case_id, note, photo, ctx)


def _self_handle(
    request: Request, case_id: int, note: str | None, photo: Photo | None, ctx: EditContext
) -> dict[str, Any]:
    state = request.app.state
    with state.engine.begin() as conn:
        return workflow.transition(
            conn,
            case_id,
            "self_handle",
            note,
            ctx,
            state.calendars,
            data=StepData(photo=photo),
        )


@router.get("/cases/{case_id}/transitions", summary="A case's moves / 案件流转记录")
def case_moves(case_id: int, conn: ConnectionDep, viewer: ViewerDep) -> dict[str, Any]:
    """The moves so far and those the signed-in user may make next."""
    return workflow.history(conn, case_id, viewer)


@router.post("/cases/{case_id}/check", summary="On-site check of a case / 案件核查")
def check_case(
    case_id: int, body: CheckResult, engine: EngineDep, ctx: EditContextDep
) -> dict[str, Any]:
    """Pass (→ 核查) or fail (→ 返工) a case the handling unit fed back."""
    action = "pass" if body.passed else "fail"
    with engine.begin() as conn:
        return workflow.transition(conn, case_id, action, body.note, ctx)


@router.get("/cases/{case_id}/photos", summary="Photos of a case / 案件照片")
def case_photos(case_id: int, conn: ConnectionDep, viewer: ViewerDep) -> list[dict[str, Any]]:
    """The photos sent with a case."""
    return casework.photos(conn, case_id, viewer)


@router.get(
    "/cases/{case_id}/photos/{photo_id}",
    summary="One photo / 照片",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}}}},
)
def case_photo(case_id: int, photo_id: int, conn: ConnectionDep, viewer: ViewerDep) -> Response:
    """The picture itself."""
    found = casework.photo(conn, case_id, photo_id, viewer)
    return Response(
        found.data,
        media_type=found.content_type,
        headers={"X-Content-Type-Options": "nosniff"},  # and, like anything personal, not stored
    )


@router.get(
    "/patrol/dust_sites",
    summary="Dust sites with their last inspection / 扬尘现场督查状态",
    response_class=Response,
    responses=answers(GEOJSON),
)
def patrol_dust_sites(conn: ConnectionDep, viewer: ViewerDep) -> Response:
    """Dust sites the viewer may read, with the last inspection's result and open work orders."""
    return Response(patrol.dust_sites(conn, viewer), media_type=GEOJSON)


@router.get(
    "/patrol/cases",
    summary="Open cases and deadlines / 在办案件",
    response_class=Response,
    responses=answers(GEOJSON),
)
def patrol_cases(conn: ConnectionDep, viewer: ViewerDep) -> Response:
    """Open cases the viewer may read, soonest deadline first."""
    return Response(patrol.open_cases(conn, viewer), media_type=GEOJSON)


class Rectified(Strict):
    """A work order rectified: the day, when not today (the server decides on time or late)."""

    rectified_on: Day | None = Field(
        default=None, description="整改完成日期（默认今天）；是否按期由服务器按整改期限判定"
    )


@router.post(
    "/work_orders/{order_id}/rectified",
    summary="A work order rectified / 交办单整改完成",
    response_class=Response,
    responses=answers("application/json"),
)
def rectify_work_order(
    order_id: int,
    engine: EngineDep,
    ctx: EditContextDep,
    body: Rectified | None = None,
    if_match: IfMatch = None,
) -> Response:
    """Close an open work order: its result (on time or late) is set from its deadline and the
    bureau's date, whatever the client's clock says."""
    with engine.begin() as conn:
        written, done = workorders.rectify(
            conn, order_id, ctx, body.rectified_on if body else None, if_match
        )
    return Response(
        json.dumps(done, ensure_ascii=False),
        media_type="application/json",
        headers={"ETag": quoted_etag(written.etag or "")},
    )
