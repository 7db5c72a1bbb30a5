"""Grid management against a real PostGIS: checks, changes that keep the coverage, history, people."""

from __future__ import annotations

import io
import json
import threading
import time
import zipfile
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pyogrio.raw
import pytest
import shapely
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from shapely.geometry import box, mapping
from sqlalchemy import Engine, text

from api.app import create_app
from api.settings import DatabaseSettings
from gis.topology import CheckOptions
from layers.cases import units
from layers.cases.codes import seed_case_categories
from layers.errors import GridEditRefused, GridRuleBroken
from layers.grids import gridchanges, gridhistory
from layers.grids.grids import check_stored
from layers.store import db
from tests.accounts import TEST_AUTH, sign_in
from tests.databases import fresh_database
from tests.street import (
    COMMUNITIES,
    EPSG,
    STREET,
    TO_LONLAT,
    cell_box,
    family_box,
    insert_street,
    lonlat,
    section,
)

BUREAU_ZONE = ZoneInfo(db.BUREAU_TIMEZONE)


@pytest.fixture(scope="module")
def engine(pg_server: Any) -> Iterator[Engine]:
    databases = fresh_database(pg_server, "grids")
    eng = db.make_engine(next(databases))
    with eng.begin() as conn:
        seed_case_categories(conn)
        insert_street(conn, sectioned=(1, 2, 3))  # the fourth for generation and uploads
    yield eng
    eng.dispose()
    next(databases, None)


@pytest.fixture(scope="module")
def client(engine: Engine) -> Iterator[TestClient]:
    url = engine.url.render_as_string(hide_password=False)
    with TestClient(create_app(DatabaseSettings(database_url=url), auth_settings=TEST_AUTH)) as c:
        yield sign_in(c, engine)


def snapshot(engine: Engine) -> tuple[Any, ...]:
    """Everything a refused change must leave as it was."""
    with engine.connect() as conn:
        return tuple(
            conn.execute(text(sql)).one()
            for sql in (
                "SELECT count(*), md5(string_agg(t::text, ',' ORDER BY id)) FROM grids t",
                "SELECT count(*), md5(coalesce(string_agg(t::text, ',' ORDER BY id), '')) FROM cases t",
                "SELECT count(*), md5(coalesce(string_agg(t::text, ',' ORDER BY grid_code, name), '')) FROM grid_inspectors t",
                "SELECT count(*) FROM audit_log",
            )
        )


def test_stored_families_check_clean(client: TestClient) -> None:
    report = client.post("/grids/check", json={}).json()
    assert report["ok"], report["counts"]
    assert report["children"] == 1 + 4 + 36 and len(report["parents"]) == 1 + 1 + 3


def client_features(community: int) -> dict[str, Any]:
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": mapping(lonlat(cell_box(community, k))),
                "properties": {"code": section(community, k)},
            }
            for k in range(1, 13)
        ],
    }


def test_planted_defects_in_an_uploaded_set_are_found_where_they_are(client: TestClient) -> None:
    fc = client_features(1)
    hole = box(
        *(np.add(cell_box(1, 6).bounds[:2], [100, 100])),
        *(np.add(cell_box(1, 6).bounds[:2], [101, 101])),
    )
    fc["features"][5]["geometry"] = mapping(lonlat(cell_box(1, 6).difference(hole)))
    fc["features"][8]["properties"]["code"] = section(1, 2)  # a duplicate
    report = client.post("/grids/check", json={"parent": COMMUNITIES[1], "features": fc}).json()
    counts = report["counts"]
    assert counts["gap"] == 1 and counts["duplicate_code"] == 2 and counts["overlap"] == 0, counts
    gap = next(f for f in report["problems"]["features"] if f["properties"]["kind"] == "gap")
    assert gap["properties"]["area_m2"] == pytest.approx(1.0, rel=1e-3)
    assert lonlat(hole).buffer(1e-7).contains(shapely.Point(gap["properties"]["location"]))
    assert "空隙" in gap["properties"]["message"] and gap["geometry"]["type"] == "Polygon"


