"""门前三包 merchants: the layer through the generic machinery, the red/yellow/green rule against
hand-made cases and inspections, the QR code, the public card in the browser with its report
form and rate limit, and the demo's 6,500 shops."""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import mapbox_vector_tile
import pytest
import segno
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import Connection, Engine, text

from api.app import create_app
from api.routes.merchants import QR_SCALE
from api.settings import BrowserSettings, CardSettings, DatabaseSettings
from layers.cases import casework
from layers.cases.codes import seed_case_categories
from layers.engine.access import Viewer
from layers.engine.editing import EditContext
from layers.registry import Role
from layers.store import db
from tests.accounts import TEST_AUTH, bearer, ensure_account
from tests.counties import (
    SCOPED_NAMES,
    ensure_scoped_accounts,
    readable,
    scoped_account,
    two_counties,
)
from tests.databases import fresh_database
from tests.support import assert_policy_kept, live_server, watch

pytestmark = pytest.mark.usefixtures("demo")

GEOJSON = {"Content-Type": "application/geo+json"}
LON, LAT = 121.6571, 31.8081  # in the county seat, between its streets
PUBLIC_URL = "https://cg.example.gov.cn"
ORIGIN = {"Origin": PUBLIC_URL}
CHINA = ZoneInfo("Asia/Shanghai")
PHONE = re.compile(r"1[3-9][0-9]{9}|0513-?[0-9]{6,8}")


def shop(lon: float = LON, lat: float = LAT, **properties: Any) -> dict[str, Any]:
    props = {
        "name": "测试记便利店",
        "address": "汇龙镇测试路1号",
        "frontage": "测试路1号门前至人行道外沿",
        "frontage_m": 8,
        "contact": "甄测试",
        "contact_phone": "13912345678",
    }
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": props | properties,
    }


@pytest.fixture(scope="module")
def client(database_url: str) -> Iterator[TestClient]:
    app = create_app(
        DatabaseSettings(database_url=database_url),
        auth_settings=TEST_AUTH,
        browser=BrowserSettings(public_url=PUBLIC_URL),  # type: ignore[arg-type]
        card_settings=CardSettings(report_burst=3, merchant_report_burst=50),
    )
    with TestClient(app) as c:
        for name, role in (("admin", "admin"), ("m-planner", "planner"), ("m-leader", "leader")):
            ensure_account(database_url, name, role)
        c.headers.update(bearer("admin"))
        yield c


@pytest.fixture
def merchant(client: TestClient, engine: Engine) -> Iterator[dict[str, Any]]:
    """A merchant of our own in the county seat, removed with its cases afterwards."""
    made = client.post(
        "/collections/merchants/items",
        content=json.dumps(shop(), ensure_ascii=False),
        headers=GEOJSON,
    )
    assert made.status_code == 201, made.text
    fid = int(made.headers["location"].rsplit("/", 1)[1])
    row = one(engine, "SELECT * FROM merchants WHERE id = :id", id=fid)
    yield dict(row._mapping)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM merchant_inspections WHERE merchant_id = :id"), {"id": fid})
        conn.execute(text("DELETE FROM merchants WHERE id = :id"), {"id": fid})


def one(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).one()


