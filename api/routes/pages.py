"""The map pages, rendered by the builders in `webmap/` (they hold no data: the browser asks the API)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from webmap import pages, planner
from webmap.basemaps import BaseMap

router = APIRouter(include_in_schema=False)


def _basemap(request: Request) -> BaseMap:
    basemap: BaseMap = request.app.state.basemap
    return basemap


@router.get("/maps/overview", response_class=HTMLResponse)
def overview(request: Request) -> HTMLResponse:
    """综合概览."""
    return HTMLResponse(pages.overview(_basemap(request)))


@router.get("/maps/planner", response_class=HTMLResponse)
def planner_map(request: Request) -> HTMLResponse:
    """网格规划."""
    return HTMLResponse(planner.planner(_basemap(request)))