def stats(client: TestClient, day: date, community: int) -> dict[str, int]:
    rows = client.get(f"/grids/stats?at={day}&parent={COMMUNITIES[community]}").json()
    return {r["code"]: r["cases"] for r in rows}


def add_case(engine: Engine, x: float, y: float, at: datetime, status: str = "dispatched") -> None:
    lon, lat = TO_LONLAT.transform(x, y)
    with engine.begin() as conn:
        conn.execute(
            text("""
            INSERT INTO cases (adcode, geom, category_code, source, status, reported_at, grid_code)
            VALUES ('320681', ST_SetSRID(ST_MakePoint(:lon, :lat), 4490), 'E0102', 'inspector', :status, :at,
                    (SELECT code FROM grids WHERE level = 'section' AND valid_to IS NULL
                     AND ST_Intersects(geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4490))))
        """),
            {"lon": lon, "lat": lat, "at": at, "status": status},
        )


def test_today_is_the_bureaus_day_whatever_zone_the_server_keeps(engine: Engine) -> None:
    # A server on UTC+14 (or on UTC, as in the cloud) must not move the day a change takes effect.
    url = engine.url.set(query={"options": "-c timezone=Pacific/Kiritimati"})
    far = db.make_engine(url.render_as_string(hide_password=False))
    try:
        with far.connect() as conn:
            assert conn.execute(text("SHOW timezone")).scalar_one() == db.BUREAU_TIMEZONE
            assert gridhistory.today(conn) == datetime.now(BUREAU_ZONE).date()
    finally:
        far.dispose()


def test_split_keeps_history_and_statistics_by_the_grids_of_each_day(
    client: TestClient, engine: Engine
) -> None:
    noon = datetime.now(BUREAU_ZONE).replace(hour=12, minute=0, second=0, microsecond=0)
    today = noon.date()
    yesterday = today - timedelta(days=1)
    x0, y0, x1, y1 = cell_box(1, 1).bounds
    add_case(engine, x0 + 50, y0 + 150, noon - timedelta(days=1))
    add_case(engine, x1 - 50, y0 + 150, noon - timedelta(days=1), status="closed")
    add_case(engine, x1 - 60, y0 + 100, noon)
    before = stats(client, yesterday, 1)
    assert before[section(1, 1)] == 2

    line = shapely.LineString([(x0 + 150, y0 - 40), (x0 + 150, y1 + 40)])
    answer = client.post("/grids/split", json={"line": mapping(lonlat(line))})
    assert answer.status_code == 200, answer.text
    change = answer.json()
    assert change["closed"] == [section(1, 1)] and change["created"] == [
        section(1, 13),
        section(1, 14),
    ]
    assert (
        change["report"]["ok"] and change["reassigned_cases"] == 2
    )  # the closed case keeps its grid

    assert stats(client, yesterday, 1) == before  # yesterday: still the old grid
    now = stats(client, today, 1)
    assert section(1, 1) not in now
    assert now[section(1, 13)] == 1 and now[section(1, 14)] == 2  # west piece first, then east
    on = {
        d: {
            f["properties"]["code"]
            for f in client.get(f"/grids?at={d}&parent={COMMUNITIES[1]}").json()["features"]
        }
        for d in (yesterday, today)
    }
    assert section(1, 1) in on[yesterday] and not on[yesterday] & {section(1, 13), section(1, 14)}
    assert section(1, 1) not in on[today] and {section(1, 13), section(1, 14)} <= on[today]
    with engine.connect() as conn:
        kept = conn.execute(
            text("SELECT valid_to FROM grids WHERE code = :c"), {"c": section(1, 1)}
        ).scalar_one()
        open_cases = conn.execute(
            text("SELECT array_agg(DISTINCT grid_code) FROM cases WHERE status <> 'closed'")
        ).scalar_one()
        audit = conn.execute(
            text("SELECT count(*) FROM audit_log WHERE layer = 'grids'")
        ).scalar_one()
    assert kept == today and set(open_cases) == {section(1, 13), section(1, 14)} and audit == 3


