"""Signing in and out: OAuth2 password flow for clients, a form and a cookie for the pages."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.security import OAuth2PasswordRequestForm

from api import csrf
from api.auth import COOKIE, Issuer, ViewerDep
from api.deps import EngineDep
from api.security import html_page
from layers import users
from layers.errors import CitygridError, TooManyAttempts
from layers.registry import ROLE_LABELS, Role
from webmap.login import login_page

router = APIRouter()
pages = APIRouter(include_in_schema=False)
HOME = {Role.INSPECTOR: "/maps/inspector", Role.PLANNER: "/maps/planner"}


def _issuer(request: Request) -> Issuer:
    issuer: Issuer = request.app.state.issuer
    return issuer


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


@router.post("/auth/token", summary="Sign in, get a token / 登录获取令牌")
def token(
    request: Request, engine: EngineDep, form: Annotated[OAuth2PasswordRequestForm, Depends()]
) -> dict[str, Any]:
    """OAuth2 password flow: a short-lived bearer token for a user name and password."""
    issuer = _issuer(request)
    account = users.authenticate(
        engine, form.username, form.password, issuer.policy, _client(request)
    )
    return {
        "access_token": issuer.issue(account.username, issuer.token_lifetime),
        "token_type": "bearer",
        "expires_in": int(issuer.token_lifetime.total_seconds()),
        "username": account.username,
        "role": account.role.value,
    }


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
        account = users.authenticate(engine, username, password, issuer.policy, _client(request))
    except CitygridError as exc:
        status = 429 if isinstance(exc, TooManyAttempts) else 401
        return html_page(request, login_page(next, username, exc.message_zh), status)
    response = RedirectResponse(safe_next(next, account.role), status_code=303)
    response.set_cookie(
        COOKIE,
        issuer.issue(account.username, issuer.session_lifetime),
        max_age=int(issuer.session_lifetime.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=issuer.cookie_secure,
        path="/",
    )
    return response


@pages.post("/logout", dependencies=[Depends(csrf.same_origin)])
def logout() -> Response:
    """Forget the session cookie."""
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax")
    return response
