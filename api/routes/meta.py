"""Landing page, health and the list of layers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from api.auth import ViewerDep
from api.deps import EngineDep
from api.openapi import DOCUMENT_PATH, OPENAPI
from layers.db import check_connection
from layers.layerinfo import layer_summaries

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


@router.get("/health", summary="Health / 健康检查")
def health(engine: EngineDep) -> dict[str, str]:
    """Answer 200 when the database answers, 503 otherwise."""
    check_connection(engine)
    return {"status": "ok", "database": "ok"}


@router.get("/layers", summary="Layers and row counts / 图层与数量")
def layers(engine: EngineDep, viewer: ViewerDep) -> list[dict[str, Any]]:
    """Every layer of the registry with its Chinese title and how many rows it holds."""
    with engine.connect() as conn:
        return layer_summaries(conn, viewer)
