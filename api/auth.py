"""Signed tokens (bearer header or session cookie) and the dependencies that resolve the viewer."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

import jwt
from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import Engine

from api import csrf
from api.settings import AuthSettings
from layers import users
from layers.access import Viewer, require_role
from layers.errors import NotSignedIn
from layers.registry import Role
from layers.users import Account, LoginPolicy

COOKIE = "citygrid_session"
ALGORITHM = "HS256"
AUDIENCE = "citygrid"


@dataclass(frozen=True)
class Issuer:
    """Issues and reads the application's tokens with one signing key."""

    key: str
    token_lifetime: timedelta
    session_lifetime: timedelta
    cookie_secure: bool
    policy: LoginPolicy
    patrol_buffer_m: float

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> Issuer:
        """The issuer the settings describe."""
        return cls(
            settings.signing_key(),
            timedelta(minutes=settings.token_minutes),
            timedelta(hours=settings.session_hours),
            settings.cookie_secure,
            LoginPolicy(
                settings.login_max_failures,
                settings.login_block_seconds,
                settings.login_max_block_seconds,
            ),
            settings.patrol_buffer_m,
        )

    def issue(self, username: str, lifetime: timedelta) -> str:
        """A signed token naming the user, valid for `lifetime`."""
        now = datetime.now(UTC)
        claims = {"sub": username, "aud": AUDIENCE, "iat": now, "exp": now + lifetime}
        return jwt.encode(claims, self.key, algorithm=ALGORITHM)

    def read(self, token: str) -> tuple[str, int]:
        """The user name and issue time (epoch seconds) of a token this issuer signed."""
        try:
            claims = jwt.decode(
                token,
                self.key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                options={"require": ["sub", "iat", "exp", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise NotSignedIn(
                "The sign-in has expired: sign in again.",
                "登录已过期，请重新登录。",
                code="token_expired",
            ) from None
        except jwt.InvalidTokenError:
            raise NotSignedIn(
                "The token is not valid: sign in again.",
                "登录凭证无效，请重新登录。",
                code="token_invalid",
            ) from None
        if not isinstance(claims["sub"], str) or not isinstance(claims["iat"], int | float):
            raise NotSignedIn("The token is not valid.", "登录凭证无效。", code="token_invalid")
        return claims["sub"], int(claims["iat"])


def _presented_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotSignedIn(
                "Send the token as 'Authorization: Bearer <token>'.",
                "请以“Authorization: Bearer <令牌>”提供登录凭证。",
                code="token_invalid",
            )
        return token.strip()
    return request.cookies.get(COOKIE)


class AccountCache:
    """Accounts as last read, trusted only while the listener vouches that `users` is unchanged
    (every write to it is announced like a layer's), so a disabled account is refused at once."""

    def __init__(self) -> None:
        self._accounts: dict[str, tuple[int, Account | None]] = {}
        self._lock = threading.Lock()

    def find(self, engine: Engine, username: str, version: int | None) -> Account | None:
        """The account, from memory when its version is current, else from the database."""
        with self._lock:
            cached = self._accounts.get(username)
        if version is not None and cached is not None and cached[0] == version:
            return cached[1]
        with engine.connect() as conn:
            account = users.find(conn, username)
        if version is not None:  # read after the version: a later change bumps it again
            with self._lock:
                self._accounts[username] = (version, account)
        return account


def viewer_from_token(
    engine: Engine,
    issuer: Issuer,
    token: str,
    cache: AccountCache | None = None,
    version: int | None = None,
) -> Viewer:
    """The viewer a token stands for, refused when the account is gone, disabled or changed."""
    username, issued_at = issuer.read(token)
    if cache is not None:
        account = cache.find(engine, username, version)
    else:
        with engine.connect() as conn:
            account = users.find(conn, username)
    if (
        account is None
        or account.disabled
        or issued_at < int(account.sessions_valid_from.timestamp())
    ):
        raise NotSignedIn(
            "This sign-in is no longer valid: sign in again.",
            "该登录已失效，请重新登录。",
            code="token_revoked",
        )
    return Viewer(
        account.username,
        account.role,
        account.display_name,
        issuer.patrol_buffer_m,
        account.unit,
    )


# Declares the password flow in the OpenAPI document (the docs' "Authorize" button); the header
# itself is read by `_presented_token`, which also accepts the pages' cookie.
PASSWORD_FLOW = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False)


def optional_viewer(
    request: Request, _: Annotated[str | None, Depends(PASSWORD_FLOW)] = None
) -> Viewer | None:
    """The signed-in viewer, or None when the request carries no credentials."""
    token = _presented_token(request)
    if token is None:
        return None
    state = request.app.state
    watcher = getattr(state, "layer_versions", None)
    version = watcher.current("users") if watcher is not None else None
    viewer = viewer_from_token(state.engine, state.issuer, token, state.accounts, version)
    if "authorization" not in request.headers:  # the cookie: sent by the browser on its own
        csrf.check_cookie_write(request, state.issuer.key, token)
    request.state.viewer = viewer
    return viewer


def current_viewer(
    viewer: Annotated[Viewer | None, Depends(optional_viewer)],
) -> Viewer:
    """The signed-in viewer; 401 without credentials."""
    if viewer is None:
        raise NotSignedIn(
            "Sign in first (POST /auth/token, or the login page).",
            "请先登录（POST /auth/token 或登录页面）。",
        )
    return viewer


ViewerDep = Annotated[Viewer, Depends(current_viewer)]
OptionalViewerDep = Annotated[Viewer | None, Depends(optional_viewer)]


def needs(*roles: Role) -> Callable[[Viewer], Viewer]:
    """A dependency admitting only viewers with one of `roles` (admins always)."""

    def dependency(viewer: ViewerDep) -> Viewer:
        require_role(viewer, *roles)
        return viewer

    return dependency


PlannerDep = Annotated[Viewer, Depends(needs(Role.PLANNER))]
GridReaderDep = Annotated[Viewer, Depends(needs(Role.PLANNER, Role.LEADER))]
