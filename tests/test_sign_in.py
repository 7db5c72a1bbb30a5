"""Sign-in limits that strangers cannot turn against the owner: failures counted per (name,
address) and per address, a hashing budget per address refused before any hashing, and the client
address taken from X-Forwarded-For only when a trusted proxy sends it."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from api.client_address import client_address, parse_networks
from api.settings import AuthSettings, DatabaseSettings
from layers.accounts import users
from layers.accounts.signin import limit_key
from layers.store import db
from tests.accounts import TEST_AUTH, TEST_PASSWORD, ensure_account
from tests.databases import fresh_database

LOOPBACK = ("127.0.0.1", 40000)


@pytest.fixture(scope="module")
def url(pg_server: Any) -> Iterator[str]:
    for url in fresh_database(pg_server, "signin"):
        ensure_account(url, "planner", "planner")
        yield url


def server(url: str, peer: tuple[str, int] = LOOPBACK, **limits: Any) -> TestClient:
    settings = AuthSettings(
        secret_key=TEST_AUTH.secret_key,
        **{
            "login_max_failures": 3,
            "login_block_seconds": 60.0,
            "login_hashes_per_second": 1000.0,
            "login_hash_burst": 1000,
            **limits,
        },
    )
    app = create_app(DatabaseSettings(database_url=url), auth_settings=settings)
    return TestClient(app, client=peer)


def sign_in(client: TestClient, username: str, password: str, via: str | None = None) -> Any:
    headers = {"X-Forwarded-For": via} if via else {}
    return client.post(
        "/auth/token", data={"username": username, "password": password}, headers=headers
    )


def refused(answer: Any) -> bool:
    return (
        answer.status_code == 429
        and answer.json()["code"] == "too_many_attempts"
        and int(answer.headers["retry-after"]) >= 1
        and bool(answer.json()["message"] and answer.json()["message_en"])
    )


def test_a_stranger_cannot_lock_the_owner_out(url: str) -> None:
    stranger, owner = "198.51.100.7", "192.0.2.20"
    with server(url) as client:
        for _ in range(3):
            assert sign_in(client, "planner", "guess-guess-1", stranger).status_code == 401
        assert refused(sign_in(client, "planner", TEST_PASSWORD, stranger))
        assert "planner" in sign_in(client, "planner", TEST_PASSWORD, stranger).json()["message"]
        assert sign_in(client, "planner", TEST_PASSWORD, owner).status_code == 200
        assert refused(sign_in(client, "planner", TEST_PASSWORD, stranger))  # still waiting


def test_one_address_trying_many_names_waits_for_every_name(url: str) -> None:
    sprayer, owner = "198.51.100.30", "192.0.2.31"
    with server(url, login_client_max_failures=5) as client:
        for _ in range(5):
            name = f"x{secrets.token_hex(4)}"
            assert sign_in(client, name, "guess-guess-1", sprayer).status_code == 401
        blocked = sign_in(client, "planner", TEST_PASSWORD, sprayer)
        assert refused(blocked) and "该地址" in blocked.json()["message"]
        assert sign_in(client, "planner", TEST_PASSWORD, owner).status_code == 200
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            counted = conn.execute(
                text("SELECT failures FROM login_failures WHERE client = :c AND username = ''"),
                {"c": sprayer},
            ).scalar_one()
    finally:
        engine.dispose()
    assert counted == 5


class CountingHasher(PasswordHasher):
    """The application's hasher, counting the passwords it checks."""

    calls = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        CountingHasher.calls += 1
        return super().verify(hash, password)


def test_the_hashing_budget_refuses_before_hashing(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(users, "HASHER", CountingHasher())
    CountingHasher.calls = 0
    attacker, owner = "198.51.100.50", "192.0.2.51"
    with server(
        url, login_hashes_per_second=0.2, login_hash_burst=3, login_client_max_failures=100
    ) as client:
        answers = [
            sign_in(client, f"x{secrets.token_hex(4)}", "guess-guess-1", attacker)
            for _ in range(10)
        ]
        assert [a.status_code for a in answers[:3]] == [401] * 3
        assert all(refused(a) for a in answers[3:])
        assert CountingHasher.calls == 3  # the seven refusals never reached argon2
        assert int(answers[-1].headers["retry-after"]) <= 5
        assert sign_in(client, "planner", TEST_PASSWORD, owner).status_code == 200
        assert CountingHasher.calls == 4
        page = client.post(
            "/login",
            data={"username": "planner", "password": TEST_PASSWORD},
            headers={"X-Forwarded-For": attacker},
        )
        assert page.status_code == 429 and "过于频繁" in page.text and CountingHasher.calls == 4


def last_login_client(url: str) -> str:
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            return str(
                conn.execute(
                    text("""
                    SELECT after->>'client' FROM audit_log WHERE action = 'login'
                    ORDER BY id DESC LIMIT 1
                """)
                ).scalar_one()
            )
    finally:
        engine.dispose()


def test_forwarded_addresses_are_believed_only_from_a_trusted_proxy(url: str) -> None:
    with server(url, ("203.0.113.9", 40000)) as client:  # not a proxy: its header is a lie
        for n in range(3):
            assert (
                sign_in(client, "planner", "guess-guess-1", f"192.0.2.{n + 100}").status_code == 401
            )
        assert refused(sign_in(client, "planner", TEST_PASSWORD, "192.0.2.199"))
    with server(url, ("10.1.2.3", 40000), trusted_proxies="127.0.0.1,::1,10.0.0.0/8") as client:
        chain = "203.0.113.9, 192.0.2.77, 10.9.9.9"  # client's claim, its address, an inner proxy
        assert sign_in(client, "planner", TEST_PASSWORD, chain).status_code == 200
        assert last_login_client(url) == "192.0.2.77"
    with server(url) as client:  # loopback is trusted by default
        assert sign_in(client, "planner", TEST_PASSWORD, "192.0.2.78").status_code == 200
        assert last_login_client(url) == "192.0.2.78"


def test_the_client_address_rules() -> None:
    trusted = parse_networks("127.0.0.1, ::1, 10.0.0.0/8")
    assert client_address("192.0.2.1", ["6.6.6.6"], trusted) == "192.0.2.1"
    assert client_address("127.0.0.1", ["6.6.6.6, 192.0.2.5"], trusted) == "192.0.2.5"
    assert client_address("127.0.0.1", ["6.6.6.6", "192.0.2.5, 10.0.0.7"], trusted) == "192.0.2.5"
    assert client_address("::1", ["[2001:db8::1]:443"], trusted) == "2001:db8::1"
    assert client_address("127.0.0.1", ["192.0.2.9:5000"], trusted) == "192.0.2.9"
    assert client_address("127.0.0.1", ["10.0.0.8, 10.0.0.9"], trusted) == "10.0.0.8"
    assert client_address("127.0.0.1", [], trusted) == "127.0.0.1"
    assert client_address("::ffff:10.0.0.5", ["192.0.2.3"], trusted) == "192.0.2.3"
    assert client_address(None, ["192.0.2.3"], trusted) == "unknown"
    assert (
        limit_key("2001:db8:1:2:aaaa::1")
        == limit_key("2001:db8:1:2:bbbb::2")
        == "2001:db8:1:2::/64"
    )
    assert limit_key("::ffff:192.0.2.4") == "192.0.2.4"
    with pytest.raises(ValueError):
        parse_networks("127.0.0.1, not-an-address")
    with pytest.raises(ValueError, match="TRUSTED_PROXIES"):
        AuthSettings(trusted_proxies="10.0.0.0/33")
