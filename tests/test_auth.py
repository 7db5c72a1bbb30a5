"""Signing in: tokens that expire or are forged, passwords kept only as hashes, the slowdown after
failures, the cookie's flags, the audit of every sign-in, and filters that cannot be turned into SQL."""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from api.auth import COOKIE
from api.settings import AuthSettings, DatabaseSettings
from layers.accounts import users
from layers.store import db
from layers.store.deployment import token_party
from tests.accounts import (
    TEST_AUTH,
    TEST_DEPLOYMENT,
    TEST_KEY,
    TEST_PASSWORD,
    bearer,
    ensure_account,
    token_for,
)
from tests.world import WEST, World, ids_in

SECRET = "A-very-secret-passphrase-42"


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    app = create_app(DatabaseSettings(database_url=world.url), auth_settings=TEST_AUTH)
    with TestClient(app, follow_redirects=False) as c:
        yield c


def login(client: TestClient, username: str, password: str) -> Any:
    return client.post("/auth/token", data={"username": username, "password": password})


def test_password_flow_gives_a_short_lived_token_that_opens_the_api(
    client: TestClient, world: World
) -> None:
    answer = login(client, "leader", TEST_PASSWORD)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token_type"] == "bearer" and body["role"] == "leader"
    assert body["expires_in"] == TEST_AUTH.token_minutes * 60
    party = token_party(TEST_DEPLOYMENT)
    claims = jwt.decode(
        body["access_token"], TEST_KEY, algorithms=["HS256"], audience=party, issuer=party
    )
    assert claims["exp"] - claims["iat"] == TEST_AUTH.token_minutes * 60
    me = client.get("/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json()["role_label"] == "领导"


def _tamper(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda: token_for("inspector", timedelta(seconds=-5)), "token_expired"),
        (lambda: _tamper(token_for("inspector")), "token_invalid"),
        (
            lambda: jwt.encode(
                {
                    "sub": "admin",
                    "aud": "citygrid",
                    "iat": int(time.time()),
                    "exp": int(time.time()) + 60,
                },
                "some-other-key-of-sufficient-length-0123456789",
                algorithm="HS256",
            ),
            "token_invalid",
        ),
        (
            lambda: jwt.encode(
                {
                    "sub": "admin",
                    "aud": "citygrid",
                    "iat": int(time.time()),
                    "exp": int(time.time()) + 60,
                },
                None,
                algorithm="none",
            ),
            "token_invalid",
        ),
        (lambda: token_for("nobody-here"), "token_revoked"),
        (lambda: "not.a.token", "token_invalid"),
    ],
)
def test_bad_tokens_are_refused(client: TestClient, make: Any, code: str) -> None:
    for headers, cookies in (
        ({"Authorization": f"Bearer {make()}"}, None),
        ({}, {"citygrid_session": make()}),
    ):
        client.cookies.clear()
        if cookies:
            client.cookies.update(cookies)
        answer = client.get("/collections/billboards/items", headers=headers)
        assert answer.status_code == 401 and answer.json()["code"] == code, answer.text
        assert answer.json()["message"] and answer.json()["message_en"]
    client.cookies.clear()


def test_a_token_read_from_memory_still_ends_when_it_expires(client: TestClient) -> None:
    headers = {"Authorization": f"Bearer {token_for('leader', timedelta(seconds=3))}"}
    for _ in range(2):  # verified once, then taken from memory
        assert (
            client.get("/collections/billboards/items?limit=1", headers=headers).status_code == 200
        )
    time.sleep(3.5)
    answer = client.get("/collections/billboards/items?limit=1", headers=headers)
    assert answer.status_code == 401 and answer.json()["code"] == "token_expired"


def announced(client: TestClient, before: int | None) -> None:
    """Wait for the account change to be announced to the app (milliseconds after the commit)."""
    watcher = client.app.state.layer_versions  # type: ignore[attr-defined]
    deadline = time.monotonic() + 5
    while watcher.current("users") == before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert watcher.current("users") != before