BAD_REQUESTS: list[tuple[str, str, str, Any, int, str]] = [
    (
        "line that does not cross",
        "post",
        "/grids/split",
        {"line": {"type": "LineString", "coordinates": [[121.6501, 31.8001], [121.6502, 31.8002]]}},
        422,
        "split_target_ambiguous",
    ),
    (
        "line is a polygon",
        "post",
        "/grids/split",
        {"line": {"type": "Point", "coordinates": [121.65, 31.8]}},
        400,
        "geometry_wrong_type",
    ),
    (
        "geometry type is not text",
        "post",
        "/grids/split",
        {"line": {"type": []}},
        400,
        "geometry_wrong_type",
    ),
    (
        "merge grids apart",
        "post",
        "/grids/merge",
        {"codes": [section(2, 1), section(2, 3)]},
        422,
        "merge_not_adjacent",
    ),
    (
        "merge across parents",
        "post",
        "/grids/merge",
        {"codes": [section(2, 4), section(3, 1)]},
        422,
        "merge_different_parents",
    ),
    ("merge one grid", "post", "/grids/merge", {"codes": [section(2, 1)]}, 400, "invalid_request"),
    (
        "merge unknown grid",
        "post",
        "/grids/merge",
        {"codes": ["320681199999001", section(2, 1)]},
        404,
        "grid_not_found",
    ),
    (
        "unknown field",
        "post",
        "/grids/merge",
        {"codes": [section(2, 1), section(2, 2)], "force": True},
        400,
        "invalid_request",
    ),
    (
        "redraw bow-tie",
        "post",
        f"/grids/{section(2, 6)}/redraw",
        {
            "geometry": {
                "type": "Polygon",
                "coordinates": [
                    [
                        [121.65, 31.8],
                        [121.66, 31.81],
                        [121.66, 31.8],
                        [121.65, 31.81],
                        [121.65, 31.8],
                    ]
                ],
            }
        },
        400,
        "geometry_invalid",
    ),
    (
        "redraw swallowing a neighbour",
        "post",
        f"/grids/{section(2, 6)}/redraw",
        "swallow",
        422,
        "redraw_swallows_grid",
    ),
    (
        "redraw with a gap",
        "post",
        f"/grids/{section(2, 6)}/redraw",
        "shrink",
        409,
        "grid_rules_broken",
    ),
    ("add an overlapping grid", "post", "/grids", "overlap", 409, "grid_rules_broken"),
    (
        "generate in a section",
        "post",
        f"/grids/{section(2, 1)}/generate",
        {},
        422,
        "grid_has_no_children",
    ),
    (
        "generate under a grid whose children have children",
        "post",
        f"/grids/{STREET}/generate",
        {},
        422,
        "grid_has_children",
    ),
    ("bad code in path", "post", "/grids/12ab/redraw", "shrink", 400, "invalid_request"),
    (
        "people with unknown field",
        "put",
        f"/grids/{section(2, 1)}/people",
        {"boss": "x"},
        400,
        "unknown_property",
    ),
    (
        "people with nameless inspector",
        "put",
        f"/grids/{section(2, 1)}/people",
        {"inspectors": [{"phone": "1"}]},
        400,
        "missing_property",
    ),
    ("ogc create of a grid", "post", "/collections/grids/items", "ogc", 422, "use_grid_operations"),
]


