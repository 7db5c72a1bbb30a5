"""Heatmap bins of the demo city's cases: sized in metres for the zoom, weights that add up to the
cases the same filter matches, limited to what the viewer may read, and clear refusals."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from api.settings import DatabaseSettings
from gis.bins import bin_metres, metres_per_pixel
from tests.accounts import TEST_AUTH, bearer, ensure_account, sign_in

SEAT = (121.55, 31.70, 121.75, 31.90)  # 汇龙镇 and around


@pytest.fixture(scope="module")
def client(database_url: str, demo: dict[str, int]) -> Iterator[TestClient]:
    settings = DatabaseSettings(database_url=database_url)
    with TestClient(create_app(settings, auth_settings=TEST_AUTH)) as c:
        yield sign_in(c, database_url, "leader", "leader")


def count(engine: Engine, where: str, **params: Any) -> int:
    """Cases matching a condition, counted without the heatmap's own SQL."""
    with engine.connect() as conn:
        return int(
            conn.execute(text(f"SELECT count(*) FROM cases WHERE {where}"), params).scalar_one()
        )


def test_bins_double_per_zoom_level_and_stay_on_the_ladder() -> None:
    assert bin_metres(10, 31.8) == 2000  # 16 px × 130 m
    assert bin_metres(11, 31.8) == 1000 and bin_metres(13, 31.8) == 250
    assert bin_metres(16, 31.8) == 31.25 and bin_metres(22, 31.8) == 31.25
    assert bin_metres(0, 31.8) == 64_000
    assert metres_per_pixel(0, 0) == pytest.approx(156_543.03, rel=1e-6)


@pytest.mark.parametrize(
    ("params", "where", "values"),
    [
        ({"zoom": 10}, "TRUE", {}),
        (
            {"zoom": 12, "bbox": ",".join(map(str, SEAT))},
            "geom && ST_MakeEnvelope(:w, :s, :e, :n, 4490)",
            dict(zip("wsen", SEAT, strict=True)),
        ),
        (
            {
                "zoom": 15,
                "bbox": ",".join(map(str, SEAT)),
                "from": "2023-03-01",
                "to": "2023-03-31",
            },
            "geom && ST_MakeEnvelope(:w, :s, :e, :n, 4490) AND reported_at >= '2023-03-01' "
            "AND reported_at < '2023-04-01'",
            dict(zip("wsen", SEAT, strict=True)),
        ),
        (
            {"zoom": 11, "category": "E0503,E01"},
            "(category_code = 'E0503' OR category_code LIKE 'E01%')",
            {},
        ),
    ],
)
def test_bin_weights_add_up_to_the_cases_matched(
    client: TestClient, engine: Engine, params: dict[str, Any], where: str, values: dict[str, Any]
) -> None:
    answer = client.get("/stats/heatmap", params=params)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    expected = count(engine, where, **values)
    assert expected > 0
    weights = [b[2] for b in body["bins"]]
    assert sum(weights) == body["total"] == expected
    assert body["max"] == max(weights) and weights == sorted(weights, reverse=True)
    assert body["cell_m"] == bin_metres(params["zoom"], 31.8)  # the box and the county: ~31.8° N
    positions = {(b[0], b[1]) for b in body["bins"]}
    assert len(positions) == len(body["bins"])  # one entry per bin
    if "bbox" in params:
        pad = body["cell_m"] / 90_000  # a bin's centre lies within one bin of the box
        assert all(SEAT[0] - pad <= b[0] <= SEAT[2] + pad for b in body["bins"])
        assert all(SEAT[1] - pad <= b[1] <= SEAT[3] + pad for b in body["bins"])


def test_stored_positions_are_the_projected_points(engine: Engine) -> None:
    with engine.connect() as conn:
        worst = conn.execute(
            text("""
            SELECT max(abs(gk_x - ST_X(ST_Transform(geom, gk_srid::int)))
                     + abs(gk_y - ST_Y(ST_Transform(geom, gk_srid::int)))),
                   bool_and(cell_x = floor(gk_x / 250) AND cell_y = floor(gk_y / 250))
            FROM (SELECT * FROM cases ORDER BY id LIMIT 2000) AS sample
        """)
        ).one()
    assert worst[0] < 1e-6 and worst[1]


