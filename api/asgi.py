"""ASGI entry for process managers: `uvicorn --factory api.asgi:build --workers N
--no-proxy-headers` (the app itself reads X-Forwarded-For from CITYGRID_TRUSTED_PROXIES). With
several workers, set PROMETHEUS_MULTIPROC_DIR to a directory emptied before each start, so that
/metrics sums every worker (`citygrid serve --workers N` does both)."""

from __future__ import annotations

from fastapi import FastAPI

from api.app import create_app
from api.settings import DatabaseSettings


def build() -> FastAPI:
    """The application configured from the CITYGRID_* environment when called."""
    return create_app(DatabaseSettings())