def scalar(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar_one()


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return int((lon + 180) / 360 * n), int(y)


# --- the layer -------------------------------------------------------------------------------------


def test_the_layer_through_items_tiles_editing_and_refusals(
    client: TestClient, engine: Engine, merchant: dict[str, Any]
) -> None:
    path = f"/collections/merchants/items/{merchant['id']}"
    item = client.get(path).json()["properties"]
    assert item["rating"] == "green" and item["grid_code"] and item["inspector"]
    assert re.fullmatch(r"[0-9a-f]{32}", item["card_token"])
    x, y = tile_of(LON, LAT, 17)
    tile = client.get(f"/collections/merchants/tiles/WebMercatorQuad/17/{x}/{y}")
    assert tile.status_code == 200, tile.text
    drawn = mapbox_vector_tile.decode(tile.content)["merchants"]["features"]
    assert merchant["id"] in {f["id"] for f in drawn}
    forged = client.post(
        "/collections/merchants/items",
        content=json.dumps(shop(rating="red", inspector="某人"), ensure_ascii=False),
        headers=GEOJSON,
    )
    assert forged.status_code == 201, forged.text
    forged_path = forged.headers["location"].replace("http://testserver", "")
    kept = client.get(forged_path).json()["properties"]
    assert (kept["rating"], kept["inspector"]) == ("green", item["inspector"])  # the rule's
    etag = client.get(forged_path).headers["etag"]
    assert client.delete(forged_path, headers={"If-Match": etag}).status_code == 204
    for role in ("m-planner", "m-leader"):
        refused = client.post(
            "/collections/merchants/items",
            content=json.dumps(shop(), ensure_ascii=False),
            headers={**GEOJSON, **bearer(role)},
        )
        assert refused.status_code == 403, refused.text
    etag = client.get(path).headers["etag"]
    bad = client.patch(
        path,
        content=json.dumps({"properties": {"frontage_m": 0}}),
        headers={**GEOJSON, "If-Match": etag},
    )
    assert bad.status_code == 400 and bad.json()["code"] == "property_out_of_range", bad.text
    changed = client.patch(
        path,
        content=json.dumps({"properties": {"frontage_m": 12}}),
        headers={**GEOJSON, "If-Match": etag},
    )
    assert changed.status_code == 204, changed.text
    assert client.get(path).json()["properties"]["frontage_m"] == 12


# --- the rating rule ---------------------------------------------------------------------------------


def _case(
    conn: Connection, lon: float, lat: float, category: str, days_ago: float, status: str
) -> int:
    """A case reported at a point `days_ago`, then put in `status` (as the workflow would)."""
    desk = Viewer("m-dispatcher", Role.DISPATCHER)
    feature = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {"category_code": category, "description": "门前问题", "source": "hotline"},
    }
    case_id = casework.report(conn, feature, None, EditContext(desk, _limits())).id
    conn.execute(
        text(
            "UPDATE cases SET status = :s, reported_at = now() - make_interval(secs => :d) WHERE id = :id"
        ),
        {"s": status, "d": days_ago * 86400, "id": case_id},
    )
    return case_id


def _limits() -> Any:
    from gis.validate import Limits

    return Limits()


def _inspect(conn: Connection, merchant_id: int, days_ago: int, result: str) -> None:
    on = datetime.now(CHINA).date() - timedelta(days=days_ago)
    conn.execute(
        text("""INSERT INTO merchant_inspections (merchant_id, adcode, inspected_on, inspector, result)
                SELECT id, adcode, :on, '测试员', :r FROM merchants WHERE id = :id"""),
        {"id": merchant_id, "on": on, "r": result},
    )


def _rating(conn: Connection, merchant_id: int) -> str:
    return str(
        conn.execute(
            text("SELECT rating FROM merchants WHERE id = :id"), {"id": merchant_id}
        ).scalar_one()
    )


def _metres_east(lon: float, lat: float, metres: float) -> float:
    return lon + metres / (111_320 * math.cos(math.radians(lat)))


def test_the_rating_rule_counts_confirmed_frontage_cases_and_failed_checks(
    engine: Engine, merchant: dict[str, Any]
) -> None:
    fid = merchant["id"]
    near = _metres_east(LON, LAT, 10)
    far = _metres_east(LON, LAT, 35)
    with engine.connect() as conn, conn.begin() as tx:
        assert _rating(conn, fid) == "green"
        first = _case(conn, near, LAT, "E0502", 3, "registered")  # 店外经营, 10 m: counts 1
        assert _rating(conn, fid) == "green"
        _case(conn, far, LAT, "E0506", 3, "registered")  # 35 m away: not this shop's
        _case(conn, near, LAT, "E0101", 3, "registered")  # 私搭乱建: not a frontage duty
        _case(conn, near, LAT, "E0506", 120, "closed")  # before the 90 days
        _case(conn, near, LAT, "E0506", 2, "unverified")  # a report nobody has confirmed yet
        _case(conn, near, LAT, "E0506", 2, "rejected")  # found not to be a problem
        assert _rating(conn, fid) == "green"
        second = _case(conn, near, LAT, "E0107", 80, "closed")  # 乱堆物堆料 in the window: 2
        assert _rating(conn, fid) == "yellow"
        _inspect(conn, fid, 100, "fail")  # a failed check before the window
        _inspect(conn, fid, 5, "pass")
        assert _rating(conn, fid) == "yellow"
        _inspect(conn, fid, 5, "fail")  # 2 cases + 2 × 1 failed check = 4: red
        assert _rating(conn, fid) == "red"
        conn.execute(text("DELETE FROM cases WHERE id = ANY(:ids)"), {"ids": [first, second]})
        assert _rating(conn, fid) == "yellow"  # the failed check alone weighs 2
        conn.execute(text("DELETE FROM merchant_inspections WHERE merchant_id = :id"), {"id": fid})
        assert _rating(conn, fid) == "green"
        tx.rollback()


