"""Each demo case's life through the workflow (`layers.cases.workflow.MOVES`) and the steps of
`layers.cases.steps`: the events those moves record, by the demo accounts of the right roles, and
the case values they leave behind, so the evaluation counts the demo as it counts real cases
(`layers.demo.histories` moves the whole year and writes what the moves recorded).

What happens, in the shares a bureau would recognise (tests/test_demo.py holds them to bands):

- 核实: every report from the public, the hotline or a camera waits for the inspector of its
  community, who verifies it on site within the verify limit (2 working hours) — each inspector
  misses it on 3–20 % of the reports; 5 % are not found on site and are cancelled (作废).
- The command centre cancels 1.5 % of the reports it is to register (作废, with the reason),
  merges 1 % into an earlier open or closed case of the same category in the same grid reported
  within three days (合并, duplicates), does not register 0.4 % (不予立案), and registers the rest
  within 3–30 minutes; an inspector fixes 3 % of their own reports on the spot (自行处置, with the
  photos before and after), and those are closed and counted apart.
- Dispatch follows within 2–20 minutes (3 % after more than an hour); the deadline is the
  category's time limit in working time on the county's calendar; 0.3 % of the cases are parked.
- Handling units differ: of the units receiving cases 40 % are prompt, 30 % steady, 18 % slow and
  12 % lagging; they handle 2, 6, 16 and 40 % of their cases after the deadline, fail 1, 3, 6 and
  12 % of the on-site checks (返工, handled again) and ask for more time on 2, 3, 5 and 8 % (延期,
  2–10 working days; 80 % approved, moving the deadline on the calendar; the rest refused).
- 核查 by the inspector of the community within 10–60 minutes of the unit's feedback; each
  inspector is later than 4 hours on 2–12 % of the checks.
- 督办: 40 % of the cases still unhandled past their deadline are supervised, by the centre (or,
  one in four, by a leader), with a supervision deadline of 2 working days.
- 回访: every hotline and public case that passes its check is called back (within 2 hours)
  before it is closed: 88 % satisfied, 8 % unreachable, 4 % unsatisfied — sent back to rework, handled, checked and
  called back again.
- Moves after the year's end are not made: such cases stay where they were on 31 December.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from layers.cases.casework import UNVERIFIED_SOURCES, VERIFY_WITHIN
from layers.cases.codes import CaseCategory
from layers.cases.steps import CALLED_BACK_SOURCES
from layers.cases.workflow import MOVES, STAYS
from layers.cases.worktime import WorkCalendar
from layers.demo.usernames import (
    DISPATCHER,
    LEADER,
    community_of,
    inspector_name,
)
from layers.store.db import BUREAU_TIMEZONE

LOCAL = ZoneInfo(BUREAU_TIMEZONE)

VERIFY_NOT_FOUND = 0.05
REJECTED = 0.004
CANCELLED = 0.015
MERGED = 0.01
SELF_HANDLED = 0.03  # of an inspector's own reports
MERGE_WITHIN = timedelta(days=3)
DISPATCH_LATE = 0.03
PARKED = 0.003
EXTENSION_APPROVED = 0.8
EXTENSION_DAYS = (2, 3, 5, 7, 10)
SUPERVISED = 0.4  # of the cases unhandled past their deadline
SUPERVISED_BY_LEADER = 0.25
SUPERVISE_DAYS = 2
CALLBACK = (("satisfied", 0.88), ("unreachable", 0.08), ("unsatisfied", 0.04))


@dataclass(frozen=True)
class Tier:
    """How a handling unit works: its share of the units and of its cases handled late, failing
    the check and asking for more time; on-time handling takes `pace` of the time allowed, late
    handling overruns the deadline by up to `overrun` minutes."""

    name: str
    share: float
    late: float
    rework: float
    extension: float
    pace: tuple[float, float]
    overrun: float


TIERS = (
    Tier("prompt", 0.4, 0.02, 0.01, 0.02, (0.05, 0.3), 600),
    Tier("steady", 0.3, 0.06, 0.03, 0.03, (0.1, 0.45), 900),
    Tier("slow", 0.18, 0.16, 0.06, 0.05, (0.2, 0.7), 2880),
    Tier("lagging", 0.12, 0.40, 0.12, 0.08, (0.3, 0.9), 7200),
)


@dataclass(frozen=True)
class Inspector:
    """How an inspector works: the share of verifications and of checks they make late."""

    late_verify: float
    late_check: float


NOT_FOUND_NOTES = ("现场未发现该问题", "现场已无此情况", "举报位置不准确，现场未发现")
CANCEL_NOTES = (
    "不属于城管受理范围，已告知转有关部门",
    "信息不全，无法定位",
    "测试上报，作废",
    "同一问题已由其他渠道受理",
)
REJECT_NOTES = ("不符合立案标准", "属于民事纠纷，不予立案")
MERGE_NOTE = "重复上报，合并至原案件"
PARK_NOTE = "涉及规划调整，暂缓处置"
EXTENSION_NOTES = ("需协调产权单位", "材料采购周期长", "涉及多部门联合处置", "天气原因无法施工")
EXTENSION_REFUSED = ("理由不充分，请按期处置", "可先行临时处置")
SUPERVISE_NOTE = "超期未处置，请于督办时限前办结"
FAIL_NOTES = ("现场问题未彻底解决", "处置后复现", "照片与现场不符")


class Event(NamedTuple):
    """One move in a case's history as `case_events` holds it, and what it sets on the case."""

    at: datetime
    action: str
    source: str
    target: str
    actor: str
    note: str | None
    unit: str | None
    suggested_unit: str | None
    routed_by: str | None
    detail: dict[str, Any] | None
    sets: dict[str, Any] | None