def _body(kind: Any) -> Any:
    if kind == "swallow":
        return {"geometry": mapping(lonlat(cell_box(2, 6).union(cell_box(2, 7))))}
    if kind == "shrink":  # a hole in the middle: no neighbour touches it, so it would be a gap
        x0, y0, x1, y1 = cell_box(2, 6).bounds
        holed = cell_box(2, 6).difference(box(x0 + 100, y0 + 100, x1 - 100, y1 - 100))
        return {"geometry": mapping(lonlat(holed))}
    if kind == "overlap":
        x0, y0, _, _ = cell_box(2, 6).bounds
        return {"geometry": mapping(lonlat(box(x0 + 10, y0 + 10, x0 + 200, y0 + 200)))}
    if kind == "ogc":
        return {
            "type": "Feature",
            "geometry": mapping(lonlat(cell_box(2, 6))),
            "properties": {
                "level": "section",
                "code": section(2, 99),
                "name": "x",
                "valid_from": "2024-01-01",
            },
        }
    return kind


@pytest.mark.parametrize(
    ("name", "method", "path", "body", "status", "code"),
    BAD_REQUESTS,
    ids=[b[0] for b in BAD_REQUESTS],
)
def test_refused_changes_answer_clearly_and_change_nothing(
    client: TestClient,
    engine: Engine,
    name: str,
    method: str,
    path: str,
    body: Any,
    status: int,
    code: str,
) -> None:
    before = snapshot(engine)
    answer = client.request(
        method.upper(),
        path,
        content=json.dumps(_body(body)),
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == status, answer.text
    doc = answer.json()
    assert doc["code"] == code and doc["message"] and doc["message_en"]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in doc["message"])
    if code == "grid_rules_broken":
        assert doc["report"]["problems"]["features"], "a refusal carries the report to draw"
    assert snapshot(engine) == before


def test_merge_and_redraw_keep_the_coverage(client: TestClient, engine: Engine) -> None:
    merged = client.post("/grids/merge", json={"codes": [section(2, 1), section(2, 2)]}).json()
    assert merged["created"] == [section(2, 13)] and merged["report"]["ok"]
    x0, y0, x1, y1 = cell_box(2, 6).bounds
    drawn = box(x0, y0, x1 + 40, y1)  # 40 m into grid 7
    redrawn = client.post(
        f"/grids/{section(2, 6)}/redraw", json={"geometry": mapping(lonlat(drawn))}
    ).json()
    assert redrawn["report"]["ok"] and sorted(redrawn["created"]) == [section(2, 6), section(2, 7)]
    areas = {
        f["properties"]["code"]: f["properties"]["area_m2"]
        for f in client.get(f"/grids?parent={COMMUNITIES[2]}").json()["features"]
    }
    assert areas[section(2, 6)] == pytest.approx(340 * 300, rel=1e-3)
    assert areas[section(2, 7)] == pytest.approx(260 * 300, rel=1e-3)
    assert client.post("/grids/check", json={"parent": COMMUNITIES[2]}).json()["ok"]


def test_generate_unit_grids_numbered_in_reading_order(client: TestClient) -> None:
    answer = client.post(f"/grids/{COMMUNITIES[4]}/generate", json={"nominal_area_m2": 40_000})
    assert answer.status_code == 200, answer.text
    change = answer.json()
    assert (
        len(change["created"]) == 6 * 5 and change["report"]["ok"]
    )  # 200 m cells over 1,200×900 m: the 100 m row merged
    grids = {
        f["properties"]["code"]: shapely.geometry.shape(f["geometry"])
        for f in client.get(f"/grids?parent={COMMUNITIES[4]}").json()["features"]
    }
    first, second, last = (
        grids[c].centroid
        for c in (change["created"][0], change["created"][1], change["created"][-1])
    )
    assert first.y > last.y and second.x > first.x and abs(second.y - first.y) < 1e-4


