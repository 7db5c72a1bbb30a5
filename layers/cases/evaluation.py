"""The evaluation of GB/T 30428.4: per region, department and post, counts, rates, score, grade.

Each object is computed by one SQL statement over the cases the viewer reads. A rate is null when
nothing was due. The score weighs the rates of an object (weights per county in
`data/evaluation_weights.toml`), and the grade follows the score: A ≥ 90, B ≥ 75, C ≥ 60, D ≥ 40,
E below. The definitions, and which moments count in the period, are in the README.
"""

from __future__ import annotations

import csv
import io
import tomllib
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from citygrid_data import data_file
from sqlalchemy import Connection, text

from layers.cases import indicators
from layers.cases.casefilters import bind_period
from layers.engine.access import Viewer, area_clause
from layers.errors import BadQuery
from layers.registry import CASES, GRIDS

OBJECTS = ("region", "department", "post")
# a dispatch is on time within this of the registration (or of the unit's return);
# an on-site check within this of the unit's feedback (wall-clock time)
DISPATCH_WITHIN = timedelta(hours=1)
CHECK_WITHIN = timedelta(hours=4)
GRADES = ((90.0, "A"), (75.0, "B"), (60.0, "C"), (40.0, "D"))
SUPERVISION_PENALTY = 0.05  # of the supervision component per supervision (10 − 0.5 × 督办数)
WEIGHTS_FILE = "evaluation_weights.toml"

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
        ("reports", "上报数"),
        ("valid_reports", "有效上报数"),
        ("valid_report_rate", "有效上报率"),
        ("verifications", "核实数"),
        ("verified_on_time", "按时核实数"),
        ("on_time_verify_rate", "按时核实率"),
        ("checks", "核查数"),
        ("checked_on_time", "按时核查数"),
        ("on_time_check_rate", "按时核查率"),
        ("dispatches", "派遣数"),
        ("dispatched_on_time", "按时派遣数"),
        ("on_time_dispatch_rate", "按时派遣率"),
        ("accurate_dispatches", "准确派遣数"),
        ("accurate_dispatch_rate", "准确派遣率"),
        *_TAIL,
    ),
}
POST_LABELS = {"inspector": "监督员", "dispatcher": "派遣员"}


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


def _post(query: EvaluationQuery, params: dict[str, Any]) -> str:
    scope = area_clause(CASES, query.viewer, params, alias="c")
    params.update(dispatch_within=DISPATCH_WITHIN, check_within=CHECK_WITHIN)
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
    return f"""
        WITH base AS MATERIALIZED (SELECT c.* FROM cases AS c WHERE {scope}),
        reports AS (
            SELECT 'inspector' AS post, a.actor AS key, b.adcode,
                   b.registered_at IS NOT NULL AS valid
            FROM base AS b JOIN audit_log AS a
                 ON a.layer = 'cases' AND a.feature_id = b.id AND a.action = 'create'
            WHERE b.source = 'inspector' AND {_in("b.reported_at")}
        ),
        events AS (
            SELECT e.*, b.adcode, b.verify_deadline, b.registered_at FROM case_events AS e
            JOIN base AS b ON b.id = e.case_id WHERE {_in("e.at")}
        ),
        moments AS (
            SELECT post, key, adcode, 'report' AS kind, valid AS good FROM reports
            UNION ALL
            SELECT 'inspector', actor, adcode, 'verify', at <= verify_deadline
            FROM events AS e WHERE action = 'verify'
            UNION ALL
            SELECT 'inspector', actor, adcode, 'check',
                   at <= {before.format("'feedback'")} + :check_within
            FROM events AS e WHERE action IN ('pass', 'fail')
            UNION ALL
            SELECT 'dispatcher', actor, adcode, 'dispatch',
                   at <= coalesce({before.format("'return'")}, registered_at) + :dispatch_within
            FROM events AS e WHERE action = 'dispatch'
            UNION ALL
            SELECT 'dispatcher', actor, adcode, 'accurate', NOT {returned}
            FROM events AS e WHERE action = 'dispatch'
        ),
        r AS (
            SELECT post, key, min(adcode) AS adcode,
                   count(*) FILTER (WHERE kind = 'report') AS reports,
                   count(*) FILTER (WHERE kind = 'report' AND good) AS valid_reports,
                   count(*) FILTER (WHERE kind = 'verify') AS verifications,
                   count(*) FILTER (WHERE kind = 'verify' AND good) AS verified_on_time,
                   count(*) FILTER (WHERE kind = 'check') AS checks,
                   count(*) FILTER (WHERE kind = 'check' AND good) AS checked_on_time,
                   count(*) FILTER (WHERE kind = 'dispatch') AS dispatches,
                   count(*) FILTER (WHERE kind = 'dispatch' AND good) AS dispatched_on_time,
                   count(*) FILTER (WHERE kind = 'accurate' AND good) AS accurate_dispatches
            FROM moments WHERE key IS NOT NULL GROUP BY post, key
        )
        SELECT r.*, r.key AS label,
               {_rate("valid_reports", "reports")} AS valid_report_rate,
               {_rate("verified_on_time", "verifications")} AS on_time_verify_rate,
               {_rate("checked_on_time", "checks")} AS on_time_check_rate,
               {_rate("dispatched_on_time", "dispatches")} AS on_time_dispatch_rate,
               {_rate("accurate_dispatches", "dispatches")} AS accurate_dispatch_rate
        FROM r ORDER BY post, key
    """


def load_weights(path: Path | None = None) -> dict[str, Any]:
    """The weights file: `default` per object, and `county` overrides per adcode and object."""
    raw = path.read_text(encoding="utf-8") if path else data_file(WEIGHTS_FILE).read_text("utf-8")
    return tomllib.loads(raw)


def weights_for(weights: dict[str, Any], adcode: str, kind: str) -> dict[str, float]:
    """The weights of one object (region, department, inspector, dispatcher) in one county."""
    own = weights.get("county", {}).get(adcode, {}).get(kind, {})
    return {k: float(v) for k, v in (weights["default"].get(kind, {}) | own).items()}


def _component(row: dict[str, Any], name: str) -> float | None:
    if name == "rework":
        rate = row.get("rework_rate")
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
    conn: Connection, query: EvaluationQuery, weights: dict[str, Any] | None = None
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
        sql = _post(query, params)
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
    """The rows as CSV with Chinese headers, with a byte-order mark so spreadsheets read UTF-8."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([label for _, label in COLUMNS[object_]])
    for row in found:
        shown = row | ({"post": POST_LABELS[row["post"]]} if "post" in row else {})
        writer.writerow(["" if shown[n] is None else shown[n] for n, _ in COLUMNS[object_]])
    return "\ufeff" + out.getvalue()
