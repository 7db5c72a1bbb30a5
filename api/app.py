"""The FastAPI application factory: the app owns its engine through the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import errors
from api.routes import features, meta
from api.settings import DatabaseSettings
from layers.db import make_engine


def create_app(settings: DatabaseSettings) -> FastAPI:
    """Build the application for one database."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.url(), settings.gk_epsg, settings.pool_size)
        app.state.engine = engine
        try:
            yield
        finally:
            engine.dispose()

    app = FastAPI(
        title="citygrid 城市网格化管理空间服务",
        description="Grids, watched layers and cases of a city-management bureau (城管局).",
        version="0.1.0",
        lifespan=lifespan,
    )
    errors.install(app)
    app.include_router(meta.router)
    app.include_router(features.router)
    return app
