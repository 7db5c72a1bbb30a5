"""Case routing: a case on a component goes to its maintainer, an event case by the county's
routing rules (the most specific area wins) or to its grid's responsible unit (属地兜底); the
dispatcher's override is recorded with the suggested unit; desk entries come as GeoJSON; routing
rules are kept by admins and read by dispatchers and leaders, each within their counties."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from api.settings import DatabaseSettings
from layers.cases import routingrules, units
from layers.cases.codes import seed_case_categories
from layers.store import db
from tests.accounts import TEST_AUTH, bearer
from tests.counties import (
    DEMO,
    GRID_UNITS,
    SANYUAN,
    SCOPED_NAMES,
    SCOPES,
    Account,
    CountyRows,
    ensure_scoped_accounts,
    readable,
    scoped_account,
    two_counties,
)
from tests.databases import fresh_database
from tests.support import JPEG, citygrid
from tests.world import snapshot

NAMES = SCOPED_NAMES
GRID_UNIT = GRID_UNITS[DEMO]  # the responsible unit of the demo county's test grids
WATER = "启东市水务局"  # maintains the demo county's manhole covers
MUNICIPAL = "启东市市政管理处"  # E0101 anywhere in the county
COMMUNITY_CREW = "启东城东环卫所"  # E0101 in the first community
SECTION_CREW = "启东片区保洁队"  # E0101 in the first section
SANYUAN_UNIT = "三元区城市管理局"  # E0102 anywhere in 三元区: never a demo case's unit
READERS = {"admin", "dispatcher", "leader"}


@dataclass(frozen=True)
class Routes:
    """The database, the two counties' rows, and the components named by the cases."""

    engine: Engine
    url: str
    demo: CountyRows
    second: CountyRows
    components: dict[str, str]  # west (in the inspector's area), east (outside it), sanyuan


def _component(
    client: TestClient, rows: CountyRows, x: float, maintainer: str, owner: str | None = None
) -> str:
    lon, lat = rows.lonlat(x, 0)
    units = {"maintainer_unit": maintainer, "owner_unit": owner}
    feature = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {"subclass_code": "C0101", "status": "intact", **units},
    }
    answer = client.post("/collections/components/items", json=feature, headers=bearer("admin"))
    assert answer.status_code == 201, answer.text
    got = client.get(answer.headers["location"], headers=bearer("admin")).json()
    code: str = got["properties"]["component_code"]
    return code


@pytest.fixture(scope="module")
def routes(pg_server: Any) -> Iterator[Routes]:
    databases = fresh_database(pg_server, "routing")
    url = next(databases)
    engine = db.make_engine(pg_server.as_owner(url))
    with engine.begin() as conn:
        seed_case_categories(conn)
        demo, second = two_counties(conn)
        for name in (WATER, MUNICIPAL, COMMUNITY_CREW, SECTION_CREW):
            units.add(conn, name, DEMO, "tests")
        units.add(conn, SANYUAN_UNIT, SANYUAN, "tests")
    rows = {DEMO: demo, SANYUAN: second}
    ensure_scoped_accounts(engine, rows)
    app = create_app(DatabaseSettings(database_url=url), auth_settings=TEST_AUTH)
    with TestClient(app) as client:
        components = {
            "west": _component(client, demo, -1200, WATER, MUNICIPAL),
            "east": _component(client, demo, 1200, WATER, COMMUNITY_CREW),
            "sanyuan": _component(client, second, -1200, SANYUAN_UNIT, SANYUAN_UNIT),
        }
    yield Routes(engine, url, demo, second, components)
    engine.dispose()
    next(databases, None)


@pytest.fixture(scope="module")
def client(routes: Routes) -> Iterator[TestClient]:
    app = create_app(DatabaseSettings(database_url=routes.url), auth_settings=TEST_AUTH)
    with TestClient(app) as c:
        yield c