def test_moving_a_merchant_rates_it_where_it_now_stands(
    engine: Engine, merchant: dict[str, Any]
) -> None:
    elsewhere = (LON + 0.01, LAT)
    with engine.connect() as conn, conn.begin() as tx:
        for _ in range(4):
            _case(conn, *elsewhere, "E0502", 1, "registered")
        assert _rating(conn, merchant["id"]) == "green"
        conn.execute(
            text(
                "UPDATE merchants SET geom = ST_SetSRID(ST_MakePoint(:x, :y), 4490) WHERE id = :id"
            ),
            {"x": elsewhere[0], "y": elsewhere[1], "id": merchant["id"]},
        )
        assert _rating(conn, merchant["id"]) == "red"
        tx.rollback()


# --- the QR code -----------------------------------------------------------------------------------


def _modules(png: bytes, size: int, border: int = 4) -> list[list[bool]]:
    image = Image.open(io.BytesIO(png)).convert("L")
    assert image.size == ((size + 2 * border) * QR_SCALE,) * 2
    half = QR_SCALE // 2
    return [
        [
            image.getpixel(((border + c) * QR_SCALE + half, (border + r) * QR_SCALE + half)) < 128
            for c in range(size)
        ]
        for r in range(size)
    ]


def test_the_qr_code_encodes_the_public_card_address(
    client: TestClient, merchant: dict[str, Any]
) -> None:
    answer = client.get(f"/merchants/{merchant['id']}/qr.png")
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    assert answer.content.startswith(b"\x89PNG\r\n\x1a\n")
    url = f"{PUBLIC_URL}/m/{merchant['card_token']}"
    expected = segno.make_qr(url, error="m")
    drawn = _modules(answer.content, len(expected.matrix))
    assert drawn == [[bool(v) for v in row] for row in expected.matrix]
    other = segno.make_qr(f"{PUBLIC_URL}/m/{'0' * 32}", error="m")
    assert drawn != [[bool(v) for v in row] for row in other.matrix]
    assert not url.endswith(f"/m/{merchant['id']}")  # the token, never the row id
    gone = client.get("/merchants/999999999/qr.png")
    assert gone.status_code == 404 and gone.json()["code"] == "feature_not_found"
    anonymous = client.get(f"/merchants/{merchant['id']}/qr.png", headers={"Authorization": ""})
    assert anonymous.status_code == 401


def test_a_qr_code_is_drawn_only_for_a_merchant_the_account_reads(pg_server: Any) -> None:
    databases = fresh_database(pg_server, "merchant_counties")
    url = next(databases)
    owner = db.make_engine(pg_server.as_owner(url))
    try:
        with owner.begin() as conn:
            seed_case_categories(conn)
            rows = dict(zip(("a", "b"), two_counties(conn), strict=True))
        by_county = {r.adcode: r for r in rows.values()}
        ensure_scoped_accounts(owner, by_county)
        shops = [r.ids["merchants"][0] for r in rows.values()]
        app = create_app(DatabaseSettings(database_url=url), auth_settings=TEST_AUTH)
        with TestClient(app) as c, owner.connect() as conn:
            for order in (SCOPED_NAMES, list(reversed(SCOPED_NAMES))):  # both orders of asking
                for name in order:
                    may = readable(conn, scoped_account(name, by_county), "merchants")
                    for fid in shops:
                        got = c.get(f"/merchants/{fid}/qr.png", headers=bearer(name))
                        assert got.status_code == (200 if fid in may else 404), (name, fid)
    finally:
        owner.dispose()
        next(databases, None)


