"""A bureau's own case history (import cases), and the case categories as reference data a bureau
edits (categories export/import), in a second county beside the demo's."""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio.raw
import pytest
import shapely
from shapely.geometry import MultiPolygon, box
from sqlalchemy import Engine, text

from layers.cases import casehistory, codes
from layers.cases.indicators import IndicatorQuery, rows
from layers.engine import filein
from layers.engine.access import Viewer
from layers.engine.importing import ImportRefused
from layers.places import counties
from layers.places.boundary import County
from layers.registry import Role
from layers.store import db
from tests import countyfiles
from tests.countyfiles import STATUTORY, ZONE, expected_indicators, write_gbk_csv
from tests.databases import PgServer
from tests.support import citygrid

ADCODE = "350404"
STREET, COMMUNITY = "350404001000000", "350404001001000"
WEST_OLD, EAST, WEST_NEW = "350404001001001", "350404001001002", "350404001001003"
WEST_POINT, EAST_POINT = (117.600, 26.230), (117.620, 26.230)
GRID_CHANGE = date(2025, 7, 1)


def _grid(conn: Any, level: str, code: str, parent: str | None, shape: Any, **extra: Any) -> None:
    conn.execute(
        text("""
        INSERT INTO grids (adcode, geom, level, code, name, parent_code, responsible_unit,
                           valid_from, valid_to)
        VALUES (:a, ST_Multi(ST_GeomFromText(:wkt, 4490)), :level, :code, :name, :parent, :unit,
                :since, :until)
    """),
        {
            "a": ADCODE,
            "wkt": shape.wkt,
            "level": level,
            "code": code,
            "name": f"三元区网格{code[-3:]}",
            "parent": parent,
            "unit": extra.get("unit"),
            "since": extra.get("since", date(2024, 1, 1)),
            "until": extra.get("until"),
        },
    )


@pytest.fixture
def sanming(pg_server: PgServer, scratch_url: str) -> Iterator[str]:
    """三明市三元区 stored beside the demo's county, with one street whose west section was
    redrawn under a new code (and a new unit) on 2025-07-01; yields the API's URL."""
    engine = db.make_engine(pg_server.as_owner(scratch_url))
    try:
        with engine.begin() as conn:
            boundary = MultiPolygon([box(117.57, 26.19, 117.65, 26.27)])
            counties.add(conn, County(ADCODE, "三元区", boundary))
            whole, west, east = (
                box(117.59, 26.21, 117.63, 26.25),
                box(117.59, 26.21, 117.61, 26.25),
                box(117.61, 26.21, 117.63, 26.25),
            )
            _grid(conn, "street", STREET, None, whole, unit="城关街道")
            _grid(conn, "community", COMMUNITY, STREET, whole, unit="列东社区工作站")
            _grid(conn, "section", WEST_OLD, COMMUNITY, west, unit="第一中队", until=GRID_CHANGE)
            _grid(conn, "section", WEST_NEW, COMMUNITY, west, unit="第三中队", since=GRID_CHANGE)
            _grid(conn, "section", EAST, COMMUNITY, east)
    finally:
        engine.dispose()
    yield scratch_url


def year_of_cases(count: int = 300) -> list[dict[str, Any]]:
    """A year of cases in 三元区, and three whose grid the redraw of 2025-07-01 decides."""
    cases = countyfiles.year_of_cases(count)
    for n, (day, place) in enumerate(
        [
            (date(2025, 3, 10), WEST_POINT),
            (date(2025, 9, 10), WEST_POINT),
            (date(2025, 9, 10), EAST_POINT),
        ]
    ):
        reported = datetime(day.year, day.month, day.day, 10, tzinfo=ZONE)
        probe = countyfiles.case_row(random.Random(n), 90001 + n, reported, place)
        cases.append(probe | {"ref": f"GRID-{n + 1}"})
    return cases


