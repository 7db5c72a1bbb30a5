"""Test accounts: made directly in a test database, with tokens signed by the test key."""

from __future__ import annotations

import secrets
from datetime import timedelta
from functools import cache
from typing import Any

from pydantic import SecretStr
from sqlalchemy import Connection, Engine, text

from api.auth import COOKIE, Issuer
from api.settings import AuthSettings
from layers.accounts import users
from layers.demo import load as demo_city
from layers.places import counties as county_rows
from layers.store import db

TEST_KEY = "citygrid-test-signing-key-not-for-production-use"
TEST_PASSWORD = "correct-horse-battery"
TEST_AUTH = AuthSettings(
    secret_key=SecretStr(TEST_KEY),
    login_max_failures=3,
    login_block_seconds=1.0,
    login_max_block_seconds=4.0,
    login_client_max_failures=50,
    login_hashes_per_second=1000.0,
    login_hash_burst=1000,
)
SERVER_ENV = {"CITYGRID_SECRET_KEY": TEST_KEY}
# Every test database is one deployment to the tokens below; each is migrated with an id of its
# own, renamed here so tokens can be signed without asking the database (see name_deployment).
TEST_DEPLOYMENT = "citygrid-tests"
# Every role an account may hold.
ROLES = ("admin", "planner", "leader", "inspector", "dispatcher", "handler")


def name_deployment(conn: Connection, deployment: str = TEST_DEPLOYMENT) -> None:
    """Give a test database the deployment id the test tokens name."""
    conn.execute(text("UPDATE deployment SET id = :d"), {"d": deployment})


@cache
def _password_hash() -> str:
    return users.hash_password(TEST_PASSWORD)


def ensure_account(
    target: Engine | str,
    username: str,
    role: str,
    grids: tuple[str, ...] = (),
    unit: str | None = None,
    counties: tuple[str, ...] | None = None,
) -> None:
    """An account with the test password (made once per database), holding `counties` (by
    default: none for an admin, every stored county for the others, the demo's if none is)."""
    engine = db.make_engine(target) if isinstance(target, str) else target
    try:
        with engine.begin() as conn:
            account = users.find(conn, username)
            if account is None:
                held = list(counties) if counties is not None else _default_counties(conn, role)
                users.add(
                    conn, username, role, _password_hash(), "tests", None, list(grids), unit, held
                )
            elif account.grids != tuple(sorted(grids)) and role == "inspector":
                users.assign_grids(conn, account, list(grids))
    finally:
        if isinstance(target, str):
            engine.dispose()


def _default_counties(conn: Connection, role: str) -> list[str]:
    if role == "admin":
        return []
    stored = [c.adcode for c in county_rows.all_counties(conn)]
    if stored:
        return stored
    return [county_rows.add(conn, demo_city.qidong(), demo_city.COUNTY_SEAT).adcode]


def token_for(
    username: str, lifetime: timedelta = timedelta(minutes=30), deployment: str = TEST_DEPLOYMENT
) -> str:
    """A token for `username` signed with the test key for `deployment`, naming a session of
    its own."""
    issuer = Issuer.from_settings(TEST_AUTH, deployment)
    return issuer.issue(username, lifetime, secrets.token_urlsafe(18))


def bearer(username: str) -> dict[str, str]:
    """The Authorization header of `username`."""
    return {"Authorization": f"Bearer {token_for(username)}"}


def sign_in(client: Any, target: Engine | str, username: str = "admin", role: str = "admin") -> Any:
    """Make the account and send its token with every request of `client`."""
    ensure_account(target, username, role)
    client.headers.update(bearer(username))
    return client


def browser_context(browser: Any, base: str, username: str, **options: Any) -> Any:
    """A browser context that carries `username`'s session cookie for `base`."""
    context = browser.new_context(**options)
    cookie = {"name": COOKIE, "value": token_for(username, timedelta(hours=1)), "url": base}
    context.add_cookies([cookie])
    return context