def test_disabling_or_changing_a_role_ends_the_tokens_at_once(
    world: World, client: TestClient
) -> None:
    ensure_account(world.url, "temp-leader", "leader")
    token = token_for("temp-leader")
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/collections/billboards/items", headers=headers).status_code == 200
    assert client.get("/collections/billboards/items", headers=headers).status_code == 200  # cached
    time.sleep(1.01)  # tokens carry whole seconds
    watcher = client.app.state.layer_versions  # type: ignore[attr-defined]
    version = watcher.current("users")
    with world.engine.begin() as conn:
        users.set_role(conn, "temp-leader", "inspector", "tests")
    announced(client, version)
    assert (
        client.get("/collections/billboards/items", headers=headers).json()["code"]
        == "token_revoked"
    )
    fresh = {"Authorization": f"Bearer {token_for('temp-leader')}"}
    assert ids_in(client.get("/collections/billboards/items", headers=fresh).json()) == set()
    version = watcher.current("users")
    with world.engine.begin() as conn:
        users.disable(conn, "temp-leader", "tests")
    announced(client, version)
    assert client.get("/collections/billboards/items", headers=fresh).status_code == 401
    assert login(client, "temp-leader", TEST_PASSWORD).json()["code"] == "bad_credentials"


def page_session(client: TestClient, username: str, password: str = TEST_PASSWORD) -> str:
    """The session cookie value the login form gives `username` (the client keeps none)."""
    answer = client.post("/login", data={"username": username, "password": password})
    assert answer.status_code == 303, answer.text
    value = answer.cookies[COOKIE]
    client.cookies.clear()
    return value


def me_with_cookie(client: TestClient, value: str) -> Any:
    client.cookies.set(COOKIE, value)
    try:
        return client.get("/auth/me")
    finally:
        client.cookies.clear()


def test_logout_ends_the_session_on_the_server_and_only_that_one(
    world: World, client: TestClient
) -> None:
    ensure_account(world.url, "two-shifts", "leader")
    cookie, other_cookie = page_session(client, "two-shifts"), page_session(client, "two-shifts")
    bearer_token = login(client, "two-shifts", TEST_PASSWORD).json()["access_token"]
    other = {"Authorization": f"Bearer {bearer_token}"}
    assert me_with_cookie(client, cookie).status_code == 200
    client.cookies.set(COOKIE, cookie)
    out = client.post("/logout")
    assert out.status_code == 303 and "max-age=0" in out.headers["set-cookie"].lower()
    client.cookies.clear()
    replay = me_with_cookie(client, cookie)  # the value captured before the logout
    assert replay.status_code == 401 and replay.json()["code"] == "token_revoked"
    assert replay.json()["message"] and replay.json()["message_en"]
    assert me_with_cookie(client, other_cookie).status_code == 200  # another browser
    assert client.get("/auth/me", headers=other).status_code == 200  # an API client
    ended = client.post("/auth/logout", headers=other)
    assert ended.status_code == 204
    assert client.get("/auth/me", headers=other).json()["code"] == "token_revoked"
    assert client.post("/auth/logout", headers=other).status_code == 401
    assert me_with_cookie(client, other_cookie).status_code == 200
    with world.engine.connect() as conn:
        states = conn.execute(
            text("""
            SELECT kind, revoked_at IS NOT NULL FROM sessions
            WHERE username = 'two-shifts' ORDER BY created_at
        """)
        ).all()
    assert [tuple(s) for s in states] == [("cookie", True), ("cookie", False), ("bearer", True)]


def test_a_logout_holds_in_every_api_process(world: World, client: TestClient) -> None:
    ensure_account(world.url, "two-desks", "leader")
    token = login(client, "two-desks", TEST_PASSWORD).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    other_process = create_app(DatabaseSettings(database_url=world.url), auth_settings=TEST_AUTH)
    with TestClient(other_process) as other:
        watcher = other.app.state.layer_versions  # type: ignore[attr-defined]
        deadline = time.monotonic() + 5
        while watcher.current("sessions") is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert other.get("/auth/me", headers=headers).status_code == 200  # now in its memory
        before = watcher.current("sessions")
        assert client.post("/auth/logout", headers=headers).status_code == 204
        announced_sessions(other, before)
        replay = other.get("/auth/me", headers=headers)
        assert replay.status_code == 401 and replay.json()["code"] == "token_revoked"


def announced_sessions(client: TestClient, before: int | None) -> None:
    """Wait for a change of `sessions` to be announced to the app."""
    watcher = client.app.state.layer_versions  # type: ignore[attr-defined]
    deadline = time.monotonic() + 5
    while watcher.current("sessions") == before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert watcher.current("sessions") != before


