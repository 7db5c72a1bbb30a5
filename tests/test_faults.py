"""The database stopped and started under requests: 503 with Retry-After while down, never a 500."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, create_engine, make_url, text
from sqlalchemy.exc import DBAPIError

from api.app import create_app
from api.auth import COOKIE
from api.errors import status_for
from api.settings import DatabaseSettings
from layers.places import counties
from layers.places.boundary import County
from layers.store import db, migrate, roles
from layers.store.cluster import Cluster, find_server
from tests.accounts import TEST_AUTH, bearer, ensure_account, name_deployment, token_for
from tests.databases import PgServer
from tests.support import free_port, live_server

USER = "fault-admin"
CASE_ID = 1  # the one case of the fault cluster, in its one county
FAULT_COUNTY = "350403"
# What the server is asked, each kind by its own client: data as JSON, a tile, a page, a download.
REQUESTS = {
    "items": ("/collections/cases/items?limit=5", {}),
    "item": (f"/collections/cases/items/{CASE_ID}", {}),  # the read pool's (api/fast_item.py)
    "tile": ("/collections/cases/tiles/WebMercatorQuad/14/13720/6690", {}),
    "page": ("/maps/overview", {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}),
    "export": ("/collections/cases/export?format=csv", {}),
}
HANG_S = 15.0


@dataclass(frozen=True)
class Answer:
    """One request's outcome and the phase of the test it started in."""

    phase: str
    kind: str
    status: int | None  # None: no answer before HANG_S
    retry_after: str | None
    content_type: str
    body: str


def _log(message: str) -> None:
    print(f"[fault cluster] {message}")


@pytest.fixture(scope="module")
def fault_cluster() -> Iterator[tuple[Cluster, str]]:
    """A cluster of its own, so stopping it leaves the session's database alone."""
    if find_server() is None:
        pytest.skip("no local PostgreSQL server to stop and start")
    state = DatabaseSettings().state_dir.resolve() / f"fault-{free_port()}"
    cluster = Cluster(state, free_port())
    try:
        cluster.up(_log)
        db.ensure_database(cluster.url("postgres"), "citygrid")
        admin = db.make_engine(cluster.url("postgres"))
        owner = db.make_engine(cluster.url("citygrid"))
        try:
            roles.ensure_login_role(admin, roles.API_ROLE, cluster.api_password())
            migrate.upgrade(owner)
            with owner.begin() as conn:
                roles.grant_api_rights(conn, roles.API_ROLE)
                name_deployment(conn)
            ensure_account(owner, USER, "admin")
            with owner.begin() as conn:
                square = shapely.MultiPolygon([shapely.box(121.6, 31.7, 121.7, 31.9)])
                counties.add(conn, County(FAULT_COUNTY, "故障测试县", square))
                conn.execute(
                    text("""
                    INSERT INTO cases (id, adcode, geom, category_code, source, status,
                                       reported_at)
                    OVERRIDING SYSTEM VALUE
                    SELECT :id, :adcode, ST_SetSRID(ST_MakePoint(121.66, 31.81), 4490), code,
                           'hotline', 'reported', now()
                    FROM case_categories LIMIT 1
                    """),
                    {"id": CASE_ID, "adcode": FAULT_COUNTY},
                )
        finally:
            admin.dispose()
            owner.dispose()
        yield cluster, cluster.api_url("citygrid")
    finally:
        cluster.down(_log)
        shutil.rmtree(state, ignore_errors=True)


def _ask(base: str, kind: str, phase: list[str], done: threading.Event, out: list[Answer]) -> None:
    path, headers = REQUESTS[kind]
    cookies = {COOKIE: token_for(USER)} if kind == "page" else {}
    auth = {} if kind == "page" else bearer(USER)
    with httpx.Client(base_url=base, timeout=HANG_S, cookies=cookies) as http:
        while not done.is_set():
            started = phase[0]
            try:
                r = http.get(path, headers={**auth, **headers})
            except httpx.TimeoutException:
                out.append(Answer(started, kind, None, None, "", ""))
                continue
            out.append(
                Answer(
                    started,
                    kind,
                    r.status_code,
                    r.headers.get("retry-after"),
                    r.headers.get("content-type", ""),
                    r.text[:300],
                )
            )
            time.sleep(0.05)


