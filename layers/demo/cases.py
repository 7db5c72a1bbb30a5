"""One year of demo cases, in the proportions of the 启东 2023 report, with daily and weekly rhythms.

Cases cluster where people are (town centres, main streets) and follow each category's hours of
the day and days of the week; `layers.demo.lifecycle` then moves each through the workflow.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import shapely

from gis.zones import from_gk, to_gk
from layers.cases.codes import CaseCategory
from layers.demo.components import pick_for_cases
from layers.demo.features import DemoContext
from layers.demo.population import Mix
from layers.store.db import BUREAU_TIMEZONE

LOCAL = ZoneInfo(BUREAU_TIMEZONE)


@dataclass(frozen=True)
class CaseProfile:
    """How one category of case behaves: how many, where, when, reported by whom."""

    code: str
    count: int
    mix: Mix
    hours: tuple[float, ...]
    weekdays: tuple[float, ...]
    summer: float
    sources: dict[str, float]
    descriptions: tuple[str, ...]


def _hours(*peaks: tuple[int, int, float], base: float = 0.05) -> tuple[float, ...]:
    """A 24-hour profile: `base` at night plus (start, end, weight) busy spans."""
    prof = np.full(24, base)
    for start, end, weight in peaks:
        prof[start:end] += weight
    return tuple(float(x) for x in prof)


PROFILES = (
    CaseProfile(
        "E0503",
        115340,
        Mix(0.62, 0.33, 0.05),
        _hours((7, 10, 1.0), (11, 14, 0.7), (16, 20, 1.0), (8, 18, 0.4)),
        (1.1, 1.05, 1.05, 1.05, 1.1, 0.85, 0.8),
        0.1,
        {"inspector": 0.6, "video": 0.25, "public": 0.1, "hotline": 0.05},
        (
            "非机动车占用盲道停放",
            "电动车乱停放堵塞人行道",
            "共享单车堆放无序",
            "非机动车占用消防通道",
        ),
    ),
    CaseProfile(
        "E0501",
        12063,
        Mix(0.7, 0.25, 0.05),
        _hours((6, 9, 1.2), (11, 13, 0.6), (17, 22, 1.3)),
        (0.9, 0.9, 0.9, 0.95, 1.05, 1.3, 1.3),
        0.35,
        {"inspector": 0.45, "patrol": 0.35, "public": 0.1, "hotline": 0.1},
        ("流动摊贩占道经营", "三轮车沿街叫卖", "学校门口流动摊点", "夜间占道烧烤摊"),
    ),
    CaseProfile(
        "E0502",
        11946,
        Mix(0.55, 0.42, 0.03),
        _hours((9, 21, 1.0), (17, 20, 0.5)),
        (1.0, 1.0, 1.0, 1.0, 1.05, 1.15, 1.1),
        0.2,
        {"inspector": 0.6, "patrol": 0.25, "public": 0.1, "hotline": 0.05},
        ("店外摆放商品", "超出门窗经营", "占用人行道摆放桌椅", "门前堆放货物经营"),
    ),
    CaseProfile(
        "E0107",
        4064,
        Mix(0.35, 0.3, 0.35),
        _hours((8, 17, 1.0)),
        (1.05, 1.05, 1.05, 1.05, 1.05, 0.9, 0.85),
        -0.1,
        {"inspector": 0.5, "public": 0.2, "hotline": 0.2, "video": 0.1},
        ("占道堆放建材", "楼道乱堆杂物", "沿街堆放废品", "装修垃圾乱堆放"),
    ),
    CaseProfile(
        "E0201",
        239,
        Mix(0.8, 0.2, 0.0),
        _hours((8, 19, 1.0)),
        (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0),
        0.0,
        {"public": 0.4, "inspector": 0.4, "hotline": 0.2},
        ("散发小广告", "乱贴小广告", "撑牌广告占道", "墙面喷涂小广告"),
    ),
)

NOT_ON_COMPONENT = {"component_code": None, "problem": None, "unit": None, "routed_by": None}


def _day_weights(year: int, weekdays: tuple[float, ...], summer: float) -> npt.NDArray[np.float64]:
    days = np.arange(np.datetime64(f"{year}-01-01"), np.datetime64(f"{year + 1}-01-01"))
    weekday = (days.astype("datetime64[D]").view("int64") - 4) % 7  # 1970-01-01 was a Thursday
    season = 1.0 + summer * np.sin((np.arange(len(days)) / len(days) - 0.29) * 2 * np.pi)
    w = np.asarray(weekdays)[weekday] * season
    return w / w.sum()


def _report_times(ctx: DemoContext, profile: CaseProfile) -> list[datetime]:
    rng, n = ctx.rng, profile.count
    weights = _day_weights(ctx.year, profile.weekdays, profile.summer)
    day = rng.choice(len(weights), size=n, p=weights)
    hours = np.asarray(profile.hours)
    hour = rng.choice(24, size=n, p=hours / hours.sum())
    seconds = day * 86400 + hour * 3600 + rng.integers(0, 3600, size=n)
    start = datetime(ctx.year, 1, 1, tzinfo=LOCAL)
    return [start + timedelta(seconds=int(s)) for s in seconds]


def _grid_of(tree: shapely.STRtree, pts: npt.NDArray[np.object_]) -> npt.NDArray[np.int64]:
    """The index of the (first) grid holding each point, else of the nearest (a point on a shared
    edge that rounding left outside both), so every case has its grid, unit and inspector."""
    hit_point, hit_grid = tree.query(pts, predicate="intersects")
    grid_of = np.full(len(pts), -1)
    grid_of[hit_point[::-1]] = hit_grid[::-1]
    outside = np.flatnonzero(grid_of < 0)
    if len(outside):
        near_point, near_grid = tree.query_nearest(pts[outside], all_matches=False)
        grid_of[outside[near_point]] = near_grid
    return grid_of


def cases(
    ctx: DemoContext,
    categories: dict[str, CaseCategory],
    sections: npt.NDArray[np.object_],
    section_codes: list[str],
    scale: float = 1.0,
) -> list[dict[str, Any]]:
    """The demo year's cases as reported, each placed in its section grid (their moves through
    the workflow are `layers.demo.lifecycle`'s)."""
    rng = ctx.rng
    tree = shapely.STRtree(sections)
    rows: list[dict[str, Any]] = []
    for base in PROFILES:
        profile = replace(base, count=round(base.count * scale))
        pts = ctx.points(profile.count, profile.mix)
        grid_of = _grid_of(tree, pts)
        sources = list(profile.sources)
        source = rng.choice(sources, size=profile.count, p=list(profile.sources.values()))
        desc = rng.choice(len(profile.descriptions), size=profile.count)
        for i, reported in enumerate(_report_times(ctx, profile)):
            rows.append(
                {
                    "geom": pts[i],
                    "category_code": profile.code,
                    "source": str(source[i]),
                    "description": profile.descriptions[desc[i]],
                    "address": None,
                    "grid_code": section_codes[grid_of[i]],
                    **NOT_ON_COMPONENT,
                    "reported_at": reported,
                }
            )
    rows.sort(key=lambda r: r["reported_at"])
    return rows