def point(rows: CountyRows, x: float, y: float = 0.0) -> dict[str, Any]:
    lon, lat = rows.lonlat(x, y)
    return {"type": "Point", "coordinates": [lon, lat]}


def desk(client: TestClient, geometry: Any, user: str = "dispatcher-a", **props: Any) -> Any:
    feature = {"type": "Feature", "geometry": geometry, "properties": props}
    return client.post("/cases", json=feature, headers=bearer(user))


def field(client: TestClient, geometry: Any, user: str = "inspector-a", **props: Any) -> Any:
    feature = {"type": "Feature", "geometry": geometry, "properties": props}
    return client.post(
        "/cases",
        data={"feature": json.dumps(feature, ensure_ascii=False)},
        files={"photo": ("现场.jpg", io.BytesIO(JPEG), "image/jpeg")},
        headers=bearer(user),
    )


def move(client: TestClient, case_id: int, action: str, **extra: Any) -> Any:
    return client.post(
        f"/cases/{case_id}/transitions", json={"action": action, **extra}, headers=bearer("admin")
    )


def last_event(client: TestClient, case_id: int) -> dict[str, Any]:
    moves = client.get(f"/cases/{case_id}/transitions", headers=bearer("dispatcher-a")).json()
    event: dict[str, Any] = moves["events"][-1]
    return event


def add_rule(client: TestClient, user: str = "admin", **rule: Any) -> Any:
    return client.post("/routing_rules", json=rule, headers=bearer(user))


def test_a_case_on_a_component_goes_to_its_maintainer(client: TestClient, routes: Routes) -> None:
    code = routes.components["west"]
    answer = desk(client, None, component_code=code, problem="damaged", description="井盖破损")
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["unit"] == WATER and body["routed_by"] == "component"
    case = client.get(f"/collections/cases/items/{body['id']}", headers=bearer("admin")).json()
    props = case["properties"]
    assert props["category_code"] == "C0101" and props["component_code"] == code
    assert props["problem"] == "damaged" and props["source"] == "hotline"
    assert case["geometry"]["coordinates"] == pytest.approx(
        point(routes.demo, -1200)["coordinates"]
    )
    # an inspector on the spot, 30 m from it: the same unit; dispatched there without naming it
    spot = field(client, point(routes.demo, -1200, 30), component_code=code, problem="lost")
    assert spot.status_code == 201, spot.text
    assert spot.json()["unit"] == WATER
    assert move(client, spot.json()["id"], "register").status_code == 200
    sent = move(client, spot.json()["id"], "dispatch")
    assert sent.status_code == 200, sent.text
    assert sent.json()["unit"] == WATER and sent.json()["routed_by"] == "component"
    event = last_event(client, spot.json()["id"])
    assert event["unit"] == WATER and event["routed_by"] == "component"


def test_event_cases_go_by_the_most_specific_rule_then_by_territory(
    client: TestClient, routes: Routes
) -> None:
    demo = routes.demo
    for area, unit in (
        (None, MUNICIPAL),
        (demo.communities[0], COMMUNITY_CREW),
        (demo.sections[0], SECTION_CREW),
    ):
        made = add_rule(client, adcode=DEMO, subclass="E0101", area_code=area, unit=unit)
        assert made.status_code == 201, made.text
    made = add_rule(client, adcode=SANYUAN, subclass="E0102", unit=SANYUAN_UNIT)
    assert made.status_code == 201, made.text
    expected = {
        ("E0101", -1200): (SECTION_CREW, "rule"),  # its section's rule
        ("E0101", -300): (COMMUNITY_CREW, "rule"),  # its community's
        ("E0101", 1200): (MUNICIPAL, "rule"),  # the county's
        ("E0102", -1200): (GRID_UNIT, "territory"),  # 三元区's rule for E0102 is not the demo's
    }
    for (category, x), (unit, rule) in expected.items():
        answer = desk(client, point(demo, x), category_code=category)
        assert answer.status_code == 201, answer.text
        assert (answer.json()["unit"], answer.json()["routed_by"]) == (unit, rule), (category, x)
    # 三元区's own case by its rule
    there = desk(client, point(routes.second, 300), user="dispatcher-b", category_code="E0102")
    assert (there.json()["unit"], there.json()["routed_by"]) == (SANYUAN_UNIT, "rule")


