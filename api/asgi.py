"""ASGI entry for process managers: `uvicorn --factory api.asgi:build --workers N
--no-proxy-headers` (the app itself reads X-Forwarded-For from CITYGRID_TRUSTED_PROXIES)."""

from __future__ import annotations

from fastapi import FastAPI

from api.app import create_app
from api.settings import DatabaseSettings


def build() -> FastAPI:
    """The application configured from the CITYGRID_* environment when called."""
    return create_app(DatabaseSettings())
