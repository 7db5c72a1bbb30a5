"""Geofences drawn by planners and the alarms scripted trips raise, through POST
/tracking/positions (a forwarding platform's account) and the real JT/T 808 gateway; the case a
stop outside every site raises; GET /tracking/alarms for every role of two counties.

Points are metres from each county's centre (tests/counties.py): the first community is the
west half (x < 0), the second the east half. Geofences of the demo county: a construction site
around (-1000, 500), a disposal yard around (1000, 500), a route corridor joining them (y 400 to
600) for one truck, and a no-go zone around (500, -500).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import Engine, text

from api.app import create_app
from api.settings import DatabaseSettings, TrackingSettings
from layers.cases import routing
from layers.store import db
from layers.tracking.jt808 import framing, messages
from layers.tracking.jt808.framing import Splitter
from layers.tracking.jt808.messages import CHINA, Position, Registration
from layers.tracking.jt808.server import Gateway
from tests.accounts import TEST_AUTH, bearer
from tests.counties import (
    DEMO,
    SANYUAN,
    SCOPED_NAMES,
    CountyRows,
    ensure_scoped_accounts,
    scoped_account,
    two_counties,
)
from tests.databases import PgServer, fresh_database
from tests.gateways import serve_gateway

JSON = {"Content-Type": "application/json"}
GEOJSON = {"Content-Type": "application/geo+json"}
# terminal number → (county, plate, kind, allowed time windows)
VEHICLES = {
    "13500000001": (DEMO, "苏F30001", "muck", None),  # stops by day
    "13500000002": (DEMO, "苏F30002", "muck", None),  # stops at night
    "13500000003": (DEMO, "苏F30003", "sanitation", None),  # enters the no-go zone
    "13500000004": (DEMO, "苏F30004", "muck", None),  # has a route corridor
    "13500000005": (DEMO, "苏F30005", "muck", "20:00-24:00,00:00-06:00"),  # night windows
    "13500000006": (DEMO, "苏F30006", "muck", None),  # drives into another county
    "13500000007": (DEMO, "苏F30007", "muck", None),  # reports through the gateway
    "13500000008": (SANYUAN, "闽G30008", "muck", None),  # stops inside a site of its own
    "13500000009": (DEMO, "苏F30009", "muck", None),  # stops in another county
}
UNREGISTERED = "13599999999"  # reports in 三元区's first community; no vehicle names it
YESTERDAY = (datetime.now(CHINA) - timedelta(days=1)).date()


def _china(hour: int, minute: int = 0) -> datetime:
    """Yesterday at this China time."""
    return datetime(YESTERDAY.year, YESTERDAY.month, YESTERDAY.day, hour, minute, tzinfo=CHINA)


@dataclass
class World:
    """The database, the counties' rows, the vehicles' and geofences' ids."""

    url: str
    engine: Engine
    rows: dict[str, CountyRows]
    vehicles: dict[str, int]
    fences: dict[str, int] = field(default_factory=dict)


@pytest.fixture(scope="module")
def world(pg_server: PgServer) -> Iterator[World]:
    databases = fresh_database(pg_server, "alarms")
    url = next(databases)
    engine = db.make_engine(pg_server.as_owner(url))
    vehicles: dict[str, int] = {}
    with engine.begin() as conn:
        demo, second = two_counties(conn)
        rows = {DEMO: demo, SANYUAN: second}
        for phone, (adcode, plate, kind, windows) in VEHICLES.items():
            vehicles[phone] = conn.execute(
                text("""INSERT INTO vehicles (adcode, geom, plate, kind, terminal_phone, company,
                                              time_windows)
                        VALUES (:a, ST_SetSRID(ST_MakePoint(:x, :y), 4490), :p, :k, :t, '渣土车队',
                                :w) RETURNING id"""),
                {
                    "a": adcode,
                    "x": rows[adcode].lonlat(0, 0)[0],
                    "y": rows[adcode].lonlat(0, 0)[1],
                    "p": plate,
                    "k": kind,
                    "t": phone,
                    "w": windows,
                },
            ).scalar_one()
    ensure_scoped_accounts(engine, rows)
    try:
        yield World(url, engine, rows, vehicles)
    finally:
        engine.dispose()
        next(databases, None)


