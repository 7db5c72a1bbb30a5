"""The plain single-item GET answered by `api.fast_item` without the framework's routing: the
framework would send every layer's item path to the same route, both answer alike for every
role in and out of its reach, and whatever the fast path cannot vouch for (a token its caches do
not hold, an ended session, a disabled account, a feature out of reach) is answered by the
framework, as before."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from api.app import create_app
from api.fast_item import FastItem
from api.routes import features as routes
from api.settings import DatabaseSettings
from layers.accounts import users
from layers.registry import LAYERS
from tests.accounts import ROLES, TEST_AUTH, bearer, ensure_account
from tests.world import World

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
VARYING = {"x-request-id", "date", "content-length"}  # the length: the self link differs
NONCE = re.compile(r"nonce-[A-Za-z0-9_-]+")


@pytest.fixture(scope="module")
def app(world: World) -> FastAPI:
    return create_app(DatabaseSettings(database_url=world.url), auth_settings=TEST_AUTH)


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


def _framework(client: TestClient, path: str, headers: dict[str, str]) -> Any:
    """The same request through the framework (a query string turns the fast path aside)."""
    return client.get(path, params={"crs": CRS84}, headers=headers)


def _alike(answer: Any) -> tuple[int, dict[str, str], Any]:
    """Status, headers and body, less what differs between any two answers (the request id,
    the date, the self link naming the query string)."""
    headers = {k: NONCE.sub("nonce", v) for k, v in answer.headers.items() if k not in VARYING}
    body = answer.json()
    body.pop("request_id", None)  # an error's, as its header
    for link in body.get("links", []):
        if link["rel"] == "self":
            link["href"] = link["href"].split("?")[0]
    return answer.status_code, headers, body


def test_every_layer_item_path_reaches_the_item_route(app: FastAPI, world: World) -> None:
    chosen: list[Any] = []

    async def spy(scope: Scope, receive: Receive, send: Send) -> None:
        await app(scope, receive, send)
        if scope["type"] == "http":
            chosen.append(scope.get("endpoint"))

    with TestClient(spy) as c:
        for layer in LAYERS:
            c.get(f"/collections/{layer}/items/1", params={"crs": CRS84}, headers=bearer("admin"))
    assert chosen == [routes.item] * len(LAYERS)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("side", ["west", "east"])
@pytest.mark.parametrize("layer", ["cases", "billboards", "dust_sites"])
def test_the_fast_answer_is_the_frameworks(
    client: TestClient, world: World, role: str, side: str, layer: str
) -> None:
    fid = getattr(world, side)[layer]
    path, headers = f"/collections/{layer}/items/{fid}", bearer(role)
    slow = _framework(client, path, headers)  # also fills the caches the fast path reads
    fast = client.get(path, headers=headers)
    assert _alike(fast) == _alike(slow)
    assert fast.status_code in (200, 404)
    if fast.status_code == 200:
        assert fast.json()["id"] == fid


def _call(
    client: TestClient, app: FastAPI, path: str, headers: dict[str, str]
) -> tuple[list[Message], bool]:
    """`FastItem` alone around a framework that only notes it was called: its messages, and
    whether it passed the request on (on the client's event loop, the read pool's)."""
    passed: list[bool] = []

    async def framework(scope: Scope, receive: Receive, send: Send) -> None:
        passed.append(True)

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "scheme": "http",
        "server": ("testserver", 80),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "app": app,
    }
    assert client.portal is not None
    client.portal.call(FastItem(framework), scope, receive, send)
    return sent, bool(passed)


def test_what_the_caches_vouch_for_is_answered_without_the_framework(
    app: FastAPI, client: TestClient, world: World
) -> None:
    ensure_account(world.url, "unseen", "leader")
    inspector = bearer("inspector")
    own, other = world.west["cases"], world.east["cases"]
    assert client.get(f"/collections/cases/items/{own}", headers=inspector).status_code == 200
    sent, passed = _call(client, app, f"/collections/cases/items/{own}", inspector)
    assert not passed and sent[0]["status"] == 200
    assert json.loads(sent[1]["body"])["id"] == own
    for path, headers in (
        (f"/collections/cases/items/{other}", inspector),  # outside the patrol area: 404
        (f"/collections/no_such_layer/items/{own}", inspector),
        (f"/collections/cases/items/{own}", {}),  # no sign-in: 401
        (f"/collections/cases/items/{own}", bearer("unseen")),  # an account not yet read
        (f"/collections/cases/items/{own}", {"Authorization": "Bearer forged"}),
    ):
        sent, passed = _call(client, app, path, headers)
        assert passed and sent == [], path


def test_an_ended_session_or_a_disabled_account_is_refused(
    client: TestClient, world: World
) -> None:
    ensure_account(world.url, "fast-reader", "leader")
    headers = bearer("fast-reader")
    path = f"/collections/cases/items/{world.west['cases']}"
    assert client.get(path, headers=headers).status_code == 200
    assert client.get(path, headers=headers).status_code == 200  # from memory now
    assert client.post("/auth/logout", headers=headers).status_code == 204
    ended = client.get(path, headers=headers)
    assert ended.status_code == 401 and ended.json()["code"] == "token_revoked"
    headers = bearer("fast-reader")
    assert client.get(path, headers=headers).status_code == 200
    with world.engine.begin() as conn:
        users.disable(conn, "fast-reader", "tests")
    refused = client.get(path, headers=headers)
    assert refused.status_code == 401 and refused.json()["code"] == "token_revoked"
