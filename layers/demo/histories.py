"""The demo year's case histories, made in bulk: each unit's and inspector's way of working drawn
from the seed, every case moved by `layers.demo.lifecycle`, duplicates linked to the cases they
merge into, and what the moves wrote besides the cases — `case_events`, the photos of the cases
fixed on the spot and the audit log's record of each inspector's report — as rows for COPY.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import json
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from layers.cases.casework import UNVERIFIED_SOURCES, VERIFY_WITHIN
from layers.cases.codes import CaseCategory
from layers.cases.workflow import STAGE_TIMES
from layers.cases.worktime import WorkCalendar
from layers.demo.lifecycle import (
    LOCAL,
    MERGE_WITHIN,
    TIERS,
    Actors,
    Case,
    Draw,
    Event,
    Inspector,
    Life,
    Tier,
    World,
    live,
    settle,
)
from layers.demo.owners import UNITS
from layers.demo.usernames import DISPATCHER, inspector_name, maintainer_name, unit_name


def actors(grid_rows: list[dict[str, Any]]) -> Actors:
    """The demo accounts by unit: community committees by their grid, directory units by number."""
    handlers = {u.name: maintainer_name(u.name) for u in UNITS}
    for row in grid_rows:
        if row["level"] == "community" and row["responsible_unit"]:
            handlers.setdefault(str(row["responsible_unit"]), unit_name(str(row["code"])))
    return Actors(handlers)


def assign_tiers(units: list[str], rng: np.random.Generator) -> dict[str, Tier]:
    """Each unit's way of working, in the tiers' shares of the units (drawn from `rng`)."""
    order = rng.permutation(sorted(units))
    bounds = np.cumsum([t.share for t in TIERS]) * len(order)
    return {
        str(unit): TIERS[min(int(np.searchsorted(bounds, i, side="right")), len(TIERS) - 1)]
        for i, unit in enumerate(order)
    }


def assign_inspectors(names: list[str], rng: np.random.Generator) -> dict[str, Inspector]:
    """Each inspector's lateness: 3–20 % of verifications, 2–12 % of checks."""
    verify = rng.uniform(0.03, 0.20, size=len(names))
    check = rng.uniform(0.02, 0.12, size=len(names))
    return {
        n: Inspector(float(v), float(c))
        for n, v, c in zip(sorted(names), verify, check, strict=True)
    }


def draws(rng: np.random.Generator, n: int, per_case: int = 40) -> Iterator[Draw]:
    """Uniform numbers for each of `n` cases, drawn in bulk (a case needs fewer than
    `per_case`; were one to need more, its numbers would repeat)."""
    for start in range(0, n, 4096):
        for row in rng.random((min(4096, n - start), per_case)).tolist():
            yield itertools.cycle(row).__next__


def merge_targets(rows: list[dict[str, Any]], lives: list[Life]) -> None:
    """Link each merged duplicate to the latest earlier case of its category in its grid within
    MERGE_WITHIN that is not cancelled or rejected (its history gets a `merged_from` event); a
    duplicate without one is cancelled as such. Rows are in order of report, with their ids."""
    earlier: dict[tuple[str, str], list[int]] = {}
    for i, row in enumerate(rows):
        if row["status"] not in ("cancelled", "rejected"):
            earlier.setdefault((row["grid_code"], row["category_code"]), []).append(i)
    for i, (row, life) in enumerate(zip(rows, lives, strict=True)):
        if not life.merge or not life.events or life.events[-1].action != "merge":
            continue
        merged = life.events[-1]
        found = earlier.get((row["grid_code"], row["category_code"]), [])
        k = bisect.bisect_left(found, i) - 1
        j = found[k] if k >= 0 else None
        if j is None or rows[j]["reported_at"] < row["reported_at"] - MERGE_WITHIN:
            life.events[-1] = merged._replace(action="cancel", note="重复上报")
            continue
        into = int(rows[j]["id"])
        life.events[-1] = merged._replace(detail={"into": into})
        row["merged_into"] = into
        _merged_from(lives[j], merged.at, merged.note, int(row["id"]))


def _merged_from(target: Life, at: datetime, note: str | None, duplicate: int) -> None:
    """The original's record of a duplicate merged into it, in its state at that moment."""
    k = bisect.bisect_right([e.at for e in target.events], at)
    status = target.events[k - 1].target if k else target.status
    if not k and target.events:
        status = target.events[0].source
    detail = {"case": duplicate}
    event = Event(
        at, "merged_from", status, status, DISPATCHER, note, None, None, None, detail, None
    )
    target.events.insert(k, event)


def photo(colour: tuple[int, int, int], width: int = 64, height: int = 48) -> bytes:
    """A small PNG of one colour (the demo's photos before and after fixing on the spot)."""
    line = b"\x00" + bytes(colour) * width
    raw = zlib.compress(line * height)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


