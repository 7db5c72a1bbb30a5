"""The same bad field value gets the same machine code whichever way it comes in: a query-string
equality, a JSON body, a cell of an imported file or a literal of a CQL2 filter; nothing is
written."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from api.settings import DatabaseSettings
from layers.cases import codes
from layers.store import db
from tests.accounts import TEST_AUTH, bearer, ensure_account
from tests.databases import fresh_database

SEAT = (121.657, 31.808)  # 汇龙镇, inside the demo county
GOOD: dict[str, dict[str, Any]] = {
    "billboards": {"type": "pole", "face_area_m2": 12.0},
    "cases": {
        "category_code": "E0101",
        "source": "inspector",
        "status": "reported",
        "reported_at": "2026-11-20T09:30:00+08:00",
    },
}
# (what is wrong, layer, field, the value as text, as JSON and CQL, the code every path gives)
BAD = [
    ("wrong type", "billboards", "face_area_m2", "many", "many", "property_wrong_type"),
    ("unknown code", "billboards", "type", "zeppelin", "zeppelin", "property_not_in_code_list"),
    ("out of bounds", "billboards", "face_area_m2", "20000", 20000, "property_out_of_range"),
    ("bad pattern", "cases", "grid_code", "12345", "12345", "property_bad_format"),
]


@pytest.fixture(scope="module")
def database(pg_server: Any) -> Iterator[str]:
    """The module's database: the case categories seeded, an admin account made."""
    for url in fresh_database(pg_server, "values"):
        engine = db.make_engine(pg_server.as_owner(url))
        with engine.begin() as conn:
            codes.seed_case_categories(conn)
        ensure_account(engine, "admin", "admin")
        engine.dispose()
        yield url


@pytest.fixture(scope="module")
def owner(pg_server: Any, database: str) -> Iterator[Engine]:
    engine = db.make_engine(pg_server.as_owner(database))
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def client(database: str) -> Iterator[TestClient]:
    settings = DatabaseSettings(database_url=database)
    with TestClient(create_app(settings, auth_settings=TEST_AUTH)) as c:
        c.headers.update(bearer("admin"))
        yield c


def _rows(owner: Engine) -> int:
    with owner.connect() as conn:
        sql = "SELECT (SELECT count(*) FROM billboards) + (SELECT count(*) FROM cases)"
        return int(conn.execute(text(sql)).scalar_one())


def _refused(answer: Any) -> dict[str, Any]:
    assert answer.status_code == 400, answer.text
    body: dict[str, Any] = answer.json()
    assert body["message"] and body["message_en"], body
    return body


def _post(client: TestClient, layer: str, properties: dict[str, Any]) -> Any:
    feature = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": list(SEAT)},
        "properties": properties,
    }
    return client.post(f"/collections/{layer}/items", json=feature)


def _import(client: TestClient, layer: str, properties: dict[str, Any]) -> list[dict[str, Any]]:
    """The problems an import of one row with `properties` reports (it must be refused)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["lon", "lat", *properties])
    writer.writerow([*SEAT, *properties.values()])
    answer = client.post(
        f"/collections/{layer}/import",
        params={"filename": "rows.csv"},
        content=out.getvalue().encode(),
        headers={"Content-Type": "application/octet-stream"},
    )
    assert _refused(answer)["code"] == "import_refused"
    errors: list[dict[str, Any]] = answer.json()["report"]["errors"]
    return errors


def _cql(name: str, value: Any) -> str:
    return f"{name} = {json.dumps(value) if not isinstance(value, str) else repr(value)}"


@pytest.mark.parametrize(
    ("layer", "name", "raw", "typed", "code"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_a_bad_value_gets_one_code_from_every_path(
    client: TestClient, owner: Engine, layer: str, name: str, raw: str, typed: Any, code: str
) -> None:
    before = _rows(owner)
    items = f"/collections/{layer}/items"
    query = _refused(client.get(items, params={name: raw}))
    cql_text = _refused(client.get(items, params={"filter": _cql(name, typed)}))
    cql_json = _refused(
        client.get(
            items,
            params={
                "filter-lang": "cql2-json",
                "filter": json.dumps({"op": "=", "args": [{"property": name}, typed]}),
            },
        )
    )
    posted = _refused(_post(client, layer, {**GOOD[layer], name: typed}))
    assert [b["code"] for b in (query, cql_text, cql_json, posted)] == [code] * 4
    assert {b["field"] for b in (query, cql_text, cql_json, posted)} == {name}
    problems = _import(client, layer, {**GOOD[layer], name: raw})
    assert [(e["row"], e["field"], e["code"]) for e in problems] == [(1, name, code)]
    assert _rows(owner) == before


def test_a_cell_breaking_the_pattern_is_refused_on_import(
    client: TestClient, owner: Engine
) -> None:
    before = _rows(owner)
    problems = _import(client, "cases", {**GOOD["cases"], "grid_code": "3206810010010"})
    assert [(e["field"], e["code"]) for e in problems] == [("grid_code", "property_bad_format")]
    assert "网格编码" in problems[0]["message"] or "所属网格" in problems[0]["message"]
    assert _rows(owner) == before


def test_a_missing_required_value_gets_one_code_from_body_and_file(
    client: TestClient, owner: Engine
) -> None:
    before = _rows(owner)
    absent = {"face_area_m2": 12.0}
    assert _refused(_post(client, "billboards", absent))["code"] == "missing_property"
    emptied = _refused(_post(client, "billboards", {**absent, "type": None}))
    assert (emptied["code"], emptied["field"]) == ("missing_property", "type")
    problems = _import(client, "billboards", {**absent, "type": " "})
    assert [(e["field"], e["code"]) for e in problems] == [("type", "missing_property")]
    assert _rows(owner) == before


def test_the_same_good_value_is_read_from_every_path(client: TestClient) -> None:
    items = "/collections/billboards/items"
    assert _post(client, "billboards", GOOD["billboards"]).status_code == 201
    for params in (
        {"type": "pole", "face_area_m2": "12"},
        {"filter": "type = 'pole' AND face_area_m2 = 12"},
    ):
        answer = client.get(items, params=params)
        assert answer.status_code == 200 and answer.json()["numberReturned"] == 1, answer.text
