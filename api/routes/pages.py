"""The map pages, rendered by the builders in `webmap/` (they hold no data: the browser asks the API).

A page needs the session cookie: without one (or with an expired one) the browser is sent to the
login page and brought back; a role the page is not for gets a page saying so. A page shows one
county, from its stored row: the one asked with `?county=ADCODE` (one the viewer holds) or the
viewer's first; a viewer of several gets links to switch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api import csrf
from api.auth import COOKIE, optional_viewer
from api.deps import ConnectionDep
from api.security import html_page
from layers.cases.catalogue import catalogue
from layers.cases.codes import CaseCategory, stored_case_categories
from layers.engine.access import Viewer
from layers.errors import FeatureNotFound, Forbidden, NotSignedIn
from layers.places import counties
from layers.registry import ROLE_LABELS, Role
from webmap import command, inspector, leader, pages, planner
from webmap.base import Catalogue, Place
from webmap.basemaps import BaseMap
from webmap.login import county_refused_page, refused_page

router = APIRouter(include_in_schema=False)


async def page_viewer(request: Request) -> Viewer | None:
    """The viewer of a page; an expired or broken cookie counts as not signed in."""
    try:
        return await optional_viewer(request)
    except NotSignedIn:
        return None


PageViewer = Annotated[Viewer | None, Depends(page_viewer)]
CountyParam = Annotated[
    str | None, Query(pattern=r"^[0-9]{6}$", description="the county to show (one the user holds)")
]


def _place(conn: ConnectionDep, viewer: Viewer, county: str | None) -> Place | None:
    """The county the page shows, with the viewer's others to switch to (None before any)."""
    held = counties.held(conn, viewer)
    if county is not None:
        counties.narrow(conn, viewer, (county,))  # unknown: 404; not the viewer's: 403
    chosen = next((c for c in held if c.adcode == county), held[0] if held else None)
    if chosen is None:
        return None
    choices = tuple((c.adcode, c.name) for c in held)
    return Place(chosen.adcode, chosen.name, chosen.centre, chosen.bounds, choices)


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


def _shown(
    request: Request, conn: ConnectionDep, viewer: Viewer, county: str | None
) -> Place | Response | None:
    """The county of the page, or the page saying it may not be shown."""
    try:
        return _place(conn, viewer, county)
    except (FeatureNotFound, Forbidden) as refused:
        status = 404 if isinstance(refused, FeatureNotFound) else 403
        return html_page(request, county_refused_page(refused.message_zh), status)


def _basemap(request: Request) -> BaseMap:
    basemap: BaseMap = request.app.state.basemap
    return basemap


def _show(
    request: Request,
    conn: ConnectionDep,
    viewer: Viewer | None,
    county: str | None,
    roles: tuple[Role, ...],
    build: Callable[[BaseMap, Place | None], str],
) -> Response:
    """The page for a viewer its roles allow, of the county asked for (or the viewer's first)."""
    gate = _gate(request, viewer, *roles)
    if gate is not None:
        return gate
    assert viewer is not None  # the gate sends a visitor who is not signed in to the login page
    place = _shown(request, conn, viewer, county)
    if isinstance(place, Response):
        return place
    return _page(request, build(_basemap(request), place))


def _show_with_catalogue(
    request: Request,
    conn: ConnectionDep,
    viewer: Viewer | None,
    county: str | None,
    roles: tuple[Role, ...],
    build: Callable[[BaseMap, list[CaseCategory], Catalogue, Place | None], str],
) -> Response:
    """A page that also names the catalogue's classes and subclasses as the page's county has
    them (its local ones included)."""

    def built(basemap: BaseMap, place: Place | None) -> str:
        shown = catalogue(conn, place.adcode if place is not None else None, None)
        return build(basemap, stored_case_categories(conn), shown, place)

    return _show(request, conn, viewer, county, roles, built)


@router.get("/maps/overview", response_class=HTMLResponse)
def overview(
    request: Request, conn: ConnectionDep, viewer: PageViewer, county: CountyParam = None
) -> Response:
    """综合概览 (every role; an inspector's layers hold only their area)."""
    return _show_with_catalogue(request, conn, viewer, county, (), pages.overview)


@router.get("/maps/planner", response_class=HTMLResponse)
def planner_map(
    request: Request, conn: ConnectionDep, viewer: PageViewer, county: CountyParam = None
) -> Response:
    """网格规划 (planners)."""
    return _show(request, conn, viewer, county, (Role.PLANNER,), planner.planner)


@router.get("/maps/inspector", response_class=HTMLResponse)
def inspector_map(
    request: Request, conn: ConnectionDep, viewer: PageViewer, county: CountyParam = None
) -> Response:
    """我的巡查区域 (inspectors; an admin sees the whole county)."""
    return _show_with_catalogue(
        request, conn, viewer, county, (Role.INSPECTOR,), inspector.inspector
    )


@router.get("/maps/leader", response_class=HTMLResponse)
def leader_map(
    request: Request, conn: ConnectionDep, viewer: PageViewer, county: CountyParam = None
) -> Response:
    """领导驾驶舱 (leaders)."""
    return _show_with_catalogue(request, conn, viewer, county, (Role.LEADER,), leader.dashboard)


@router.get("/maps/leader/timeline", response_class=HTMLResponse)
def leader_timeline(
    request: Request, conn: ConnectionDep, viewer: PageViewer, county: CountyParam = None
) -> Response:
    """案件热力逐周变化 (leaders)."""
    return _show_with_catalogue(request, conn, viewer, county, (Role.LEADER,), leader.timeline)


@router.get("/maps/command", response_class=HTMLResponse)
def command_map(
    request: Request, conn: ConnectionDep, viewer: PageViewer, county: CountyParam = None
) -> Response:
    """大指挥 (the command centre's dispatchers; leaders, who read every position, watch it too)."""
    return _show(request, conn, viewer, county, (Role.DISPATCHER, Role.LEADER), command.command)