def test_a_password_change_or_disabling_ends_every_session(
    world: World, client: TestClient
) -> None:
    watcher = client.app.state.layer_versions  # type: ignore[attr-defined]
    ensure_account(world.url, "many-sessions", "leader")
    new_password = "Lantern-river-tea-58"
    for password, change in (
        (
            TEST_PASSWORD,
            lambda conn: users.set_password(
                conn, "many-sessions", users.hash_password(new_password), "tests"
            ),
        ),
        (new_password, lambda conn: users.disable(conn, "many-sessions", "tests")),
    ):
        cookies = [page_session(client, "many-sessions", password) for _ in range(2)]
        tokens = [login(client, "many-sessions", password).json()["access_token"] for _ in range(2)]
        assert all(me_with_cookie(client, c).status_code == 200 for c in cookies)
        version = watcher.current("sessions")
        with world.engine.begin() as conn:
            change(conn)
        announced_sessions(client, version)
        for c in cookies:
            assert me_with_cookie(client, c).json()["code"] == "token_revoked"
        for t in tokens:
            answer = client.get("/auth/me", headers={"Authorization": f"Bearer {t}"})
            assert answer.status_code == 401 and answer.json()["code"] == "token_revoked"
    assert login(client, "many-sessions", new_password).json()["code"] == "bad_credentials"


def every_text(engine: Engine) -> str:
    """Every row of every table, as text."""
    with engine.connect() as conn:
        tables = conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ).scalars()
        return "\n".join(
            str(
                conn.execute(
                    text(
                        f"SELECT coalesce(string_agg(to_jsonb(t)::text, '\n'), '') FROM \"{name}\" AS t"
                    )
                ).scalar_one()
            )
            for name in list(tables)
        )