def test_the_dispatchers_override_is_recorded_with_both_units(
    client: TestClient, routes: Routes
) -> None:
    case_id = desk(client, point(routes.demo, -300), category_code="E0102", source="patrol").json()[
        "id"
    ]
    assert move(client, case_id, "register").status_code == 200
    for unit, status, code in (
        ("不存在的单位", 400, "unknown_unit"),
        (SANYUAN_UNIT, 409, "unit_not_in_county"),
    ):
        refused = move(client, case_id, "dispatch", unit=unit)
        assert refused.status_code == status and refused.json()["code"] == code
    sent = move(client, case_id, "dispatch", unit=MUNICIPAL, note="属市政职责")
    assert sent.status_code == 200, sent.text
    assert sent.json()["unit"] == MUNICIPAL and sent.json()["routed_by"] == "dispatcher"
    event = last_event(client, case_id)
    assert event["suggested_unit"] == GRID_UNIT and event["unit"] == MUNICIPAL
    assert event["routed_by"] == "dispatcher" and event["note"] == "属市政职责"
    case = client.get(f"/collections/cases/items/{case_id}", headers=bearer("admin")).json()
    assert case["properties"]["routed_by"] == "dispatcher"


def test_a_case_without_a_unit_is_routed_again_on_dispatch(
    client: TestClient, routes: Routes
) -> None:
    case_id = desk(client, point(routes.demo, 1200), category_code="E0201", source="patrol").json()[
        "id"
    ]
    assert move(client, case_id, "register").status_code == 200
    with routes.engine.begin() as conn:  # as a case imported from a former system may be
        conn.execute(
            text("UPDATE cases SET unit = NULL, routed_by = NULL WHERE id = :id"), {"id": case_id}
        )
    sent = move(client, case_id, "dispatch")
    assert sent.status_code == 200, sent.text
    assert sent.json()["unit"] == GRID_UNIT and sent.json()["routed_by"] == "territory"


@pytest.mark.parametrize(
    ("user", "which", "extra", "status", "code"),
    [
        ("dispatcher-a", "sanyuan", {}, 400, "component_not_found"),  # another county's
        ("inspector-a", "east", {}, 400, "component_not_found"),  # outside the patrol area
        ("dispatcher-a", "west", {"category_code": "E0101"}, 400, "category_not_component_subclass"),
        ("dispatcher-a", "west", {"x": 0.0}, 400, "component_too_far"),  # 1.2 km away
        ("dispatcher-a", None, {"problem": "damaged", "category_code": "E0101"}, 400,
         "problem_without_component"),
        ("dispatcher-a", "west", {"problem": "burnt"}, 400, "property_not_in_code_list"),
    ],
)  # fmt: skip
def test_a_case_on_a_component_it_cannot_be_on_is_refused(
    client: TestClient,
    routes: Routes,
    user: str,
    which: str | None,
    extra: dict[str, Any],
    status: int,
    code: str,
) -> None:
    before = snapshot(routes.engine)
    props = dict(extra)
    x = props.pop("x", None)
    geometry = point(routes.demo, x) if x is not None else None
    if which is not None:
        props["component_code"] = routes.components[which]
    else:
        geometry = point(routes.demo, -1200)
    send = field if user.startswith("inspector") else desk
    answer = send(client, geometry, user=user, **props)
    assert answer.status_code == status, answer.text
    assert answer.json()["code"] == code and answer.json()["message"]
    assert snapshot(routes.engine) == before


