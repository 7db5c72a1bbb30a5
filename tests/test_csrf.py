"""Cookie sessions resist cross-site writes: a write carried by the session cookie must come from
the application's own origin with the token its page was given; bearer clients are not asked for
either; sign-in and sign-out forms only from our own pages; bodies only in their declared type."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from api import csrf
from api.app import create_app
from api.auth import COOKIE
from api.settings import BrowserSettings, DatabaseSettings
from tests.accounts import TEST_AUTH, TEST_KEY, TEST_PASSWORD, bearer, token_for
from tests.support import JPEG
from tests.world import WEST, World, point

OWN = "http://testserver"  # the TestClient's scheme and Host
EVIL = "http://evil.example"


@pytest.fixture(scope="module")
def app(world: World) -> FastAPI:
    return create_app(DatabaseSettings(database_url=world.url), auth_settings=TEST_AUTH)


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as c:
        yield c


@pytest.fixture
def session(client: TestClient) -> Iterator[str]:
    """The inspector signed in through the cookie only, as a browser holds it."""
    cookie = token_for("inspector", timedelta(hours=1))
    client.cookies.set(COOKIE, cookie)
    yield cookie
    client.cookies.clear()


def count(world: World, table: str) -> int:
    with world.engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def report(client: TestClient, encoding: str, headers: dict[str, str]) -> Any:
    """POST /cases the way a form on any site can send it."""
    feature = {
        "type": "Feature",
        "geometry": point(1, -30),
        "properties": {"category_code": "E0102", "description": "跨站写入测试"},
    }
    form = {"feature": json.dumps(feature, ensure_ascii=False)}
    if encoding == "multipart":
        photo = {"photo": ("现场.jpg", io.BytesIO(JPEG), "image/jpeg")}
        return client.post("/cases", data=form, files=photo, headers=headers)
    return client.post("/cases", data=form, headers=headers)


def page_token(client: TestClient, path: str = "/maps/inspector") -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', page.text)
    assert found, "the page carries no token"
    return found.group(1)


def assert_refused(answer: Any) -> None:
    assert answer.status_code == 403, answer.text
    body = answer.json()
    assert body["code"] == "csrf_failed" and "跨站" in body["message"] and body["message_en"]


@pytest.mark.parametrize("encoding", ["multipart", "urlencoded"])
@pytest.mark.parametrize(
    "headers",
    [{"Origin": EVIL}, {"Origin": EVIL, "Sec-Fetch-Site": "cross-site"}, {"Referer": EVIL + "/x"}],
    ids=["origin", "origin and fetch site", "referer"],
)
def test_cross_origin_cookie_reports_write_nothing(
    client: TestClient, world: World, session: str, encoding: str, headers: dict[str, str]
) -> None:
    cases, photos = count(world, "cases"), count(world, "case_photos")
    assert_refused(report(client, encoding, headers))
    assert count(world, "cases") == cases and count(world, "case_photos") == photos


def test_a_page_request_with_its_token_is_accepted(
    client: TestClient, world: World, session: str
) -> None:
    token = page_token(client)
    assert token == csrf.token_for(TEST_KEY, session)
    before = count(world, "cases")
    for origin in ({"Origin": OWN}, {"Referer": OWN + "/maps/inspector"}):
        sent = {**origin, "Sec-Fetch-Site": "same-origin", csrf.HEADER: token}
        answer = report(client, "multipart", sent)
        assert answer.status_code == 201, answer.text
    assert count(world, "cases") == before + 2


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({"Origin": OWN}, "no token"),
        ({"Origin": OWN, csrf.HEADER: "x" * 43}, "a made-up token"),
        ({"Origin": OWN, csrf.HEADER: csrf.token_for(TEST_KEY, token_for("admin"))}, "another's"),
        ({csrf.HEADER: "<page token>"}, "no Origin or Referer"),
        ({"Origin": "null", csrf.HEADER: "<page token>"}, "an opaque origin"),
        ({"Origin": EVIL, csrf.HEADER: "<page token>"}, "another origin"),
        ({"Origin": OWN, "Sec-Fetch-Site": "cross-site", csrf.HEADER: "<page token>"}, "site"),
        ({"Origin": OWN, "Sec-Fetch-Site": "same-site", csrf.HEADER: "<page token>"}, "sibling"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_cookie_writes_without_the_pages_token_and_origin_are_refused(
    client: TestClient, world: World, session: str, headers: dict[str, str], why: str
) -> None:
    token = page_token(client)
    sent = {k: token if v == "<page token>" else v for k, v in headers.items()}
    before = count(world, "cases")
    assert_refused(report(client, "multipart", sent))
    assert count(world, "cases") == before


def test_every_changing_method_is_checked(client: TestClient, world: World) -> None:
    client.cookies.set(COOKIE, token_for("admin", timedelta(hours=1)))
    try:
        path = f"/collections/billboards/items/{world.west['billboards']}"
        tag = client.get(path).headers["etag"]
        for method, body in (("DELETE", None), ("PATCH", {"properties": {"owner": "跨站"}})):
            sent = {"If-Match": tag, "Origin": EVIL, "Content-Type": "application/geo+json"}
            answer = client.request(method, path, headers=sent, json=body)
            assert_refused(answer)
        assert client.get(path).headers["etag"] == tag  # unchanged
        token = page_token(client, "/maps/overview")
        own = {"If-Match": tag, "Origin": OWN, csrf.HEADER: token}
        assert client.delete(path, headers=own).status_code == 204
    finally:
        client.cookies.clear()


def test_bearer_requests_need_no_origin_or_token(client: TestClient, world: World) -> None:
    before = count(world, "cases")
    answer = report(client, "multipart", bearer("inspector"))
    assert answer.status_code == 201, answer.text
    assert count(world, "cases") == before + 1


def test_sign_in_and_out_only_from_our_own_pages(client: TestClient) -> None:
    form = {"username": "planner", "password": TEST_PASSWORD}
    for headers in ({"Origin": EVIL}, {"Sec-Fetch-Site": "cross-site"}, {"Referer": EVIL}):
        forced = client.post("/login", data=form, headers=headers)
        assert_refused(forced)
        assert "set-cookie" not in forced.headers  # no login CSRF: the victim stays who they were
    signed_in = client.post("/login", data=form, headers={"Origin": OWN})
    assert signed_in.status_code == 303 and COOKIE in signed_in.headers["set-cookie"]
    assert client.get("/maps/planner").status_code == 200
    forced_out = client.post("/logout", headers={"Origin": EVIL})
    assert_refused(forced_out)
    assert client.get("/maps/planner").status_code == 200  # still signed in
    out = client.post("/logout", headers={"Origin": OWN, "Sec-Fetch-Site": "same-origin"})
    assert out.status_code == 303
    client.cookies.clear()


def test_the_public_url_is_the_origin_when_set(world: World) -> None:
    app = create_app(
        DatabaseSettings(database_url=world.url),
        auth_settings=TEST_AUTH,
        browser=BrowserSettings(public_url="https://citygrid.example.gov.cn/"),  # type: ignore[arg-type]
    )
    form = {"username": "planner", "password": TEST_PASSWORD}
    with TestClient(app, follow_redirects=False) as c:
        assert_refused(c.post("/login", data=form, headers={"Origin": OWN}))
        answer = c.post(
            "/login", data=form, headers={"Origin": "https://CityGrid.example.gov.cn:443"}
        )
        assert answer.status_code == 303, answer.text


@pytest.mark.parametrize(("peer", "accepted"), [("127.0.0.1", True), ("10.1.2.3", False)])
def test_the_scheme_a_trusted_proxy_forwards_is_the_origins(
    world: World, peer: str, accepted: bool
) -> None:
    app = create_app(DatabaseSettings(database_url=world.url), auth_settings=TEST_AUTH)
    form = {"username": "planner", "password": TEST_PASSWORD}
    behind_tls = {"Origin": "https://testserver", "X-Forwarded-Proto": "https"}
    with TestClient(app, follow_redirects=False, client=(peer, 40000)) as c:
        answer = c.post("/login", data=form, headers=behind_tls)
        if accepted:  # the loopback proxy ended TLS: the browser's origin is https
            assert answer.status_code == 303, answer.text
        else:  # anyone else saying so is not believed
            assert_refused(answer)


GEOJSON_FILE = json.dumps(
    {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": point(1, 10),
                "properties": {"设施类型": "高炮", "owner": "文本导入"},
            }
        ],
    },
    ensure_ascii=False,
).encode()


@pytest.mark.parametrize(
    ("method", "path", "body", "media", "role"),
    [
        ("POST", "/collections/billboards/import?filename=a.geojson", GEOJSON_FILE, "text/plain", "admin"),
        ("POST", "/collections/billboards/import?filename=a.geojson", GEOJSON_FILE, None, "admin"),
        ("POST", f"/grids/{WEST}/children?filename=a.geojson", GEOJSON_FILE, "text/plain", "planner"),
        ("POST", "/grids/check", b"{}", "text/plain", "planner"),
        ("POST", "/grids/check", b"{}", None, "planner"),
        ("POST", "/grids/merge", b'{"codes": []}', "application/x-www-form-urlencoded", "planner"),
        ("POST", "/cases/1/transitions", b'{"action": "register"}', "text/plain", "dispatcher"),
        ("POST", "/collections/billboards/items", b"{}", "text/plain", "admin"),
        ("POST", "/cases", b"feature=%7B%7D", "text/plain", "inspector"),
        ("POST", "/login", b'{"username": "planner"}', "application/json", None),
        ("POST", "/auth/token", b'{"username": "planner"}', "application/json", None),
    ],
    ids=lambda v: v if isinstance(v, str) and v.startswith("/") else None,
)  # fmt: skip
def test_bodies_are_read_only_in_their_declared_type(
    client: TestClient,
    world: World,
    method: str,
    path: str,
    body: bytes,
    media: str | None,
    role: str | None,
) -> None:
    billboards, cases = count(world, "billboards"), count(world, "cases")
    headers = {**(bearer(role) if role else {}), **({"Content-Type": media} if media else {})}
    answer = client.request(method, path, content=body, headers=headers)
    assert answer.status_code == 415, answer.text
    refusal = answer.json()
    assert refusal["code"] == "unsupported_media_type" and refusal["message"]
    assert count(world, "billboards") == billboards and count(world, "cases") == cases