def _limits(engine: Engine) -> dict[str, tuple[int, str]]:
    with engine.connect() as conn:
        found = conn.execute(text("SELECT code, time_limit, time_unit FROM case_categories"))
        return {code: (limit, unit) for code, limit, unit in found}


def _counts(engine: Engine) -> tuple[int, int | None, int]:
    with engine.connect() as conn:
        cases, top = conn.execute(text("SELECT count(*), max(id) FROM cases")).one()
        events = conn.execute(text("SELECT count(*) FROM case_events")).scalar_one()
    return cases, top, events


def test_a_year_of_cases_imports_once_and_gives_that_years_indicators(
    sanming: str, tmp_path: Path
) -> None:
    env = {"CITYGRID_DATABASE_URL": sanming, "COLUMNS": "200"}
    cases = year_of_cases()
    wrong = [dict(c) for c in cases]
    for i in (4, 11):
        wrong[i]["name"] = "乱摆摊点"  # a name only this bureau uses
    wrong[8]["lon"] = 118.6  # about 100 km east of the county
    path = write_gbk_csv(tmp_path / "案件.csv", wrong)
    engine = db.make_engine(sanming)
    try:
        refused = citygrid(
            "import", "cases", str(path), "--county", ADCODE,
            "--errors-csv", str(tmp_path / "bad.csv"), env=env,
        )  # fmt: skip
        assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr
        assert "3 行有问题" in refused.stdout and "乱摆摊点" in refused.stdout
        assert "未知类别“乱摆摊点”：第 5、12 行" in refused.stderr
        bad = list(csv.reader(io.StringIO((tmp_path / "bad.csv").read_text("utf-8-sig"))))[1:]
        assert [(r[0], r[3]) for r in bad] == [
            ("5", "unknown_category"),
            ("9", "outside_county"),
            ("12", "unknown_category"),
        ]
        assert "边界外" in bad[1][4]
        assert _counts(engine) == (0, None, 0)

        wrong[8]["lon"] = cases[8]["lon"]
        path = write_gbk_csv(tmp_path / "案件.csv", wrong)
        bureau = tmp_path / "对照.csv"
        bureau.write_text("本局名称,类别代码\n乱摆摊点,E0501\n", encoding="utf-8")
        options = ("--county", ADCODE, "--category-map", str(bureau))
        dry = citygrid("import", "cases", str(path), *options, "--dry-run", env=env)
        assert dry.returncode == 0 and "dry run" in dry.stderr, dry.stderr
        assert _counts(engine) == (0, None, 0)
        done = citygrid("import", "cases", str(path), *options, env=env)
        assert done.returncode == 0, done.stderr
        assert f"{len(cases)} added" in done.stderr
        before = _counts(engine)
        assert before[0] == len(cases)

        again = citygrid("import", "cases", str(path), *options, env=env)
        assert again.returncode == 0 and f"{len(cases)} already imported" in again.stderr
        assert _counts(engine) == before

        for c in (wrong[4], wrong[11]):
            c["code"] = "E0501"
        start, end = date(2025, 3, 1), date(2025, 8, 31)
        expected = expected_indicators(wrong, _limits(engine), start, end)
        with engine.connect() as conn:
            found = rows(conn, IndicatorQuery(start, end, by="category"))
        got = {
            r["key"]: {
                k: r[k] for k in ("registered", "closed", "due", "closed_rate", "on_time_rate")
            }
            for r in found
        }
        assert got == expected
        assert sum(r["due"] for r in expected.values()) > 50
        assert (
            0
            < sum(r["closed"] for r in expected.values())
            < sum(r["due"] for r in expected.values()) + 50
        )
    finally:
        engine.dispose()


