"""Editing as real clients do it (OGC API - Features Part 4): OPTIONS naming what the user may
do, the Part 4 conformance classes, writes without If-Match (last writer wins, audited), OWSLib's
create/update/delete, and the request sequence of QGIS's OAPIF provider replayed over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from owslib.ogcapi.features import Features
from sqlalchemy import Engine, text

from api.app import create_app
from api.settings import DatabaseSettings, EditingSettings
from layers.registry import LAYERS
from layers.store import db
from tests.accounts import TEST_AUTH, bearer, ensure_account
from tests.databases import fresh_database
from tests.support import live_server

STREET = "MULTIPOLYGON(((121.60 31.75, 121.70 31.75, 121.70 31.85, 121.60 31.85, 121.60 31.75)))"
SECTION = "MULTIPOLYGON(((121.60 31.75, 121.65 31.75, 121.65 31.85, 121.60 31.85, 121.60 31.75)))"
SECTION_CODE = "320681100001001"
EPSG_4490 = "http://www.opengis.net/def/crs/EPSG/0/4490"
PART4 = "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/"
ROLES = ("admin", "planner", "leader", "inspector", "dispatcher")


@pytest.fixture(scope="module")
def url(pg_server: Any) -> Iterator[str]:
    databases = fresh_database(pg_server, "part4")
    database = next(databases)
    engine = db.make_engine(database)
    with engine.begin() as conn:
        for level, code, parent, wkt in (
            ("street", "320681100000000", None, STREET),
            ("section", SECTION_CODE, "320681100001000", SECTION),
        ):
            conn.execute(
                text("""
                INSERT INTO grids (adcode, geom, level, code, name, parent_code, valid_from)
                VALUES ('320681', ST_GeomFromText(:wkt, 4490), :level, :code, '测试网格', :parent,
                        '2023-01-01')
            """),
                {"wkt": wkt, "level": level, "code": code, "parent": parent},
            )
        conn.execute(
            text("""
            INSERT INTO dust_sites (adcode, geom, name, site_type, status)
            VALUES ('320681', ST_SetSRID(ST_MakePoint(121.62, 31.80), 4490), '测试工地',
                    'construction', 'active')
        """)
        )
        conn.execute(
            text("""
            INSERT INTO billboards (adcode, geom, type, face_area_m2, owner)
            VALUES ('320681', ST_SetSRID(ST_MakePoint(121.63, 31.79), 4490), 'wall', 3.5, '原有单位')
        """)
        )
    for role in ROLES:
        ensure_account(engine, role, role, grids=(SECTION_CODE,) if role == "inspector" else ())
    engine.dispose()
    yield database
    next(databases, None)


@pytest.fixture(scope="module")
def engine(url: str) -> Iterator[Engine]:
    eng = db.make_engine(url)
    yield eng
    eng.dispose()


def app_client(url: str, **limits: Any) -> TestClient:
    app = create_app(
        DatabaseSettings(database_url=url),
        editing_limits=EditingSettings(**limits),
        auth_settings=TEST_AUTH,
    )
    return TestClient(app)


@pytest.fixture(scope="module")
def client(url: str) -> Iterator[TestClient]:
    with app_client(url) as c:
        yield c


@pytest.fixture(scope="module")
def server(url: str) -> Iterator[str]:
    with live_server(url) as base:
        yield base


def row(engine: Engine, layer: str, fid: int) -> dict[str, Any] | None:
    """The stored row, a point's coordinates as lon and lat."""
    point = "jsonb_build_object('lon', ST_X(t.geom), 'lat', ST_Y(t.geom))"
    whole = f"to_jsonb(t) - 'geom' || {point}" if LAYERS[layer].geometry else "to_jsonb(t)"
    with engine.connect() as conn:
        found = conn.execute(
            text(f"SELECT {whole} FROM {layer} AS t WHERE id = :id"), {"id": fid}
        ).scalar()
    return found


def audit_actions(engine: Engine, layer: str, fid: int) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return [
            (r[0], r[1])
            for r in conn.execute(
                text(
                    "SELECT actor, action FROM audit_log WHERE layer = :layer AND feature_id = :id "
                    "ORDER BY id"
                ),
                {"layer": layer, "id": fid},
            )
        ]


