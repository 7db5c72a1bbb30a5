"""The live stream of the command map (`GET /tracking/live`, server-sent events) on a real server
over two counties: the snapshot each role and county reads, positions and alarms arriving as they
are committed (and only to those who may read them), a tracker leaving an inspector's patrol area,
refusals, the limit of streams per account and a stream ending when its client goes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from layers.store import db
from layers.tracking.reading import ALARM_LABELS
from tests.accounts import bearer
from tests.counties import DEMO, SANYUAN, CountyRows
from tests.databases import PgServer, fresh_database
from tests.fleet import (
    NAMES,
    EventStream,
    at,
    build_fleet,
    community_point,
    report,
    report_everyone,
)
from tests.support import live_server

PER_ACCOUNT = 3
ENV = {
    "CITYGRID_LIVE_INTERVAL_S": "0.2",
    "CITYGRID_LIVE_HEARTBEAT_S": "1",
    "CITYGRID_LIVE_MAX_STREAMS_PER_VIEWER": str(PER_ACCOUNT),
}
UNKNOWN_TERMINAL = "13399990001"  # no vehicle names it: an `unregistered_vehicle` alarm


@dataclass
class Fleet:
    """The server, the database as its owner, the counties' rows and the trackers' ids."""

    base: str
    url: str
    engine: Engine
    rows: dict[str, CountyRows]
    trackers: dict[str, int]


@pytest.fixture(scope="module")
def fleet(pg_server: PgServer) -> Iterator[Fleet]:
    databases = fresh_database(pg_server, "live")
    url = next(databases)
    engine = db.make_engine(pg_server.as_owner(url))
    try:
        rows = build_fleet(engine)
        with live_server(url, **ENV) as base:
            yield Fleet(base, url, engine, rows, report_everyone(base, engine, rows))
    finally:
        engine.dispose()
        next(databases, None)


def _ids(collection: dict[str, Any]) -> set[int]:
    return {int(f["id"]) for f in collection["features"]}


def _get(fleet: Fleet, path: str, who: str) -> Any:
    answer = httpx.get(f"{fleet.base}{path}", headers=bearer(who), timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.mark.parametrize("name", NAMES)
def test_the_snapshot_holds_what_the_role_reads_of_its_counties(fleet: Fleet, name: str) -> None:
    with EventStream(fleet.base, name) as stream:
        if name.startswith("handler"):
            assert stream.status == 403
            return
        assert stream.status == 200 and stream.media_type.startswith("text/event-stream")
        _, hello = stream.wait_for(lambda e, _: e == "hello")
        assert hello["offline_minutes"] == 10
        _, snapshot = stream.wait_for(lambda e, _: e == "snapshot")
    positions = _ids(snapshot["positions"])
    assert positions == _ids(_get(fleet, "/tracking/vehicles", name))
    assert _ids(snapshot["alarms"]) == _ids(_get(fleet, "/tracking/alarms?from=2000-01-01", name))
    adcodes = {f["properties"]["adcode"] for f in snapshot["positions"]["features"]}
    held = {"a": {DEMO}, "b": {SANYUAN}}.get(name.rsplit("-", 1)[-1], {DEMO, SANYUAN})
    assert adcodes <= held and positions
    if not name.startswith("inspector"):
        assert adcodes == held and len(positions) == 3 * len(held)  # two vehicles, one person
    else:  # the truck in the patrol area and the inspector's own phone
        own = {fleet.trackers[p] for p in fleet.trackers if p.startswith("inspector-")}
        assert len(positions - own) == len(held)


def test_a_county_in_the_query_narrows_the_stream(fleet: Fleet) -> None:
    with EventStream(fleet.base, "dispatcher-city", f"?county={SANYUAN}") as stream:
        _, snapshot = stream.wait_for(lambda e, _: e == "snapshot")
    assert {f["properties"]["adcode"] for f in snapshot["positions"]["features"]} == {SANYUAN}


def _moved(tracker: int, lonlat: tuple[float, float]) -> Any:
    def condition(event: str, data: Any) -> bool:
        return event == "positions" and any(
            f["id"] == tracker and abs(f["geometry"]["coordinates"][0] - lonlat[0]) < 1e-6
            for f in data["features"]
        )

    return condition


def test_a_position_reaches_the_streams_of_its_county_only(fleet: Fleet) -> None:
    truck = fleet.trackers["13311110001"]
    with (
        EventStream(fleet.base, "dispatcher-a") as mine,
        EventStream(fleet.base, "leader-city") as both,
        EventStream(fleet.base, "dispatcher-b") as other,
    ):
        for stream in (mine, both, other):
            stream.wait_for(lambda e, _: e == "snapshot")
        with fleet.engine.connect() as conn:
            lon, lat = community_point(conn, fleet.rows[DEMO], 0)
        spot = (lon + 0.0004, lat)
        report(fleet.base, "dispatcher-a", [at(spot, 0.1, 32.0, terminal="13311110001")])
        _, data = mine.wait_for(_moved(truck, spot))
        moved = next(f for f in data["features"] if f["id"] == truck)["properties"]
        assert moved["state"] == "moving" and moved["plate"] == "苏F10001"
        assert moved["company"] == "启东渣土运输公司" and moved["speed"] == 32.0
        both.wait_for(_moved(truck, spot))
        time.sleep(1.5)  # longer than the gathering interval and a heartbeat
        assert other.named("positions") == [] and other.comments >= 1


def test_an_alarm_reaches_the_streams_of_its_county_as_it_opens(fleet: Fleet) -> None:
    with (
        EventStream(fleet.base, "dispatcher-a") as mine,
        EventStream(fleet.base, "dispatcher-b") as other,
    ):
        for stream in (mine, other):
            stream.wait_for(lambda e, _: e == "snapshot")
        with fleet.engine.connect() as conn:
            spot = community_point(conn, fleet.rows[DEMO], 1)
        report(fleet.base, "admin", [at(spot, 0.1, 10.0, terminal=UNKNOWN_TERMINAL)])

        def raised(event: str, data: Any) -> bool:
            return event == "alarms" and any(
                f["properties"]["terminal"] == UNKNOWN_TERMINAL for f in data["features"]
            )

        _, data = mine.wait_for(raised)
        alarm = data["features"][0]["properties"]
        assert alarm["kind"] == "unregistered_vehicle" and alarm["open"] is True
        assert alarm["label"] == ALARM_LABELS["unregistered_vehicle"] == "未登记车辆"
        assert alarm["adcode"] == DEMO
        # the unregistered terminal itself appears as a tracker of the county
        mine.wait_for(
            lambda e, d: (
                e == "positions"
                and any(f["properties"]["terminal"] == UNKNOWN_TERMINAL for f in d["features"])
            )
        )
        # an alarm that ends (whoever ends it) comes again, closed
        with fleet.engine.begin() as conn:
            conn.execute(
                text("UPDATE alarms SET ended = now() WHERE id = :id"),
                {"id": data["features"][0]["id"]},
            )
        _, ended = mine.wait_for(
            lambda e, d: e == "alarms" and d["features"][0]["properties"]["open"] is False
        )
        assert ended["features"][0]["id"] == data["features"][0]["id"]
        time.sleep(1.5)
        assert other.named("alarms") == [] and other.named("positions") == []


def test_a_tracker_leaving_the_patrol_area_is_gone_from_the_inspectors_stream(
    fleet: Fleet,
) -> None:
    truck = fleet.trackers["13311110001"]
    with fleet.engine.connect() as conn:
        inside = community_point(conn, fleet.rows[DEMO], 0)
        outside = community_point(conn, fleet.rows[DEMO], 1)
    report(fleet.base, "admin", [at(inside, 0.05, 20.0, terminal="13311110001")])
    with EventStream(fleet.base, "inspector-a") as stream:
        _, snapshot = stream.wait_for(lambda e, _: e == "snapshot")
        assert truck in _ids(snapshot["positions"])
        report(fleet.base, "admin", [at(outside, 0.02, 20.0, terminal="13311110001")])
        _, gone = stream.wait_for(lambda e, _: e == "gone")
        assert gone == {"ids": [truck]}
        assert all(truck not in _ids(p) for p in stream.named("positions"))


@pytest.mark.parametrize(
    ("who", "query", "status", "code"),
    [
        (None, "", 401, "not_signed_in"),
        ("handler-city", "", 403, "forbidden"),
        ("dispatcher-a", "?county=abc", 400, "invalid_request"),
        ("dispatcher-a", f"?county={SANYUAN}", 403, None),
        ("dispatcher-a", "?county=110101", 404, None),
    ],
)
def test_a_stream_refused_says_why(
    fleet: Fleet, who: str | None, query: str, status: int, code: str | None
) -> None:
    with EventStream(fleet.base, who, query) as stream:
        assert stream.status == status, stream.body
    body = httpx.Response(status, content=stream.body).json()
    assert body["message"] and body["message_en"]
    if code is not None:
        assert body["code"] == code


def test_an_account_keeps_a_few_streams_and_a_closed_one_frees_its_place(fleet: Fleet) -> None:
    streams = [EventStream(fleet.base, "leader-a").__enter__() for _ in range(PER_ACCOUNT)]
    try:
        for stream in streams:
            assert stream.status == 200
        with EventStream(fleet.base, "leader-a") as refused:
            assert refused.status == 429
        assert httpx.Response(429, content=refused.body).json()["code"] == "too_many_streams"
        streams.pop().close()
        deadline = time.monotonic() + 10
        while True:  # the server notices the client gone at its next heartbeat
            with EventStream(fleet.base, "leader-a") as again:
                if again.status == 200:
                    break
            assert time.monotonic() < deadline, "the closed stream kept its place"
            time.sleep(0.3)
    finally:
        for stream in streams:
            stream.close()


def test_a_stream_ends_when_its_session_ends_while_the_fleet_moves(fleet: Fleet) -> None:
    headers = bearer("planner-a")
    truck = fleet.trackers["13311110001"]
    move = text("UPDATE latest_positions SET time = now() WHERE id = :id")
    with EventStream(fleet.base, None, headers=headers) as stream:
        stream.wait_for(lambda e, _: e == "snapshot")
        ended = httpx.post(f"{fleet.base}/auth/logout", headers=headers, timeout=30)
        assert ended.status_code == 204
        deadline = time.monotonic() + 10
        while not stream.finished:  # within a heartbeat, though changes keep coming
            assert time.monotonic() < deadline, "the stream outlived its session"
            with fleet.engine.begin() as conn:
                conn.execute(move, {"id": truck})
            time.sleep(0.1)


def test_a_server_stopping_ends_its_open_streams(fleet: Fleet) -> None:
    with live_server(fleet.url, **{**ENV, "CITYGRID_LIVE_HEARTBEAT_S": "60"}) as base:
        stream = EventStream(base, "dispatcher-city").__enter__()
        stream.wait_for(lambda e, _: e == "snapshot")
        started = time.monotonic()
    stopped_in = time.monotonic() - started  # live_server's exit: SIGINT, then wait
    stream.close()
    # a server waiting on the stream would be killed after 20 s; one that ends it stops at once
    # (seconds, on a busy machine)
    assert stopped_in < 15, stopped_in
    assert stream.named("snapshot") and stream.finished


def test_a_statement_moving_a_large_fleet_reaches_the_stream_whole(fleet: Fleet) -> None:
    """One statement moving 1,200 trackers is announced in chunks (a notification holds at most
    8,000 bytes); the stream reads them all."""
    with fleet.engine.connect() as conn:
        lon, lat = community_point(conn, fleet.rows[SANYUAN], 1)
    with EventStream(fleet.base, "dispatcher-b") as stream:
        stream.wait_for(lambda e, _: e == "snapshot")
        with fleet.engine.begin() as conn:
            made = conn.execute(
                text("""
                WITH t AS (INSERT INTO terminals (phone, auth_code, protocol)
                           SELECT '1555' || lpad(n::text, 7, '0'), 'x', 'platform'
                           FROM generate_series(1, 1200) AS n RETURNING id)
                INSERT INTO latest_positions (terminal_id, owner_adcode)
                SELECT id, :county FROM t RETURNING id"""),
                {"county": SANYUAN},
            ).scalars()
            fleet_ids = set(made)
            conn.execute(
                text("""UPDATE latest_positions SET time = now(), adcode = :county, speed = 5,
                        geom = ST_SetSRID(ST_MakePoint(:lon, :lat), 4490)
                        WHERE id = ANY(:ids)"""),
                {"county": SANYUAN, "lon": lon, "lat": lat, "ids": sorted(fleet_ids)},
            )
        deadline = time.monotonic() + 20
        while not fleet_ids <= {f["id"] for p in stream.named("positions") for f in p["features"]}:
            assert time.monotonic() < deadline, "part of the fleet never reached the stream"
            time.sleep(0.2)