def test_imported_cases_keep_their_history_and_the_grid_of_their_day(
    sanming: str, tmp_path: Path
) -> None:
    cases = year_of_cases(40)
    path = write_gbk_csv(tmp_path / "cases.csv", cases)
    done = citygrid(
        "import", "cases", str(path), "--county", ADCODE, env={"CITYGRID_DATABASE_URL": sanming}
    )
    assert done.returncode == 0, done.stderr
    engine = db.make_engine(sanming)
    try:
        with engine.connect() as conn:
            placed = dict(
                conn.execute(
                    text("""
                    SELECT external_ref, grid_code || ' ' || unit FROM cases
                    WHERE external_ref LIKE 'GRID-%'
                """)
                ).all()
            )
            closed = next(c for c in cases if c["status"] == "结案" and c["deadline"] is None)
            stored = conn.execute(
                text("""
                SELECT adcode, status, source, category_code, reported_at, closed_at, deadline
                FROM cases WHERE external_ref = :r
            """),
                {"r": closed["ref"]},
            ).one()
            events = conn.execute(
                text("""
                SELECT e.action, e.from_status, e.to_status, e.at FROM case_events AS e
                JOIN cases AS c ON c.id = e.case_id WHERE c.external_ref = :r ORDER BY e.at
            """),
                {"r": closed["ref"]},
            ).all()
        limits = _limits(engine)
    finally:
        engine.dispose()
    # before the redraw the west point lay in the old section, after it in the new one; the east
    # section has no unit of its own, so its community answers
    assert placed == {
        "GRID-1": f"{WEST_OLD} 第一中队",
        "GRID-2": f"{WEST_NEW} 第三中队",
        "GRID-3": f"{EAST} 列东社区工作站",
    }
    assert stored.adcode == ADCODE and stored.status == "closed"
    assert stored.category_code == closed["code"]
    assert (stored.reported_at, stored.closed_at) == (closed["reported"], closed["closed"])
    assert stored.deadline == STATUTORY.add(closed["dispatched"], *limits[closed["code"]])
    assert [(a, f, t) for a, f, t, _ in events] == [
        ("register", "reported", "registered"),
        ("dispatch", "registered", "dispatched"),
        ("handle", "dispatched", "handled"),
        ("close", "handled", "closed"),
    ]


def test_edited_time_limits_and_aliases_set_the_deadlines_of_imported_cases(
    sanming: str, tmp_path: Path
) -> None:
    env = {"CITYGRID_DATABASE_URL": sanming, "COLUMNS": "200"}
    exported = tmp_path / "categories.csv"
    done = citygrid("categories", "export", str(exported), env=env)
    assert done.returncode == 0, done.stderr
    raw = exported.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert table[0] == [
        "代码",
        "类型",
        "大类代码",
        "大类名称",
        "小类名称",
        "处置时限",
        "时限单位",
        "别名",
    ]
    by_code = {r[0]: r for r in table[1:]}
    assert by_code["E0102"][5:7] == ["4", "工作时"] and "私搭乱建" in by_code["E0101"][7]

    def write(edits: dict[str, list[str]]) -> Path:
        out = io.StringIO()
        csv.writer(out).writerows([table[0], *({**by_code, **edits}.values())])
        path = tmp_path / "edited.csv"
        path.write_text("\ufeff" + out.getvalue(), encoding="utf-8")
        return path

    garbage = by_code["E0102"]
    bad = write(
        {
            "E0102": [*garbage[:5], "四", "工作日", "小广告"],
            "E0104": [*by_code["E0104"][:6], "小时数", by_code["E0104"][7]],
        }
    )
    refused = citygrid("categories", "import", str(bad), env=env)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "category_time_limit" not in refused.stdout  # the messages are for people
    assert "处置时限应为" in refused.stdout and "也指向类别 E0201" in refused.stdout
    assert "时限单位应为" in refused.stdout
    assert citygrid("categories", "export", str(tmp_path / "same.csv"), env=env).returncode == 0
    assert (tmp_path / "same.csv").read_bytes() == raw

    good = write({"E0102": [*garbage[:5], "2", "工作日", "垃圾暴露、暴露的垃圾"]})
    changed = citygrid("categories", "import", str(good), env=env)
    assert changed.returncode == 0 and "1 changed" in changed.stderr, changed.stderr

    dispatched = datetime(2025, 6, 2, 9, 0, tzinfo=ZONE)  # a Monday
    case = {
        "ref": "NEW-1", "reported": dispatched - timedelta(hours=1), "registered": None,
        "dispatched": dispatched, "handled": None, "closed": None, "deadline": None,
        "major": "", "name": "垃圾暴露", "code": "E0102", "source": "12345热线",
        "status": "处置中", "lon": 117.6, "lat": 26.23,
    }  # fmt: skip
    path = write_gbk_csv(tmp_path / "one.csv", [case])
    assert citygrid("import", "cases", str(path), "--county", ADCODE, env=env).returncode == 0
    engine = db.make_engine(sanming)
    try:
        with engine.connect() as conn:
            deadline, code = conn.execute(
                text("SELECT deadline, category_code FROM cases WHERE external_ref = 'NEW-1'")
            ).one()
    finally:
        engine.dispose()
    # two working days, to the close of office on Wednesday (not the 4 working hours shipped)
    assert code == "E0102" and deadline == datetime(2025, 6, 4, 17, 30, tzinfo=ZONE)