# --- the public card -------------------------------------------------------------------------------


def test_bad_and_unknown_tokens_are_not_found(client: TestClient) -> None:
    for token in ("1", "0" * 32, "../../etc", "A" * 32, "x" * 64):
        answer = client.get(f"/m/{token}", headers={"Authorization": ""})
        assert answer.status_code == 404, token
        assert answer.json()["code"].endswith("not_found") and answer.json()["message_en"]


def _form(client: TestClient, token: str) -> str:
    page = client.get(f"/m/{token}", headers={"Authorization": ""})
    assert page.status_code == 200
    found = re.search(r'name="form_token" value="([^"]+)"', page.text)
    assert found
    return found.group(1)


def test_the_form_is_checked_and_rate_limited_per_address(
    client: TestClient, engine: Engine, merchant: dict[str, Any]
) -> None:
    token = merchant["card_token"]
    form = _form(client, token)
    anonymous = {"Authorization": "", **ORIGIN}
    before = scalar(engine, "SELECT count(*) FROM cases")
    good = {"form_token": form, "category": "E0502", "description": "门口摆了三张桌子"}
    for bad, code in (
        ({"category": "E0101"}, "property_not_in_code_list"),
        ({"description": "x"}, "description_length"),
        ({"description": "长" * 301}, "description_length"),
        ({"form_token": "123.abc"}, "csrf_failed"),
    ):
        refused = client.post(f"/m/{token}/reports", data=good | bad, headers=anonymous)
        assert refused.status_code in (400, 403, 422), refused.text
        assert refused.json()["code"] == code and refused.json()["message"]
    cross = client.post(
        f"/m/{token}/reports",
        data=good,
        headers={"Authorization": "", "Origin": "https://evil.example"},
    )
    assert cross.status_code == 403 and cross.json()["code"] == "csrf_failed"
    assert scalar(engine, "SELECT count(*) FROM cases") == before
    ids = []
    for _ in range(3):  # the burst of one address
        sent = client.post(f"/m/{token}/reports", data=good, headers=anonymous)
        assert sent.status_code == 201, sent.text
        ids.append(int(re.search(r'id="case-id">(\d+)<', sent.text).group(1)))  # type: ignore[union-attr]
    limited = client.post(f"/m/{token}/reports", data=good, headers=anonymous)
    assert limited.status_code == 429, limited.text
    body = limited.json()
    assert body["code"] == "too_many_reports" and "频繁" in body["message"] and body["message_en"]
    assert int(limited.headers["retry-after"]) >= 1
    assert scalar(engine, "SELECT count(*) FROM cases") == before + 3
    rows = [
        one(
            engine,
            "SELECT source, status, category_code, ST_Equals(c.geom, m.geom) FROM cases AS c, merchants AS m WHERE c.id = :id AND m.id = :m",
            id=i,
            m=merchant["id"],
        )
        for i in ids
    ]
    assert all(tuple(r) == ("public", "unverified", "E0502", True) for r in rows)
    with engine.begin() as conn:  # unverified reports leave the rating as it was
        assert _rating(conn, merchant["id"]) == "green"
        conn.execute(text("DELETE FROM cases WHERE id = ANY(:ids)"), {"ids": ids})


