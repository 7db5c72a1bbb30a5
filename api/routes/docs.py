"""The interactive API documentation, with Swagger UI served by the application (intranet-safe)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

from api.openapi import DOCUMENT_PATH
from api.security import html_page
from webmap.assets import local_url

router = APIRouter(include_in_schema=False)
SWAGGER = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/"


@router.get("/docs", response_class=HTMLResponse)
def docs(request: Request) -> HTMLResponse:
    """接口文档 (Swagger UI)."""
    page = get_swagger_ui_html(
        openapi_url=DOCUMENT_PATH,
        title="citygrid 接口文档",
        swagger_js_url=local_url(SWAGGER + "swagger-ui-bundle.js"),
        swagger_css_url=local_url(SWAGGER + "swagger-ui.css"),
        swagger_favicon_url=local_url("https://fastapi.tiangolo.com/img/favicon.png"),
    )
    return html_page(request, bytes(page.body).decode())
