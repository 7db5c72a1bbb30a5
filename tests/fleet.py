"""A small fleet in two counties for the live command map's tests: vehicles of two companies per
county, accounts of every role holding one county or both, positions reported through the API,
and a reader of the server-sent event stream.

The demo county (320681) and 三元区 (350404) each hold a muck truck (in the first community, an
inspector's patrol area) and a sanitation vehicle (in the second); each county's inspector reports
from a phone in the second community.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Connection, Engine, text

from tests.accounts import ROLES, bearer, ensure_account
from tests.counties import DEMO, SANYUAN, CountyRows, two_counties

SCOPES = {"a": (DEMO,), "b": (SANYUAN,), "city": (DEMO, SANYUAN)}
NAMES = ["admin", *(f"{r}-{s}" for r in ROLES for s in SCOPES)]
UNITS = {DEMO: "启东测试中队", SANYUAN: "三元区测试中队"}
# terminal number → (county, plate, kind, company, community)
VEHICLES = {
    "13311110001": (DEMO, "苏F10001", "muck", "启东渣土运输公司", 0),
    "13311110002": (DEMO, "苏F10002", "sanitation", "启东环卫公司", 1),
    "13322220001": (SANYUAN, "闽G20001", "muck", "三元渣土运输公司", 0),
    "13322220002": (SANYUAN, "闽G20002", "sanitation", "三元环卫公司", 1),
}
INSPECTORS = {DEMO: "inspector-a", SANYUAN: "inspector-b"}


def community_point(conn: Connection, rows: CountyRows, community: int) -> tuple[float, float]:
    """A point inside a community grid of a county, found by the database."""
    found = conn.execute(
        text("""SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM grids
                WHERE code = :c AND valid_to IS NULL) AS g"""),
        {"c": rows.communities[community]},
    ).one()
    return float(found[0]), float(found[1])


def build_fleet(engine: Engine) -> dict[str, CountyRows]:
    """Both counties with their rows, the vehicles and every account; the counties' rows."""
    with engine.begin() as conn:
        demo, second = two_counties(conn)
        rows = {DEMO: demo, SANYUAN: second}
        for phone, (adcode, plate, kind, company, community) in VEHICLES.items():
            lon, lat = community_point(conn, rows[adcode], community)
            conn.execute(
                text("""INSERT INTO vehicles (adcode, geom, plate, kind, terminal_phone, company)
                        VALUES (:a, ST_SetSRID(ST_MakePoint(:x, :y), 4490), :p, :k, :t, :c)"""),
                {"a": adcode, "x": lon, "y": lat, "p": plate, "k": kind, "t": phone, "c": company},
            )
    ensure_account(engine, "admin", "admin")
    for role in ROLES:
        for scope, adcodes in SCOPES.items():
            grids = tuple(rows[a].communities[0] for a in adcodes) if role == "inspector" else ()
            unit = UNITS[adcodes[-1]] if role == "handler" else None
            ensure_account(engine, f"{role}-{scope}", role, grids, unit, adcodes)
    return rows


def at(
    lonlat: tuple[float, float], minutes_ago: float, speed: float = 20.0, **more: Any
) -> dict[str, Any]:
    """One position as `POST /tracking/positions` takes it."""
    when = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=minutes_ago)
    return {"lon": lonlat[0], "lat": lonlat[1], "time": when.isoformat(), "speed": speed, **more}


def report(base: str, who: str, positions: list[dict[str, Any]]) -> None:
    """Post positions as `who` and insist they were stored."""
    answer = httpx.post(
        f"{base}/tracking/positions", json={"positions": positions}, headers=bearer(who), timeout=30
    )
    assert answer.status_code == 200, answer.text


def report_everyone(base: str, engine: Engine, rows: dict[str, CountyRows]) -> dict[str, int]:
    """Every vehicle (through the admin, a forwarding platform) and each county's inspector
    report; their tracker ids by terminal number or user name."""
    with engine.connect() as conn:
        for phone, (adcode, _, _, _, community) in VEHICLES.items():
            spot = community_point(conn, rows[adcode], community)
            speed = 0.0 if phone.endswith("2") else 25.0
            report(base, "admin", [at(spot, 2, speed, terminal=phone)])
        for adcode, name in INSPECTORS.items():
            report(base, name, [at(community_point(conn, rows[adcode], 1), 1, 3.0)])
        found = conn.execute(
            text("""SELECT COALESCE(t.phone, l.username), l.id FROM latest_positions AS l
                    LEFT JOIN terminals AS t ON t.id = l.terminal_id""")
        ).all()
    return {key: int(ident) for key, ident in found}


class EventStream:
    """`GET /tracking/live` read in a thread: the answer's status and every event received."""

    def __init__(
        self, base: str, who: str | None, query: str = "", headers: dict[str, str] | None = None
    ) -> None:
        self.url = f"{base}/tracking/live{query}"
        self.headers = headers if headers is not None else bearer(who) if who else {}
        self.status = 0
        self.body = b""
        self.media_type = ""
        self.events: list[tuple[str, Any]] = []
        self.comments = 0
        self._started = threading.Event()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)

    def __enter__(self) -> EventStream:
        self._thread.start()
        assert self._started.wait(30), "the stream did not answer"
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def finished(self) -> bool:
        """Whether the stream ended (the server closed it, or `close` was called)."""
        return not self._thread.is_alive()

    def close(self) -> None:
        """Stop reading (the thread leaves at the next line: a heartbeat at the latest)."""
        self._closed.set()
        self._thread.join(timeout=5)

    def _read(self) -> None:
        try:
            with (
                httpx.Client(timeout=httpx.Timeout(10.0, read=30.0)) as client,
                client.stream("GET", self.url, headers=self.headers) as answer,
            ):
                self.status = answer.status_code
                self.media_type = answer.headers.get("content-type", "")
                if answer.status_code != 200:
                    self.body = answer.read()
                    return
                self._started.set()
                name, data = "message", []
                for line in answer.iter_lines():
                    if self._closed.is_set():
                        return
                    if line.startswith(":"):
                        self.comments += 1
                    elif line.startswith("event: "):
                        name = line[len("event: ") :]
                    elif line.startswith("data: "):
                        data.append(line[len("data: ") :])
                    elif line == "" and data:
                        with self._lock:
                            self.events.append((name, json.loads("\n".join(data))))
                        name, data = "message", []
        finally:
            self._started.set()

    def wait_for(
        self, condition: Callable[[str, Any], bool], timeout: float = 15.0
    ) -> tuple[str, Any]:
        """The first event meeting `condition`, waiting for it up to `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                found = [e for e in self.events if condition(*e)]
            if found:
                return found[0]
            time.sleep(0.05)
        raise TimeoutError(f"no such event in {timeout} s; got {[e[0] for e in self.events]}")

    def named(self, name: str) -> list[Any]:
        """The data of every event called `name` so far."""
        with self._lock:
            return [data for event, data in self.events if event == name]