def test_cases_traced_on_amap_from_an_xlsx(sanming: str, tmp_path: Path) -> None:
    from gis.gcj02 import wgs84_to_gcj02

    lon, lat = wgs84_to_gcj02(np.array([117.6]), np.array([26.23]))
    path = tmp_path / "cases.xlsx"
    pyogrio.raw.write(
        str(path),
        None,
        [
            np.array(["X-1"], dtype=object),
            np.array([np.datetime64("2025-05-06T09:30:00")]),
            np.array(["市容环境/暴露垃圾"], dtype=object),
            np.array(["视频"], dtype=object),
            np.array(["待受理"], dtype=object),
            np.asarray(lon, dtype=float),
            np.asarray(lat, dtype=float),
        ],
        ["案件编号", "上报时间", "类别", "来源", "状态", "经度", "纬度"],
        driver="XLSX",
    )
    engine = db.make_engine(sanming)
    try:
        with engine.begin() as conn:
            source = filein.read(path, filein.FileLimits())
            file = casehistory.CaseFile(source, ADCODE, "gcj02")
            report = casehistory.import_cases(conn, file, Viewer("tests", Role.ADMIN))
            stored = conn.execute(
                text(
                    "SELECT ST_X(geom), ST_Y(geom), reported_at, source, status, grid_code FROM cases"
                )
            ).one()
    finally:
        engine.dispose()
    assert report.imported == 1
    assert shapely.Point(stored[0], stored[1]).distance(shapely.Point(117.6, 26.23)) < 2e-5
    assert stored[2:] == (datetime(2025, 5, 6, 9, 30, tzinfo=ZONE), "video", "reported", WEST_OLD)


def test_a_migrated_empty_database_holds_the_case_categories(empty_url: str) -> None:
    engine = db.make_engine(empty_url)
    try:
        with engine.connect() as conn:
            count = conn.execute(text("SELECT count(*) FROM case_categories")).scalar_one()
            alias = conn.execute(
                text("SELECT category_code FROM case_category_aliases WHERE alias = '私搭乱建'")
            ).scalar()
            counties_stored = conn.execute(text("SELECT count(*) FROM counties")).scalar_one()
    finally:
        engine.dispose()
    assert counties_stored == 0 and count == len(codes.read_case_categories()) >= 130
    assert alias == "E0101"