SETTINGS = TrackingSettings(dwell_minutes=10, dwell_night_minutes=5, night_hours="22:00-06:00")


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    app = create_app(
        DatabaseSettings(database_url=world.url), auth_settings=TEST_AUTH, tracking=SETTINGS
    )
    with TestClient(app) as c:
        yield c


def _square(rows: CountyRows, x: float, y: float, half_x: float, half_y: float) -> dict[str, Any]:
    corners = [(x - half_x, y - half_y), (x + half_x, y - half_y), (x + half_x, y + half_y)]
    corners += [(x - half_x, y + half_y), (x - half_x, y - half_y)]
    ring = [list(rows.lonlat(cx, cy)) for cx, cy in corners]
    return {"type": "MultiPolygon", "coordinates": [[ring]]}


def _fence(client: TestClient, who: str, geometry: dict[str, Any], **properties: Any) -> Any:
    body = {"type": "Feature", "geometry": geometry, "properties": properties}
    return client.post(
        "/collections/geofences/items",
        content=json.dumps(body, ensure_ascii=False),
        headers={**GEOJSON, **bearer(who)},
    )


@pytest.fixture(scope="module")
def fenced(client: TestClient, world: World) -> World:
    """The demo county's planner draws its geofences; 三元区's planner draws a site there."""
    demo, second = world.rows[DEMO], world.rows[SANYUAN]
    drawn = {
        "site": ("planner-a", _square(demo, -1000, 500, 100, 100), {"kind": "site"}),
        "yard": ("planner-a", _square(demo, 1000, 500, 100, 100), {"kind": "yard"}),
        "no_go": ("planner-a", _square(demo, 500, -500, 150, 150), {"kind": "no_go"}),
        "corridor": (
            "planner-a",
            _square(demo, 0, 500, 1200, 100),
            {"kind": "corridor", "vehicle_id": world.vehicles["13500000004"]},
        ),
        "site_b": ("planner-b", _square(second, -700, -500, 100, 100), {"kind": "site"}),
    }
    for name, (who, geometry, props) in drawn.items():
        answer = _fence(client, who, geometry, name=f"测试{name}", **props)
        assert answer.status_code == 201, answer.text
        world.fences[name] = int(answer.headers["location"].rsplit("/", 1)[1])
    return world


def _post(client: TestClient, phone: str, steps: list[tuple[tuple[float, float], datetime, float]]):
    """One request of positions of `phone`: (lon/lat, time, speed) each."""
    positions = [
        {"lon": p[0], "lat": p[1], "time": t.isoformat(), "speed": s, "terminal": phone}
        for p, t, s in steps
    ]
    answer = client.post(
        "/tracking/positions",
        content=json.dumps({"positions": positions}),
        headers={**JSON, **bearer("admin")},
    )
    assert answer.status_code == 200, answer.text


def _alarms(engine: Engine, phone: str, kind: str | None = None) -> list[Any]:
    with engine.connect() as conn:
        return conn.execute(
            text("""SELECT a.id, a.kind, a.started, a.ended, a.case_id, a.adcode,
                           ST_NPoints(a.track) AS vertices, a.details
                    FROM alarms AS a JOIN terminals AS t ON t.id = a.terminal_id
                    WHERE t.phone = :phone AND (CAST(:kind AS text) IS NULL OR a.kind = :kind)
                    ORDER BY a.id"""),
            {"phone": phone, "kind": kind},
        ).all()


def _raised(kind: str) -> float:
    return REGISTRY.get_sample_value("citygrid_alarms_total", {"kind": kind}) or 0.0


# --- geofences ------------------------------------------------------------------------------


def test_planners_draw_geofences_and_inspectors_may_not(client: TestClient, fenced: World) -> None:
    geometry = _square(fenced.rows[DEMO], -300, 0, 50, 50)
    refused = _fence(client, "inspector-a", geometry, name="检查员围栏", kind="site")
    assert refused.status_code == 403
    assert _fence(client, "dispatcher-a", geometry, name="中心围栏", kind="site").status_code == 403
    bad = _fence(client, "planner-a", geometry, name="坏围栏", kind="lake")
    assert bad.status_code == 400 and bad.json()["code"]
    other = _fence(client, "planner-b", geometry, name="外县围栏", kind="site")
    assert other.status_code in (403, 422)  # drawn in a county the planner does not hold
    corridor = client.get(
        f"/collections/geofences/items/{fenced.fences['corridor']}", headers=bearer("planner-a")
    ).json()
    assert corridor["properties"]["vehicle_id"] == fenced.vehicles["13500000004"]
    changed = client.patch(
        f"/collections/geofences/items/{fenced.fences['no_go']}",
        content=json.dumps({"properties": {"time_windows": "00:00-24:00"}}),
        headers={"Content-Type": "application/merge-patch+json", **bearer("planner-a")},
    )
    assert changed.status_code in (200, 204), changed.text


