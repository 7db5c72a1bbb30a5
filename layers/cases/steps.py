"""The workflow steps beyond the main line that carry data (GB/T 30428.4).

核实 verify: an inspector of the grid confirms on site a report from the public, the hotline or a
camera (or finds nothing, and it is cancelled). 作废 cancel and 合并 merge: the centre drops a
duplicate or invalid report, with the reason or the case it duplicates. 延期: the unit asks for
working days, the centre grants them (the deadline moves on the county's calendar) or not. 督办:
the centre or a leader flags a case with a deadline. 回访: the caller's satisfaction after the
check; unsatisfied sends it back to rework. 自行处置: the inspector fixed it on the spot, with a
photo after beside the report's photo before. Each step's data is kept on its event.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, text

from layers.cases import casework
from layers.cases.casework import Photo
from layers.cases.workcalendar import Calendars
from layers.engine import access
from layers.engine.editing import EditContext
from layers.errors import InvalidFeature, StateConflict
from layers.registry import CALLBACK_RESULTS, CASES, Role
from layers.store.db import BUREAU_TIMEZONE

MAX_EXTENSION_DAYS = 30
CALLED_BACK_SOURCES = ("hotline", "public")  # the callers a case can be called back to
CALLBACK_LABELS = {c.value: c.label_zh for c in CALLBACK_RESULTS}


@dataclass(frozen=True)
class StepData:
    """What a step may carry besides its note."""

    verified: bool | None = None  # verify: found on site
    into: int | None = None  # merge: the case this one duplicates
    days: int | None = None  # request_extension: working days asked
    until: datetime | None = None  # supervise: the supervision deadline
    result: str | None = None  # callback: satisfied / unsatisfied / unreachable
    photo: Photo | None = None  # self_handle: the photo after

    def given(self) -> list[str]:
        """The names of the data given."""
        return [name for name, value in vars(self).items() if value is not None]


@dataclass(frozen=True)
class Outcome:
    """Where a step leaves the case, what else it writes on it, and what its event records."""

    target: str
    values: dict[str, Any] = field(default_factory=dict)
    detail: dict[str, Any] | None = None


@dataclass(frozen=True)
class Step:
    """A step being made: the locked case, its data and note, now, and who makes it."""

    conn: Connection
    case: Any
    data: StepData
    note: str | None
    at: datetime
    ctx: EditContext
    calendars: Calendars


def record_event(conn: Connection, case_id: int, event: dict[str, Any]) -> None:
    """One line of a case's history."""
    detail = event.get("detail")
    conn.execute(
        text("""
        INSERT INTO case_events (adcode, case_id, at, action, from_status, to_status, actor,
                                 note, unit, suggested_unit, routed_by, detail)
        SELECT c.adcode, c.id, :at, :action, :source, :target, :actor,
               :note, :unit, :suggested_unit, :routed_by, CAST(:detail AS jsonb)
        FROM cases AS c WHERE c.id = :case
    """),
        {
            "unit": event.get("unit"),
            "suggested_unit": event.get("suggested_unit"),
            "routed_by": event.get("routed_by"),
            "case": case_id,
            "at": event["at"],
            "action": event["action"],
            "source": event["source"],
            "target": event["target"],
            "actor": event["actor"],
            "note": event.get("note"),
            "detail": None if detail is None else json.dumps(detail, ensure_ascii=False),
        },
    )


def _reason(step: Step, what_en: str, what_zh: str) -> None:
    if step.note is None or not step.note.strip():
        raise InvalidFeature(
            f"{what_en} needs its reason (note).",
            f"{what_zh}须填写理由（note）。",
            code="reason_required",
        )


def _missing(name: str, en: str, zh: str) -> InvalidFeature:
    return InvalidFeature(en, zh, code="missing_property", field=name)


