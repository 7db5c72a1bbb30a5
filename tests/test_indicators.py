"""Indicators on a small hand-built set of cases equal the values worked out by hand.

Period: 2026-01-01 to 2026-03-31. Sections: the west community's halves W1 and W2, the east's E1.
  A  W1 E0101 registered 01-05, dispatched 01-05 10:00, due 01-06 10:00, closed 01-06 09:00
  B  W1 E0101 registered 01-10, dispatched 01-10 10:00, due 01-12 10:00, closed 01-15 10:00 (late)
  C  W1 E0102 registered 02-01, dispatched 02-01 10:00, due 02-03 10:00, still open (overdue)
  D  W2 E0101 rejected 01-20: counts nowhere
  E  W2 E0101 registered 2025-12-30 (before), dispatched 12-30 10:00, due 01-02 10:00, closed 01-02 08:00
  F  E1 E0503 registered 03-15, dispatched 03-15 10:00, due 04-02 (after the period), open
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from api.settings import DatabaseSettings
from tests.accounts import TEST_AUTH, bearer
from tests.street import STREET, lonlat
from tests.world import EAST, WEST, World, make_world, middle

PERIOD = {"from": "2026-01-01", "to": "2026-03-31"}
W1, W2, E1 = f"{WEST[:12]}001", f"{WEST[:12]}002", f"{EAST[:12]}001"
CASES = [  # section side, category, status, registered, dispatched, deadline, closed
    (1, -1, "E0101", "closed", "01-05 09:00", "01-05 10:00", "01-06 10:00", "01-06 09:00"),
    (1, -1, "E0101", "closed", "01-10 09:00", "01-10 10:00", "01-12 10:00", "01-15 10:00"),
    (1, -1, "E0102", "dispatched", "02-01 09:00", "02-01 10:00", "02-03 10:00", None),
    (1, +1, "E0101", "rejected", None, None, None, "01-20 09:00"),
    (
        1,
        +1,
        "E0101",
        "closed",
        "2025-12-30 09:00",
        "2025-12-30 10:00",
        "01-02 10:00",
        "01-02 08:00",
    ),
    (2, -1, "E0503", "dispatched", "03-15 09:00", "03-15 10:00", "04-02 10:00", None),
]


def stamp(value: str | None) -> str | None:
    if value is None:
        return None
    return f"{value if value.startswith('20') else '2026-' + value}:00+08:00"


@pytest.fixture(scope="module")
def world(pg_server: Any) -> Iterator[World]:
    for built in make_world(pg_server, "indicators"):
        with built.engine.begin() as conn:
            for community, side, category, status, registered, dispatched, due, closed in CASES:
                x, y = middle(community)
                where = lonlat(shapely.Point(x + side * 300, y))
                conn.execute(
                    text("""
                    INSERT INTO cases (adcode, geom, category_code, source, status, reported_at,
                                       registered_at, dispatched_at, deadline, closed_at)
                    VALUES ('320681', ST_SetSRID(ST_MakePoint(:x, :y), 4490), :category,
                            'inspector', :status, CAST(coalesce(:registered, :closed) AS timestamptz),
                            CAST(:registered AS timestamptz),
                            CAST(:dispatched AS timestamptz), CAST(:due AS timestamptz),
                            CAST(:closed AS timestamptz))
                """),
                    {
                        "x": where.x,
                        "y": where.y,
                        "category": category,
                        "status": status,
                        "registered": stamp(registered),
                        "dispatched": stamp(dispatched),
                        "due": stamp(due),
                        "closed": stamp(closed),
                    },
                )
        yield built


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    app = create_app(DatabaseSettings(database_url=world.url), auth_settings=TEST_AUTH)
    with TestClient(app) as c:
        c.headers.update(bearer("leader"))
        yield c


def table(client: TestClient, by: str, **extra: str) -> dict[str, dict[str, Any]]:
    answer = client.get("/stats/indicators", params={**PERIOD, "by": by, **extra})
    assert answer.status_code == 200, answer.text
    return {row["key"]: row for row in answer.json()["rows"]}


def values(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(
        row[k]
        for k in (
            "registered", "closed", "due", "closed_rate", "on_time_rate", "overdue",
            "avg_handling_hours",
        )
    )  # fmt: skip


def test_by_section(client: TestClient) -> None:
    rows = table(client, "section")
    assert values(rows[W1]) == (3, 2, 3, 0.6667, 0.3333, 2, 71.5)
    assert values(rows[W2]) == (0, 1, 1, 1.0, 1.0, 0, 70.0)
    assert values(rows[E1]) == (1, 0, 0, None, None, 0, None)
    assert set(rows) == {W1, W2, E1}  # a section with nothing to count has no row
    assert rows[W1]["label"] == "测试001001"


def test_by_street_and_community(client: TestClient) -> None:
    assert values(table(client, "street")[STREET]) == (4, 3, 4, 0.75, 0.5, 2, 71.0)
    communities = table(client, "community")
    assert values(communities[WEST]) == (3, 3, 4, 0.75, 0.5, 2, 71.0)
    assert values(communities[EAST]) == (1, 0, 0, None, None, 0, None)


def test_by_category(client: TestClient) -> None:
    rows = table(client, "category")
    assert values(rows["E0101"]) == (2, 3, 3, 1.0, 0.6667, 1, 71.0)
    assert values(rows["E0102"]) == (1, 0, 1, 0.0, 0.0, 1, None)
    assert values(rows["E0503"]) == (1, 0, 0, None, None, 0, None)
    assert rows["E0101"]["label"].startswith("市容环境/")
    only = table(client, "category", category="E01")
    assert set(only) == {"E0101", "E0102"}


def test_by_month(client: TestClient) -> None:
    rows = table(client, "month")
    assert values(rows["2026-01-01"]) == (2, 3, 3, 1.0, 0.6667, 1, 71.0)
    assert values(rows["2026-02-01"]) == (1, 0, 1, 0.0, 0.0, 1, None)
    assert values(rows["2026-03-01"]) == (1, 0, 0, None, None, 0, None)


def test_csv_has_chinese_headers_and_the_same_numbers(client: TestClient) -> None:
    answer = client.get("/stats/indicators", params={**PERIOD, "by": "section", "format": "csv"})
    assert answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    lines = answer.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("编码/时段,名称,立案数,结案数,应结案数,结案率,按期结案率,超期数")
    assert f"{W1},测试001001,3,2,3,0.6667,0.3333,2,71.5" in lines


def test_an_inspector_gets_the_indicators_of_their_grids(client: TestClient) -> None:
    rows = client.get(
        "/stats/indicators", params={**PERIOD, "by": "section"}, headers=bearer("inspector")
    ).json()["rows"]
    assert {r["key"] for r in rows} == {W1, W2}


@pytest.mark.parametrize(
    "params",
    [
        {"from": "2026-03-01", "to": "2026-01-01"},
        {**PERIOD, "by": "district"},
        {**PERIOD, "format": "xlsx"},
        {**PERIOD, "category": "X1"},
        {"to": "2026-01-01"},
    ],
)
def test_bad_indicator_requests_are_refused(client: TestClient, params: dict[str, str]) -> None:
    answer = client.get("/stats/indicators", params=params)
    assert answer.status_code == 400 and answer.json()["message"]
