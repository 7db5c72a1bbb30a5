"""Signing in and out: OAuth2 password flow for clients, a form and a cookie for the pages."""

from __future__ import annotations

from contextlib import suppress
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.security import OAuth2PasswordRequestForm
from sqlalchemy import Engine

from api import client_address, csrf, metrics
from api.auth import COOKIE, Issuer, ViewerDep, app_issuer, presented_token
from api.deps import EngineDep
from api.security import html_page
from layers.accounts import sessions, signin, users
from layers.accounts.sessions import Kind
from layers.accounts.users import Account
from layers.errors import CitygridError, NotSignedIn, TooManyAttempts
from layers.registry import ROLE_LABELS, Role
from webmap.login import login_page

router = APIRouter()
pages = APIRouter(include_in_schema=False)
HOME = {
    Role.INSPECTOR: "/maps/inspector",
    Role.PLANNER: "/maps/planner",
    Role.DISPATCHER: "/maps/command",
}


def _issuer(request: Request) -> Issuer:
    return app_issuer(request.app.state)


def _client(request: Request) -> str:
    return client_address.of_request(request, request.app.state.trusted_proxies)


def _authenticate(request: Request, engine: Engine, username: str, password: str) -> Account:
    """Check a password, refusing first (without hashing) an address over its hashing budget."""
    client = _client(request)
    try:
        request.app.state.hash_budget.take(signin.limit_key(client))
        return users.authenticate(engine, username, password, _issuer(request).policy, client)
    except CitygridError as refused:
        metrics.SIGN_IN_FAILURES.labels(refused.code).inc()
        raise


def _new_session(
    engine: Engine, issuer: Issuer, username: str, kind: Kind, client: str | None
) -> str:
    """A token for a new session of `username`, recorded so that it can be ended."""
    lifetime = issuer.token_lifetime if kind == "bearer" else issuer.session_lifetime
    with engine.begin() as conn:
        sid, _ = sessions.open_session(conn, username, kind, lifetime, client)
    return issuer.issue(username, lifetime, sid)


def _end_session(request: Request, engine: Engine, token: str, kind: Kind) -> None:
    """Revoke the session a token names (at once, in every process)."""
    issuer, revocations = _issuer(request), request.app.state.revoked_sessions
    claims = issuer.read(token)
    with engine.begin() as conn:
        sessions.revoke(conn, claims.sid, claims.username, kind, claims.expires_at)
    revocations.note(claims.sid, claims.expires_at)


@router.post("/auth/token", summary="Sign in, get a token / 登录获取令牌")
def token(
    request: Request, engine: EngineDep, form: Annotated[OAuth2PasswordRequestForm, Depends()]
) -> dict[str, Any]:
    """OAuth2 password flow: a short-lived bearer token for a user name and password."""
    issuer = _issuer(request)
    account = _authenticate(request, engine, form.username, form.password)
    return {
        "access_token": _new_session(engine, issuer, account.username, "bearer", _client(request)),
        "token_type": "bearer",
        "expires_in": int(issuer.token_lifetime.total_seconds()),
        "username": account.username,
        "role": account.role.value,
    }


@router.post(
    "/auth/logout",
    status_code=204,
    summary="End this sign-in / 注销",
    responses={
        204: {"description": "The token (or session cookie) no longer works anywhere"},
        401: {"description": "No valid sign-in to end"},
    },
)
def api_logout(request: Request, engine: EngineDep, _: ViewerDep) -> Response:
    """End the session of the token sent (bearer header or cookie): it is refused from now on."""
    presented = presented_token(request)
    assert presented is not None  # ViewerDep admitted it
    _end_session(request, engine, presented.token, presented.kind)
    response = Response(status_code=204)
    if presented.kind == "cookie":
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax")
    return response


@router.get("/auth/me", summary="Who is signed in / 当前用户")
def me(viewer: ViewerDep, engine: EngineDep) -> dict[str, Any]:
    """The signed-in user: name, role and, for an inspector, their grids."""
    with engine.connect() as conn:
        account = users.get(conn, viewer.username)
    return {
        "username": account.username,
        "display_name": account.display_name,
        "role": account.role.value,
        "role_label": ROLE_LABELS[account.role],
        "grids": list(account.grids),
    }


def safe_next(raw: str | None, role: Role | None = None) -> str:
    """A local path to go to after signing in; anything else becomes the role's home page."""
    if raw and raw.startswith("/") and not raw.startswith("//") and "\\" not in raw:
        return raw
    return HOME.get(role, "/maps/overview") if role else "/maps/overview"


@pages.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> HTMLResponse:
    """The sign-in page."""
    return html_page(request, login_page(safe_next(next) if next else ""))


@pages.post("/login", response_class=HTMLResponse, dependencies=[Depends(csrf.same_origin)])
def login(
    request: Request,
    engine: EngineDep,
    username: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1000)],
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Check the form; on success set the session cookie and go on."""
    issuer = _issuer(request)
    try:
        account = _authenticate(request, engine, username, password)
    except CitygridError as exc:
        status = 429 if isinstance(exc, TooManyAttempts) else 401
        return html_page(request, login_page(next, username, exc.message_zh), status)
    response = RedirectResponse(safe_next(next, account.role), status_code=303)
    response.set_cookie(
        COOKIE,
        _new_session(engine, issuer, account.username, "cookie", _client(request)),
        max_age=int(issuer.session_lifetime.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=issuer.cookie_secure,
        path="/",
    )
    return response


@pages.post("/logout", dependencies=[Depends(csrf.same_origin)])
def logout(request: Request, engine: EngineDep) -> Response:
    """End the page session on the server and forget its cookie."""
    cookie = request.cookies.get(COOKIE)
    if cookie:
        with suppress(NotSignedIn):  # expired or broken: nothing left to end
            _end_session(request, engine, cookie, "cookie")
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax")
    return response