def test_a_desk_entry_must_be_a_feature_of_a_sensible_size(
    client: TestClient, routes: Routes
) -> None:
    before = snapshot(routes.engine)
    headers = {**bearer("dispatcher-a"), "content-type": "application/geo+json"}
    for body, status in (
        (b'{"type": "Feature", "properties": ', 400),
        (b'{"type": "FeatureCollection", "features": []}', 400),
        (b"[1, 2]", 400),
        (json.dumps({"type": "Feature", "properties": {"description": "x" * 70_000}}), 413),
    ):
        answer = client.post("/cases", content=body, headers=headers)
        assert answer.status_code == status, answer.text
        assert answer.json()["code"] and answer.json()["message"]
    assert snapshot(routes.engine) == before


def test_routing_rules_are_read_within_the_readers_counties(
    client: TestClient, routes: Routes
) -> None:
    with routes.engine.connect() as conn:
        stored = dict(conn.execute(text("SELECT id, adcode FROM routing_rules")).all())
    assert set(stored.values()) == {DEMO, SANYUAN}
    for name in NAMES:
        role, _, scope = name.partition("-")
        answer = client.get("/routing_rules", headers=bearer(name))
        if role not in READERS:
            assert answer.status_code == 403 and answer.json()["code"] == "forbidden", name
            continue
        assert answer.status_code == 200, name
        held = SCOPES.get(scope, (DEMO, SANYUAN))
        assert {r["id"] for r in answer.json()} == {i for i, a in stored.items() if a in held}
        assert all(r["subclass_name"] for r in answer.json())


def test_routing_rules_are_kept_by_the_admins_of_their_county(
    client: TestClient, routes: Routes
) -> None:
    demo, second = routes.demo, routes.second
    good = {"adcode": DEMO, "subclass": "E0201", "area_code": demo.communities[1], "unit": WATER}
    for user, rule, status, code in (
        ("dispatcher-a", good, 403, "forbidden"),
        ("leader-city", good, 403, "forbidden"),
        ("admin-b", good, 403, "outside_county"),
        ("admin-a", good | {"subclass": "E9999"}, 400, "unknown_subclass"),
        ("admin-a", good | {"unit": "无此单位"}, 400, "unknown_unit"),
        ("admin-a", good | {"unit": SANYUAN_UNIT}, 409, "unit_not_in_county"),
        ("admin-a", good | {"area_code": second.communities[0]}, 400, "unknown_area"),
        ("admin-a", good | {"area_code": f"{DEMO}009009000"}, 400, "unknown_area"),
    ):
        before = snapshot(routes.engine)
        answer = add_rule(client, user, **rule)
        assert answer.status_code == status, (user, rule, answer.text)
        assert answer.json()["code"] == code and answer.json()["message"]
        assert snapshot(routes.engine) == before
    made = add_rule(client, "admin-a", **good | {"subclass": "非法小广告"})
    assert made.status_code == 201, made.text
    rule = made.json()
    assert rule["subclass_code"] == "E0201" and rule["area_level"] == "community"
    again = add_rule(client, "admin-a", **good)
    assert again.status_code == 409 and again.json()["code"] == "rule_exists"
    for user, status in (("admin-b", 404), ("dispatcher-a", 403), ("admin-a", 204)):
        gone = client.delete(f"/routing_rules/{rule['id']}", headers=bearer(user))
        assert gone.status_code == status, (user, gone.text)
    listed = client.get("/routing_rules", headers=bearer("admin")).json()
    assert rule["id"] not in {r["id"] for r in listed}


