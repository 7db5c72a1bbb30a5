"""Each request observed: its id, its statement budget, its metrics and one JSON log line.

A log line names the route template, never the raw path or query string, and the user name,
never a token, password, cookie or body: what a client sends stays out of the log.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import metrics, requestid
from layers.store.db import STATEMENT_BUDGET, StatementBudget

ACCESS = logging.getLogger("citygrid.access")
# Fields a record may carry (logger.info(..., extra={...})), written after the fixed ones.
FIELDS = ("method", "route", "status", "duration_ms", "user", "code")


def route_template(scope: Scope) -> str:
    """The template of the route that answered (`/collections/{collectionId}/items`)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else metrics.UNMATCHED


def _user(scope: Scope) -> str | None:
    viewer = scope.get("state", {}).get("viewer")
    name = getattr(viewer, "username", None)
    return name if isinstance(name, str) else None


class Observe:
    """ASGI middleware: request id, the read statement budget, metrics and the access line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request, observed."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = requestid.choose(Headers(scope=scope).get(requestid.HEADER))
        # Not reset afterwards: the outermost handler of an unexpected error reads them too.
        requestid.REQUEST_ID.set(rid)
        STATEMENT_BUDGET.set(StatementBudget(scope["app"].state.limits.read_timeout_ms))
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[requestid.HEADER] = rid
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            ACCESS.exception("unexpected error", extra={"route": route_template(scope)})
            raise
        finally:
            seconds = time.perf_counter() - started
            route, method = route_template(scope), scope["method"]
            metrics.observe_request(route, method, status, seconds)
            level = logging.ERROR if status >= 500 else logging.INFO
            ACCESS.log(
                level,
                f"{method} {route} {status}",
                extra={
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 1),
                    "user": _user(scope),
                },
            )


class JsonLines(logging.Formatter):
    """One JSON object a line: time, level, logger, message, request_id and the record's fields."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        doc: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or requestid.current(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                doc[name] = value
        if record.exc_info:
            doc["error"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


def log_config(level: str = "INFO") -> dict[str, Any]:
    """A logging configuration (for uvicorn's `log_config`) writing JSON lines to stderr; uvicorn's
    own access log is left out: `Observe` writes one without query strings."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonLines}},
        "handlers": {"stderr": handler},
        "loggers": {
            "citygrid": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
        "root": {"handlers": ["stderr"], "level": "WARNING"},
    }