def first_id(engine: Engine, layer: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT min(id) FROM {layer}")).scalar_one())


def allow(answer: httpx.Response) -> set[str]:
    assert answer.status_code == 204, answer.text
    return {m.strip() for m in answer.headers["allow"].split(",")}


READ = {"GET", "HEAD", "OPTIONS"}


@pytest.mark.parametrize(
    ("role", "layer", "on_items", "on_item"),
    [
        ("admin", "billboards", READ | {"POST"}, READ | {"PUT", "PATCH", "DELETE"}),
        ("leader", "billboards", READ, READ),
        ("dispatcher", "billboards", READ, READ),
        ("inspector", "billboards", READ, READ),
        ("inspector", "dust_inspections", READ | {"POST"}, READ),
        ("inspector", "work_orders", READ, READ),  # rectified by its own operation only
        ("planner", "grids", READ, READ | {"PATCH"}),  # shapes change through /grids operations
        ("admin", "grids", READ, READ | {"PATCH"}),
    ],
)
def test_options_names_what_this_user_may_do(
    client: TestClient, engine: Engine, role: str, layer: str, on_items: set[str], on_item: set[str]
) -> None:
    headers = bearer(role)
    assert allow(client.options(f"/collections/{layer}/items", headers=headers)) == on_items
    fid = first_id(engine, "billboards" if layer == "billboards" else "grids")
    assert allow(client.options(f"/collections/{layer}/items/{fid}", headers=headers)) == on_item
    # QGIS probes an id that may not exist when a layer is empty: answered alike, nothing told
    assert allow(client.options(f"/collections/{layer}/items/unknown_id", headers=headers)) == (
        on_item
    )


def test_options_needs_a_sign_in_and_a_real_collection(client: TestClient) -> None:
    assert client.options("/collections/billboards/items").status_code == 401
    missing = client.options("/collections/nothing/items", headers=bearer("admin"))
    assert missing.status_code == 404 and missing.json()["code"]


def test_what_options_withholds_is_refused(client: TestClient, engine: Engine) -> None:
    """The Allow header tells the truth: a method left out is refused, one named is served."""
    fid = first_id(engine, "billboards")
    path = f"/collections/billboards/items/{fid}"
    refused = client.patch(
        path,
        content=json.dumps({"properties": {"owner": "领导"}}),
        headers={**bearer("leader"), "Content-Type": "application/merge-patch+json"},
    )
    assert refused.status_code == 403
    head = client.head(path, headers=bearer("leader"))
    assert head.status_code == 200 and head.headers["etag"] and not head.content
    assert client.head("/collections/billboards/items", headers=bearer("leader")).status_code == 200


def test_conformance_declares_part4(client: TestClient) -> None:
    declared = set(client.get("/conformance").json()["conformsTo"])
    for name in ("create-replace-delete", "update", "features"):
        assert PART4 + name in declared


def test_changes_without_if_match_last_writer_wins_audited(
    client: TestClient, engine: Engine
) -> None:
    headers = {**bearer("admin"), "Content-Type": "application/geo+json"}
    feature = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [121.64, 31.80]},
        "properties": {"type": "pole", "face_area_m2": 2.0, "owner": "甲"},
    }
    created = client.post(
        "/collections/billboards/items", content=json.dumps(feature), headers=headers
    )
    assert created.status_code == 201
    fid = int(created.headers["location"].rsplit("/", 1)[1])
    stale = created.headers["etag"]
    first = client.patch(
        f"/collections/billboards/items/{fid}",
        content=json.dumps({"properties": {"owner": "乙"}}),
        headers=headers,
    )
    assert first.status_code == 204
    second = client.patch(
        f"/collections/billboards/items/{fid}",
        content=json.dumps({"properties": {"owner": "丙"}}),
        headers=headers,
    )
    assert second.status_code == 204
    assert (current := row(engine, "billboards", fid)) and current["owner"] == "丙"
    # a client that does send If-Match is still held to it
    late = client.patch(
        f"/collections/billboards/items/{fid}",
        content=json.dumps({"properties": {"owner": "丁"}}),
        headers={**headers, "If-Match": stale},
    )
    assert late.status_code == 412 and late.json()["code"]
    assert (current := row(engine, "billboards", fid)) and current["owner"] == "丙"
    with engine.connect() as conn:
        owners = conn.execute(
            text(
                "SELECT before->>'owner', after->>'owner' FROM audit_log "
                "WHERE layer = 'billboards' AND feature_id = :id AND action = 'update' ORDER BY id"
            ),
            {"id": fid},
        ).all()
    assert [tuple(o) for o in owners] == [("甲", "乙"), ("乙", "丙")]
    assert client.delete(f"/collections/billboards/items/{fid}", headers=headers).status_code == 204
    assert row(engine, "billboards", fid) is None
    assert audit_actions(engine, "billboards", fid)[-1] == ("admin", "delete")