def test_every_bad_row_is_named_and_nothing_is_written(sanming: str, tmp_path: Path) -> None:
    lines = [
        "案件编号,上报时间,立案时间,结案时间,类别,来源,状态,经度,纬度",
        "A-1,2025-04-01 09:00,2025-04-01 08:00,,E0102,监督员上报,已立案,117.6,26.23",
        "A-2,2025-04-01 09:00,2025-04-01 09:10,,E0102,路人甲,已立案,117.6,26.23",
        "A-3,2025-04-01 09:00,2025-04-01 09:10,,E0102,公众举报,办完了,117.6,26.23",
        "A-4,2025-04-01 09:00,2025-04-01 09:10,,E0102,公众举报,结案,117.6,26.23",
        "A-4,2025-04-01 09:00,,,E0102,公众举报,待受理,117.6,26.23",
        ",2025-04-01 09:00,,,E0102,公众举报,待受理,117.6,26.23",
        "A-7,昨天,,,E0102,公众举报,待受理,117.6,26.23",
        "A-8,2025-04-01 09:00,,,E0102,公众举报,待受理,,",
        "A-9,2025-04-01 09:00,,,E0102,公众举报,待受理,117.6,26.23",
    ]
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    engine = db.make_engine(sanming)
    try:
        with engine.begin() as conn:
            file = casehistory.CaseFile(filein.read(path, filein.FileLimits()), ADCODE)
            with pytest.raises(ImportRefused) as refused:
                casehistory.import_cases(conn, file, Viewer("tests", Role.ADMIN))
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM cases")).scalar_one() == 0
    finally:
        engine.dispose()
    found = {(e.row, e.field, e.code) for e in refused.value.report.errors}
    assert found == {
        (1, "registered_at", "time_out_of_order"),
        (2, "source", "property_not_in_code_list"),
        (3, "status", "property_not_in_code_list"),
        (4, "closed_at", "missing_property"),
        (5, "external_ref", "duplicate_key"),
        (6, "external_ref", "missing_property"),
        (7, "reported_at", "property_wrong_type"),
        (8, "geometry", "geometry_missing"),
    }


def test_a_cancelled_case_imports_as_cancelled_not_as_rejected(
    sanming: str, tmp_path: Path
) -> None:
    """作废 is the state the cancel step leaves (cancelled), 不予立案 the reject step's (rejected)."""
    reported = datetime(2025, 4, 7, 9, tzinfo=ZONE)
    rows = []
    for n, (status, ref) in enumerate(
        [("作废", "VOID-1"), ("已作废", "VOID-2"), ("不予立案", "NO-1")]
    ):
        row = countyfiles.case_row(random.Random(n), 80001 + n, reported, EAST_POINT)
        rows.append(
            row
            | {"ref": ref, "status": status, "closed": reported + timedelta(minutes=40)}
            | dict.fromkeys(("registered", "dispatched", "handled", "deadline"))
        )
    done = citygrid(
        "import",
        "cases",
        str(write_gbk_csv(tmp_path / "void.csv", rows)),
        "--county",
        ADCODE,
        env={"CITYGRID_DATABASE_URL": sanming},
    )
    assert done.returncode == 0, done.stderr
    engine = db.make_engine(sanming)
    try:
        with engine.connect() as conn:
            found = conn.execute(
                text("""
                SELECT c.external_ref, c.status, c.closed_at, c.deadline,
                       array_agg(e.action || ':' || e.from_status || '>' || e.to_status)
                FROM cases AS c JOIN case_events AS e ON e.case_id = c.id
                WHERE c.adcode = :a GROUP BY c.id ORDER BY c.external_ref
            """),
                {"a": ADCODE},
            ).all()
    finally:
        engine.dispose()
    closed = reported + timedelta(minutes=40)
    assert [tuple(r) for r in found] == [
        ("NO-1", "rejected", closed, None, ["reject:reported>rejected"]),
        ("VOID-1", "cancelled", closed, None, ["cancel:reported>cancelled"]),
        ("VOID-2", "cancelled", closed, None, ["cancel:reported>cancelled"]),
    ]
