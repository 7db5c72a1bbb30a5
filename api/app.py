"""The FastAPI application factory: the app owns its engine through the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import timedelta
from importlib.resources import files

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DBAPIError

from api import errors, metrics, openapi, readiness
from api.auth import AccountCache, ClaimsCache, Issuer, RevokedSessions, app_issuer
from api.client_address import parse_networks
from api.deps import declared_body_type
from api.fast_item import FastItem
from api.observe import Observe
from api.report_budget import ReportBudget
from api.routes import (
    auth,
    cases,
    catalogue,
    components,
    docs,
    editing,
    features,
    grids,
    merchants,
    meta,
    pages,
    reports,
    routing,
    stats,
    system_stats,
    tilesets,
    transfer,
    units,
)
from api.routes import fume as fume_routes
from api.routes import live as live_routes
from api.routes import presence as presence_routes
from api.routes import tracking as tracking_routes
from api.security import SecurityHeaders, tile_sources
from api.settings import (
    AuthSettings,
    BrowserSettings,
    CalendarSettings,
    CardSettings,
    DatabaseSettings,
    EditingSettings,
    EvaluationSettings,
    LimitSettings,
    MonitoringSettings,
    ReportSettings,
    TrackingSettings,
    WebmapSettings,
)
from api.sign_in_budget import HashBudget
from layers.cases.evalweights import WeightsCache
from layers.cases.workcalendar import Calendars
from layers.engine.tiles import TileCache
from layers.store.aio import read_pool
from layers.store.db import make_engine
from layers.store.roles import API_APPLICATION
from layers.store.versions import VersionWatcher
from layers.tracking.live import TrackingFeed
from webmap.basemaps import resolve_basemap


def create_app(
    settings: DatabaseSettings,
    webmap: WebmapSettings | None = None,
    editing_limits: EditingSettings | None = None,
    auth_settings: AuthSettings | None = None,
    browser: BrowserSettings | None = None,
    limits: LimitSettings | None = None,
    monitoring: MonitoringSettings | None = None,
    calendar: CalendarSettings | None = None,
    evaluation: EvaluationSettings | None = None,
    report_settings: ReportSettings | None = None,
    tracking: TrackingSettings | None = None,
    card_settings: CardSettings | None = None,
) -> FastAPI:
    """Build the application for one database, one base-map choice, editing limits, sign-in,
    the address browsers use, statement and pool limits, who may read the metrics, the
    default office hours and step limits, the evaluation's weights and the bulletins' font."""
    webmap = webmap or WebmapSettings()
    calendar = calendar or CalendarSettings()
    limits = limits or LimitSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(
            settings.url(),
            settings.gk_epsg,
            settings.pool_size,
            API_APPLICATION,
            max_overflow=limits.pool_max_overflow,
            pool_timeout_s=limits.pool_timeout_s,
        )
        metrics.watch_pool(engine, limits.pool_max_overflow)
        app.state.engine = engine
        app.state.read_pool = read_pool(
            engine.url,
            limits.read_timeout_ms,
            settings.gk_epsg,
            API_APPLICATION,
            settings.pool_size,
        )
        await app.state.read_pool.open(wait=False)  # connects in the background, as the engine
        with suppress(DBAPIError):  # down at start: read with the first token instead
            app_issuer(app.state)
        app.state.layer_versions = VersionWatcher(engine.url, API_APPLICATION)
        app.state.layer_versions.start()
        app.state.calendars = Calendars(calendar.periods(), app.state.layer_versions.current)
        app.state.tracking_feed = TrackingFeed(
            engine.url,
            API_APPLICATION,
            app.state.tracking.live_max_streams,
            app.state.tracking.live_max_streams_per_viewer,
        )
        live_routes.end_streams_on_exit(app.state.tracking_feed)
        try:
            yield
        finally:
            app.state.tracking_feed.stop()
            app.state.layer_versions.stop()
            await app.state.read_pool.close()
            engine.dispose()
            metrics.forget_process()

    app = FastAPI(
        title="citygrid 城市网格化管理空间服务",
        description="Grids, watched layers and cases of a city-management bureau (城管局).",
        version="0.1.0",
        lifespan=lifespan,
        openapi_url=None,  # served by api.openapi in its own media type
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(declared_body_type)],
    )
    app.state.basemap = resolve_basemap(
        webmap.basemap, webmap.tianditu_key, webmap.tile_url, webmap.tile_attribution
    )
    app.state.tile_cache = TileCache(on_lookup=metrics.tile_lookup)
    app.state.limits = limits
    app.state.verify_within = timedelta(hours=calendar.verify_hours)
    app.state.step_limits = calendar.limits()
    app.state.weights = WeightsCache((evaluation or EvaluationSettings()).evaluation_weights)
    app.state.metrics_networks = parse_networks(
        (monitoring or MonitoringSettings()).metrics_networks
    )
    app.state.editing = editing_limits or EditingSettings()
    app.state.reports = report_settings or ReportSettings()
    app.state.tracking = tracking = tracking or TrackingSettings()
    app.state.ready_checks = readiness.CHECKS
    if tracking.jt808_ready_check:
        probe = "127.0.0.1" if tracking.jt808_host in ("0.0.0.0", "::") else tracking.jt808_host
        app.state.ready_checks += (readiness.gateway(probe, tracking.jt808_port),)
    auth_settings = auth_settings or AuthSettings()
    app.state.issuer = Issuer.from_settings(auth_settings)
    app.state.trusted_proxies = parse_networks(auth_settings.trusted_proxies)
    app.state.hash_budget = HashBudget(
        auth_settings.login_hashes_per_second, auth_settings.login_hash_burst
    )
    app.state.accounts = AccountCache()
    app.state.revoked_sessions = RevokedSessions()
    app.state.claims = ClaimsCache()
    browser = browser or BrowserSettings()
    app.state.public_origin = browser.public_origin()
    app.state.public_base = str(browser.public_url).rstrip("/") if browser.public_url else None
    app.state.cards = card_settings = card_settings or CardSettings()
    app.state.card_address_budget = ReportBudget(
        card_settings.reports_per_hour, card_settings.report_burst, "from this address", "该地址"
    )
    app.state.card_merchant_budget = ReportBudget(
        card_settings.merchant_reports_per_hour,
        card_settings.merchant_report_burst,
        "on this merchant",
        "对该商户的",
    )
    errors.install(app)
    openapi.install(app)
    app.include_router(meta.router)
    app.include_router(docs.router)
    app.include_router(auth.router)
    app.include_router(auth.pages)
    app.include_router(features.public)
    app.include_router(fume_routes.router)  # before the generic collections it narrows
    app.include_router(features.router)
    app.include_router(tilesets.router)
    app.include_router(editing.router)
    app.include_router(grids.router)
    app.include_router(cases.router)
    app.include_router(stats.router)
    app.include_router(presence_routes.router)
    app.include_router(system_stats.router)
    app.include_router(reports.router)
    app.include_router(transfer.router)
    app.include_router(units.router)
    app.include_router(routing.router)
    app.include_router(catalogue.router)
    app.include_router(components.router)
    app.include_router(tracking_routes.router)
    app.include_router(live_routes.router)
    app.include_router(merchants.router)
    app.include_router(merchants.pages)
    app.include_router(pages.router)
    app.mount(
        "/static", StaticFiles(directory=str(files("webmap").joinpath("static"))), name="static"
    )
    app.add_middleware(FastItem)  # innermost: the plain single-item GET, see api/fast_item.py
    app.add_middleware(SecurityHeaders, image_sources=tile_sources(app.state.basemap.tile_urls))
    app.add_middleware(Observe)  # outermost: its id and timing cover every other layer
    return app