# --- alarms from POST /tracking/positions ---------------------------------------------------


def test_a_day_stop_outside_sites_raises_one_alarm_and_one_case_and_closes(
    client: TestClient, fenced: World
) -> None:
    phone, demo = "13500000001", fenced.rows[DEMO]
    road, stop = demo.lonlat(-900, -500), demo.lonlat(-700, -500)
    before = _raised("dwell_outside_sites")
    _post(client, phone, [(road, _china(13, 50), 30.0), (stop, _china(14, 0), 0.0)])
    _post(client, phone, [(stop, _china(14, 5), 0.0), (stop, _china(14, 9), 0.0)])
    assert _alarms(fenced.engine, phone) == []  # 9 minutes: under the day limit
    _post(client, phone, [(stop, _china(14, 10), 0.0)])
    _post(client, phone, [(stop, _china(14, 12), 0.0)])  # still there: no second alarm
    (alarm,) = _alarms(fenced.engine, phone)
    assert (alarm.kind, alarm.started, alarm.ended) == ("dwell_outside_sites", _china(14), None)
    assert alarm.case_id is not None and alarm.adcode == DEMO
    assert alarm.details["plate"] == "苏F30001" and alarm.details["limit_minutes"] == 10
    assert _raised("dwell_outside_sites") == before + 1
    _post(client, phone, [(road, _china(14, 15), 30.0)])
    (closed,) = _alarms(fenced.engine, phone)
    assert closed.ended == _china(14, 15) and closed.case_id == alarm.case_id
    assert closed.vertices == 6  # the stop's positions, from the stop to the drive away
    with fenced.engine.connect() as conn:
        cases = conn.execute(
            text("""SELECT c.id, c.source, c.category_code, c.status, c.unit, c.adcode,
                           c.grid_code, c.routed_by, c.description, c.verify_deadline, ST_Distance(c.geom::geography, a.geom::geography) AS off
                    FROM cases AS c JOIN alarms AS a ON a.case_id = c.id
                    WHERE c.source = 'vehicle'""")
        ).all()
        (case,) = cases
        routed = routing.route(conn, DEMO, "E0303", case.grid_code, None)
    assert (case.id, case.source, case.category_code, case.status) == (
        alarm.case_id,
        "vehicle",
        "E0303",
        "unverified",  # an inspector of the grid checks the stop on site first
    )
    assert case.verify_deadline is not None
    assert case.adcode == DEMO and case.off < 1 and case.grid_code.startswith(DEMO)
    assert (case.unit, case.routed_by) == (routed.unit, routed.rule)  # as every event case
    assert "苏F30001" in case.description


def test_stopping_inside_a_site_raises_nothing(client: TestClient, fenced: World) -> None:
    phone, second = "13500000008", fenced.rows[SANYUAN]
    inside = second.lonlat(-700, -500)
    _post(client, phone, [(inside, _china(9, 0), 0.0), (inside, _china(9, 40), 0.0)])
    assert _alarms(fenced.engine, phone) == []


def test_the_night_limit_is_stricter(client: TestClient, fenced: World) -> None:
    phone, demo = "13500000002", fenced.rows[DEMO]
    stop = demo.lonlat(700, -100)
    _post(client, phone, [(stop, _china(23, 0), 0.0), (stop, _china(23, 4), 0.0)])
    assert _alarms(fenced.engine, phone) == []
    _post(client, phone, [(stop, _china(23, 6), 0.0)])  # 6 minutes: over the night limit of 5
    (alarm,) = _alarms(fenced.engine, phone, "dwell_outside_sites")
    assert alarm.started == _china(23) and alarm.details["limit_minutes"] == 5


