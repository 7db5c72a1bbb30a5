"""The digital city-management case workflow (GB/T 30428 / CJJ/T 106), as one table of moves.

上报 → 立案 (or 不予立案) → 派遣 → 处置 → 反馈 → 核查 → 结案, with 退回 (the unit says the case is
not theirs), 返工 (the on-site check failed) and 挂账 (parked until it can be handled). Each move is
allowed from some states, to one role, stamps its time on the case, is recorded in `case_events`
and in the audit log. Dispatching starts the clock: the deadline is the category's time limit in
working hours or working days counted from the dispatch on the county's working calendar
(weekends, statutory holidays and 调休 working days, `layers.cases.workcalendar`).

The steps the standard counts beyond the main line carry data and live in `layers.cases.steps`:
核实 (verify), 作废 (cancel) and 合并 (merge), 延期 (request / approve / reject an extension),
督办 (supervise), 回访 (callback) and 自行处置 (self_handle).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, text

from layers.cases import routing, steps, units
from layers.cases.steps import StepData, record_event
from layers.cases.workcalendar import Calendars
from layers.engine import access, editing
from layers.engine.editing import EditContext
from layers.errors import InvalidFeature, StateConflict
from layers.registry import CASE_FINAL_STATUSES, CASE_STATUSES, CASES, ROLE_LABELS, Role
from layers.store.db import BUREAU_TIMEZONE

STATUS_LABELS = {c.value: c.label_zh for c in CASE_STATUSES}
# The process's calendars when the caller passes none (the API passes its own, on its settings).
CALENDARS = Calendars()
# The times a case's stages are stamped at, in the order a case passes them.
STAGE_TIMES = (
    "reported_at",
    "registered_at",
    "dispatched_at",
    "handled_at",
    "feedback_at",
    "verified_at",
    "closed_at",
)


@dataclass(frozen=True)
class Move:
    """One step of the workflow: from which states, to which, by whom (`role`, or one of `also`),
    stamping which time, taking which data besides a note (the outcome may change the target)."""

    action: str
    label: str
    sources: tuple[str, ...]
    target: str
    role: Role
    stamp: str | None = None
    takes: tuple[str, ...] = ()
    also: tuple[Role, ...] = ()

    @property
    def roles(self) -> tuple[Role, ...]:
        """Every role that may make this move (admins always may)."""
        return (self.role, *self.also)


OPEN_STATUSES = tuple(c.value for c in CASE_STATUSES if c.value not in CASE_FINAL_STATUSES)
UNREGISTERED = ("unverified", "reported")
HANDLING = ("dispatched", "rework")
# the main line (上报 → 结案 and its side paths): no data besides a note and, to dispatch, a unit
MAIN_LINE = (
    "register",
    "reject",
    "dispatch",
    "return",
    "handle",
    "feedback",
    "pass",
    "fail",
    "close",
    "park",
    "resume",
)


MOVES = {
    m.action: m
    for m in (
        Move("register", "立案", ("reported",), "registered", Role.DISPATCHER, "registered_at"),
        Move("reject", "不予立案", ("reported",), "rejected", Role.DISPATCHER, "closed_at"),
        Move(
            "dispatch",
            "派遣",
            ("registered", "returned"),
            "dispatched",
            Role.DISPATCHER,
            "dispatched_at",
        ),
        Move("return", "退回", ("dispatched",), "returned", Role.HANDLER),
        Move("handle", "处置", ("dispatched", "rework"), "handled", Role.HANDLER, "handled_at"),
        Move("feedback", "反馈", ("handled",), "feedback", Role.HANDLER, "feedback_at"),
        Move("pass", "核查通过", ("feedback",), "verified", Role.INSPECTOR, "verified_at"),
        Move("fail", "核查不通过（返工）", ("feedback",), "rework", Role.INSPECTOR, "verified_at"),
        Move("close", "结案", ("verified",), "closed", Role.DISPATCHER, "closed_at"),
        Move("park", "挂账", ("dispatched", "rework", "returned"), "parked", Role.DISPATCHER),
        Move("resume", "取消挂账", ("parked",), "dispatched", Role.DISPATCHER),
        Move(
            "verify",
            "核实",
            ("unverified",),
            "reported",
            Role.INSPECTOR,
            "confirmed_at",
            takes=("verified",),
        ),
        # a registered case found a duplicate or invalid before dispatch is cancelled too (it
        # counts against the registration's accuracy)
        Move(
            "cancel",
            "作废",
            (*UNREGISTERED, "registered"),
            "cancelled",
            Role.DISPATCHER,
            "closed_at",
        ),
        Move(
            "merge",
            "合并（重复案件）",
            UNREGISTERED,
            "cancelled",
            Role.DISPATCHER,
            "closed_at",
            takes=("into",),
        ),
        Move(
            "request_extension",
            "申请延期",
            HANDLING,
            "=",
            Role.HANDLER,
            takes=("days",),
        ),
        Move("approve_extension", "批准延期", HANDLING, "=", Role.DISPATCHER),
        Move("reject_extension", "不批准延期", HANDLING, "=", Role.DISPATCHER),
        Move(
            "supervise",
            "督办",
            OPEN_STATUSES,
            "=",
            Role.DISPATCHER,
            takes=("until",),
            also=(Role.LEADER,),
        ),
        Move("callback", "回访", ("verified",), "=", Role.DISPATCHER, takes=("result",)),
        Move(
            "self_handle",
            "自行处置",
            ("reported",),
            "closed",
            Role.INSPECTOR,
            "closed_at",
            takes=("photo",),
        ),
    )
}
STAYS = "="  # the target of a step that leaves the case in its state (unless its outcome moves it)


def _unknown(action: str) -> InvalidFeature:
    known = "、".join(f"{m.action}（{m.label}）" for m in MOVES.values())
    return InvalidFeature(
        f"Unknown action {action!r}; one of {', '.join(MOVES)}.",
        f"未知的流转环节 {action!r}，可选：{known}。",
        code="unknown_action",
    )


def moves_from(status: str, viewer: access.Viewer) -> list[Move]:
    """The moves the viewer may make on a case in `status`."""
    return [
        m
        for m in MOVES.values()
        if status in m.sources and (viewer.role is Role.ADMIN or viewer.role in m.roles)
    ]


def _locked_case(conn: Connection, case_id: int, viewer: access.Viewer) -> Any:
    params: dict[str, Any] = {"id": case_id}
    where = access.area_clause(CASES, viewer, params)
    row = conn.execute(
        text(f"""
        SELECT t.id, t.status, t.category_code, t.unit, t.adcode, t.grid_code, t.component_code,
               t.routed_by, t.source, t.deadline, t.extension_asked, t.extensions,
               t.supervisions, to_jsonb(t) - 'geom' AS row,
               coalesce(e.time_limit, k.time_limit) AS time_limit,
               coalesce(e.time_unit, k.time_unit) AS time_unit
        FROM cases AS t LEFT JOIN case_categories AS k ON k.code = t.category_code
        LEFT JOIN case_category_edits AS e ON e.code = t.category_code AND e.adcode = t.adcode
        WHERE t.id = :id AND {where} FOR UPDATE OF t
    """),
        params,
    ).first()
    if row is None:
        raise access.not_visible(CASES, case_id)
    return row


def _refuse_move(move: Move, status: str, viewer: access.Viewer) -> None:
    if viewer.role is not Role.ADMIN and viewer.role not in move.roles:
        names = "或".join(ROLE_LABELS[r] for r in move.roles)
        raise access.forbidden(
            f"{move.action} is for the role {' or '.join(r.value for r in move.roles)}.",
            f"“{move.label}”须由{names}办理，您的角色是{ROLE_LABELS[viewer.role]}。",
        )
    if status not in move.sources:
        possible = "、".join(m.label for m in MOVES.values() if status in m.sources) or "无"
        raise StateConflict(
            f"A case that is {status} cannot be moved by {move.action}.",
            f"案件当前为“{STATUS_LABELS[status]}”，不能“{move.label}”；当前可办理：{possible}。",
            code="illegal_transition",
            status=status,
        )


def _now(conn: Connection) -> datetime:
    now: datetime = conn.execute(text("SELECT date_trunc('second', now())")).scalar_one()
    return now.astimezone(ZoneInfo(BUREAU_TIMEZONE))


def _dispatched_to(conn: Connection, case: Any, chosen: str | None) -> dict[str, Any]:
    """Where a dispatch sends a case: the routed unit (routed again when it has none) unless the
    dispatcher chose another, which is recorded as an override beside the suggested one."""
    suggested, rule = case.unit, case.routed_by
    if suggested is None:
        decided = routing.route(
            conn, case.adcode, case.category_code, case.grid_code, case.component_code
        )
        suggested, rule = decided.unit, decided.rule
    if chosen is not None:
        units.check_known(conn, chosen, case.adcode)
        if chosen != suggested:
            return {"unit": chosen, "suggested_unit": suggested, "routed_by": "dispatcher"}
    if suggested is None:
        raise InvalidFeature(
            "This case has no handling unit: give one to dispatch it to.",
            "该案件没有处置单位，派遣时请指定处置单位（unit）。",
            code="missing_unit",
        )
    return {"unit": suggested, "suggested_unit": suggested, "routed_by": rule}


def _refuse_data(move: Move, data: StepData, unit: str | None) -> None:
    if unit is not None and move.action != "dispatch":
        raise InvalidFeature(
            "A unit is given only when dispatching.",
            "只有派遣时才指定处置单位。",
            code="unit_not_allowed",
        )
    stray = [name for name in data.given() if name not in move.takes]
    if stray:
        raise InvalidFeature(
            f"{move.action} takes no {', '.join(stray)}.",
            f"“{move.label}”不需要填写：{'、'.join(stray)}。",
            code="data_not_allowed",
        )


def transition(
    conn: Connection,
    case_id: int,
    action: str,
    note: str | None,
    ctx: EditContext,
    calendars: Calendars = CALENDARS,
    unit: str | None = None,
    data: StepData | None = None,
) -> dict[str, Any]:
    """Make one move of the workflow on a case, or refuse it with the reason; audited."""
    move = MOVES.get(action)
    if move is None:
        raise _unknown(action)
    data = data or StepData()
    case = _locked_case(conn, case_id, ctx.viewer)
    _refuse_move(move, case.status, ctx.viewer)
    _refuse_data(move, data, unit)
    at = _now(conn)
    outcome = steps.Outcome(target=case.status if move.target == STAYS else move.target)
    if move.action in steps.STEPS:
        outcome = steps.STEPS[move.action](
            steps.Step(conn, case, data, note, at, ctx, calendars), outcome
        )
    values: dict[str, Any] = {"status": outcome.target} | outcome.values
    if move.stamp:
        values[move.stamp] = at
    routed: dict[str, Any] = {}
    if move.action == "dispatch":
        calendar = calendars.get(conn, case.adcode)
        values["deadline"] = calendar.add(at, case.time_limit, case.time_unit)
        routed = _dispatched_to(conn, case, unit)
        values |= {"unit": routed["unit"], "routed_by": routed["routed_by"]}
    sets = ", ".join(f'"{name}" = :{name}' for name in values)
    after = conn.execute(
        text(f"UPDATE cases AS t SET {sets} WHERE t.id = :id RETURNING to_jsonb(t) - 'geom'"),
        values | {"id": case_id},
    ).scalar_one()
    record_event(
        conn,
        case_id,
        {
            "at": at,
            "action": move.action,
            "source": case.status,
            "target": outcome.target,
            "actor": ctx.actor,
            "note": note,
            "detail": outcome.detail,
        }
        | routed,
    )
    editing.audit(
        conn,
        ctx,
        "update",
        CASES,
        case_id,
        case.row,
        after | {"transition": move.action, "note": note} | (outcome.detail or {}),
    )
    return {
        "id": case_id,
        "action": move.action,
        "from": case.status,
        "status": outcome.target,
        "status_label": STATUS_LABELS[outcome.target],
        "at": at.isoformat(),
        "deadline": after.get("deadline"),
        "unit": after.get("unit"),
        "routed_by": after.get("routed_by"),
    } | ({"detail": outcome.detail} if outcome.detail else {})


def history(conn: Connection, case_id: int, viewer: access.Viewer) -> dict[str, Any]:
    """A case's moves so far, and the moves the viewer may make next."""
    params: dict[str, Any] = {"id": case_id}
    where = access.area_clause(CASES, viewer, params)
    status = conn.execute(
        text(f"SELECT t.status FROM cases AS t WHERE t.id = :id AND {where}"), params
    ).scalar()
    if status is None:
        raise access.not_visible(CASES, case_id)
    events = conn.execute(
        text("""
        SELECT at, action, from_status, to_status, actor, note, unit, suggested_unit, routed_by,
               detail
        FROM case_events
        WHERE case_id = :id ORDER BY at, id
    """),
        {"id": case_id},
    ).mappings()
    return {
        "id": case_id,
        "status": status,
        "status_label": STATUS_LABELS[status],
        "events": [dict(e) for e in events],
        "next": [{"action": m.action, "label": m.label} for m in moves_from(status, viewer)],
    }