def test_one_merchant_takes_only_so_many_reports_whoever_sends_them(
    database_url: str, engine: Engine, merchant: dict[str, Any]
) -> None:
    app = create_app(
        DatabaseSettings(database_url=database_url),
        auth_settings=TEST_AUTH,
        browser=BrowserSettings(public_url=PUBLIC_URL),  # type: ignore[arg-type]
        card_settings=CardSettings(report_burst=50, merchant_report_burst=2),
    )
    token = merchant["card_token"]
    before = scalar(engine, "SELECT count(*) FROM cases")
    with TestClient(app) as c:
        good = {"form_token": _form(c, token), "category": "E0506", "description": "占道摆摊"}
        sent = [c.post(f"/m/{token}/reports", data=good, headers=ORIGIN) for _ in range(3)]
    assert [r.status_code for r in sent] == [201, 201, 429]
    assert sent[2].json()["code"] == "too_many_reports" and "商户" in sent[2].json()["message"]
    assert scalar(engine, "SELECT count(*) FROM cases") == before + 2
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM cases WHERE description LIKE '%占道摆摊'"))


def test_the_card_in_the_browser_offline_without_personal_data(
    browser: Any, database_url: str, engine: Engine, merchant: dict[str, Any]
) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO grid_inspectors (grid_code, name, phone) VALUES (:g, '钱监督', '13800001111')"
            ),
            {"g": merchant["grid_code"]},
        )
        conn.execute(
            text("UPDATE merchants SET grid_code = grid_code WHERE id = :id"),
            {"id": merchant["id"]},
        )
    try:
        with live_server(database_url, CITYGRID_BASEMAP="none") as base:
            context = browser.new_context()
            page = context.new_page()
            seen = watch(page)
            page.goto(f"{base}/m/{merchant['card_token']}", wait_until="load")
            card = page.inner_text("body")
            assert "测试记便利店" in page.inner_text("#merchant-name")
            assert "测试路1号门前至人行道外沿" in page.inner_text("#frontage")
            assert page.inner_text("#inspector") == "钱监督"
            assert merchant["grid_code"] in page.inner_text("#grid")
            assert all(duty in card for duty in ("市容整洁", "环境卫生", "秩序良好"))
            html = page.content()
            assert "甄测试" not in html and not PHONE.search(html), "personal data on the card"
            page.select_option("#category", "E0107")
            page.fill("#description", "门前堆放纸箱")
            page.click("button[type=submit]")
            page.wait_for_selector("#case-id")
            case_id = int(page.inner_text("#case-id"))
            context.close()
        assert seen.blocked == [] and seen.page_errors == [] and seen.console_errors == []
        assert_policy_kept(seen)
        row = one(
            engine,
            "SELECT source, status, category_code, description FROM cases WHERE id = :id",
            id=case_id,
        )
        assert (row.source, row.status, row.category_code) == ("public", "unverified", "E0107")
        assert "门前堆放纸箱" in row.description
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM grid_inspectors WHERE name = '钱监督'"))
            conn.execute(text("DELETE FROM cases WHERE description LIKE '%门前堆放纸箱%'"))


# --- the demo ----------------------------------------------------------------------------------------


def test_the_demo_holds_6500_rated_merchants_along_the_town_streets(engine: Engine) -> None:
    with engine.connect() as conn:
        counts = dict(
            conn.execute(
                text(
                    "SELECT rating, count(*) FROM merchants WHERE name <> '测试记便利店' GROUP BY rating"
                )
            ).all()
        )
        assert sum(counts.values()) == 6_500
        assert counts["green"] / 6_500 > 0.8
        assert 0.10 <= counts["yellow"] / 6_500 <= 0.15
        assert 0.01 <= counts["red"] / 6_500 <= 0.05
        stale = conn.execute(
            text(
                "SELECT count(*) FROM merchants WHERE rating IS DISTINCT FROM citygrid_merchant_rating(id, geom, adcode)"
            )
        ).scalar_one()
        assert stale == 0  # every colour is the rule's
        placed = conn.execute(
            text(
                "SELECT count(*) FILTER (WHERE grid_code IS NOT NULL AND inspector IS NOT NULL), count(DISTINCT card_token) FROM merchants"
            )
        ).one()
        assert tuple(placed) == (6_500, 6_500)
        failed = conn.execute(
            text("SELECT count(*) FROM merchant_inspections WHERE result = 'fail'")
        ).scalar_one()
        assert failed > 0
        since = conn.execute(
            text("SELECT min(inspected_on) FROM merchant_inspections")
        ).scalar_one()
        assert since >= date.today() - timedelta(days=90)