def test_a_routing_table_is_exported_and_imported_all_or_nothing(
    routes: Routes, tmp_path: Path
) -> None:
    env = {"CITYGRID_DATABASE_URL": routes.url, "COLUMNS": "200"}
    path = tmp_path / "派遣规则.csv"
    done = citygrid("routing", "export", str(path), "--county", DEMO, env=env)
    assert done.returncode == 0, done.stderr
    exported = path.read_bytes()
    assert exported.startswith(b"\xef\xbb\xbf") and "区域网格编码" in exported.decode("utf-8-sig")
    assert exported.decode("utf-8-sig").count(SECTION_CREW) == 1
    table = f"小类,区域网格编码,处置单位\n暴露垃圾,,{MUNICIPAL}\nE0101,{routes.demo.sections[1]},{WATER}\n"
    path.write_bytes(table.encode("utf-8-sig"))
    again = citygrid("routing", "import", str(path), "--county", DEMO, env=env)
    assert again.returncode == 0, again.stderr + again.stdout
    with routes.engine.connect() as conn:
        rules = conn.execute(
            text("SELECT subclass_code, area_code, unit FROM routing_rules WHERE adcode = :a"),
            {"a": DEMO},
        ).all()
        kept = conn.execute(
            text("SELECT count(*) FROM routing_rules WHERE adcode = :a"), {"a": SANYUAN}
        ).scalar()
    assert sorted(map(tuple, rules)) == [
        ("E0101", routes.demo.sections[1], WATER),
        ("E0102", None, MUNICIPAL),
    ]
    assert kept == 1  # another county's rules stay
    bad = tmp_path / "bad.csv"
    bad.write_bytes(
        f"小类,区域网格编码,处置单位\nE0101,,{WATER}\n无此小类,,{WATER}\nE0101,{routes.second.sections[0]},无此单位\n".encode(
            "utf-8-sig"
        )
    )
    before = snapshot(routes.engine)
    with routes.engine.begin() as conn, pytest.raises(routingrules.RulesRefused) as refused:
        routingrules.import_rules(conn, bad, DEMO, "tests")
    assert {(e.row, e.field, e.code) for e in refused.value.report.errors} == {
        (2, "小类", "unknown_subclass"),
        (3, "区域网格编码", "unknown_area"),
    }
    assert snapshot(routes.engine) == before


def _registered_per_unit(routes: Routes, account: Account, column: str) -> dict[str, int]:
    """Component cases registered today the account may read, per unit of their component."""
    today = "CAST(t.registered_at AT TIME ZONE 'Asia/Shanghai' AS date) = " + (
        "CAST(now() AT TIME ZONE 'Asia/Shanghai' AS date)"
    )
    with routes.engine.connect() as conn:
        ids = readable(conn, account, "cases", f"t.component_code IS NOT NULL AND {today}")
        found = conn.execute(
            text(f"""
            SELECT m.{column}, count(*) FROM cases AS c
            JOIN components AS m ON m.component_code = c.component_code AND m.adcode = c.adcode
            WHERE c.id = ANY(:ids) GROUP BY m.{column}
        """),
            {"ids": sorted(ids)},
        )
        return {str(unit): int(n) for unit, n in found}


@pytest.mark.parametrize("name", NAMES)
def test_component_cases_are_counted_per_owner_and_per_maintainer(
    client: TestClient, routes: Routes, name: str
) -> None:
    for where in ("west", "east", "sanyuan"):
        answer = desk(
            client, None, "admin", component_code=routes.components[where], source="patrol"
        )
        assert answer.status_code == 201, answer.text
        assert move(client, answer.json()["id"], "register").status_code == 200
    with routes.engine.connect() as conn:
        day = conn.execute(
            text("SELECT CAST(now() AT TIME ZONE 'Asia/Shanghai' AS date)")
        ).scalar_one()
    account = scoped_account(name, {DEMO: routes.demo, SANYUAN: routes.second})
    for by, column in (("owner", "owner_unit"), ("maintainer", "maintainer_unit")):
        params = {"from": str(day), "to": str(day), "by": by}
        body = client.get("/stats/indicators", params=params, headers=bearer(name))
        assert body.status_code == 200, body.text
        got = {r["key"]: r["registered"] for r in body.json()["rows"] if r["registered"]}
        assert got == _registered_per_unit(routes, account, column), (name, by)
        if account.counties == (DEMO,) and account.role in ("leader", "dispatcher"):
            assert got.get(MUNICIPAL if by == "owner" else WATER, 0) >= 1
            assert SANYUAN_UNIT not in got