def test_a_deployment_may_require_if_match(url: str, engine: Engine) -> None:
    fid = first_id(engine, "billboards")
    before = row(engine, "billboards", fid)
    path = f"/collections/billboards/items/{fid}"
    patch = json.dumps({"properties": {"owner": "无标签"}})
    with app_client(url, require_if_match=True) as strict:
        headers = {**bearer("admin"), "Content-Type": "application/merge-patch+json"}
        refused = strict.patch(path, content=patch, headers=headers)
        assert refused.status_code == 428 and refused.json()["message"]
        assert strict.delete(path, headers=bearer("admin")).status_code == 428
        assert row(engine, "billboards", fid) == before
        tag = strict.get(path, headers=bearer("admin")).headers["etag"]
        restore = json.dumps({"properties": {"owner": before["owner"] if before else None}})
        assert (
            strict.patch(path, content=restore, headers={**headers, "If-Match": tag}).status_code
            == 204
        )


def test_owslib_creates_updates_and_deletes(server: str, engine: Engine) -> None:
    api = Features(server, headers=bearer("admin"))
    feature = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [121.631, 31.791]},
        "properties": {"type": "light_box", "face_area_m2": 4.0, "owner": "OWSLib 单位"},
    }
    assert api.collection_item_create("billboards", feature)
    fid = int(api.response_headers["Location"].rsplit("/", 1)[1])
    created = row(engine, "billboards", fid)
    assert created and created["owner"] == "OWSLib 单位" and created["type"] == "light_box"
    assert abs(created["lon"] - 121.631) < 1e-9 and abs(created["lat"] - 31.791) < 1e-9

    read = api.collection_item("billboards", str(fid))
    assert read["properties"]["id"] == fid
    read["properties"]["owner"] = "改名单位"
    read["geometry"]["coordinates"] = [121.632, 31.792]
    assert api.collection_item_update("billboards", str(fid), read)
    updated = row(engine, "billboards", fid)
    assert updated and updated["owner"] == "改名单位" and abs(updated["lon"] - 121.632) < 1e-9

    assert api.collection_item_delete("billboards", str(fid))
    assert row(engine, "billboards", fid) is None
    assert [a for _, a in audit_actions(engine, "billboards", fid)] == [
        "create",
        "replace",
        "delete",
    ]


def qgis_feature(properties: dict[str, Any], lat_lon: list[float]) -> dict[str, Any]:
    """A feature as QgsJsonExporter writes it for the OAPIF provider: no top-level id or bbox,
    every attribute (nulls too), axes in the order of the layer's CRS (EPSG:4490: lat, lon)."""
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": lat_lon},
        "properties": properties,
    }