def _wait_healthy(base: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if httpx.get(f"{base}/ready", timeout=5).status_code == 200:
            return
        time.sleep(0.2)
    raise AssertionError("the server did not recover after the database came back")


def _hold(phase: str, answers: list[Answer], seconds: float, longest: float = 30.0) -> None:
    """Stay in a phase for `seconds`, and longer (up to `longest`) until every kind of request
    has been answered from within it: a loaded machine answers slowly, not differently."""
    started = time.monotonic()
    time.sleep(seconds)
    while time.monotonic() - started < longest:
        if all(any(a.kind == k and a.phase == phase for a in list(answers)) for k in REQUESTS):
            return
        time.sleep(0.1)


def test_database_stopped_and_started_under_requests(fault_cluster: tuple[Cluster, str]) -> None:
    cluster, url = fault_cluster
    answers: list[Answer] = []
    phase, done = ["up"], threading.Event()
    with live_server(url) as base:
        workers = [
            threading.Thread(target=_ask, args=(base, kind, phase, done, answers))
            for kind in REQUESTS
        ]
        for w in workers:
            w.start()
        _hold(phase[0], answers, 1.0)
        cluster.down(_log)
        phase[0] = "down"
        _hold(phase[0], answers, 2.5)
        phase[0] = "starting"
        cluster.up(_log)
        _wait_healthy(base)
        phase[0] = "back"
        _hold(phase[0], answers, 2.0)
        done.set()
        for w in workers:
            w.join(timeout=HANG_S + 5)
    assert not any(w.is_alive() for w in workers)

    hung = [a for a in answers if a.status is None]
    failed = [a for a in answers if a.status not in (None, 200, 204, 503)]
    assert not hung, f"{len(hung)} requests had no answer within {HANG_S} s: {hung[:3]}"
    assert not failed, failed[:5]
    for kind in REQUESTS:
        mine = [a for a in answers if a.kind == kind]
        assert any(a.phase == "up" and a.status in (200, 204) for a in mine), (kind, mine[:3])
        down = [a for a in mine if a.phase == "down"]
        assert any(a.status == 503 for a in down), (kind, down[:3])
        assert all(a.retry_after and int(a.retry_after) > 0 for a in mine if a.status == 503)
        back = [a for a in mine if a.phase == "back"]
        assert back and all(a.status in (200, 204) for a in back), (kind, back[:3])
    for a in answers:
        if a.status == 503 and a.kind == "page":
            assert a.content_type.startswith("text/html") and "稍后重试" in a.body, a
        elif a.status == 503:
            assert a.content_type.startswith("application/json"), a
            assert '"database_unreachable"' in a.body and "稍后重试" in a.body, a


def test_the_cluster_starts_on_the_port_it_is_given(fault_cluster: tuple[Cluster, str]) -> None:
    cluster, _ = fault_cluster
    cluster.down(_log)
    moved = Cluster(cluster.state_dir, free_port())
    try:
        assert moved.up(_log)
        probe = create_engine(moved.url("postgres"))
        with probe.connect() as conn:
            assert int(conn.execute(text("SHOW port")).scalar_one()) == moved.port
        probe.dispose()
    finally:
        moved.down(_log)
        cluster.up(_log)


@pytest.mark.parametrize(
    ("state", "status", "code"),
    [
        ("08006", 503, "database_unreachable"),  # connection failure
        ("53300", 503, "database_unreachable"),  # too many connections
        ("57P01", 503, "database_unreachable"),  # admin shutdown
        ("57P02", 503, "database_unreachable"),  # crash shutdown
        ("57P03", 503, "database_unreachable"),  # cannot connect now (starting up)
        ("40001", 409, "concurrent_change"),  # serialization failure
        ("40P01", 409, "concurrent_change"),  # deadlock
    ],
)
def test_database_states_map_to_statuses(
    engine: Engine, state: str, status: int, code: str
) -> None:
    with pytest.raises(DBAPIError) as raised, engine.connect() as conn:
        conn.execute(text(f"DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = '{state}'; END $$"))
    error = db.database_error(raised.value)
    assert error is not None and error.code == code and status_for(error) == status


def test_an_error_of_the_query_is_not_taken_for_an_outage(engine: Engine) -> None:
    with pytest.raises(DBAPIError) as raised, engine.connect() as conn:
        conn.execute(text("SELECT 1 / 0"))
    assert db.database_error(raised.value) is None


def _timeout_and_pid(conn: Connection) -> tuple[str, int]:
    row = conn.execute(text("SELECT current_setting('statement_timeout'), pg_backend_pid()"))
    setting, pid = row.one()
    return str(setting), int(pid)


def test_a_dropped_pooled_connection_is_replaced_and_a_request_keeps_its_timeout(
    engine: Engine,
) -> None:
    pooled = db.make_engine(engine.url.render_as_string(hide_password=False), pool_size=1)
    budget = db.STATEMENT_BUDGET.set(db.StatementBudget(1234))
    try:
        with pooled.connect() as conn:
            timeout, pid = _timeout_and_pid(conn)
            conn.commit()
            assert timeout == _timeout_and_pid(conn)[0] == "1234ms"  # every transaction
        with engine.connect() as other:  # the server drops the pooled connection (a restart)
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        time.sleep(0.2)
        with pooled.connect() as conn:  # the checkout's ping notices: a new connection
            timeout, new_pid = _timeout_and_pid(conn)
        assert new_pid != pid and timeout == "1234ms"
    finally:
        db.STATEMENT_BUDGET.reset(budget)
    with pooled.connect() as conn:  # outside a request the pooled connection keeps no limit
        assert _timeout_and_pid(conn) == ("0", new_pid)
    pooled.dispose()


@pytest.fixture
def no_connections_url(pg_server: PgServer, database_url: str) -> Iterator[str]:
    """The session database through a role allowed no connection at all."""
    role = "citygrid_test_no_connections"
    admin = create_engine(pg_server.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP ROLE IF EXISTS {role}"))
        conn.execute(text(f"CREATE ROLE {role} LOGIN PASSWORD 'none' CONNECTION LIMIT 0"))
    try:
        url = make_url(database_url).set(username=role, password="none")
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP ROLE IF EXISTS {role}"))
        admin.dispose()


def test_too_many_connections_is_503(no_connections_url: str) -> None:
    app = create_app(DatabaseSettings(database_url=no_connections_url), auth_settings=TEST_AUTH)
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/collections/cases/items", headers=bearer(USER))
        client.cookies.set(COOKIE, token_for(USER))
        page = client.get("/maps/overview", headers={"Accept": "text/html"})
    assert answer.status_code == 503 and answer.headers["retry-after"] == "5"
    assert answer.json()["code"] == "database_unreachable"
    assert page.status_code == 503 and page.headers["content-type"].startswith("text/html")
    assert "稍后重试" in page.text


def test_unready_while_the_database_is_down_and_ready_again_after(
    fault_cluster: tuple[Cluster, str],
) -> None:
    cluster, url = fault_cluster
    with TestClient(create_app(DatabaseSettings(database_url=url))) as client:
        assert client.get("/ready").status_code == 200
        cluster.down(_log)
        try:
            down = client.get("/ready")
            alive = client.get("/health")
        finally:
            cluster.up(_log)
        deadline = time.monotonic() + 30
        while (back := client.get("/ready")).status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
    assert alive.status_code == 200  # the process lives on: nothing to restart
    assert down.status_code == 503 and down.json()["code"] == "not_ready"
    checks = {c["name"]: c["status"] for c in down.json()["checks"]}
    assert checks["database"] == "failed"
    assert str(cluster.port) not in down.text and "127.0.0.1" not in down.text
    assert back.status_code == 200, back.text