def test_an_inspector_sees_the_heat_of_their_grids_only(
    client: TestClient, database_url: str, engine: Engine
) -> None:
    with engine.connect() as conn:
        community = conn.execute(
            text(
                "SELECT code FROM grids WHERE level = 'community' AND valid_to IS NULL "
                "ORDER BY code LIMIT 1"
            )
        ).scalar_one()
    ensure_account(database_url, "heat-inspector", "inspector", (community,))
    body = client.get("/stats/heatmap?zoom=12", headers=bearer("heat-inspector")).json()
    inside = count(
        engine,
        "ST_Intersects(geom, (SELECT ST_Transform(ST_Buffer(ST_Transform(geom, "
        "citygrid_gk_srid(geom)), 50), 4490) FROM grids WHERE code = :c AND valid_to IS NULL))",
        c=community,
    )
    assert body["total"] == inside > 0
    everyone = client.get("/stats/heatmap?zoom=12").json()["total"]
    assert inside < everyone


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("zoom=30", "invalid_request"),
        ("", "invalid_request"),
        ("zoom=10&from=2023-05-01&to=2023-04-01", "period_reversed"),
        ("zoom=10&category=X99", "invalid_request"),
        ("zoom=10&category=E01%27--", "invalid_request"),
        ("zoom=10&bbox=1,2,3", "invalid_request"),
        ("zoom=10&from=yesterday", "invalid_request"),
    ],
)
def test_bad_heatmap_requests_are_refused(client: TestClient, query: str, code: str) -> None:
    answer = client.get(f"/stats/heatmap?{query}")
    assert answer.status_code == 400 and answer.json()["code"] == code, answer.text
    assert answer.json()["message"]


def test_weekly_frames_add_up_to_the_whole_heatmap(client: TestClient, engine: Engine) -> None:
    params = {"zoom": 11, "from": "2023-03-01", "to": "2023-05-31", "category": "E05"}
    whole = client.get("/stats/heatmap", params=params).json()
    framed = client.get("/stats/heatmap/frames", params={**params, "interval": "week"}).json()
    periods = [f["period"] for f in framed["frames"]]
    assert periods == sorted(periods) and len(periods) in (13, 14)  # Mondays covering the spring
    assert sum(f["total"] for f in framed["frames"]) == whole["total"]
    assert all(sum(b[2] for b in f["bins"]) == f["total"] for f in framed["frames"])
    monthly = client.get("/stats/heatmap/frames", params={**params, "interval": "month"}).json()
    assert [f["period"] for f in monthly["frames"]] == ["2023-03-01", "2023-04-01", "2023-05-01"]
    assert (
        client.get("/stats/heatmap/frames", params={**params, "interval": "day"}).status_code == 400
    )


def test_choropleth_and_trend_count_every_case_of_the_period_once(
    client: TestClient, engine: Engine
) -> None:
    period = {"from": "2023-06-01", "to": "2023-06-30"}
    expected = count(engine, "reported_at >= '2023-06-01' AND reported_at < '2023-07-01'")
    grids = client.get("/stats/choropleth", params={**period, "level": "section"}).json()
    assert len(grids["features"]) == 349
    assert sum(f["properties"]["cases"] for f in grids["features"]) == expected
    densest = max(grids["features"], key=lambda f: f["properties"]["per_km2"])["properties"]
    assert densest["per_km2"] == pytest.approx(densest["cases"] / densest["area_km2"], rel=1e-2)
    streets = client.get("/stats/choropleth", params={**period, "level": "street"}).json()
    assert sum(f["properties"]["cases"] for f in streets["features"]) == expected
    trend = client.get("/stats/trend", params={**period, "interval": "week"}).json()
    assert sum(row["cases"] for row in trend) == expected
    assert {row["class"] for row in trend} >= {"E01", "E05"} and all(
        row["class_name"] for row in trend
    )


def test_within_a_street_counts_only_its_cases(client: TestClient, engine: Engine) -> None:
    with engine.connect() as conn:
        street = conn.execute(
            text(
                "SELECT code FROM grids WHERE level = 'street' AND valid_to IS NULL ORDER BY code LIMIT 1"
            )
        ).scalar_one()
    inside = count(
        engine,
        "ST_Intersects(geom, (SELECT geom FROM grids WHERE code = :s AND valid_to IS NULL))",
        s=street,
    )
    assert (
        client.get("/stats/heatmap", params={"zoom": 11, "within": street}).json()["total"]
        == inside
    )
    trend = client.get(
        "/stats/trend", params={"from": "2000-01-01", "to": "2099-12-31", "within": street}
    ).json()
    assert sum(row["cases"] for row in trend) == inside
    grids = client.get(
        "/stats/choropleth",
        params={"from": "2000-01-01", "to": "2099-12-31", "level": "section", "within": street},
    ).json()["features"]
    assert grids and all(f["properties"]["code"][:9] == street[:9] for f in grids)
    assert client.get("/stats/heatmap", params={"zoom": 11, "within": "x"}).status_code == 400
