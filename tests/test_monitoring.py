"""Knowing when it is unwell: liveness, readiness, metrics, JSON logs with request ids, and
statement timeouts that cut a runaway request off while the worker goes on answering."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from api.app import create_app
from api.auth import COOKIE
from api.observe import JsonLines
from api.settings import DatabaseSettings, LimitSettings, MonitoringSettings
from layers.store import db
from tests.accounts import SERVER_ENV, TEST_AUTH, TEST_PASSWORD, bearer, ensure_account
from tests.databases import PgServer
from tests.support import CITYGRID, free_port, stop, wait_healthy

DOWN_URL = "postgresql://citygrid:x@127.0.0.1:1/none"
TILE = "/collections/cases/tiles/WebMercatorQuad/14/13720/6690"


@pytest.fixture(scope="module")
def client(database_url: str, demo: dict[str, int]) -> Iterator[TestClient]:
    for name, role in (("metrics-admin", "admin"), ("metrics-inspector", "inspector")):
        ensure_account(database_url, name, role)
    app = create_app(DatabaseSettings(database_url=database_url), auth_settings=TEST_AUTH)
    with TestClient(app) as c:
        yield c


def sample(client: TestClient, name: str, **labels: str) -> float:
    """The value of one sample of /metrics (0 when it has not been counted yet)."""
    answer = client.get("/metrics", headers=bearer("metrics-admin"))
    assert answer.status_code == 200, answer.text
    for family in text_string_to_metric_families(answer.text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """What the service logs, as the JSON lines `citygrid serve` writes."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonLines())
    logger = logging.getLogger("citygrid")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield out
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


# --- liveness and readiness ---------------------------------------------------------------------


def test_liveness_does_not_ask_the_database_and_readiness_names_what_fails() -> None:
    app = create_app(DatabaseSettings(database_url=DOWN_URL))
    with TestClient(app) as c:
        live = c.get("/health")
        ready = c.get("/ready")
    assert live.status_code == 200 and live.json() == {"status": "ok"}
    assert ready.status_code == 503 and ready.headers["retry-after"] == "5"
    body = ready.json()
    assert body["code"] == "not_ready" and "database" in body["message"]
    assert {c["name"]: c["status"] for c in body["checks"]} == {
        "database": "failed",
        "migrations": "failed",
    }
    assert (
        "127.0.0.1" not in ready.text and ":1" not in ready.text and "citygrid:x" not in ready.text
    )
    assert body["request_id"] == ready.headers["x-request-id"]


def test_ready_when_the_database_answers_at_the_current_revision(client: TestClient) -> None:
    answer = client.get("/ready")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "status": "ok",
        "checks": [{"name": "database", "status": "ok"}, {"name": "migrations", "status": "ok"}],
    }


def test_unready_while_the_schema_is_behind_the_code(pg_server: PgServer, scratch_url: str) -> None:
    owner = db.make_engine(pg_server.as_owner(scratch_url))
    try:
        with owner.begin() as conn:
            head = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
            conn.execute(text("UPDATE alembic_version SET version_num = '0016'"))
        with TestClient(create_app(DatabaseSettings(database_url=scratch_url))) as c:
            behind = c.get("/ready")
        with owner.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})
        with TestClient(create_app(DatabaseSettings(database_url=scratch_url))) as c:
            current = c.get("/ready")
    finally:
        owner.dispose()
    assert behind.status_code == 503
    checks = {c["name"]: c for c in behind.json()["checks"]}
    assert checks["database"]["status"] == "ok" and checks["migrations"]["status"] == "failed"
    assert "迁移" in checks["migrations"]["problem_zh"]
    assert current.status_code == 200


# --- metrics ------------------------------------------------------------------------------------


def test_metrics_count_requests_by_route_template_and_status(client: TestClient) -> None:
    route = "/collections/{collectionId}/items"
    ok = {"route": route, "method": "GET", "status": "200"}
    missing = {"route": route, "method": "GET", "status": "404"}
    before = sample(client, "citygrid_http_requests_total", **ok)
    before_missing = sample(client, "citygrid_http_requests_total", **missing)
    before_latency = sample(
        client, "citygrid_http_request_duration_seconds_count", route=route, method="GET"
    )
    for _ in range(3):
        assert client.get(
            "/collections/cases/items?limit=1", headers=bearer("metrics-admin")
        ).is_success
    assert (
        client.get("/collections/nothing/items", headers=bearer("metrics-admin")).status_code == 404
    )
    assert sample(client, "citygrid_http_requests_total", **ok) == before + 3
    assert sample(client, "citygrid_http_requests_total", **missing) == before_missing + 1
    assert (
        sample(client, "citygrid_http_request_duration_seconds_count", route=route, method="GET")
        == before_latency + 4
    )
    page = client.get("/metrics", headers=bearer("metrics-admin")).text
    assert "/collections/cases/items" not in page  # templates, never raw paths
    assert "citygrid_db_pool_size" in page and "citygrid_db_pool_connections_in_use" in page


