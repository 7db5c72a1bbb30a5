"""One feature answered without the framework's routing and dependency resolution.

The single item is the API's smallest request: its query takes a fraction of a millisecond, so
matching the path against every route and resolving its five dependencies cost more than the
database. For the plain request (GET, no query string, a token the caches vouch for) this
middleware calls the same functions the route's dependencies and body call — the registry, the
sign-in check from memory, the route's statement with the viewer's scope in its SQL (run as one
prepared statement on the event loop's read pool, `layers.store.aio`, rather than in a worker
thread's transaction), and `routes.features.item_response` — and answers. Anything else, and
every refusal (an unknown layer, a token the database must check, a feature out of reach), goes
through the framework, which answers it as it answers every other request. `tests/test_fast_item.py` checks that the
framework sends every layer's item path to that same route, and that both answer alike.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from api.auth import presented_token, remembered_viewer
from api.errors import DATABASE_ERRORS
from api.routes import features as routes
from layers.engine import features
from layers.engine.access import Viewer
from layers.engine.crs import parse_crs
from layers.errors import CitygridError
from layers.registry import LAYERS, Layer

REFUSED: tuple[type[Exception], ...] = (CitygridError, *DATABASE_ERRORS)
ITEM_PATH = re.compile(r"/collections/([A-Za-z0-9_]+)/items/([0-9]{1,18})")


class FastItem:
    """ASGI middleware: the plain single-item GET, answered by the route's own functions."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.route = item_route()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer the plain single-item GET, or pass the request on."""
        if scope["type"] == "http" and scope["method"] == "GET" and not scope["query_string"]:
            match = ITEM_PATH.fullmatch(scope["path"])
            if match is not None and match[1] in LAYERS:
                answer = await self._answer(scope, LAYERS[match[1]], int(match[2]))
                if answer is not None:
                    await answer(scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, layer: Layer, feature_id: int) -> Response | None:
        """The response, or None when the framework should answer."""
        request = Request(scope)
        state = request.app.state
        viewer = _viewer(request, state)
        if viewer is None:
            return None
        crs = parse_crs(None, "crs")  # what the route reads when `crs` is not given
        try:
            body, etag = await features.read_item_async(
                state.read_pool, layer, feature_id, crs, viewer
            )
        except REFUSED:  # refused (or 503) by the framework, in its own words
            return None
        scope["route"] = self.route  # the access log and metrics name the template
        scope.setdefault("state", {})["viewer"] = viewer
        return routes.item_response(request, layer, crs, body, etag)


def item_route() -> APIRoute:
    """The route of the single item, whose template the access log and metrics name."""
    return next(
        r
        for r in routes.router.routes
        if isinstance(r, APIRoute) and r.endpoint is routes.item and "GET" in (r.methods or ())
    )


def _viewer(request: Request, state: Any) -> Viewer | None:
    """The signed-in viewer when memory may vouch for the token, else None."""
    try:
        presented = presented_token(request)
        if presented is None or state.issuer.deployment is None:
            return None
        return remembered_viewer(state, presented.token)
    except CitygridError:
        return None