def test_qgis_oapif_edit_sequence(server: str, engine: Engine) -> None:
    """QGIS 3.32+ (src/providers/wfs/oapif): read /conformance and the collection (storageCrs
    EPSG:4490 becomes the layer CRS), probe OPTIONS on /items and on the first item, then
    POST (application/geo+json, Content-Crs, new id from the Location header), GET the new
    item, PATCH attributes and geometry (application/merge-patch+json), PUT the whole feature
    with its id, DELETE. No If-Match is ever sent."""
    auth = bearer("admin")
    items = f"{server}/collections/billboards/items"
    with httpx.Client(headers=auth, timeout=30) as http:
        conformance = http.get(f"{server}/conformance").json()["conformsTo"]
        assert "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs" in conformance
        assert PART4 + "create-replace-delete" in conformance
        collection = http.get(f"{server}/collections/billboards").json()
        assert collection["storageCrs"] == EPSG_4490
        page = http.get(items, params={"limit": 10}).json()
        fields = set(page["features"][0]["properties"])
        assert "id" in fields  # so QGIS keeps the id attribute in what it sends back

        assert {"POST"} <= allow(http.options(items))
        probe = page["features"][0]["id"]
        assert {"PUT", "PATCH", "DELETE"} <= allow(http.options(f"{items}/{probe}"))

        properties: dict[str, Any] = dict.fromkeys(fields)
        properties |= {"type": "rooftop", "face_area_m2": 8.25, "owner": "QGIS 单位"}
        created = http.post(
            items,
            content=json.dumps(qgis_feature(properties, [31.793, 121.633]), ensure_ascii=False),
            headers={"Content-Type": "application/geo+json", "Content-Crs": EPSG_4490},
        )
        assert created.status_code == 201, created.text
        location = created.headers["location"]
        new_id = location[location.rindex("/items/") + len("/items/") :]
        assert new_id.isdigit()
        fid = int(new_id)
        stored = row(engine, "billboards", fid)
        assert stored and stored["owner"] == "QGIS 单位"
        assert abs(stored["lon"] - 121.633) < 1e-9 and abs(stored["lat"] - 31.793) < 1e-9

        refreshed = http.get(f"{items}/{new_id}")
        assert refreshed.status_code == 200
        assert refreshed.json()["properties"]["id"] == fid

        patched = http.patch(
            f"{items}/{new_id}",
            content=json.dumps({"properties": {"owner": "QGIS 改"}}, ensure_ascii=False),
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert patched.status_code == 204, patched.text
        assert (stored := row(engine, "billboards", fid)) and stored["owner"] == "QGIS 改"

        moved = http.patch(
            f"{items}/{new_id}",
            content=json.dumps({"geometry": {"type": "Point", "coordinates": [31.794, 121.634]}}),
            headers={"Content-Type": "application/merge-patch+json", "Content-Crs": EPSG_4490},
        )
        assert moved.status_code == 204, moved.text
        stored = row(engine, "billboards", fid)
        assert stored and abs(stored["lon"] - 121.634) < 1e-9 and abs(stored["lat"] - 31.794) < 1e-9

        whole = refreshed.json()["properties"] | {"owner": "QGIS 整体", "risk_grade": "B"}
        put_body = qgis_feature(whole, [31.795, 121.635]) | {"id": new_id}
        replaced = http.put(
            f"{items}/{new_id}",
            content=json.dumps(put_body, ensure_ascii=False),
            headers={"Content-Type": "application/geo+json", "Content-Crs": EPSG_4490},
        )
        assert replaced.status_code == 204, replaced.text
        stored = row(engine, "billboards", fid)
        assert stored and stored["owner"] == "QGIS 整体" and stored["risk_grade"] == "B"
        assert abs(stored["lon"] - 121.635) < 1e-9

        assert http.delete(f"{items}/{new_id}").status_code == 204
    assert row(engine, "billboards", fid) is None
    assert [a for _, a in audit_actions(engine, "billboards", fid)] == [
        "create",
        "update",
        "update",
        "replace",
        "delete",
    ]


def test_a_sent_id_must_name_the_feature_changed(client: TestClient, engine: Engine) -> None:
    fid = first_id(engine, "billboards")
    before = row(engine, "billboards", fid)
    answer = client.patch(
        f"/collections/billboards/items/{fid}",
        content=json.dumps({"properties": {"id": fid + 1000, "owner": "别的"}}),
        headers={**bearer("admin"), "Content-Type": "application/merge-patch+json"},
    )
    assert answer.status_code == 400 and answer.json()["code"] == "id_mismatch"
    assert row(engine, "billboards", fid) == before


def test_an_unknown_content_crs_is_refused(client: TestClient, engine: Engine) -> None:
    answer = client.post(
        "/collections/billboards/items",
        content=json.dumps(qgis_feature({"type": "wall", "face_area_m2": 1.0}, [31.79, 121.63])),
        headers={
            **bearer("admin"),
            "Content-Type": "application/geo+json",
            "Content-Crs": "<http://www.opengis.net/def/crs/EPSG/0/2000>",
        },
    )
    assert answer.status_code == 400 and "Content-Crs" in answer.json()["message_en"]


def test_a_child_row_read_back_is_accepted_back_unchanged(
    client: TestClient, engine: Engine
) -> None:
    """What a client reads of a dust inspection (its site among it) is what it may send back."""
    site = first_id(engine, "dust_sites")
    headers = {**bearer("admin"), "Content-Type": "application/geo+json"}
    sent = {
        "type": "Feature",
        "geometry": None,
        "properties": {
            "dust_site_id": site,
            "inspected_on": "2024-05-06",
            "inspector": "王督查",
            "problems_found": 2,
        },
    }
    created = client.post(
        "/collections/dust_inspections/items", content=json.dumps(sent), headers=headers
    )
    assert created.status_code == 201, created.text
    path = created.headers["location"].replace("http://testserver", "")
    read = client.get(path, headers=headers).json()
    assert read["properties"]["dust_site_id"] == site
    fid = read["id"]
    before = row(engine, "dust_inspections", fid)
    again = client.put(path, content=json.dumps(read, ensure_ascii=False), headers=headers)
    assert again.status_code == 204, again.text
    after = row(engine, "dust_inspections", fid)
    assert after and before
    assert {k: v for k, v in after.items() if k != "updated_at"} == {
        k: v for k, v in before.items() if k != "updated_at"
    }