STAMPS = {action: move.stamp for action, move in MOVES.items()}
TARGETS = {action: move.target for action, move in MOVES.items()}


class Life:
    """A case being moved: its status, the events so far, the values they left on the case, and
    whether a duplicate is still to be linked to the case it merges into."""

    __slots__ = ("events", "merge", "status", "values")

    def __init__(self, status: str) -> None:
        self.status = status
        self.events: list[Event] = []
        self.values: dict[str, Any] = {}
        self.merge = False

    def move(
        self,
        at: datetime,
        action: str,
        actor: str,
        target: str | None = None,
        note: str | None = None,
        detail: dict[str, Any] | None = None,
        routed: tuple[str | None, str | None] = (None, None),
        sets: dict[str, Any] | None = None,
    ) -> None:
        """Make the move `action` at `at` (to `target` when its outcome decides the state)."""
        after = target or (self.status if TARGETS[action] == STAYS else TARGETS[action])
        unit, routed_by = routed
        event = Event(
            at,
            action,
            self.status,
            after,
            actor,
            note,
            unit,
            unit,
            routed_by,
            detail,
            sets,
        )
        self.events.append(event)
        if sets:
            self.values.update(sets)
        stamp = STAMPS[action]
        if stamp:
            self.values[stamp] = at
        self.status = after


Draw = Callable[[], float]


def _minutes(draw: Draw, lo: float, hi: float) -> timedelta:
    return timedelta(seconds=round(60 * (lo + (hi - lo) * draw())))


def _whole(at: datetime) -> datetime:
    return at.replace(microsecond=0)  # case times are whole seconds, as the workflow stamps them


def _pick(draw: Draw, options: tuple[str, ...]) -> str:
    return options[min(int(draw() * len(options)), len(options) - 1)]


@dataclass(frozen=True)
class Actors:
    """Who makes each move on a case: the community's inspector, the unit's handler."""

    handlers: dict[str, str]

    def inspector(self, grid_code: str) -> str:
        """The demo inspector whose patrol area holds the grid."""
        return inspector_name(community_of(grid_code))

    def handler(self, unit: str) -> str:
        """The demo handler account of a unit."""
        return self.handlers.get(unit, DISPATCHER)


class Case(NamedTuple):
    """What a case's life depends on, and who moves it: the inspector of its community, the
    handler of its unit."""

    reported: datetime
    source: str
    unit: str
    routed_by: str | None
    limit: CaseCategory
    inspector: str
    handler: str


