"""The evaluation of GB/T 30428.4: per region, department and post, counts, rates, score, grade.

Each object is computed by one SQL statement over the cases the viewer reads. A rate is null when
nothing was due. Time limits of the posts are working hours on the county's calendar. The score
weighs the rates of an object (weights per county in a checked file, `layers.cases.evalweights`),
and the grade follows the score: A ≥ 90, B ≥ 75, C ≥ 60, D ≥ 40, E below. The definitions, and
which moments count in the period, are in the README.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

from layers.cases import evalweights, indicators
from layers.cases.casefilters import bind_period
from layers.cases.workcalendar import Calendars
from layers.engine.access import Viewer, area_clause
from layers.engine.statcsv import table_csv
from layers.errors import BadQuery
from layers.registry import CASES, GRIDS
from layers.store import versions
from layers.store.db import BUREAU_TIMEZONE

OBJECTS = ("region", "department", "post")
GRADES = ((90.0, "A"), (75.0, "B"), (60.0, "C"), (40.0, "D"))
SUPERVISION_PENALTY = 0.05  # of the supervision component per supervision (10 − 0.5 × 督办数)
COMPLEMENTS = {"rework": "rework_rate", "missed_report": "missed_report_rate"}
# a step that waited longer than this before the period is late whatever the calendar says
MARGIN_DAYS = 60
CALENDARS = Calendars()


@dataclass(frozen=True)
class Limits:
    """Working hours a post has for a step, counted from the moment the step became due."""

    dispatch_hours: float = 1.0  # from the registration, or from the unit's return
    check_hours: float = 4.0  # from the unit's feedback
    register_hours: float = 1.0  # from the report, or from its verification on site
    close_hours: float = 1.0  # from the passed check


_HEAD = (("adcode", "县级行政区"), ("key", "编码/名称"), ("label", "名称"))
_TAIL = (("score", "综合得分"), ("grade", "等级"))
COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "region": (
        *_HEAD,
        ("received", "受理数"),
        ("registered", "立案数"),
        ("registration_rate", "立案率"),
        ("due", "应结案数"),
        ("closed", "结案数"),
        ("closed_rate", "结案率"),
        ("closed_on_time", "按期结案数"),
        ("on_time_closed_rate", "按期结案率"),
        *_TAIL,
    ),
    "department": (
        *_HEAD,
        ("due", "应处置数"),
        ("handled", "处置数"),
        ("handled_rate", "处置率"),
        ("handled_on_time", "按期处置数"),
        ("on_time_handled_rate", "按期处置率"),
        ("reworked", "返工数"),
        ("rework_rate", "返工率"),
        ("extended", "延期数"),
        ("extension_rate", "延期率"),
        ("supervised", "督办数"),
        *_TAIL,
    ),
    "post": (
        *_HEAD,
        ("post", "岗位"),
        ("reports", "上报（受理）数"),
        ("valid_reports", "有效上报（受理）数"),
        ("valid_report_rate", "有效上报（受理）率"),
        ("verifications", "核实数"),
        ("verified_on_time", "按时核实数"),
        ("on_time_verify_rate", "按时核实率"),
        ("checks", "核查数"),
        ("checked_on_time", "按时核查数"),
        ("on_time_check_rate", "按时核查率"),
        ("area_registered", "辖区立案数"),
        ("missed_reports", "漏报数"),
        ("missed_report_rate", "漏报率"),
        ("dispatches", "派遣数"),
        ("dispatched_on_time", "按时派遣数"),
        ("on_time_dispatch_rate", "按时派遣率"),
        ("accurate_dispatches", "准确派遣数"),
        ("accurate_dispatch_rate", "准确派遣率"),
        ("registrations", "立案数"),
        ("registered_on_time", "按时立案数"),
        ("on_time_register_rate", "按时立案率"),
        ("accurate_registrations", "准确立案数"),
        ("accurate_register_rate", "准确立案率"),
        ("closes", "结案数"),
        ("closed_on_time", "按时结案数"),
        ("on_time_close_rate", "按时结案率"),
        *_TAIL,
    ),
}
POST_LABELS = {
    "inspector": "监督员",
    "dispatcher": "派遣员",
    "shift_leader": "值班长",
    "operator": "受理员",
}


@dataclass(frozen=True)
class EvaluationQuery:
    """Which object, over which period (both days included), for whom, regions at which level."""

    object: str
    start: date
    end: date
    viewer: Viewer | None = None
    level: str = "street"


def check(query: EvaluationQuery) -> None:
    """Refuse an unknown object or level, or a reversed period."""
    bind_period(query.start, query.end, {})
    if query.object not in OBJECTS:
        raise BadQuery(
            f"object must be one of {', '.join(OBJECTS)}.",
            f"考核对象（object）必须是：{'、'.join(OBJECTS)}。",
            code="evaluation_object",
        )
    if query.level not in GRIDS.field("level").code_values:
        raise BadQuery(
            "level must be street, community or section.",
            "区域层级（level）必须是街道、社区或单元网格。",
            code="evaluation_level",
        )


def _in(moment: str) -> str:
    return f"({moment} >= CAST(:start AS date) AND {moment} < CAST(:after_end AS date))"


def _rate(part: str, whole: str) -> str:
    return f"round({part}::numeric / nullif({whole}, 0), 4)"


def _region(conn: Connection, query: EvaluationQuery, params: dict[str, Any]) -> str:
    base, label = indicators.grouped_cases(
        conn,
        indicators.IndicatorQuery(query.start, query.end, query.level, (), query.viewer),
        params,
    )
    due = f"{_in('deadline')} AND status NOT IN ('rejected', 'cancelled')"
    return f"""
        WITH base AS MATERIALIZED ({base}),
        r AS (
            SELECT gkey AS key, min(adcode) AS adcode,
                   count(*) FILTER (WHERE {_in("reported_at")}) AS received,
                   count(*) FILTER (WHERE {_in("reported_at")} AND registered_at IS NOT NULL)
                       AS registered,
                   count(*) FILTER (WHERE {due}) AS due,
                   count(*) FILTER (WHERE {due} AND status = 'closed') AS closed,
                   count(*) FILTER (WHERE {due} AND status = 'closed' AND closed_at <= deadline)
                       AS closed_on_time
            FROM base GROUP BY gkey
        )
        SELECT r.*, {label} AS label,
               {_rate("r.registered", "r.received")} AS registration_rate,
               {_rate("r.closed", "r.due")} AS closed_rate,
               {_rate("r.closed_on_time", "r.due")} AS on_time_closed_rate
        FROM r WHERE r.received > 0 OR r.due > 0 ORDER BY r.key
    """


def _department(query: EvaluationQuery, params: dict[str, Any]) -> str:
    scope = area_clause(CASES, query.viewer, params, alias="c")
    reworked = (
        "EXISTS (SELECT 1 FROM case_events AS w WHERE w.case_id = d.id AND w.to_status = 'rework')"
    )
    return f"""
        WITH base AS MATERIALIZED (SELECT c.* FROM cases AS c WHERE c.unit IS NOT NULL AND {scope}),
        d AS (
            SELECT unit AS key, min(adcode) AS adcode, count(*) AS due,
                   count(*) FILTER (WHERE handled_at IS NOT NULL) AS handled,
                   count(*) FILTER (WHERE handled_at <= deadline) AS handled_on_time,
                   count(*) FILTER (WHERE {reworked}) AS reworked,
                   count(*) FILTER (WHERE extensions > 0) AS extended
            FROM base AS d
            WHERE {_in("deadline")} AND status NOT IN ('rejected', 'cancelled')
            GROUP BY unit
        ),
        s AS (
            SELECT b.unit AS key, min(b.adcode) AS adcode, count(*) AS supervised
            FROM case_events AS e JOIN base AS b ON b.id = e.case_id
            WHERE e.action = 'supervise' AND {_in("e.at")} GROUP BY b.unit
        )
        SELECT key, coalesce(d.adcode, s.adcode) AS adcode, key AS label,
               coalesce(d.due, 0) AS due, coalesce(d.handled, 0) AS handled,
               {_rate("d.handled", "d.due")} AS handled_rate,
               coalesce(d.handled_on_time, 0) AS handled_on_time,
               {_rate("d.handled_on_time", "d.due")} AS on_time_handled_rate,
               coalesce(d.reworked, 0) AS reworked, {_rate("d.reworked", "d.due")} AS rework_rate,
               coalesce(d.extended, 0) AS extended, {_rate("d.extended", "d.due")} AS extension_rate,
               coalesce(s.supervised, 0) AS supervised
        FROM d FULL JOIN s USING (key) ORDER BY key
    """


def _days(conn: Connection, query: EvaluationQuery, calendars: Calendars) -> dict[str, Any]:
    """Every day around the period per county, whether it is a working day and the office time
    of the working days before it, and each county's office periods, as bound arrays: working
    time between two moments is then a difference of two lookups."""
    # no step is stamped in the future: an open-ended period stops a year from today
    first = max(query.start, date(1900, 1, 1)) - timedelta(days=MARGIN_DAYS)
    last = min(query.end, date.today() + timedelta(days=366)) + timedelta(days=1)
    days: dict[str, list[Any]] = {"adcode": [], "day": [], "working": [], "before": []}
    periods: dict[str, list[Any]] = {"adcode": [], "lo": [], "hi": []}
    for adcode in _counties(conn, query.viewer):
        calendar = calendars.get(conn, adcode)
        office = sum(_seconds(hi) - _seconds(lo) for lo, hi in calendar.periods)
        for lo, hi in calendar.periods:
            periods["adcode"].append(adcode)
            periods["lo"].append(lo)
            periods["hi"].append(hi)
        before, day = 0.0, first
        while day <= last:
            working = calendar.is_working_day(day)
            for name, value in zip(days, (adcode, day, working, before), strict=True):
                days[name].append(value)
            before += office if working else 0
            day += timedelta(days=1)
    return {f"day_{k}": v for k, v in days.items()} | {f"period_{k}": v for k, v in periods.items()}


def _seconds(moment: time) -> float:
    return moment.hour * 3600 + moment.minute * 60 + moment.second


def _counties(conn: Connection, viewer: Viewer | None) -> list[str]:
    if viewer is not None and viewer.counties is not None:
        return list(viewer.counties)
    return list(conn.execute(text("SELECT adcode FROM counties ORDER BY adcode")).scalars())


def _office_time(moment: str, day: str) -> str:
    """Office time (seconds) from the start of the days around the period to `moment`: that of
    the working days before its day, and of its day's periods up to it."""
    return f"""({day}.before + CASE WHEN {day}.working THEN (
        SELECT extract(epoch FROM sum(greatest(least(({moment} AT TIME ZONE :tz)::time, p.hi)
                                               - p.lo, interval '0')))
        FROM periods AS p WHERE p.adcode = m.adcode) ELSE 0 END)"""