def test_metrics_count_tile_cache_hits_and_misses(client: TestClient) -> None:
    misses = sample(client, "citygrid_tile_cache_lookups_total", result="miss")
    hits = sample(client, "citygrid_tile_cache_lookups_total", result="hit")
    tile = f"{TILE}?metrics-probe=1"
    for _ in range(2):
        assert client.get(tile, headers=bearer("metrics-inspector")).status_code in (200, 204)
    assert sample(client, "citygrid_tile_cache_lookups_total", result="miss") >= misses + 1
    assert sample(client, "citygrid_tile_cache_lookups_total", result="hit") >= hits + 1


def test_metrics_count_failed_sign_ins(client: TestClient) -> None:
    before = sample(client, "citygrid_sign_in_failures_total")
    answer = client.post(
        "/auth/token", data={"username": "metrics-inspector", "password": "not-the-password"}
    )
    assert answer.status_code in (400, 401)
    assert sample(client, "citygrid_sign_in_failures_total") == before + 1


def test_metrics_are_refused_to_anyone_else(client: TestClient) -> None:
    anonymous = client.get("/metrics")
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "not_signed_in"
    inspector = client.get("/metrics", headers=bearer("metrics-inspector"))
    assert inspector.status_code == 403 and inspector.json()["code"] == "admins_only"
    assert "citygrid_http_requests" not in anonymous.text + inspector.text


def test_metrics_are_open_to_the_configured_network(database_url: str) -> None:
    settings = DatabaseSettings(database_url=database_url)
    monitoring = MonitoringSettings(metrics_networks="10.20.0.0/16")
    app = create_app(settings, auth_settings=TEST_AUTH, monitoring=monitoring)
    with TestClient(app, client=("10.20.3.4", 40000)) as inside:
        answer = inside.get("/metrics")
    assert answer.status_code == 200 and "citygrid_http_requests_total" in answer.text
    with TestClient(app, client=("10.21.3.4", 40000)) as outside:
        assert outside.get("/metrics").status_code == 401


# --- request ids and logs -----------------------------------------------------------------------


def test_the_request_id_of_an_error_answer_finds_its_log_line(
    client: TestClient, captured: io.StringIO
) -> None:
    answer = client.get("/collections/nothing/items", headers=bearer("metrics-admin"))
    rid = answer.json()["request_id"]
    assert answer.headers["x-request-id"] == rid
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    mine = [line for line in lines if line["request_id"] == rid]
    assert len(mine) == 1, lines
    line = mine[0]
    assert line["logger"] == "citygrid.access" and line["level"] == "info"
    assert line["route"] == "/collections/{collectionId}/items" and line["status"] == 404
    assert line["method"] == "GET" and line["user"] == "metrics-admin"
    assert isinstance(line["duration_ms"], float) and line["time"]


def test_a_sane_incoming_request_id_is_kept_and_another_replaced(client: TestClient) -> None:
    kept = client.get("/nowhere", headers={"X-Request-ID": "proxy-7f3a9c21"})
    assert kept.headers["x-request-id"] == "proxy-7f3a9c21"
    assert kept.json()["request_id"] == "proxy-7f3a9c21"
    replaced = client.get("/nowhere", headers={"X-Request-ID": "<script>alert(1)</script>"})
    assert replaced.headers["x-request-id"] != "<script>alert(1)</script>"
    assert len(replaced.headers["x-request-id"]) == 32


def test_no_password_token_or_query_string_reaches_the_log(
    client: TestClient, captured: io.StringIO
) -> None:
    client.post("/auth/token", data={"username": "metrics-admin", "password": TEST_PASSWORD})
    client.post(
        "/auth/token", data={"username": "metrics-admin", "password": "wrong-" + TEST_PASSWORD}
    )
    token = bearer("metrics-admin")["Authorization"].split()[1]
    client.get(
        f"/collections/cases/items?limit=1&access_token={token}", headers=bearer("metrics-admin")
    )
    client.get("/collections/cases/items", headers={"Authorization": f"Bearer {token}x"})
    client.cookies.set(COOKIE, token)
    client.get("/maps/overview")
    client.cookies.clear()
    log = captured.getvalue()
    assert log.count("\n") >= 5
    assert TEST_PASSWORD not in log and token not in log and "access_token" not in log