@dataclass(frozen=True)
class World:
    """The calendar, the accounts and how each unit and inspector works."""

    calendar: WorkCalendar
    actors: Actors
    tiers: dict[str, Tier]
    inspectors: dict[str, Inspector]


def _verify(life: Life, case: Case, world: World, draw: Draw) -> datetime | None:
    """核实 within the verify limit (or late); None when nothing is found and it is cancelled."""
    inspector = case.inspector
    late = draw() < world.inspectors[inspector].late_verify
    share = 1.1 + 2.0 * draw() if late else 0.1 + 0.85 * draw()
    at = _whole(world.calendar.add_hours(case.reported, VERIFY_WITHIN * share))
    if draw() < VERIFY_NOT_FOUND:
        note = _pick(draw, NOT_FOUND_NOTES)
        detail = {"verified": False}
        life.move(at, "verify", inspector, "cancelled", note, detail, sets={"closed_at": at})
        return None
    life.move(at, "verify", inspector, detail={"verified": True})
    return at


def _triage(life: Life, case: Case, world: World, draw: Draw, at: datetime) -> bool:
    """The centre's decision on a report: True when it is registered."""
    fate = draw()
    inspector = case.inspector
    if fate < REJECTED:
        life.move(at, "reject", DISPATCHER, note=_pick(draw, REJECT_NOTES))
    elif fate < REJECTED + CANCELLED:
        life.move(at, "cancel", DISPATCHER, note=_pick(draw, CANCEL_NOTES))
    elif fate < REJECTED + CANCELLED + MERGED:
        life.move(at, "merge", DISPATCHER, note=MERGE_NOTE)
        life.merge = True
    elif case.source == "inspector" and draw() < SELF_HANDLED:
        sets = {"self_handled": True, "handled_at": at}
        life.move(at, "self_handle", inspector, sets=sets)
    else:
        life.move(at, "register", DISPATCHER)
        return True
    return False


def _extension(
    life: Life, handler: str, world: World, draw: Draw, at: datetime, due: datetime
) -> tuple[datetime, datetime]:
    """延期 asked part-way to the deadline and decided by the centre: the decision's time and the
    deadline after it."""
    asked = _whole(at + max(due - at, timedelta(minutes=30)) * (0.2 + 0.5 * draw()))
    days = EXTENSION_DAYS[min(int(draw() * len(EXTENSION_DAYS)), len(EXTENSION_DAYS) - 1)]
    note = _pick(draw, EXTENSION_NOTES)
    sets: dict[str, Any] = {"extension_asked": days}
    life.move(asked, "request_extension", handler, note=note, detail={"days": days}, sets=sets)
    decided = asked + _minutes(draw, 20, 240)
    if draw() < EXTENSION_APPROVED:
        moved = world.calendar.add_days(due, days)
        detail = {"days": days, "deadline_before": due.isoformat(), "deadline": moved.isoformat()}
        sets = {"deadline": moved, "extension_asked": None, "extensions": 1}
        life.move(decided, "approve_extension", DISPATCHER, detail=detail, sets=sets)
        return decided, moved
    note = _pick(draw, EXTENSION_REFUSED)
    sets = {"extension_asked": None}
    life.move(decided, "reject_extension", DISPATCHER, note=note, detail={"days": days}, sets=sets)
    return decided, due


def _supervise(life: Life, world: World, draw: Draw, since: datetime, handled: datetime) -> None:
    """督办 some time between the deadline passing and the handling."""
    if draw() >= SUPERVISED:
        return
    at = _whole(since + (handled - since) * (0.2 + 0.4 * draw()))
    until = world.calendar.add_days(at, SUPERVISE_DAYS)
    by = LEADER if draw() < SUPERVISED_BY_LEADER else DISPATCHER
    detail = {"until": until.isoformat(), "count": 1}
    sets = {"supervisions": 1, "supervise_deadline": until}
    life.move(at, "supervise", by, note=SUPERVISE_NOTE, detail=detail, sets=sets)