def _post(query: EvaluationQuery, params: dict[str, Any], limits: Limits) -> str:
    scope = area_clause(CASES, query.viewer, params, alias="c")
    params.update(
        dispatch_within=limits.dispatch_hours * 3600,
        check_within=limits.check_hours * 3600,
        register_within=limits.register_hours * 3600,
        close_within=limits.close_hours * 3600,
    )
    # the event before this one on the same case, of one of the actions given
    before = (
        "(SELECT max(p.at) FROM case_events AS p WHERE p.case_id = e.case_id "
        "AND p.action IN ({}) AND p.at <= e.at AND p.id <> e.id)"
    )
    next_dispatch = (
        "coalesce((SELECT min(n.at) FROM case_events AS n WHERE n.case_id = e.case_id "
        "AND n.action = 'dispatch' AND n.at > e.at), 'infinity')"
    )
    returned = (
        "EXISTS (SELECT 1 FROM case_events AS x WHERE x.case_id = e.case_id "
        f"AND x.action = 'return' AND x.at > e.at AND x.at < {next_dispatch})"
    )
    dropped = (
        "EXISTS (SELECT 1 FROM case_events AS x WHERE x.case_id = e.case_id "
        "AND x.action IN ('cancel', 'merge') AND x.at > e.at)"
    )
    registered = (
        f"b.registered_at IS NOT NULL AND b.status <> 'cancelled' AND {_in('b.registered_at')}"
    )
    own_report = (
        "EXISTS (SELECT 1 FROM audit_log AS o WHERE o.layer = 'cases' AND o.feature_id = b.id "
        "AND o.action = 'create' AND o.actor = a.key)"
    )
    timed = "NULL::timestamptz AS start, NULL::timestamptz AS at, NULL::float8 AS within"
    return f"""
        WITH base AS MATERIALIZED (SELECT c.* FROM cases AS c WHERE {scope}),
        days AS MATERIALIZED (
            SELECT * FROM unnest(CAST(:day_adcode AS text[]), CAST(:day_day AS date[]),
                                 CAST(:day_working AS boolean[]), CAST(:day_before AS float8[]))
                AS d(adcode, day, working, before)
        ),
        periods AS MATERIALIZED (
            SELECT * FROM unnest(CAST(:period_adcode AS text[]), CAST(:period_lo AS time[]),
                                 CAST(:period_hi AS time[])) AS p(adcode, lo, hi)
        ),
        reports AS (
            SELECT CASE WHEN b.source = 'inspector' THEN 'inspector' ELSE 'operator' END AS post,
                   a.actor AS key, b.adcode,
                   (b.registered_at IS NOT NULL AND b.status <> 'cancelled') OR b.self_handled
                       AS valid
            FROM base AS b JOIN audit_log AS a
                 ON a.layer = 'cases' AND a.feature_id = b.id AND a.action = 'create'
            WHERE {_in("b.reported_at")}
        ),
        areas AS (
            SELECT i.username AS key, ST_Union(g.geom) AS geom
            FROM grid_inspectors AS i JOIN grids AS g ON g.code = i.grid_code
            WHERE i.username IS NOT NULL AND {versions.is_current(GRIDS, "g")}
            GROUP BY i.username
        ),
        events AS (
            SELECT e.*, b.verify_deadline, b.registered_at, b.reported_at,
                   b.confirmed_at
            FROM case_events AS e
            JOIN base AS b ON b.id = e.case_id WHERE {_in("e.at")}
        ),
        moments AS (
            SELECT post, key, adcode, 'report' AS kind, valid AS good, {timed} FROM reports
            UNION ALL
            SELECT 'inspector', a.key, b.adcode, 'area', {own_report}, {timed}
            FROM base AS b JOIN areas AS a ON ST_Covers(a.geom, b.geom) WHERE {registered}
            UNION ALL
            SELECT 'inspector', actor, adcode, 'verify', at <= verify_deadline, {timed}
            FROM events AS e WHERE action = 'verify'
            UNION ALL
            SELECT 'inspector', actor, adcode, 'check', NULL,
                   {before.format("'feedback'")}, at, :check_within
            FROM events AS e WHERE action IN ('pass', 'fail')
            UNION ALL
            SELECT 'dispatcher', actor, adcode, 'dispatch', NULL,
                   coalesce({before.format("'return'")}, registered_at), at, :dispatch_within
            FROM events AS e WHERE action = 'dispatch'
            UNION ALL
            SELECT 'dispatcher', actor, adcode, 'accurate', NOT {returned}, {timed}
            FROM events AS e WHERE action = 'dispatch'
            UNION ALL
            SELECT 'shift_leader', actor, adcode, 'register', NULL,
                   coalesce(confirmed_at, reported_at), at, :register_within
            FROM events AS e WHERE action = 'register'
            UNION ALL
            SELECT 'shift_leader', actor, adcode, 'accurate_register', NOT {dropped}, {timed}
            FROM events AS e WHERE action = 'register'
            UNION ALL
            SELECT 'shift_leader', actor, adcode, 'close', NULL,
                   {before.format("'pass'")}, at, :close_within
            FROM events AS e WHERE action = 'close'
        ),
        judged AS (
            SELECT m.post, m.key, m.adcode, m.kind,
                   CASE WHEN m.within IS NULL THEN m.good
                        ELSE coalesce({_office_time("m.at", "da")} - {_office_time("m.start", "ds")}
                                      <= m.within, false) END AS good
            FROM moments AS m
            LEFT JOIN days AS ds
                 ON ds.adcode = m.adcode AND ds.day = (m.start AT TIME ZONE :tz)::date
            LEFT JOIN days AS da
                 ON da.adcode = m.adcode AND da.day = (m.at AT TIME ZONE :tz)::date
            WHERE m.key IS NOT NULL
        ),
        r AS (
            SELECT post, key, min(adcode) AS adcode,
                   count(*) FILTER (WHERE kind = 'report') AS reports,
                   count(*) FILTER (WHERE kind = 'report' AND good) AS valid_reports,
                   count(*) FILTER (WHERE kind = 'area') AS area_registered,
                   count(*) FILTER (WHERE kind = 'area' AND NOT good) AS missed_reports,
                   count(*) FILTER (WHERE kind = 'verify') AS verifications,
                   count(*) FILTER (WHERE kind = 'verify' AND good) AS verified_on_time,
                   count(*) FILTER (WHERE kind = 'check') AS checks,
                   count(*) FILTER (WHERE kind = 'check' AND good) AS checked_on_time,
                   count(*) FILTER (WHERE kind = 'dispatch') AS dispatches,
                   count(*) FILTER (WHERE kind = 'dispatch' AND good) AS dispatched_on_time,
                   count(*) FILTER (WHERE kind = 'accurate' AND good) AS accurate_dispatches,
                   count(*) FILTER (WHERE kind = 'register') AS registrations,
                   count(*) FILTER (WHERE kind = 'register' AND good) AS registered_on_time,
                   count(*) FILTER (WHERE kind = 'accurate_register' AND good)
                       AS accurate_registrations,
                   count(*) FILTER (WHERE kind = 'close') AS closes,
                   count(*) FILTER (WHERE kind = 'close' AND good) AS closed_on_time
            FROM judged GROUP BY post, key
        )
        SELECT r.*, r.key AS label,
               {_rate("valid_reports", "reports")} AS valid_report_rate,
               {_rate("missed_reports", "area_registered")} AS missed_report_rate,
               {_rate("verified_on_time", "verifications")} AS on_time_verify_rate,
               {_rate("checked_on_time", "checks")} AS on_time_check_rate,
               {_rate("dispatched_on_time", "dispatches")} AS on_time_dispatch_rate,
               {_rate("accurate_dispatches", "dispatches")} AS accurate_dispatch_rate,
               {_rate("registered_on_time", "registrations")} AS on_time_register_rate,
               {_rate("accurate_registrations", "registrations")} AS accurate_register_rate,
               {_rate("closed_on_time", "closes")} AS on_time_close_rate
        FROM r ORDER BY post, key
    """