def _verify(step: Step, out: Outcome) -> Outcome:
    found = step.data.verified
    if found is None:
        raise _missing(
            "verified",
            "Verification needs its outcome: verified true (found on site) or false.",
            "核实须填写结果 verified：true（现场属实）或 false（现场未发现）。",
        )
    if found:
        return replace(out, detail={"verified": True})
    _reason(step, "A report not found on site", "现场未发现问题的案件作废")
    return Outcome("cancelled", {"closed_at": step.at}, {"verified": False})


def _cancel(step: Step, out: Outcome) -> Outcome:
    _reason(step, "Cancelling a report", "作废案件")
    return out


def _merge_target(step: Step, into: int) -> Any:
    params: dict[str, Any] = {"into": into}
    where = access.area_clause(CASES, step.ctx.viewer, params)
    target = step.conn.execute(
        # locked: of two cases merged into each other at once, the second waits and then finds
        # its target cancelled (not left to the key lock its event row happens to take)
        text(
            "SELECT t.id, t.adcode, t.status FROM cases AS t "
            f"WHERE t.id = :into AND {where} FOR UPDATE OF t"
        ),
        params,
    ).first()
    if target is None:
        raise InvalidFeature(
            f"There is no case {into} you may read to merge into.",
            f"没有您可查看的案件 {into}，无法合并。",
            code="merge_target_not_found",
            field="into",
        )
    if target.adcode != step.case.adcode:
        raise InvalidFeature(
            "A case is merged only into a case of its own county.",
            "只能合并到本县（市、区）的案件。",
            code="merge_other_county",
            field="into",
        )
    if target.id == step.case.id or target.status == "cancelled":
        raise StateConflict(
            "A case is merged into another case that is not cancelled.",
            "只能合并到另一件未作废的案件。",
            code="merge_target_invalid",
            status=target.status,
        )
    return target


def _merge(step: Step, out: Outcome) -> Outcome:
    into = step.data.into
    if into is None:
        raise _missing(
            "into",
            "Merging needs the case it duplicates (into).",
            "合并须填写重复的原案件编号 into。",
        )
    target = _merge_target(step, into)
    record_event(
        step.conn,
        target.id,
        {
            "at": step.at,
            "action": "merged_from",
            "source": target.status,
            "target": target.status,
            "actor": step.ctx.actor,
            "note": step.note,
            "detail": {"case": step.case.id},
        },
    )
    return replace(out, values={"merged_into": into}, detail={"into": into})


def _no_request(step: Step) -> StateConflict:
    return StateConflict(
        "This case has no extension request waiting.",
        "该案件没有待审批的延期申请。",
        code="no_extension_requested",
        status=step.case.status,
    )


def _request_extension(step: Step, out: Outcome) -> Outcome:
    days = step.data.days
    if days is None or not 1 <= days <= MAX_EXTENSION_DAYS:
        raise InvalidFeature(
            f"An extension asks for 1 to {MAX_EXTENSION_DAYS} working days (days).",
            f"申请延期须填写 1 至 {MAX_EXTENSION_DAYS} 个工作日（days）。",
            code="extension_days",
            field="days",
        )
    _reason(step, "An extension request", "申请延期")
    if step.case.extension_asked is not None:
        raise StateConflict(
            "An extension request is already waiting for the centre.",
            f"已有延期 {step.case.extension_asked} 个工作日的申请待审批，不能重复申请。",
            code="extension_pending",
            status=step.case.status,
        )
    return replace(out, values={"extension_asked": days}, detail={"days": days})


def _approve_extension(step: Step, out: Outcome) -> Outcome:
    days = step.case.extension_asked
    if days is None:
        raise _no_request(step)
    local = ZoneInfo(BUREAU_TIMEZONE)
    before = (step.case.deadline or step.at).astimezone(local)
    calendar = step.calendars.get(step.conn, step.case.adcode)
    deadline = calendar.add_days(before, days)
    values = {
        "deadline": deadline,
        "extension_asked": None,
        "extensions": (step.case.extensions or 0) + 1,
    }
    detail = {"days": days, "deadline_before": before.isoformat(), "deadline": deadline.isoformat()}
    return replace(out, values=values, detail=detail)