CASE_VALUES = (
    *STAGE_TIMES[1:],
    "deadline",
    "verify_deadline",
    "confirmed_at",
    "merged_into",
    "extension_asked",
    "extensions",
    "supervisions",
    "supervise_deadline",
    "callback_result",
    "self_handled",
)
EVENT_COLUMNS = (  # case_events, as `copy_tuples` writes them (the county added when written)
    ("case_id", "int8"),
    ("at", "timestamptz"),
    ("action", "text"),
    ("from_status", "text"),
    ("to_status", "text"),
    ("actor", "text"),
    ("note", "text"),
    ("unit", "text"),
    ("suggested_unit", "text"),
    ("routed_by", "text"),
    ("detail", "jsonb"),
)
_DUMPED: dict[tuple[tuple[str, Any], ...], str] = {}


def as_json(value: dict[str, Any]) -> str:
    """A flat JSON object, dumped once per distinct content (the few kinds of report records)."""
    key = tuple(value.items())
    found = _DUMPED.get(key)
    if found is None:
        found = _DUMPED[key] = json.dumps(value, ensure_ascii=False)
    return found


BEFORE, AFTER = (178, 120, 92), (118, 168, 120)  # the colours of the photos before and after


@dataclass
class Histories:
    """What the cases' lives wrote besides the cases: their events (in EVENT_COLUMNS), the photos
    of the cases fixed on the spot, and the audit log's record of the inspectors' reports."""

    events: list[tuple[Any, ...]] = field(default_factory=list)
    photos: list[dict[str, Any]] = field(default_factory=list)
    reports: list[dict[str, Any]] = field(default_factory=list)


def _world(
    rows: list[dict[str, Any]],
    grid_rows: list[dict[str, Any]],
    calendar: WorkCalendar,
    rng: np.random.Generator,
) -> World:
    units = sorted({str(r["unit"]) for r in rows if r["unit"]})
    communities = [str(g["code"]) for g in grid_rows if g["level"] == "community"]
    return World(
        calendar,
        actors(grid_rows),
        assign_tiers(units, rng),
        assign_inspectors([inspector_name(c) for c in communities], rng),
    )


def histories(
    rows: list[dict[str, Any]],
    grid_rows: list[dict[str, Any]],
    categories: dict[str, CaseCategory],
    calendar: WorkCalendar,
    rng: np.random.Generator,
    year: int,
) -> Histories:
    """Move every case of the year (rows in order of report, each with its id, grid and unit)
    through the workflow on `calendar`; each row gets its status and the values its moves left."""
    world = _world(rows, grid_rows, calendar, rng)
    year_end = datetime(year + 1, 1, 1, tzinfo=LOCAL)
    lives = []
    empty = dict.fromkeys(CASE_VALUES)
    for row, draw in zip(rows, draws(rng, len(rows)), strict=True):
        reported, unit = row["reported_at"], row["unit"]
        case = Case(
            reported,
            row["source"],
            unit,
            row["routed_by"],
            categories[row["category_code"]],
            world.actors.inspector(row["grid_code"]),
            world.actors.handler(unit),
        )
        if unit not in world.tiers:
            world.tiers[unit] = TIERS[1]
        life = live(case, world, draw)
        status, values = settle(life, year_end)
        row.update(empty)
        row.update(values)
        row["status"] = status
        if case.source in UNVERIFIED_SOURCES:
            row["verify_deadline"] = calendar.add_hours(reported, VERIFY_WITHIN)
        lives.append(life)
    merge_targets(rows, lives)
    return _written(rows, lives, world)


def _written(rows: list[dict[str, Any]], lives: list[Life], world: World) -> Histories:
    """The events, photos and report records of the cases' lives."""
    out = Histories()
    before, after = photo(BEFORE), photo(AFTER)
    for row, life in zip(rows, lives, strict=True):
        case_id, inspector = int(row["id"]), world.actors.inspector(row["grid_code"])
        if row["source"] == "inspector":
            created = {"category_code": row["category_code"], "source": "inspector"}
            out.reports.append(
                {"at": row["reported_at"], "actor": inspector, "feature_id": case_id}
                | {"action": "create", "layer": "cases", "after": as_json(created)}
            )
        if row["self_handled"]:
            first = len(out.photos) + 1
            k = next(k for k, e in enumerate(life.events) if e.action == "self_handle")
            fixed = life.events[k]
            for at, data in ((row["reported_at"], before), (fixed.at, after)):
                out.photos.append(
                    {"id": len(out.photos) + 1, "case_id": case_id, "content_type": "image/png"}
                    | {"data": data, "size_bytes": len(data), "uploaded_by": inspector}
                    | {"sha256": hashlib.sha256(data).hexdigest(), "uploaded_at": at}
                )
            detail = {"photo_before": first, "photo_after": first + 1}
            life.events[k] = fixed._replace(detail=detail)
        head = (case_id,)
        out.events.extend([head + e[:10] for e in life.events])
    return out