def test_replace_children_from_an_uploaded_geopackage(
    client: TestClient, engine: Engine, tmp_path: Any
) -> None:
    cx, cy = family_box(3, 0)
    halves = [box(cx, cy, cx + 600, cy + 900), box(cx + 600, cy, cx + 1200, cy + 900)]
    good = tmp_path / "good.gpkg"
    write_gpkg(good, halves, [f"{COMMUNITIES[4][:12]}901", f"{COMMUNITIES[4][:12]}902"])
    before = snapshot(engine)
    bad = tmp_path / "bad.gpkg"
    write_gpkg(bad, [halves[0], box(cx + 500, cy, cx + 1200, cy + 900)], [None, None])
    refused = client.post(
        f"/grids/{COMMUNITIES[4]}/children?filename=bad.gpkg",
        content=bad.read_bytes(),
        headers={"Content-Type": "application/geopackage+sqlite3"},
    )
    assert refused.status_code == 409 and refused.json()["report"]["counts"]["overlap"] == 1
    assert snapshot(engine) == before
    answer = client.post(
        f"/grids/{COMMUNITIES[4]}/children?filename=good.gpkg",
        content=good.read_bytes(),
        headers={"Content-Type": "application/geopackage+sqlite3"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["created"] == [f"{COMMUNITIES[4][:12]}901", f"{COMMUNITIES[4][:12]}902"]
    names = {
        f["properties"]["name"]
        for f in client.get(f"/grids?parent={COMMUNITIES[4]}").json()["features"]
    }
    assert names == {"上传网格0", "上传网格1"}


def test_the_server_answers_while_a_grid_upload_waits_for_the_database(
    client: TestClient, engine: Engine, tmp_path: Any
) -> None:
    cx, cy = family_box(3, 0)
    overlapping = [box(cx, cy, cx + 700, cy + 900), box(cx + 500, cy, cx + 1200, cy + 900)]
    path = tmp_path / "overlapping.gpkg"
    write_gpkg(path, overlapping, [None, None])
    answers: dict[str, int] = {}

    def upload() -> None:
        answers["upload"] = client.post(
            f"/grids/{COMMUNITIES[4]}/children?filename=overlapping.gpkg",
            content=path.read_bytes(),
            headers={"Content-Type": "application/geopackage+sqlite3"},
        ).status_code

    def health() -> None:
        answers["health"] = client.get("/health").status_code

    with engine.connect() as holder:
        # the lock a change of this grid's children takes first: the upload waits for it
        holder.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:code))"), {"code": COMMUNITIES[4]}
        )
        uploading = threading.Thread(target=upload)
        uploading.start()
        waited = 0.0
        while not _waiting_for_a_lock(engine) and waited < 60:
            time.sleep(0.1)
            waited += 0.1
        assert waited < 60, "the upload never reached the database"
        asking = threading.Thread(target=health)
        asking.start()
        asking.join(timeout=30)
        answered_while_waiting = not asking.is_alive() and uploading.is_alive()
        holder.rollback()
    asking.join()
    uploading.join()
    assert answered_while_waiting and answers == {"health": 200, "upload": 409}


def _waiting_for_a_lock(engine: Engine) -> bool:
    with engine.connect() as conn:
        return bool(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
        )


def write_gpkg(path: Any, polygons: list[shapely.Geometry], codes: list[str | None]) -> None:
    geoms = shapely.to_wkb(np.asarray([lonlat(p) for p in polygons], dtype=object))
    names = np.asarray([f"上传网格{i}" for i in range(len(codes))], dtype=object)
    pyogrio.raw.write(
        str(path),
        geoms,
        [np.asarray(codes, dtype=object), names],
        ["code", "name"],
        geometry_type="Polygon",
        crs="EPSG:4490",
        driver="GPKG",
    )


