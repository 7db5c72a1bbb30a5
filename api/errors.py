"""One table from error types to HTTP statuses, and the JSON body every error answers with."""

from __future__ import annotations

import html
from collections.abc import Callable

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.routing import iter_route_contexts
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from api import metrics, requestid
from layers.errors import (
    AccountError,
    BackupError,
    BadQuery,
    CitygridError,
    ConcurrentChange,
    DatabaseUnreachable,
    DataFileError,
    FeatureNotFound,
    Forbidden,
    GridEditRefused,
    GridRuleBroken,
    InvalidFeature,
    InvalidValue,
    LengthRequired,
    MigrationError,
    NotSignedIn,
    OutsideEveryCounty,
    PayloadTooLarge,
    PostgisMissing,
    PreconditionFailed,
    PreconditionRequired,
    QueryTimeout,
    SetupError,
    StateConflict,
    TooManyAttempts,
    TooManyStreams,
    UnknownLayer,
    UnsupportedMediaType,
)
from layers.store.db import STATEMENT_BUDGET, database_error

STATUS_BY_ERROR: dict[type[CitygridError], int] = {
    DatabaseUnreachable: 503,
    PostgisMissing: 503,
    SetupError: 503,
    DataFileError: 500,
    MigrationError: 503,
    BackupError: 500,  # operators' commands only; never raised by a request
    UnknownLayer: 404,
    FeatureNotFound: 404,
    InvalidFeature: 400,
    InvalidValue: 400,
    OutsideEveryCounty: 422,
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
    PreconditionFailed: 412,
    PreconditionRequired: 428,
    BadQuery: 400,
    GridRuleBroken: 409,
    GridEditRefused: 422,
    NotSignedIn: 401,
    Forbidden: 403,
    TooManyAttempts: 429,
    TooManyStreams: 429,
    AccountError: 400,
    StateConflict: 409,
    ConcurrentChange: 409,
    LengthRequired: 411,
    # The database, our upstream, did not answer within the request kind's time: a gateway
    # timeout, not "unavailable" (the same request would time out again; no Retry-After).
    QueryTimeout: 504,
}


def status_for(exc: CitygridError) -> int:
    """The HTTP status of an error: the entry of its nearest class in the table."""
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 400


def error_body(code: str, message_zh: str, message_en: str, **details: object) -> dict[str, object]:
    """The body of every error answer, with the request's id (错误编号) that finds its log line."""
    body: dict[str, object] = {"code": code, "message": message_zh, "message_en": message_en}
    body |= details
    rid = requestid.current()
    if rid is not None:
        body["request_id"] = rid
    return body


HEADERS_BY_ERROR: dict[type[CitygridError], Callable[[CitygridError], dict[str, str]]] = {
    NotSignedIn: lambda _: {"WWW-Authenticate": "Bearer"},
    TooManyAttempts: lambda exc: {"Retry-After": str(exc.details.get("retry_after", 1))},
    TooManyStreams: lambda _: {"Retry-After": "30"},
    DatabaseUnreachable: lambda exc: {"Retry-After": str(exc.details.get("retry_after", 5))},
}
# Driver and pool errors, turned into domain errors by `layers.store.db.database_error`.
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    DBAPIError,
    DisconnectionError,
    PoolTimeout,
    psycopg.Error,
)

UNAVAILABLE_PAGE = """<!DOCTYPE html>
<html lang="zh-CN">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>暂时无法使用 · citygrid</title></head>
<body>
<h1>系统暂时无法使用</h1>
<p>{message}</p>
<p>错误编号：<code>{request_id}</code>（报告问题时请提供）</p>
<p><a href="">重新加载</a></p>
</body>
</html>
"""


def _wants_page(request: Request) -> bool:
    """Whether the client is a browser loading a page (it asks for HTML, not JSON)."""
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "json" not in accept


def _answer(request: Request, exc: CitygridError) -> Response:
    headers = HEADERS_BY_ERROR.get(type(exc), lambda _: {})(exc)
    status = status_for(exc)
    if status == 503 and _wants_page(request):
        page = UNAVAILABLE_PAGE.format(
            message=html.escape(exc.message_zh), request_id=html.escape(requestid.current() or "-")
        )
        return HTMLResponse(page, status, headers=headers)
    return JSONResponse(
        error_body(exc.code, exc.message_zh, exc.message_en, **exc.details), status, headers=headers
    )


async def _citygrid_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CitygridError)
    return _answer(request, exc)


async def _database_error(request: Request, exc: Exception) -> Response:
    translated = database_error(exc)
    if translated is None:
        raise exc
    if isinstance(translated, QueryTimeout):
        budget = STATEMENT_BUDGET.get()
        metrics.QUERY_TIMEOUTS.labels(budget.kind if budget else "other").inc()
    return _answer(request, translated)


async def _unexpected_error(_: Request, exc: Exception) -> JSONResponse:
    """A 500 that still names its request id, the one thing that finds its log line."""
    body = error_body(
        "internal_error",
        "服务器内部错误：请把错误编号告知管理员",
        "Internal server error: give the administrator the request id",
    )
    rid = requestid.current()
    return JSONResponse(body, 500, headers={requestid.HEADER: rid} if rid else None)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [
        {"location": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]} for e in exc.errors()
    ]
    where = "、".join(dict.fromkeys(str(p["location"]) for p in problems))
    return JSONResponse(
        error_body(
            "invalid_request",
            f"请求参数无效：{where}（允许的取值见 /api 接口文档）",
            f"The request is invalid: {where.replace('、', ', ')} (see the API document at /api)",
            problems=problems,
        ),
        400,
    )


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app answers at the request's path."""
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        pattern = getattr(route, "path_regex", None)
        if pattern is not None and pattern.match(request.scope["path"]):
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.status_code == 405:  # the router names one route's methods; the path may have more
        headers["Allow"] = ", ".join(allowed_methods(request))
    if exc.status_code == 404:
        body = error_body("not_found", "未找到请求的资源", "Not found")
    elif exc.status_code == 405:
        body = error_body("method_not_allowed", "不支持该请求方法", "Method not allowed")
    elif exc.status_code == 400:  # the framework could not parse the body (JSON or form)
        body = error_body("body_unreadable", "无法解析请求体", "The request body cannot be parsed")
    else:
        body = error_body("http_error", str(exc.detail), str(exc.detail))
    return JSONResponse(body, exc.status_code, headers=headers)


class RefuseNul:
    """ASGI middleware refusing a query string holding a NUL character: no text column can store
    or compare it (pure ASGI: no task group or streams per request, as `app.middleware` makes)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer 400 when the query string holds a NUL, else pass the request on."""
        if scope["type"] == "http":
            query = scope.get("query_string", b"")
            if b"%00" in query or b"\x00" in query:
                body = error_body(
                    "nul_character",
                    "查询参数中含有空字符（%00）",
                    "A query parameter holds a NUL character (%00)",
                )
                await JSONResponse(body, 400)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into the common JSON body."""
    app.add_middleware(RefuseNul)
    app.add_exception_handler(CitygridError, _citygrid_error)
    for error in DATABASE_ERRORS:
        app.add_exception_handler(error, _database_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
