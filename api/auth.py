"""Signed tokens (bearer header or session cookie) and the dependencies that resolve the viewer."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from api import csrf
from api.settings import AuthSettings
from layers.accounts import sessions, users
from layers.accounts.sessions import Kind
from layers.accounts.signin import LoginPolicy
from layers.accounts.users import Account
from layers.engine.access import Viewer, require_role
from layers.errors import NotSignedIn
from layers.registry import Role
from layers.store.deployment import deployment_id, token_party

COOKIE = "citygrid_session"
ALGORITHM = "HS256"


@dataclass(frozen=True)
class Issuer:
    """Issues and reads one deployment's tokens with one signing key: a token names the
    deployment as its issuer and audience, so another deployment's is refused even when both
    share a key."""

    key: str
    token_lifetime: timedelta
    session_lifetime: timedelta
    cookie_secure: bool
    policy: LoginPolicy
    patrol_buffer_m: float
    deployment: str | None = None  # read from the database when the application starts

    @classmethod
    def from_settings(cls, settings: AuthSettings, deployment: str | None = None) -> Issuer:
        """The issuer the settings describe, for the deployment `deployment`."""
        return cls(
            settings.signing_key(),
            timedelta(minutes=settings.token_minutes),
            timedelta(hours=settings.session_hours),
            settings.cookie_secure,
            LoginPolicy(
                settings.login_max_failures,
                settings.login_block_seconds,
                settings.login_max_block_seconds,
                settings.login_client_max_failures,
                settings.login_forget_seconds,
            ),
            settings.patrol_buffer_m,
            deployment,
        )

    def for_deployment(self, deployment: str) -> Issuer:
        """The same issuer, naming the deployment `deployment`."""
        return replace(self, deployment=deployment)

    @property
    def party(self) -> str:
        """Issuer and audience of this deployment's tokens."""
        if self.deployment is None:
            raise RuntimeError("the issuer's deployment is read when the application starts")
        return token_party(self.deployment)

    def issue(self, username: str, lifetime: timedelta, sid: str) -> str:
        """A signed token naming the user and the session `sid`, valid for `lifetime`."""
        now = datetime.now(UTC)
        claims = {
            "sub": username,
            "sid": sid,
            "iss": self.party,
            "aud": self.party,
            "iat": now,
            "exp": now + lifetime,
        }
        return jwt.encode(claims, self.key, algorithm=ALGORITHM)

    def read(self, token: str) -> Claims:
        """The claims of a token this issuer signed."""
        try:
            claims = jwt.decode(
                token,
                self.key,
                algorithms=[ALGORITHM],
                audience=self.party,
                issuer=self.party,
                options={"require": ["sub", "sid", "iat", "exp", "aud", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            raise NotSignedIn(
                "The sign-in has expired: sign in again.",
                "登录已过期，请重新登录。",
                code="token_expired",
            ) from None
        except (jwt.InvalidAudienceError, jwt.InvalidIssuerError, jwt.MissingRequiredClaimError):
            raise NotSignedIn(
                "The token was not issued by this deployment: sign in here.",
                "该登录凭证不是本系统签发的，请在本系统登录。",
                code="token_foreign",
            ) from None
        except jwt.InvalidTokenError:
            raise NotSignedIn(
                "The token is not valid: sign in again.",
                "登录凭证无效，请重新登录。",
                code="token_invalid",
            ) from None
        if not (
            isinstance(claims["sub"], str)
            and isinstance(claims["sid"], str)
            and isinstance(claims["iat"], int | float)
            and isinstance(claims["exp"], int | float)
        ):
            raise NotSignedIn("The token is not valid.", "登录凭证无效。", code="token_invalid")
        return Claims(
            claims["sub"],
            claims["sid"],
            int(claims["iat"]),
            datetime.fromtimestamp(claims["exp"], UTC),
        )


def app_issuer(state: Any) -> Issuer:
    """The application's issuer, naming the deployment of its database (read once; an outage at
    start only postpones the reading to the first token)."""
    issuer: Issuer = state.issuer
    if issuer.deployment is None:
        with state.engine.connect() as conn:
            issuer = issuer.for_deployment(deployment_id(conn))
        state.issuer = issuer
    return issuer


@dataclass(frozen=True)
class Claims:
    """What a valid token says: whose it is, which session, when issued and until when."""

    username: str
    sid: str
    issued_at: int
    expires_at: datetime


class ClaimsCache:
    """The claims of tokens already verified, so a client's every request does not check the
    same signature again: a token is a fixed string whose claims cannot change, it is taken
    from memory only while unexpired, and revocation is checked on every request all the same."""

    def __init__(self, max_tokens: int = 4096) -> None:
        self.max_tokens = max_tokens
        self._claims: OrderedDict[tuple[str, str, str], Claims] = OrderedDict()
        self._lock = threading.Lock()

    def read(self, issuer: Issuer, token: str) -> Claims:
        """`issuer.read(token)`, from memory when this issuer already read it and it is unexpired."""
        key = (issuer.key, issuer.party, token)
        with self._lock:
            claims = self._claims.get(key)
            if claims is not None:
                self._claims.move_to_end(key)
        if claims is not None and claims.expires_at > datetime.now(UTC):
            return claims
        claims = issuer.read(token)  # refuses an expired token as before
        with self._lock:
            self._claims[key] = claims
            while len(self._claims) > self.max_tokens:
                self._claims.popitem(last=False)
        return claims


@dataclass(frozen=True)
class Presented:
    """A token as the request carried it, and whether in the header or the session cookie."""

    token: str
    kind: Kind


def presented_token(request: Request) -> Presented | None:
    """The bearer token of the Authorization header, else the session cookie, else None."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotSignedIn(
                "Send the token as 'Authorization: Bearer <token>'.",
                "请以“Authorization: Bearer <令牌>”提供登录凭证。",
                code="token_invalid",
            )
        return Presented(token.strip(), "bearer")
    cookie = request.cookies.get(COOKIE)
    return Presented(cookie, "cookie") if cookie else None


class AccountCache:
    """Accounts as last read, trusted only while the listener vouches that `users` is unchanged
    (every write to it is announced like a layer's), so a disabled account is refused at once."""

    def __init__(self) -> None:
        self._accounts: dict[str, tuple[int, Account | None]] = {}
        self._lock = threading.Lock()

    def known(self, username: str, version: int | None) -> tuple[bool, Account | None]:
        """Whether memory may answer for the account at `version`, and the account it holds."""
        with self._lock:
            cached = self._accounts.get(username)
        if version is not None and cached is not None and cached[0] == version:
            return True, cached[1]
        return False, None

    def find(self, engine: Engine, username: str, version: int | None) -> Account | None:
        """The account, from memory when its version is current, else from the database."""
        held, account = self.known(username, version)
        if held:
            return account
        with engine.connect() as conn:
            account = users.find(conn, username)
        if version is not None:  # read after the version: a later change bumps it again
            with self._lock:
                self._accounts[username] = (version, account)
        return account


class RevokedSessions:
    """The ids of revoked sessions as last read, trusted only while the listener vouches that
    `sessions` is unchanged (every revocation is announced), so a logout holds in every process."""

    def __init__(self) -> None:
        self._known: tuple[int, frozenset[str]] | None = None
        self._ended_here: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def note(self, sid: str, expires_at: datetime) -> None:
        """Remember a session this process ended, before its announcement comes back."""
        now = datetime.now(UTC)
        with self._lock:
            self._ended_here = {s: t for s, t in self._ended_here.items() if t > now}
            self._ended_here[sid] = expires_at

    def known(self, sid: str, version: int | None) -> bool | None:
        """Whether `sid` is revoked, when memory may answer at `version`; None when it may not."""
        with self._lock:
            known = self._known
            if sid in self._ended_here:
                return True
        if version is not None and known is not None and known[0] == version:
            return sid in known[1]
        return None

    def revoked(self, engine: Engine, sid: str, version: int | None) -> bool:
        """Whether `sid` is revoked: from memory when its version is current, else the database."""
        answer = self.known(sid, version)
        if answer is not None:
            return answer
        with engine.connect() as conn:
            if version is None:
                return sessions.is_revoked(conn, sid)
            ids = sessions.revoked_ids(conn)
        with self._lock:  # read after the version: a later revocation bumps it again
            self._known = (version, ids)
        return sid in ids


def _revoked() -> NotSignedIn:
    return NotSignedIn(
        "This sign-in is no longer valid: sign in again.",
        "该登录已失效，请重新登录。",
        code="token_revoked",
    )


def viewer_from_token(
    engine: Engine,
    issuer: Issuer,
    token: str,
    cache: AccountCache | None = None,
    versions: Callable[[str], int | None] = lambda _: None,
    revocations: RevokedSessions | None = None,
) -> Viewer:
    """The viewer a token stands for, refused when its session was ended or the account is gone,
    disabled or changed."""
    claims = issuer.read(token)
    revocations = revocations or RevokedSessions()
    if revocations.revoked(engine, claims.sid, versions("sessions")):
        raise _revoked()
    if cache is not None:
        account = cache.find(engine, claims.username, versions("users"))
    else:
        with engine.connect() as conn:
            account = users.find(conn, claims.username)
    return _viewer(issuer, claims, account)


def viewer_from_memory(
    issuer: Issuer,
    token: str,
    cache: AccountCache,
    versions: Callable[[str], int | None],
    revocations: RevokedSessions,
    verified: ClaimsCache,
) -> Viewer | None:
    """The viewer a token stands for, as `viewer_from_token` finds it, when the caches may answer
    for the session and the account at their current versions; None when the database must."""
    claims = verified.read(issuer, token)
    revoked = revocations.known(claims.sid, versions("sessions"))
    if revoked is None:
        return None
    if revoked:
        raise _revoked()
    held, account = cache.known(claims.username, versions("users"))
    return _viewer(issuer, claims, account) if held else None


def _viewer(issuer: Issuer, claims: Claims, account: Account | None) -> Viewer:
    if (
        account is None
        or account.disabled
        or claims.issued_at < int(account.sessions_valid_from.timestamp())
    ):
        raise _revoked()
    return Viewer(
        account.username,
        account.role,
        account.display_name,
        issuer.patrol_buffer_m,
        account.unit,
        account.county_scope,
    )


def _versions(state: Any) -> Callable[[str], int | None]:
    """The versions the application's listener vouches for (none before it listens)."""
    watcher = getattr(state, "layer_versions", None)
    return watcher.current if watcher is not None else lambda _: None


def remembered_viewer(state: Any, token: str) -> Viewer | None:
    """The viewer `token` stands for, when the application's caches may vouch for it at their
    current versions; None when the database must (its deployment read, see `app_issuer`)."""
    return viewer_from_memory(
        state.issuer, token, state.accounts, _versions(state), state.revoked_sessions, state.claims
    )


# Declares the password flow in the OpenAPI document (the docs' "Authorize" button); the header
# itself is read by `presented_token`, which also accepts the pages' cookie.
PASSWORD_FLOW = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False)


async def optional_viewer(
    request: Request, _: Annotated[str | None, Depends(PASSWORD_FLOW)] = None
) -> Viewer | None:
    """The signed-in viewer, or None when the request carries no credentials."""
    presented = presented_token(request)
    if presented is None:
        return None
    state = request.app.state
    issuer = state.issuer
    if issuer.deployment is None:  # read once, from the database
        issuer = await run_in_threadpool(app_issuer, state)
    # Most requests are answered from memory, on the event loop; the database only when the
    # listener cannot vouch for the cached session or account (then in a worker thread).
    viewer = remembered_viewer(state, presented.token)
    if viewer is None:
        viewer = await run_in_threadpool(
            viewer_from_token,
            state.engine,
            issuer,
            presented.token,
            state.accounts,
            _versions(state),
            state.revoked_sessions,
        )
    if presented.kind == "cookie":  # sent by the browser on its own, whichever site asks
        csrf.check_cookie_write(request, issuer.key, presented.token)
    request.state.viewer = viewer
    return viewer


async def current_viewer(
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


def needs(*roles: Role) -> Callable[[Viewer], Coroutine[Any, Any, Viewer]]:
    """A dependency admitting only viewers with one of `roles` (admins always)."""

    async def dependency(viewer: ViewerDep) -> Viewer:
        require_role(viewer, *roles)
        return viewer

    return dependency


PlannerDep = Annotated[Viewer, Depends(needs(Role.PLANNER))]
GridReaderDep = Annotated[Viewer, Depends(needs(Role.PLANNER, Role.LEADER))]