def _reject_extension(step: Step, out: Outcome) -> Outcome:
    days = step.case.extension_asked
    if days is None:
        raise _no_request(step)
    _reason(step, "Refusing an extension", "不批准延期")
    return replace(out, values={"extension_asked": None}, detail={"days": days})


def _supervise(step: Step, out: Outcome) -> Outcome:
    until = step.data.until
    if until is None:
        raise _missing(
            "until", "Supervision needs its deadline (until).", "督办须填写督办时限 until。"
        )
    if until.tzinfo is None:
        until = until.replace(tzinfo=ZoneInfo(BUREAU_TIMEZONE))
    if until <= step.at:
        raise InvalidFeature(
            "The supervision deadline must be later than now.",
            "督办时限须晚于当前时间。",
            code="supervise_deadline_past",
            field="until",
        )
    _reason(step, "Supervision", "督办")
    count = (step.case.supervisions or 0) + 1
    values = {"supervisions": count, "supervise_deadline": until.replace(microsecond=0)}
    return replace(out, values=values, detail={"until": until.isoformat(), "count": count})


def _callback(step: Step, out: Outcome) -> Outcome:
    if step.case.source not in CALLED_BACK_SOURCES:
        raise StateConflict(
            "Only cases from the public or the hotline are called back.",
            "只有公众举报和12345热线的案件需要回访。",
            code="callback_not_applicable",
            status=step.case.status,
        )
    result = step.data.result
    if result not in CALLBACK_LABELS:
        raise InvalidFeature(
            f"result must be one of {', '.join(CALLBACK_LABELS)}.",
            f"回访结果 result 必须是：{'、'.join(CALLBACK_LABELS.values())}。",
            code="property_not_in_code_list",
            field="result",
        )
    target = "rework" if result == "unsatisfied" else out.target
    return Outcome(target, {"callback_result": result}, {"result": result})


def _own_report(step: Step) -> bool:
    found = step.conn.execute(
        text("""
        SELECT 1 FROM audit_log WHERE layer = 'cases' AND feature_id = :id
        AND action = 'create' AND actor = :actor LIMIT 1
    """),
        {"id": step.case.id, "actor": step.ctx.actor},
    ).first()
    return found is not None


def _self_handle(step: Step, out: Outcome) -> Outcome:
    mine = step.case.source == "inspector" and (
        step.ctx.viewer.role is Role.ADMIN or _own_report(step)
    )
    if not mine:
        raise access.forbidden(
            "An inspector handles on the spot only a case they reported themselves.",
            "监督员只能自行处置本人上报的案件。",
            code="not_own_report",
        )
    if step.data.photo is None:
        raise _missing(
            "photo",
            "Handling on the spot needs the photo after (photo).",
            "自行处置须上传处置后的照片（photo）。",
        )
    before = step.conn.execute(
        text("SELECT min(id) FROM case_photos WHERE case_id = :id"), {"id": step.case.id}
    ).scalar()
    if before is None:
        raise InvalidFeature(
            "Only a case reported with its photo (before) can be handled on the spot.",
            "上报时附有现场照片（处置前）的案件才能自行处置。",
            code="before_photo_missing",
        )
    after = casework.store_photo(step.conn, step.case.id, step.data.photo, step.ctx)
    values = {"self_handled": True, "handled_at": step.at}
    return replace(out, values=values, detail={"photo_before": before, "photo_after": after})


STEPS: dict[str, Callable[[Step, Outcome], Outcome]] = {
    "verify": _verify,
    "cancel": _cancel,
    "merge": _merge,
    "request_extension": _request_extension,
    "approve_extension": _approve_extension,
    "reject_extension": _reject_extension,
    "supervise": _supervise,
    "callback": _callback,
    "self_handle": _self_handle,
}