def test_the_server_writes_json_lines_that_find_a_reported_error(
    client: TestClient, database_url: str, tmp_path: Path
) -> None:
    port, log = free_port(), tmp_path / "server.log"
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "CITYGRID_DATABASE_URL": database_url, **SERVER_ENV}
    auth = bearer("metrics-admin")
    with log.open("w") as out:
        proc = subprocess.Popen(
            [CITYGRID, "serve", "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_healthy(proc, base, log, 60)
        answer = httpx.get(f"{base}/collections/nothing/items?limit=1", headers=auth)
        httpx.post(f"{base}/auth/token", data={"username": "x", "password": TEST_PASSWORD})
    finally:
        stop(proc)
    rid = answer.json()["request_id"]
    text_ = log.read_text()
    lines = [json.loads(line) for line in text_.splitlines() if line.startswith("{")]
    assert any("Uvicorn running" in line["message"] for line in lines)  # uvicorn's own, as JSON
    found = [line for line in lines if line.get("request_id") == rid]
    assert [(f["route"], f["status"], f["user"]) for f in found] == [
        ("/collections/{collectionId}/items", 404, "metrics-admin")
    ]
    token = auth["Authorization"].split()[1]
    assert token not in text_ and TEST_PASSWORD not in text_ and "limit=1" not in text_


def test_a_refused_page_shows_its_request_id(client: TestClient) -> None:
    client.cookies.set(COOKIE, bearer("metrics-inspector")["Authorization"].split()[1])
    try:
        page = client.get("/maps/planner", headers={"Accept": "text/html"})
    finally:
        client.cookies.clear()
    assert page.status_code == 403 and page.headers["content-type"].startswith("text/html")
    assert f"错误编号：<code>{page.headers['x-request-id']}</code>" in page.text


def test_a_database_outage_page_shows_the_request_id() -> None:
    app = create_app(DatabaseSettings(database_url=DOWN_URL), auth_settings=TEST_AUTH)
    with TestClient(app) as c:
        page = c.get(
            "/collections/cases/items",
            headers={"Accept": "text/html", **bearer("anyone"), "X-Request-ID": "report-12345678"},
        )
    assert page.status_code == 503 and page.headers["content-type"].startswith("text/html")
    assert "错误编号" in page.text and "report-12345678" in page.text


# --- statement timeouts -------------------------------------------------------------------------


def test_a_runaway_export_is_cut_off_and_the_worker_answers_the_next_request(
    database_url: str, demo: dict[str, int]
) -> None:
    limits = LimitSettings(export_timeout_ms=1)
    app = create_app(
        DatabaseSettings(database_url=database_url), auth_settings=TEST_AUTH, limits=limits
    )
    auth = bearer("metrics-admin")
    with TestClient(app) as c:
        before = sample(c, "citygrid_query_timeouts_total", kind="export")
        cut = c.get("/collections/cases/export?format=csv", headers=auth)
        assert cut.status_code == 504, cut.text[:300]
        body = cut.json()
        assert body["code"] == "query_timeout" and "0.001" in body["message_en"]
        assert "上限" in body["message"] and body["request_id"] == cut.headers["x-request-id"]
        assert sample(c, "citygrid_query_timeouts_total", kind="export") == before + 1
        # the same worker, and the same pooled connections, go on answering other kinds
        for _ in range(3):
            after = c.get("/collections/cases/items?limit=5", headers=auth)
            assert after.status_code == 200 and len(after.json()["features"]) == 5
        assert (
            c.get(
                "/stats/trend?interval=month&from=2023-01-01&to=2023-12-31", headers=auth
            ).status_code
            == 200
        )


def test_the_default_export_budget_lets_the_demo_export_through(
    database_url: str, demo: dict[str, int]
) -> None:
    app = create_app(DatabaseSettings(database_url=database_url), auth_settings=TEST_AUTH)
    with TestClient(app) as c:
        answer = c.get("/collections/cases/export?format=csv", headers=bearer("metrics-admin"))
    assert answer.status_code == 200 and answer.content.count(b"\n") > 100


def test_several_workers_count_into_one_exposition(
    client: TestClient, database_url: str, tmp_path: Path
) -> None:
    port, log = free_port(), tmp_path / "server.log"
    base = f"http://127.0.0.1:{port}"
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_4242.db").write_bytes(b"left by an earlier run")  # emptied at start
    env = {
        **os.environ,
        "CITYGRID_DATABASE_URL": database_url,
        "PROMETHEUS_MULTIPROC_DIR": str(folder),
        **SERVER_ENV,
    }
    auth = bearer("metrics-admin")
    with log.open("w") as out:
        proc = subprocess.Popen(
            [CITYGRID, "serve", "--port", str(port), "--workers", "2"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_healthy(proc, base, log, 90)
        for _ in range(20):  # new connections: the kernel spreads them over the workers
            assert httpx.get(f"{base}/conformance").status_code == 200
        scrapes = [httpx.get(f"{base}/metrics", headers=auth) for _ in range(6)]
    finally:
        stop(proc)
    counted = set()
    for scrape in scrapes:
        assert scrape.status_code == 200, scrape.text
        for family in text_string_to_metric_families(scrape.text):
            for s in family.samples:
                if s.name == "citygrid_http_requests_total" and s.labels["route"] == "/conformance":
                    counted.add(s.value)
    assert counted == {20.0}  # whichever worker answered, the sum over both
    assert len(list(folder.glob("counter_*.db"))) >= 1 and not (folder / "counter_4242.db").exists()