def load_weights(path: Path | None = None) -> dict[str, Any]:
    """The weights file, checked: `default` per object, and `county` overrides per adcode."""
    return evalweights.load(path)


def weights_for(weights: dict[str, Any], adcode: str, kind: str) -> dict[str, float]:
    """The weights of one object (region, department, or a post) in one county."""
    return evalweights.weights_for(weights, adcode, kind)


def _component(row: dict[str, Any], name: str) -> float | None:
    if name in COMPLEMENTS:
        rate = row.get(COMPLEMENTS[name])
        return None if rate is None else 1.0 - rate
    if name == "supervision":
        return max(0.0, 1.0 - SUPERVISION_PENALTY * row.get("supervised", 0))
    value = row.get(name)
    return None if value is None else float(value)


def score(row: dict[str, Any], weights: dict[str, float]) -> float | None:
    """100 × the weighted mean of the known values; None when no rate is known."""
    known = {n: v for n in weights if (v := _component(row, n)) is not None}
    if not any(n != "supervision" for n in known) or not sum(weights[n] for n in known):
        return None
    total = sum(weights[n] * v for n, v in known.items())
    return round(100 * total / sum(weights[n] for n in known), 2)


def grade(value: float | None) -> str | None:
    """A ≥ 90, B ≥ 75, C ≥ 60, D ≥ 40, E below; None without a score."""
    if value is None:
        return None
    return next((g for bound, g in GRADES if value >= bound), "E")