def test_entering_a_no_go_zone_and_leaving_it(client: TestClient, fenced: World) -> None:
    phone, demo = "13500000003", fenced.rows[DEMO]
    _post(client, phone, [(demo.lonlat(200, -500), _china(10), 20.0)])
    _post(client, phone, [(demo.lonlat(480, -500), _china(10, 1), 20.0)])
    _post(client, phone, [(demo.lonlat(520, -520), _china(10, 2), 20.0)])
    (alarm,) = _alarms(fenced.engine, phone)
    assert (alarm.kind, alarm.started, alarm.ended) == ("no_go_entry", _china(10, 1), None)
    assert alarm.details["geofence"] == "测试no_go"
    _post(client, phone, [(demo.lonlat(900, -500), _china(10, 3), 20.0)])
    assert _alarms(fenced.engine, phone)[0].ended == _china(10, 3)


def test_leaving_the_route_corridor(client: TestClient, fenced: World) -> None:
    phone, demo = "13500000004", fenced.rows[DEMO]
    _post(client, phone, [(demo.lonlat(-1000, 500), _china(11), 0.0)])  # loading at the site
    _post(client, phone, [(demo.lonlat(0, 520), _china(11, 5), 30.0)])  # along the corridor
    assert _alarms(fenced.engine, phone) == []
    _post(client, phone, [(demo.lonlat(0, 900), _china(11, 8), 30.0)])
    _post(client, phone, [(demo.lonlat(100, 950), _china(11, 9), 30.0)])
    (alarm,) = _alarms(fenced.engine, phone)
    assert (alarm.kind, alarm.started, alarm.ended) == ("off_route", _china(11, 8), None)
    _post(client, phone, [(demo.lonlat(900, 500), _china(11, 12), 30.0)])
    assert _alarms(fenced.engine, phone)[0].ended == _china(11, 12)
    # a truck without a corridor drives anywhere without this alarm
    assert _alarms(fenced.engine, "13500000003", "off_route") == []


def test_moving_outside_the_allowed_hours(client: TestClient, fenced: World) -> None:
    phone, demo = "13500000005", fenced.rows[DEMO]
    _post(client, phone, [(demo.lonlat(-300, 300), _china(19, 50), 0.0)])  # parked: no alarm
    assert _alarms(fenced.engine, phone) == []
    _post(client, phone, [(demo.lonlat(-300, 320), _china(19, 55), 25.0)])
    (alarm,) = _alarms(fenced.engine, phone)
    assert (alarm.kind, alarm.started) == ("out_of_hours", _china(19, 55))
    _post(client, phone, [(demo.lonlat(-300, 400), _china(20, 5), 25.0)])  # inside its window
    assert _alarms(fenced.engine, phone)[0].ended == _china(20, 5)


def test_a_muck_truck_leaving_its_county(client: TestClient, fenced: World) -> None:
    phone = "13500000006"
    _post(client, phone, [(fenced.rows[DEMO].lonlat(-300, -300), _china(8), 30.0)])
    assert _alarms(fenced.engine, phone) == []
    _post(client, phone, [(fenced.rows[SANYUAN].lonlat(300, -300), _china(12), 30.0)])
    (alarm,) = _alarms(fenced.engine, phone)
    assert (alarm.kind, alarm.started, alarm.adcode) == ("cross_county", _china(12), DEMO)
    _post(client, phone, [(fenced.rows[DEMO].lonlat(-300, -300), _china(16), 30.0)])
    assert _alarms(fenced.engine, phone)[0].ended == _china(16)


def test_a_stop_where_no_case_can_be_placed_keeps_its_positions_and_alarm(
    client: TestClient, fenced: World
) -> None:
    phone, away = "13500000009", fenced.rows[SANYUAN].lonlat(600, 600)
    _post(client, phone, [(away, _china(17), 0.0), (away, _china(17, 20), 0.0)])
    kinds = {a.kind: a for a in _alarms(fenced.engine, phone)}
    assert set(kinds) == {"cross_county", "dwell_outside_sites"}
    # the county's desk cannot take a case outside its county: the alarm stands without one
    assert kinds["dwell_outside_sites"].case_id is None
    with fenced.engine.connect() as conn:
        stored = conn.execute(
            text("""SELECT count(*) FROM positions AS p JOIN latest_positions AS l
                    ON l.id = p.tracker_id JOIN terminals AS t ON t.id = l.terminal_id
                    WHERE t.phone = :phone"""),
            {"phone": phone},
        ).scalar_one()
    assert stored == 2