COMPONENT_SHARE = 0.06  # of all the year's cases: raised on a component of the census
NEAR_M = 3.0  # a component case is reported this close to its component, at most
COMPONENT_CASES = CaseProfile(
    "",
    0,
    Mix(1.0, 0.0, 0.0),  # placed at their components, not drawn
    _hours((8, 12, 1.0), (13, 18, 1.0)),  # found on the day's patrols
    (1.1, 1.1, 1.1, 1.1, 1.1, 0.8, 0.7),
    0.15,  # summer storms tilt and break more
    {"inspector": 0.7, "hotline": 0.15, "public": 0.1, "video": 0.05},
    (),
)
# the problems reported on a component, by its census status
PROBLEMS: dict[str, tuple[tuple[str, float], ...]] = {
    "lost": (("lost", 1.0),),
    "damaged": (("damaged", 0.7), ("displaced", 0.2), ("other", 0.1)),
    "intact": (("soiled", 0.4), ("occupied", 0.3), ("displaced", 0.2), ("other", 0.1)),
}
PROBLEM_WORDS = {
    "damaged": "破损",
    "lost": "丢失",
    "displaced": "移位倾斜",
    "soiled": "污损",
    "occupied": "被占用",
    "other": "存在安全隐患",
}


def component_case_count(event_cases: int) -> int:
    """How many component cases go with `event_cases` event cases, at COMPONENT_SHARE of all."""
    return round(event_cases * COMPONENT_SHARE / (1 - COMPONENT_SHARE))


def _near(ctx: DemoContext, points: list[Any]) -> npt.NDArray[np.object_]:
    """Points a little off each of `points`, at most NEAR_M away (in metres of the zone)."""
    xy = shapely.get_coordinates(to_gk(points, ctx.epsg))
    distance = ctx.rng.uniform(0.3, NEAR_M, size=len(xy))
    angle = ctx.rng.uniform(0.0, 2 * np.pi, size=len(xy))
    moved = xy + np.column_stack([distance * np.cos(angle), distance * np.sin(angle)])
    return from_gk(shapely.points(moved), ctx.epsg)


def component_cases(
    ctx: DemoContext,
    categories: dict[str, CaseCategory],
    sections: npt.NDArray[np.object_],
    section_codes: list[str],
    census: list[dict[str, Any]],
    n: int,
) -> list[dict[str, Any]]:
    """`n` cases raised on components of the census (damaged and lost ones first), each at its
    component, of its subclass, with a problem and routed to its maintainer (养护单位)."""
    rng = ctx.rng
    picked = pick_for_cases(census, n, rng)
    if not picked:
        return []
    status = {str(r["component_code"]): str(r["status"]) for r in census}
    pts = _near(ctx, [p.point for p in picked])
    grid_of = _grid_of(shapely.STRtree(sections), pts)
    source = rng.choice(
        list(COMPONENT_CASES.sources), size=len(picked), p=list(COMPONENT_CASES.sources.values())
    )
    times = _report_times(ctx, replace(COMPONENT_CASES, count=len(picked)))
    rows = []
    for i, (component, reported) in enumerate(zip(picked, times, strict=True)):
        options = PROBLEMS[status[component.component_code]]
        problem = options[int(rng.choice(len(options), p=[w for _, w in options]))][0]
        category = categories[component.subclass_code]
        rows.append(
            {
                "geom": pts[i],
                "category_code": component.subclass_code,
                "source": str(source[i]),
                "description": f"{category.minor_name}{PROBLEM_WORDS[problem]}",
                "address": None,
                "grid_code": section_codes[grid_of[i]],
                "component_code": component.component_code,
                "problem": problem,
                "unit": component.maintainer_unit,
                "routed_by": "component",
                "reported_at": reported,
            }
        )
    return rows