def rows(
    conn: Connection,
    query: EvaluationQuery,
    weights: dict[str, Any] | None = None,
    limits: Limits | None = None,
    calendars: Calendars = CALENDARS,
) -> list[dict[str, Any]]:
    """One row per region, department or post holder, with its counts, rates, score and grade."""
    check(query)
    params: dict[str, Any] = {}
    bind_period(query.start, query.end, params)
    if query.object == "region":
        sql = _region(conn, query, params)
    elif query.object == "department":
        sql = _department(query, params)
    else:
        params.update(_days(conn, query, calendars), tz=BUREAU_TIMEZONE)
        sql = _post(query, params, limits or Limits())
    weights = weights if weights is not None else load_weights()
    columns = [name for name, _ in COLUMNS[query.object]]
    out = []
    for found in conn.execute(text(sql), params).mappings():
        row: dict[str, Any] = {
            name: float(found[name])
            if name.endswith("_rate") and found[name] is not None
            else found.get(name)
            for name in columns
            if name not in ("score", "grade")
        }
        kind = str(row["post"] if query.object == "post" else query.object)
        row["score"] = score(row, weights_for(weights, str(row["adcode"]), kind))
        row["grade"] = grade(row["score"])
        out.append(row)
    return out


def as_csv(object_: str, found: list[dict[str, Any]]) -> str:
    """The rows as CSV with Chinese headers and the posts' Chinese names (see `table_csv`)."""
    shown = (row | ({"post": POST_LABELS[row["post"]]} if "post" in row else {}) for row in found)
    return table_csv(COLUMNS[object_], shown)