@pytest.mark.parametrize(
    ("entries", "code"),
    [
        ({"../evil.shp": b"x"}, "upload_unsafe_path"),
        ({"/abs/evil.shp": b"x"}, "upload_unsafe_path"),
        ({"a.txt": b"x"}, "upload_no_shapefile"),
        ({"bomb.shp": b"\0" * (101 * 1024 * 1024)}, "payload_too_large"),
    ],
    ids=["dot-dot", "absolute", "no shapefile", "zip bomb"],
)
def test_unsafe_zip_uploads_are_refused(
    client: TestClient, engine: Engine, entries: dict[str, bytes], code: str
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    before = snapshot(engine)
    answer = client.post(
        f"/grids/{COMMUNITIES[4]}/children?filename=grids.zip",
        content=buffer.getvalue(),
        headers={"Content-Type": "application/zip"},
    )
    assert answer.status_code in (400, 413) and answer.json()["code"] == code
    assert snapshot(engine) == before


def test_people_are_edited_and_audited(client: TestClient, engine: Engine) -> None:
    body = {
        "responsible_person": "王建国",
        "responsible_unit": "汇龙镇城管中队",
        "phone": "0513-83000000",
        "inspectors": [{"name": "李娜", "phone": "13800000000"}, {"name": "张伟"}],
    }
    refused = client.put(f"/grids/{section(3, 5)}/people", json=body)  # not in the directory yet
    assert refused.status_code == 400 and refused.json()["code"] == "unknown_unit"
    with engine.begin() as conn:
        units.add(conn, "汇龙镇城管中队", "320681", "tests")
    answer = client.put(f"/grids/{section(3, 5)}/people", json=body)
    assert answer.status_code == 200, answer.text
    got = client.get(f"/grids/{section(3, 5)}/people").json()
    assert got["responsible_person"] == "王建国" and [i["name"] for i in got["inspectors"]] == [
        "张伟",
        "李娜",
    ]
    with engine.connect() as conn:
        last = conn.execute(
            text("SELECT after->>'responsible_person' FROM audit_log ORDER BY id DESC LIMIT 1")
        ).scalar_one()
    assert last == "王建国"


@st.composite
def grid_edits(draw: st.DrawFn) -> list[tuple[str, int, int, tuple[float, ...]]]:
    return draw(
        st.lists(
            st.tuples(
                st.sampled_from(["split", "merge", "redraw"]),
                st.integers(0, 99),
                st.integers(0, 99),
                st.tuples(*[st.floats(-0.4, 1.4, allow_nan=False)] * 4),
            ),
            min_size=1,
            max_size=3,
        )
    )


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(edits=grid_edits())
def test_random_edits_in_the_database_keep_coverage_or_change_nothing(
    engine: Engine, edits: list[Any]
) -> None:
    options = CheckOptions()
    for kind, a, b, (p, q, r, s) in edits:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT code, ST_AsBinary(ST_Transform(geom, :epsg)) FROM grids WHERE parent_code = :p AND valid_to IS NULL ORDER BY code"
                ),
                {"p": COMMUNITIES[3], "epsg": EPSG},
            ).all()
        codes = [r[0] for r in rows]
        geoms = [shapely.from_wkb(bytes(r[1])) for r in rows]
        i = a % len(codes)
        x0, y0, x1, y1 = geoms[i].bounds
        w, h = x1 - x0, y1 - y0
        before = snapshot(engine)
        try:
            with engine.begin() as conn:
                if kind == "split":
                    line = shapely.LineString([(x0 + p * w, y0 - h), (x0 + q * w, y1 + h)])
                    gridchanges.split(conn, codes[i], lambda epsg, line=line: line, "测试", options)
                elif kind == "merge":
                    gridchanges.merge(conn, [codes[i], codes[b % len(codes)]], "测试", options)
                else:
                    drawn = box(
                        x0 + (p - 0.5) * w,
                        y0 + (q - 0.5) * h,
                        x1 + (r - 0.5) * w,
                        y1 + (s - 0.5) * h,
                    )
                    gridchanges.redraw(
                        conn, codes[i], lambda epsg, drawn=drawn: drawn, 2.0, "测试", options
                    )
        except (GridEditRefused, GridRuleBroken) as refusal:
            event(f"{kind} refused: {refusal.code}")
            assert refusal.message_zh and refusal.code
            assert snapshot(engine) == before
            continue
        event(f"{kind} made")
        with engine.connect() as conn:
            report, _ = check_stored(conn, COMMUNITIES[3], options)
        assert report.ok, [(p.kind, p.message_en) for p in report.problems]
