"""The map pages, rendered by the builders in `webmap/` (they hold no data: the browser asks the API).

A page needs the session cookie: without one (or with an expired one) the browser is sent to the
login page and brought back; a role the page is not for gets a page saying so.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api import csrf
from api.auth import COOKIE, optional_viewer
from api.security import html_page
from layers.access import Viewer
from layers.codes import read_case_categories
from layers.errors import NotSignedIn
from layers.registry import ROLE_LABELS, Role
from webmap import inspector, leader, pages, planner
from webmap.basemaps import BaseMap
from webmap.login import refused_page

router = APIRouter(include_in_schema=False)


def page_viewer(request: Request) -> Viewer | None:
    """The viewer of a page; an expired or broken cookie counts as not signed in."""
    try:
        return optional_viewer(request)
    except NotSignedIn:
        return None


PageViewer = Annotated[Viewer | None, Depends(page_viewer)]


def _gate(request: Request, viewer: Viewer | None, *roles: Role) -> Response | None:
    """Where to send a visitor who may not see the page, or None when they may."""
    if viewer is None:
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
    if roles and viewer.role is not Role.ADMIN and viewer.role not in roles:
        needed = "、".join(ROLE_LABELS[r] for r in roles)
        return html_page(request, refused_page(ROLE_LABELS[viewer.role], needed), 403)
    return None


def _page(request: Request, html: str) -> HTMLResponse:
    """A map page with the token its script sends with every change (see `api/csrf.py`)."""
    session = request.cookies.get(COOKIE)
    key: str = request.app.state.issuer.key
    meta = {csrf.META: csrf.token_for(key, session)} if session else {}
    return html_page(request, html, meta=meta)


def _basemap(request: Request) -> BaseMap:
    basemap: BaseMap = request.app.state.basemap
    return basemap


@router.get("/maps/overview", response_class=HTMLResponse)
def overview(request: Request, viewer: PageViewer) -> Response:
    """综合概览 (every role; an inspector's layers hold only their area)."""
    return _gate(request, viewer) or _page(request, pages.overview(_basemap(request)))


@router.get("/maps/planner", response_class=HTMLResponse)
def planner_map(request: Request, viewer: PageViewer) -> Response:
    """网格规划 (planners)."""
    return _gate(request, viewer, Role.PLANNER) or _page(
        request, planner.planner(_basemap(request))
    )


@router.get("/maps/inspector", response_class=HTMLResponse)
def inspector_map(request: Request, viewer: PageViewer) -> Response:
    """我的巡查区域 (inspectors; an admin sees the whole county)."""
    return _gate(request, viewer, Role.INSPECTOR) or _page(
        request, inspector.inspector(_basemap(request), read_case_categories())
    )


@router.get("/maps/leader", response_class=HTMLResponse)
def leader_map(request: Request, viewer: PageViewer) -> Response:
    """领导驾驶舱 (leaders)."""
    return _gate(request, viewer, Role.LEADER) or _page(
        request, leader.dashboard(_basemap(request), read_case_categories())
    )


@router.get("/maps/leader/timeline", response_class=HTMLResponse)
def leader_timeline(request: Request, viewer: PageViewer) -> Response:
    """案件热力逐周变化 (leaders)."""
    return _gate(request, viewer, Role.LEADER) or _page(
        request, leader.timeline(_basemap(request), read_case_categories())
    )
