"""Landing page, health and the list of layers."""

from __future__ import annotations

import ipaddress
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api import client_address, metrics, readiness
from api.auth import OptionalViewerDep, ViewerDep
from api.deps import EngineDep
from api.errors import error_body
from api.openapi import DOCUMENT_PATH, OPENAPI
from layers.engine.layerinfo import layer_summaries
from layers.errors import Forbidden, NotSignedIn
from layers.registry import Role

router = APIRouter()


@router.get("/", summary="Landing page / 服务首页")
def landing(request: Request) -> dict[str, Any]:
    """Where to go from here."""
    base = str(request.base_url).rstrip("/")
    return {
        "title": "citygrid 城市网格化管理空间服务",
        "description": "城管网格、违法建设、户外广告、扬尘现场、停车场与案件的空间数据服务",
        "links": [
            {"rel": "self", "href": f"{base}/", "type": "application/json", "title": "本页"},
            {
                "rel": "service-doc",
                "href": f"{base}/docs",
                "type": "text/html",
                "title": "接口文档",
            },
            {
                "rel": "service-desc",
                "href": f"{base}{DOCUMENT_PATH}",
                "type": OPENAPI,
                "title": "OpenAPI",
            },
            {
                "rel": "conformance",
                "href": f"{base}/conformance",
                "type": "application/json",
                "title": "符合性声明",
            },
            {
                "rel": "data",
                "href": f"{base}/collections",
                "type": "application/json",
                "title": "图层",
            },
        ],
    }


@router.get("/health", summary="Liveness / 存活检查")
def health() -> dict[str, str]:
    """200 while the process answers, whatever the database does (readiness is /ready)."""
    return {"status": "ok"}


@router.get(
    "/ready",
    summary="Readiness / 就绪检查",
    responses={503: {"description": "A check failed; each check is named with its status"}},
)
async def ready(request: Request, engine: EngineDep) -> JSONResponse:
    """200 when every check passes (database, migrations, the gateway beside it), else 503 naming the failed ones."""
    found = await run_in_threadpool(readiness.run, engine, request.app.state.ready_checks)
    checks = [
        {"name": name, "status": "ok"}
        if problem is None
        else {"name": name, "status": "failed", "problem": problem[0], "problem_zh": problem[1]}
        for name, problem in found
    ]
    failed = [name for name, problem in found if problem is not None]
    if not failed:
        return JSONResponse({"status": "ok", "checks": checks})
    body = error_body(
        "not_ready",
        f"服务尚未就绪，未通过的检查：{'、'.join(failed)}",
        f"The service is not ready; failed checks: {', '.join(failed)}",
        status="unready",
        checks=checks,
    )
    return JSONResponse(body, 503, headers={"Retry-After": "5"})


@router.get(
    "/metrics",
    summary="Prometheus metrics / 监控指标",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
def metrics_page(request: Request, viewer: OptionalViewerDep) -> Response:
    """Prometheus text format, for an admin's token or a client in CITYGRID_METRICS_NETWORKS."""
    state = request.app.state
    client = client_address.of_request(request, state.trusted_proxies)
    if not _inside(client, state.metrics_networks):
        if viewer is None:
            raise NotSignedIn(
                "Metrics are for admins or the networks CITYGRID_METRICS_NETWORKS names.",
                "监控指标仅供管理员或 CITYGRID_METRICS_NETWORKS 所列网络读取。",
            )
        if viewer.role is not Role.ADMIN:
            raise Forbidden(
                "Metrics are for admins.", "监控指标仅供管理员读取。", code="admins_only"
            )
    return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE)


def _inside(address: str, networks: tuple[client_address.Network, ...]) -> bool:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in networks)


@router.get("/layers", summary="Layers and row counts / 图层与数量")
def layers(engine: EngineDep, viewer: ViewerDep) -> list[dict[str, Any]]:
    """Every layer of the registry with its Chinese title and how many rows it holds."""
    with engine.connect() as conn:
        return layer_summaries(conn, viewer)