def test_passwords_are_never_stored_or_logged_in_clear(
    world: World, client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with world.engine.begin() as conn:
        users.add(
            conn, "pw-check", "leader", users.hash_password(SECRET), "tests", counties=["320681"]
        )
    assert login(client, "pw-check", SECRET).status_code == 200
    assert login(client, "pw-check", SECRET + "x").status_code == 401
    assert login(client, "pw-check", SECRET).status_code == 200
    stored = every_text(world.engine)
    assert SECRET not in stored and (SECRET + "x") not in stored
    with world.engine.connect() as conn:
        digest = conn.execute(
            text("SELECT password_hash FROM users WHERE username = 'pw-check'")
        ).scalar_one()
    assert digest.startswith("$argon2id$")
    assert SECRET not in caplog.text


def test_repeated_failures_slow_the_name_down_and_are_audited(
    world: World, client: TestClient
) -> None:
    ensure_account(world.url, "brute", "leader")
    for _ in range(TEST_AUTH.login_max_failures):
        assert login(client, "brute", "guess-guess").status_code == 401
    blocked = login(client, "brute", TEST_PASSWORD)  # right password, but too soon
    assert blocked.status_code == 429 and blocked.json()["code"] == "too_many_attempts"
    wait = int(blocked.headers["retry-after"])
    assert 1 <= wait <= TEST_AUTH.login_max_block_seconds
    assert "秒后再试" in blocked.json()["message"]
    time.sleep(wait + 0.2)
    assert login(client, "brute", TEST_PASSWORD).status_code == 200
    assert login(client, "brute", "guess-guess").status_code == 401  # the count starts again
    with world.engine.connect() as conn:
        actions = (
            conn.execute(
                text(
                    "SELECT action FROM audit_log WHERE actor = 'brute' AND layer = 'users' ORDER BY id"
                )
            )
            .scalars()
            .all()
        )
    assert actions == ["login_failed"] * TEST_AUTH.login_max_failures + ["login", "login_failed"]


def test_the_login_form_sets_a_protected_cookie(client: TestClient, world: World) -> None:
    page = client.get("/login?next=/maps/planner")
    assert (
        page.status_code == 200 and "用户名" in page.text and 'value="/maps/planner"' in page.text
    )
    wrong = client.post(
        "/login", data={"username": "planner", "password": "nope-nope", "next": "/maps/planner"}
    )
    assert wrong.status_code == 401 and "用户名或密码错误" in wrong.text
    answer = client.post(
        "/login", data={"username": "planner", "password": TEST_PASSWORD, "next": "/maps/planner"}
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/maps/planner"
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
    assert f"max-age={int(TEST_AUTH.session_hours * 3600)}" in cookie and "secure" not in cookie
    assert client.get("/maps/planner").status_code == 200  # the cookie opens the page
    client.post("/logout")
    assert client.get("/maps/planner").status_code == 303
    offsite = client.post(
        "/login",
        data={"username": "planner", "password": TEST_PASSWORD, "next": "//evil.example/x"},
    )
    assert offsite.headers["location"] == "/maps/planner"  # the planner's own page, not elsewhere
    client.cookies.clear()


def test_secure_cookies_behind_tls(world: World) -> None:
    settings = AuthSettings(secret_key=TEST_AUTH.secret_key, cookie_secure=True)
    app = create_app(DatabaseSettings(database_url=world.url), auth_settings=settings)
    with TestClient(app, follow_redirects=False) as c:
        answer = c.post("/login", data={"username": "planner", "password": TEST_PASSWORD})
    assert "secure" in answer.headers["set-cookie"].lower()


INJECTIONS = [
    "1' OR '1'='1",
    "nul\x00byte",
    "1; DROP TABLE users; --",
    "') OR 1=1 --",
    '" OR ""="',
    "0x27 UNION SELECT password_hash FROM users --",
]
PARAMETERS = [
    "bbox",
    "bbox-crs",
    "datetime",
    "crs",
    "sortby",
    "properties",
    "filter",
    "filter-crs",
    "limit",
    "offset",
    "after",
    "status",
    "category_code",
    "id",
]


@pytest.mark.parametrize("parameter", PARAMETERS)
def test_injection_in_any_filter_parameter_is_refused_or_harmless(
    client: TestClient, world: World, parameter: str
) -> None:
    before = every_text(world.engine)
    for attempt in INJECTIONS:
        answer = client.get(
            "/collections/cases/items", params={parameter: attempt}, headers=bearer("inspector")
        )
        assert answer.status_code in (200, 400), (parameter, attempt, answer.text)
        if answer.status_code == 200:  # harmless: still only the inspector's own rows
            assert ids_in(answer.json()) <= {world.west["cases"], *new_cases(world)}
            assert world.east["cases"] not in ids_in(answer.json())
        else:
            assert answer.json()["code"] and answer.json()["message"]
    for parameter_name, attempt in (
        ("parent", INJECTIONS[0]),
        ("level", INJECTIONS[1]),
        ("at", INJECTIONS[2]),
    ):
        answer = client.get("/grids", params={parameter_name: attempt}, headers=bearer("inspector"))
        assert answer.status_code == 400
    assert every_text(world.engine) == before


def new_cases(world: World) -> set[int]:
    """Cases the inspector reported in their area during the other tests of the module."""
    with world.engine.connect() as conn:
        return set(
            conn.execute(
                text("SELECT id FROM cases WHERE grid_code LIKE :west"), {"west": f"{WEST[:12]}%"}
            ).scalars()
        )


def test_nul_characters_are_refused_with_a_message(client: TestClient, world: World) -> None:
    def inspections() -> int:
        with world.engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM dust_inspections")).scalar_one())

    before = inspections()
    assert login(client, "admin\x00", TEST_PASSWORD).json()["code"] == "bad_credentials"
    feature = {
        "type": "Feature",
        "geometry": None,
        "properties": {
            "dust_site_id": world.west["dust_sites"],
            "inspected_on": "2026-11-21",
            "inspector": "a\x00b",
            "problems_found": 0,
        },
    }
    answer = client.post(
        "/collections/dust_inspections/items", json=feature, headers=bearer("admin")
    )
    assert answer.status_code == 400 and answer.json()["code"] == "nul_character"
    assert "空字符" in answer.json()["message"]
    check = client.post(
        f"/cases/{world.west['cases']}/check",
        json={"passed": True, "note": "\x00"},
        headers=bearer("inspector"),
    )
    assert check.status_code == 400 and check.json()["code"] == "invalid_request"
    assert inspections() == before


def test_the_signing_key_is_made_once_and_kept_private(tmp_path: Any) -> None:
    settings = AuthSettings(state_dir=tmp_path)
    key = settings.signing_key()
    assert len(key) >= 32 and AuthSettings(state_dir=tmp_path).signing_key() == key
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
    with pytest.raises(ValueError, match="32"):
        AuthSettings(secret_key="short").signing_key()


def test_the_demo_accounts_cover_every_role_and_community(world: World) -> None:
    from layers.demo.accounts import ensure_accounts

    with world.engine.connect() as conn:  # never committed: rolled back on close
        logins = ensure_accounts(conn)
        accounts = {a.username: a for a in users.list_accounts(conn)}
    roles = {login.role.value for login in logins}
    assert roles == {"admin", "planner", "leader", "inspector", "dispatcher", "handler"}
    units = [x for x in logins if x.role.value == "handler"]
    assert len(units) == 2 and accounts[units[0].username].unit == "测试单位"
    inspectors = [x for x in logins if x.role.value == "inspector"]
    assert len(inspectors) == 2 and accounts[inspectors[0].username].grids == (WEST,)
    assert len({x.password for x in inspectors}) == 1


def test_accounts_refuse_bad_names_short_passwords_and_unknown_roles(world: World) -> None:
    from layers.errors import AccountError

    with world.engine.connect() as conn:  # never committed: rolled back on close
        for name, role, password, code in (
            ("a b", "leader", TEST_PASSWORD, "bad_username"),
            ("ok-name", "mayor", TEST_PASSWORD, "unknown_role"),
            ("admin", "leader", TEST_PASSWORD, "username_taken"),
            ("ok-name", "leader", "short", "weak_password"),
        ):
            with pytest.raises(AccountError) as caught:
                users.add(conn, name, role, users.hash_password(password), "tests")
            assert caught.value.code == code
        with pytest.raises(AccountError) as caught:
            users.add(conn, "ok-name", "leader", users.hash_password(TEST_PASSWORD), "tests")
        assert caught.value.code == "county_required"
        with pytest.raises(AccountError, match="Only inspectors"):
            users.add(
                conn,
                "ok-name",
                "leader",
                users.hash_password(TEST_PASSWORD),
                "tests",
                grids=[WEST],
                counties=["320681"],
            )


@pytest.mark.parametrize(
    ("password", "names", "reason"),
    [
        ("password", (), "too_common"),
        ("Password1!", (), "too_common"),
        ("1qaz2wsx3edc", (), "too_common"),
        ("qwertyuiop", (), "too_common"),
        ("planner-2026!", ("planner", "网格规划员"), "contains_name"),
        ("1990.san.zhang", ("zhang.san",), "contains_name"),
        ("short", (), "too_short"),
    ],
)
def test_common_passwords_and_the_users_own_name_are_refused(
    password: str, names: tuple[str, ...], reason: str
) -> None:
    from api.errors import status_for
    from layers.errors import AccountError

    with pytest.raises(AccountError) as caught:
        users.hash_password(password, *names)
    assert caught.value.code == "weak_password" and caught.value.details["reason"] == reason
    assert status_for(caught.value) == 400
    assert caught.value.message_zh and caught.value.message_en
    assert users.hash_password(TEST_PASSWORD, "planner").startswith("$argon2id$")


def test_demo_passwords_go_to_an_owner_only_file_not_to_the_log(
    scratch_url: str, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from argon2 import PasswordHasher

    from api import cli

    state = tmp_path / "state"
    cli._demo_logins(scratch_url, DatabaseSettings(database_url=scratch_url, state_dir=state))
    printed = capsys.readouterr()
    path = state / "demo-passwords.txt"
    assert path.stat().st_mode & 0o777 == 0o600
    lines = [line.split("\t") for line in path.read_text().splitlines()[1:]]
    passwords = {username: password for _, username, _, password in lines}
    assert {"admin", "planner", "leader", "dispatcher"} <= set(passwords)
    assert str(path) in printed.out + printed.err
    for password in passwords.values():
        assert password not in printed.out + printed.err
    engine = db.make_engine(scratch_url)
    try:
        with engine.connect() as conn:
            stored = conn.execute(
                text("SELECT password_hash FROM users WHERE username = 'admin'")
            ).scalar_one()
    finally:
        engine.dispose()
    assert PasswordHasher().verify(stored, passwords["admin"])
    path.chmod(0o644)  # a second load resets the passwords and takes the rights back
    cli._demo_logins(scratch_url, DatabaseSettings(database_url=scratch_url, state_dir=state))
    assert path.stat().st_mode & 0o777 == 0o600
    assert dict(line.split("\t")[1::2] for line in path.read_text().splitlines()[1:]) != passwords