def _handle_and_check(
    life: Life, case: Case, world: World, draw: Draw, handled: datetime, tier: Tier
) -> datetime:
    """Handling, feedback and the on-site check, again after a failed check; the passing time."""
    handler = case.handler
    inspector = case.inspector
    late_check = world.inspectors[inspector].late_check
    failed_once = False
    while True:
        life.move(handled, "handle", handler)
        feedback = handled + _minutes(draw, 5, 20)
        life.move(feedback, "feedback", handler)
        late = draw() < late_check
        checked = feedback + (_minutes(draw, 250, 600) if late else _minutes(draw, 10, 60))
        if failed_once or draw() >= tier.rework:
            life.move(checked, "pass", inspector)
            return checked
        life.move(checked, "fail", inspector, note=_pick(draw, FAIL_NOTES))
        failed_once = True
        handled = checked + _minutes(draw, 60, 1440)


def _callback(life: Life, world: World, draw: Draw, checked: datetime) -> datetime:
    """回访 of the caller, before closing; unsatisfied sends the case back to rework once."""
    at = checked + _minutes(draw, 10, 120)
    roll, result = draw(), "satisfied"
    for name, share in CALLBACK:
        if roll < share:
            result = name
            break
        roll -= share
    if result != "unsatisfied":
        sets = {"callback_result": result}
        life.move(at, "callback", DISPATCHER, detail={"result": result}, sets=sets)
        return at
    sets = {"callback_result": result}
    life.move(at, "callback", DISPATCHER, "rework", detail={"result": result}, sets=sets)
    return at


def live(case: Case, world: World, draw: Draw) -> Life:
    """The whole life of one case from its report, by the moves of the workflow."""
    life = Life("unverified" if case.source in UNVERIFIED_SOURCES else "reported")
    at = case.reported
    if life.status == "unverified":
        verified = _verify(life, case, world, draw)
        if verified is None:
            return life
        at = verified
    at += _minutes(draw, 3, 30)
    if not _triage(life, case, world, draw, at):
        return life
    at += _minutes(draw, 65, 180) if draw() < DISPATCH_LATE else _minutes(draw, 2, 20)
    due = world.calendar.add(at, case.limit.time_limit, case.limit.time_unit)
    routed = (case.unit, case.routed_by)
    life.move(at, "dispatch", DISPATCHER, routed=routed, sets={"deadline": due})
    if draw() < PARKED:
        life.move(at + _minutes(draw, 60, 600), "park", DISPATCHER, note=PARK_NOTE)
        return life
    tier = world.tiers[case.unit]
    handler = case.handler
    late = draw() < tier.late
    if draw() < tier.extension:
        at, due = _extension(life, handler, world, draw, at, due)
    if late or due - at < timedelta(minutes=10):
        handled = max(at, due) + _minutes(draw, 10, tier.overrun)
        _supervise(life, world, draw, max(at, due), handled)
    else:
        lo, hi = tier.pace
        handled = _whole(at + (due - at) * (lo + (hi - lo) * draw()))
    checked = _handle_and_check(life, case, world, draw, handled, tier)
    if case.source in CALLED_BACK_SOURCES:
        checked = _callback(life, world, draw, checked)
        if life.status == "rework":
            again = checked + _minutes(draw, 120, 2880)
            checked = _handle_and_check(life, case, world, draw, again, TIERS[0])
            result = "satisfied" if draw() < 0.9 else "unreachable"
            at = checked + _minutes(draw, 10, 120)
            sets = {"callback_result": result}
            life.move(at, "callback", DISPATCHER, detail={"result": result}, sets=sets)
            checked = at
    life.move(checked + _minutes(draw, 1, 30), "close", DISPATCHER)
    return life


def settle(life: Life, before: datetime) -> tuple[str, dict[str, Any]]:
    """Drop the moves from `before` on; the case's status and the values its moves left (each
    move's stamp and what it set), as `layers.cases.workflow.transition` writes them."""
    if life.events and life.events[-1].at >= before:
        kept = [e for e in life.events if e.at < before]
        life.status = kept[-1].target if kept else life.events[0].source
        life.events[:] = kept
        life.values = {}
        for event in kept:
            life.values |= event.sets or {}
            stamp = STAMPS.get(event.action)
            if stamp:
                life.values[stamp] = event.at
    return life.status, life.values