def test_a_terminal_without_a_vehicle(client: TestClient, fenced: World) -> None:
    spot = fenced.rows[SANYUAN].lonlat(-300, 200)
    _post(client, UNREGISTERED, [(spot, _china(15), 20.0)])
    _post(client, UNREGISTERED, [(spot, _china(15, 1), 20.0)])
    (alarm,) = _alarms(fenced.engine, UNREGISTERED)
    assert (alarm.kind, alarm.adcode, alarm.ended) == ("unregistered_vehicle", SANYUAN, None)
    assert alarm.details["terminal"] == UNREGISTERED


# --- alarms through the gateway -------------------------------------------------------------


class Terminal:
    """A terminal speaking JT/T 808 over a blocking socket."""

    def __init__(self, port: int, phone: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.phone, self.serial = phone, 0
        self.splitter = Splitter(4096)
        self.pending: list[messages.Message] = []

    def send(self, message_id: int, body: bytes) -> int:
        self.serial += 1
        self.sock.sendall(framing.frame(messages.build(message_id, self.phone, self.serial, body)))
        return self.serial

    def receive(self) -> messages.Message:
        while not self.pending:
            data = self.sock.recv(4096)
            assert data, "closed by the gateway"
            self.pending += [
                messages.parse(framing.unframe(c), 1023) for c in self.splitter.feed(data)
            ]
        return self.pending.pop(0)

    def acknowledged(self, serial: int) -> bool:
        answer = self.receive()
        return (
            answer.header.message_id == messages.GENERAL_REPLY
            and answer.body[4] == 0
            and (int.from_bytes(answer.body[:2], "big") == serial)
        )

    def sign_in(self, plate: str) -> None:
        reg = Registration(32, 681, "CG001", "M1", "T000007", 1, plate)
        self.send(messages.REGISTER, messages.build_registration(reg, None))
        code = self.receive().body[3:].decode()
        assert self.acknowledged(self.send(messages.AUTHENTICATE, messages.build_auth(code, None)))

    def report(self, lonlat: tuple[float, float], when: datetime, speed: float) -> None:
        status = messages.ACC_ON | messages.LOCATED
        pos = Position(0, status, lonlat[1], lonlat[0], 5, speed, 90, when.astimezone(UTC))
        assert self.acknowledged(self.send(messages.POSITION, messages.build_position(pos)))


def _gateway(world: World, check_s: float) -> Iterator[Gateway]:
    """The gateway serving in a thread of its own, looking for silence every `check_s`."""
    config = {"alarm_rules": SETTINGS.alarm_rules(), "offline_check_s": check_s}
    for running in serve_gateway(world.url, **config):
        yield running.gateway


@pytest.fixture(scope="module")
def gateway(world: World) -> Iterator[Gateway]:
    yield from _gateway(world, 3600.0)


def test_the_gateway_looks_for_silent_terminals_on_its_own(fenced: World) -> None:
    phone = "13500000010"  # no vehicle names it
    for served in _gateway(fenced, 0.2):
        term = Terminal(served.port, phone)
        try:
            term.sign_in("苏F39999")
            old = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
            term.report(fenced.rows[DEMO].lonlat(-500, 800), old, 0.0)
            for _ in range(50):
                if any(a.kind == "offline" for a in _alarms(fenced.engine, phone)):
                    break
                time.sleep(0.1)
            assert {a.kind for a in _alarms(fenced.engine, phone)} == {
                "offline",
                "unregistered_vehicle",
            }
        finally:
            term.sock.close()


def test_through_the_gateway_a_silent_engine_on_terminal_goes_offline(
    gateway: Gateway, fenced: World
) -> None:
    phone, demo = "13500000007", fenced.rows[DEMO]
    now = datetime.now(UTC).replace(microsecond=0)
    term = Terminal(gateway.port, phone)
    try:
        term.sign_in("苏F30007")
        term.report(demo.lonlat(-300, -600), now - timedelta(minutes=30), 30.0)
        term.report(demo.lonlat(-250, -600), now - timedelta(minutes=20), 30.0)
        assert _alarms(fenced.engine, phone) == []
        before = _raised("offline")
        assert gateway.check_offline(now - timedelta(minutes=25)) == 0  # 5 minutes silent
        assert gateway.check_offline(now) == 1  # 20 minutes silent, engine on
        assert gateway.check_offline(now) == 0  # already open
        assert _raised("offline") == before + 1
        (alarm,) = _alarms(fenced.engine, phone)
        assert (alarm.kind, alarm.started, alarm.ended) == (
            "offline",
            now - timedelta(minutes=20),
            None,
        )
        term.report(demo.lonlat(-200, -600), now, 30.0)
        assert _alarms(fenced.engine, phone)[0].ended == now
        # the gateway's batches are evaluated too: the truck drives into the no-go zone
        term.report(demo.lonlat(500, -500), now + timedelta(seconds=5), 30.0)
        assert [a.kind for a in _alarms(fenced.engine, phone) if a.ended is None] == ["no_go_entry"]
    finally:
        term.sock.close()


# --- reading --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def alarmed(client: TestClient, fenced: World, gateway: Gateway) -> World:
    """Every scripted trip has run (the tests above, in order) before the reads."""
    with fenced.engine.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM alarms")).scalar_one()
    assert count >= 9
    return fenced


def _expected(engine: Engine, rows: dict[str, CountyRows], name: str) -> set[int]:
    account = scoped_account(name, rows)
    where = ["(CAST(:counties AS text[]) IS NULL OR a.adcode = ANY(:counties))"]
    if account.role == "inspector":
        where.append(
            "EXISTS (SELECT 1 FROM grids AS g WHERE g.code = ANY(:grids) AND g.valid_to IS NULL "
            "AND ST_DWithin(g.geom::geography, a.geom::geography, 50))"
        )
    with engine.connect() as conn:
        found = conn.execute(
            text(f"SELECT a.id FROM alarms AS a WHERE {' AND '.join(where)}"),
            {
                "counties": list(account.counties) if account.counties else None,
                "grids": list(account.grids),
            },
        )
        return {int(r[0]) for r in found}


@pytest.mark.parametrize("name", SCOPED_NAMES)
def test_every_role_reads_the_alarms_of_its_counties(
    client: TestClient, alarmed: World, name: str
) -> None:
    answer = client.get("/tracking/alarms", headers=bearer(name))
    if name.startswith("handler"):
        assert answer.status_code == 403 and answer.json()["code"]
        return
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/geo+json")
    got = {f["id"] for f in answer.json()["features"]}
    expected = _expected(alarmed.engine, alarmed.rows, name)
    assert got == expected
    if not name.startswith("inspector"):
        assert expected  # each scope holds alarms of its own


def test_alarms_by_county_vehicle_kind_and_period(client: TestClient, alarmed: World) -> None:
    def read(who: str, **params: Any) -> list[dict[str, Any]]:
        answer = client.get("/tracking/alarms", params=params, headers=bearer(who))
        assert answer.status_code == 200, answer.text
        features: list[dict[str, Any]] = answer.json()["features"]
        return features

    both = read("leader-city")
    assert {f["properties"]["adcode"] for f in both} == {DEMO, SANYUAN}
    for county in (SANYUAN, DEMO):  # either county first: the answer is each county's own
        assert {f["properties"]["adcode"] for f in read("leader-city", county=county)} == {county}
    refused = client.get("/tracking/alarms", params={"county": SANYUAN}, headers=bearer("leader-a"))
    assert refused.status_code == 403
    (dwell,) = read("leader-a", kind="dwell_outside_sites", to=_china(16).isoformat())
    props = dwell["properties"]
    assert props["plate"] == "苏F30001" and props["kind"] == "dwell_outside_sites"
    assert props["duration_s"] == 15 * 60 and props["case_id"] and props["label"]
    assert dwell["geometry"]["type"] == "Point"
    tracker = props["tracker"]
    mine = read("admin", vehicle=tracker)
    assert mine and {f["properties"]["tracker"] for f in mine} == {tracker}
    window = read("admin", **{"from": _china(10, 30).isoformat(), "to": _china(11, 30).isoformat()})
    assert {f["properties"]["kind"] for f in window} == {"off_route"}
    for bad in ({"kind": "speeding"}, {"vehicle": "x"}, {"from": "2026-02-01", "to": "2026-01-01"}):
        refused = client.get("/tracking/alarms", params=bad, headers=bearer("admin"))
        assert refused.status_code == 400 and refused.json()["code"], bad
