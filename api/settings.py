"""Settings, one class per concern, read when constructed from `CITYGRID_*` variables and the
configuration file named by `CITYGRID_CONFIG` (the environment wins)."""

from __future__ import annotations

import os
import secrets
from datetime import time
from pathlib import Path
from typing import Literal

from pydantic import AnyHttpUrl, Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from api.client_address import parse_networks
from api.config_file import CitygridSettings
from gis.topology import CheckOptions
from layers.cases.evaluation import Limits
from layers.cases.worktime import parse_periods
from layers.registry import HOURS_PATTERN
from layers.store.cluster import Cluster
from layers.tracking import coverage
from layers.tracking.alarms import Rules
from layers.tracking.jt808.server import GatewayConfig


class DatabaseSettings(CitygridSettings):
    """Where the data lives: an external server, or the project's own cluster."""

    model_config = SettingsConfigDict(env_prefix="CITYGRID_", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of an existing PostGIS database, as the API's role "
        "(rows only, no DDL); unset = own cluster",
    )
    migration_database_url: str | None = Field(
        default=None,
        description="The same database as the role that owns the schema and runs migrations; "
        "unset = CITYGRID_DATABASE_URL",
    )
    state_dir: Path = Field(default=Path(".citygrid"), description="Where the own cluster lives")
    cluster_port: int = Field(default=55432, ge=1024, le=65535)
    database_name: str = Field(default="citygrid", pattern=r"^[a-z_][a-z0-9_]*$")
    gk_epsg: int | None = Field(
        default=None, ge=4534, le=4554, description="Force one Gauss-Krüger zone for all areas"
    )
    # Each worker holds a connection until its answer is sent, and takes more requests than its
    # share of the clients meanwhile: with 5, eight kept-alive clients on two workers opened and
    # closed about four connections a second beyond the pool (a third of the rate of small pages).
    pool_size: int = Field(default=10, ge=1, le=50)

    @property
    def uses_own_cluster(self) -> bool:
        """Whether the project runs its own PostgreSQL cluster."""
        return self.database_url is None

    def cluster(self) -> Cluster:
        """The project's own cluster."""
        return Cluster(self.state_dir.resolve(), self.cluster_port)

    def url(self) -> str:
        """The SQLAlchemy URL the API connects to (the API's role)."""
        if self.database_url:
            return _with_driver(self.database_url)
        return self.cluster().api_url(self.database_name)

    def migration_url(self) -> str:
        """The SQLAlchemy URL of the schema's owner, who migrates and loads the demo."""
        if self.database_url:
            return _with_driver(self.migration_database_url or self.database_url)
        return self.cluster().url(self.database_name)


def _with_driver(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class ServerSettings(CitygridSettings):
    """How the web server listens."""

    model_config = SettingsConfigDict(env_prefix="CITYGRID_", extra="ignore")

    host: str = Field(default="127.0.0.1", description="Address the API listens on")
    port: int = Field(default=8000, ge=1, le=65535, description="Port the API listens on")
    workers: int = Field(
        default=1, ge=1, le=64, description="API worker processes of `citygrid serve`"
    )
    worker_memory_mb: int = Field(
        default=1024,
        ge=256,
        description="Memory one API worker may use: the service unit's MemoryMax is this times "
        "the workers, plus 256 MB for the process that manages them",
    )
    min_free_disk_mb: int = Field(
        default=2048,
        ge=0,
        description="`citygrid check` warns when the database's or state directory's disk has "
        "less free space (MB)",
    )


class DemoSettings(CitygridSettings):
    """The demo city built by `citygrid demo load`."""

    model_config = SettingsConfigDict(env_prefix="CITYGRID_DEMO_", extra="ignore")

    seed: int = 20231231
    year: int = Field(default=2023, ge=2000, le=2100)
    fume_months: int = Field(
        default=12,
        ge=0,
        le=12,
        description="months of hourly fume readings from January (12: the year, 2.6 million rows)",
    )
    # CITYGRID_DEMO=none: `citygrid run` (and `make run`) start empty, as with --no-demo
    load: Literal["demo", "none"] = Field(
        default="demo", validation_alias="CITYGRID_DEMO", description="demo or none"
    )


class CalendarSettings(CitygridSettings):
    """The working calendar deadlines are counted on: the deployment's default office hours."""

    model_config = SettingsConfigDict(env_prefix="CITYGRID_", extra="ignore")

    working_hours: str = Field(
        default="08:30-12:00,13:30-17:30",
        description="Office periods of a working day for counties with none of their own",
    )
    verify_hours: float = Field(
        default=2,
        gt=0,
        le=80,
        description="Working hours an inspector has to verify (核实) a report from the public, "
        "the hotline or a camera",
    )

    dispatch_hours: float = Field(
        default=1,
        gt=0,
        le=80,
        description="Working hours a dispatcher has to dispatch (派遣) a registered or returned case",
    )
    check_hours: float = Field(
        default=4,
        gt=0,
        le=80,
        description="Working hours an inspector has to check (核查) on site a unit's feedback",
    )
    register_hours: float = Field(
        default=1,
        gt=0,
        le=80,
        description="Working hours the shift leader has to register (立案) a report, from the "
        "report or from its verification on site",
    )
    close_hours: float = Field(
        default=1,
        gt=0,
        le=80,
        description="Working hours the shift leader has to close (结案) a case whose check passed",
    )

    @field_validator("working_hours")
    @classmethod
    def _periods(cls, value: str) -> str:
        parse_periods(value)
        return value

    def periods(self) -> tuple[tuple[time, time], ...]:
        """The default office periods, parsed."""
        return parse_periods(self.working_hours)

    def limits(self) -> Limits:
        """The working-hour limits the evaluation measures the posts' steps against."""
        return Limits(self.dispatch_hours, self.check_hours, self.register_hours, self.close_hours)


class EvaluationSettings(CitygridSettings):
    """The weights of the evaluation's scores: the packaged file or the bureau's own."""

    model_config = SettingsConfigDict(env_prefix="CITYGRID_", extra="ignore")

    evaluation_weights: Path | None = Field(
        default=None,
        description="A TOML file of the evaluation's weights per object and county (as the "
        "packaged evaluation_weights.toml); unset = the packaged one. Read again when it changes",
    )


class WebmapSettings(CitygridSettings):
    """The base map under every page: none (offline), Tianditu, Amap, OSM or a local tile server."""

    model_config = SettingsConfigDict(env_prefix="CITYGRID_", extra="ignore")

    basemap: Literal["none", "tianditu", "amap", "osm", "local"] = "none"
    tianditu_key: str | None = Field(default=None, description="Tianditu (天地图) key, `tk`")
    tile_url: str | None = Field(
        default=None, description="Local tile server, e.g. http://10.0.0.5/{z}/{x}/{y}.png"
    )
    tile_attribution: str = "本地瓦片"

    @model_validator(mode="after")
    def _needs_what_it_names(self) -> WebmapSettings:
        if self.basemap == "tianditu" and not self.tianditu_key:
            raise ValueError(
                "CITYGRID_BASEMAP=tianditu needs CITYGRID_TIANDITU_KEY (天地图需要密钥)"
            )
        if self.basemap == "local" and not (
            self.tile_url and all(p in self.tile_url for p in ("{z}", "{x}", "{y}"))
        ):
            raise ValueError("CITYGRID_BASEMAP=local needs CITYGRID_TILE_URL with {z}, {x} and {y}")
        return self


class EditingSettings(CitygridSettings):
    """Limits on what clients may write."""

    model_config = SettingsConfigDict(env_prefix="CITYGRID_", extra="ignore")

    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    max_vertices: int = Field(default=10_000, ge=4)
    county_tolerance_m: float = Field(
        default=200.0,
        ge=0,
        description="A row this close (metres) to a county's official boundary belongs to it",
    )
    max_upload_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    grid_sliver_m2: float = Field(
        default=100.0, gt=0, description="Grids smaller than this are slivers"
    )
    max_photo_bytes: int = Field(
        default=8 * 1024 * 1024, ge=1024, description="Largest photo sent with a case"
    )
    grid_boundary_tolerance_m: float = Field(
        default=50.0,
        ge=0,
        description="Street grids may miss the county's official boundary by this much",
    )
    grid_snap_m: float = Field(
        default=2.0, ge=0, description="Redrawn edges snap to neighbours within this"
    )
    require_if_match: bool = Field(
        default=False,
        description="Refuse (428) a change without If-Match; unset = last writer wins, audited",
    )

    def check_options(self, sliver_m2: float | None = None) -> CheckOptions:
        """The thresholds of grid checks (a request's own sliver limit first)."""
        return CheckOptions(
            sliver_m2=self.grid_sliver_m2 if sliver_m2 is None else sliver_m2,
            boundary_tolerance_m=self.grid_boundary_tolerance_m,
        )


class BrowserSettings(CitygridSettings):
    """How browsers reach the application: the origin its pages' writes must come from."""

    model_config = SettingsConfigDict(env_prefix="CITYGRID_", extra="ignore")

    public_url: AnyHttpUrl | None = Field(
        default=None,
        description="Address users open, e.g. https://citygrid.example.gov.cn; unset = the "
        "scheme and Host header of each request",
    )

    def public_origin(self) -> str | None:
        """The origin (scheme://host[:port]) of the public URL, or None when unset."""
        if self.public_url is None:
            return None
        url = self.public_url
        default = {"http": 80, "https": 443}.get(url.scheme)
        port = "" if url.port in (None, default) else f":{url.port}"
        return f"{url.scheme}://{url.host}{port}".lower()


class CardSettings(CitygridSettings):
    """The public 门前三包 cards: how many anonymous reports their forms take."""

    model_config = SettingsConfigDict(env_prefix="CITYGRID_CARD_", extra="ignore")

    reports_per_hour: float = Field(
        default=6.0, gt=0, le=3600, description="Reports an address may send per hour"
    )
    report_burst: int = Field(
        default=3, ge=1, le=100, description="Reports an address may send at once"
    )
    merchant_reports_per_hour: float = Field(
        default=12.0, gt=0, le=3600, description="Reports one merchant's card takes per hour"
    )
    merchant_report_burst: int = Field(
        default=6, ge=1, le=1000, description="Reports one merchant's card takes at once"
    )
    form_minutes: int = Field(
        default=120, ge=1, le=24 * 60, description="How long a card's form stays valid"
    )


class AuthSettings(CitygridSettings):
    """Sign-in: the token signing key and lifetimes, the session cookie, the login slowdown."""

    model_config = SettingsConfigDict(env_prefix="CITYGRID_", extra="ignore")

    secret_key: SecretStr | None = Field(
        default=None,
        description="Key signing tokens (32+ characters); unset = one kept in the state directory",
    )
    state_dir: Path = Field(default=Path(".citygrid"), description="Where an unset key is kept")
    token_minutes: int = Field(default=30, ge=1, le=24 * 60, description="Bearer token lifetime")
    session_hours: float = Field(
        default=10.0, gt=0, le=24, description="Page sign-in lifetime (one working shift)"
    )
    cookie_secure: bool = Field(
        default=False, description="Send the session cookie over HTTPS only (set behind TLS)"
    )
    patrol_buffer_m: float = Field(
        default=50.0, ge=0, le=1000, description="How far past their grids inspectors see"
    )
    login_max_failures: int = Field(
        default=5, ge=1, description="Failures of one name from one address before it waits"
    )
    login_block_seconds: float = Field(default=30.0, gt=0)
    login_max_block_seconds: float = Field(default=900.0, gt=0)
    login_client_max_failures: int = Field(
        default=20, ge=1, description="Failures from one address, any names, before it waits"
    )
    login_forget_seconds: float = Field(
        default=3600.0, gt=0, description="Failure counts are forgotten after this quiet spell"
    )
    login_hashes_per_second: float = Field(
        default=2.0, gt=0, description="Password checks a second per address (per process)"
    )
    login_hash_burst: int = Field(
        default=10, ge=1, description="Password checks an address may make at once"
    )
    trusted_proxies: str = Field(
        default="127.0.0.1,::1",
        description="Proxies whose X-Forwarded-For is believed: addresses or CIDRs, comma-separated",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        try:
            parse_networks(value)
        except ValueError as exc:
            raise ValueError(f"CITYGRID_TRUSTED_PROXIES: {exc}") from None
        return value

    def signing_key(self) -> str:
        """The configured key, or the one kept in the state directory (made on first use)."""
        if self.secret_key is not None:
            key = self.secret_key.get_secret_value()
            if len(key) < 32:
                raise ValueError("CITYGRID_SECRET_KEY needs at least 32 characters")
            return key
        path = self.state_dir.resolve() / "secret_key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process made it first
                return path.read_text().strip()
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(48))
        return path.read_text().strip()


class BackupSettings(CitygridSettings):
    """Where `citygrid backup` writes and how many backups it keeps."""

    model_config = SettingsConfigDict(env_prefix="CITYGRID_", extra="ignore")

    backup_dir: Path = Field(
        default=Path(".citygrid/backups"),
        description="Where backups go (best on another disk than the database)",
    )
    backup_keep_daily: int = Field(
        default=7, ge=1, description="Keep the newest backup of each of this many last days"
    )
    backup_keep_monthly: int = Field(
        default=12, ge=0, description="Keep the newest backup of each of this many last months"
    )


class ReportSettings(CitygridSettings):
    """The bulletins (通报): the CJK font their charts and PDFs are drawn with."""

    model_config = SettingsConfigDict(env_prefix="CITYGRID_REPORT_", extra="ignore")

    font: Path | None = Field(
        default=None,
        description="A TrueType font file with Chinese glyphs (default: found by fontconfig, "
        "e.g. Debian's fonts-wqy-microhei)",
    )


class LimitSettings(CitygridSettings):
    """How long one statement of each kind of request may run, and the database pool's bounds."""

    model_config = SettingsConfigDict(env_prefix="CITYGRID_", extra="ignore")

    read_timeout_ms: int = Field(
        default=10_000, ge=0, description="Items, tiles, pages, sign-in and writes (0 = no limit)"
    )
    statistics_timeout_ms: int = Field(
        default=30_000, ge=0, description="Heatmaps, indicators, trends, grid statistics"
    )
    export_timeout_ms: int = Field(default=120_000, ge=0, description="File exports")
    import_timeout_ms: int = Field(default=600_000, ge=0, description="File and grid imports")
    pool_max_overflow: int = Field(
        default=10, ge=0, le=100, description="Connections beyond CITYGRID_POOL_SIZE under load"
    )
    pool_timeout_s: float = Field(
        default=30.0, gt=0, le=300, description="Wait for a free connection before 503"
    )

    def timeout_ms(self, kind: str) -> int:
        """The statement timeout of a kind of request (read, statistics, export, import)."""
        value: int = getattr(self, f"{kind}_timeout_ms")
        return value


class MonitoringSettings(CitygridSettings):
    """Who may read /metrics without an admin's token."""

    model_config = SettingsConfigDict(env_prefix="CITYGRID_", extra="ignore")

    metrics_networks: str = Field(
        default="",
        description="Addresses or CIDRs (comma-separated) whose clients may read /metrics "
        "without signing in, e.g. the Prometheus server; unset = admins only",
    )

    @field_validator("metrics_networks")
    @classmethod
    def _networks(cls, value: str) -> str:
        try:
            parse_networks(value)
        except ValueError as exc:
            raise ValueError(f"CITYGRID_METRICS_NETWORKS: {exc}") from None
        return value


class TrackingSettings(CitygridSettings):
    """The JT/T 808 gateway and the positions it and the phones report."""

    model_config = SettingsConfigDict(env_prefix="CITYGRID_", extra="ignore")

    jt808_host: str = Field(
        default="127.0.0.1", description="Address the JT/T 808 gateway listens on"
    )
    jt808_port: int = Field(
        default=7808, ge=0, le=65535, description="Port of the JT/T 808 gateway"
    )
    jt808_enabled: bool = Field(
        default=True, description="`citygrid run` starts the gateway beside the API"
    )
    jt808_ready_check: bool = Field(
        default=False,
        description="/ready also checks that the gateway listens (on when `citygrid run` starts it)",
    )
    jt808_idle_timeout_s: float = Field(
        default=300.0, gt=0, description="A terminal silent this long is disconnected"
    )
    jt808_max_body: int = Field(
        default=1023, ge=28, le=1023, description="Longest message body accepted (bytes)"
    )
    jt808_max_connections: int = Field(default=10_000, ge=1, description="Terminals at once")
    jt808_linger_ms: float = Field(
        default=5.0, ge=0, le=1000, description="How long positions are gathered before a write"
    )
    position_retention_days: int = Field(
        default=180, ge=1, le=3650, description="Days of positions kept (older partitions dropped)"
    )
    position_future_s: float = Field(
        default=300.0, ge=0, description="How far ahead of the server's clock a position may be"
    )
    position_batch_max: int = Field(
        default=1000, ge=1, le=100_000, description="Positions in one POST /tracking/positions"
    )
    offline_minutes: float = Field(
        default=10.0, gt=0, description="A tracker silent this long is shown offline"
    )
    track_max_days: int = Field(default=31, ge=1, description="Longest period of one track read")
    dwell_minutes: float = Field(
        default=10.0,
        gt=0,
        le=1440,
        description="A muck truck stopped this long outside every site and yard raises an alarm",
    )
    dwell_night_minutes: float = Field(
        default=5.0, gt=0, le=1440, description="The same stop limit at night (stricter)"
    )
    night_hours: str = Field(
        default="22:00-06:00",
        pattern=HOURS_PATTERN,
        description="When the night stop limit applies (China time, HH:MM-HH:MM)",
    )
    moving_kmh: float = Field(
        default=1.0, gt=0, le=50, description="From this speed a vehicle counts as moving"
    )
    offline_alarm_minutes: float = Field(
        default=10.0,
        gt=0,
        description="A terminal silent this long with its engine on raises an `offline` alarm",
    )
    offline_check_s: float = Field(
        default=60.0, gt=0, le=3600, description="How often the gateway looks for silent terminals"
    )
    alarms_max: int = Field(
        default=10_000, ge=1, le=100_000, description="Alarms in one GET /tracking/alarms"
    )
    live_interval_s: float = Field(
        default=1.0, ge=0.05, le=60, description="How long a live map's changes are gathered"
    )
    live_heartbeat_s: float = Field(
        default=15.0, ge=1, le=300, description="A silent live stream sends a comment this often"
    )
    live_max_streams: int = Field(
        default=200, ge=1, le=10_000, description="Live streams one API process serves at once"
    )
    live_max_streams_per_viewer: int = Field(
        default=5, ge=1, le=100, description="Live streams one account keeps open at once"
    )
    live_alarm_hours: float = Field(
        default=24.0, gt=0, le=720, description="A live map starts with the alarms of these hours"
    )

    presence_gap_minutes: float = Field(
        default=5.0,
        gt=0,
        le=120,
        description="Positions further apart count neither as time on duty nor as a track",
    )
    coverage_buffer_m: float = Field(
        default=30.0, gt=0, le=200, description="A street this close to a track counts as passed"
    )
    sweeping_max_kmh: float = Field(
        default=20.0,
        gt=0,
        le=120,
        description="A sanitation vehicle faster than this is not sweeping",
    )

    def coverage_rules(self) -> coverage.Rules:
        """How positions become time on duty, passed streets and swept road segments."""
        return coverage.Rules(
            gap_minutes=self.presence_gap_minutes,
            buffer_m=self.coverage_buffer_m,
            sweeping_kmh=self.sweeping_max_kmh,
            max_days=self.track_max_days,
        )

    def alarm_rules(self) -> Rules:
        """When stops, silences and speeds raise alarms."""
        return Rules(
            dwell_minutes=self.dwell_minutes,
            dwell_night_minutes=self.dwell_night_minutes,
            night_hours=self.night_hours,
            moving_kmh=self.moving_kmh,
            offline_minutes=self.offline_alarm_minutes,
        )

    def gateway(self) -> GatewayConfig:
        """The gateway's configuration."""
        return GatewayConfig(
            host=self.jt808_host,
            port=self.jt808_port,
            idle_timeout_s=self.jt808_idle_timeout_s,
            max_body=self.jt808_max_body,
            max_connections=self.jt808_max_connections,
            linger_s=self.jt808_linger_ms / 1000,
            retention_days=self.position_retention_days,
            future_s=self.position_future_s,
            alarm_rules=self.alarm_rules(),
            offline_check_s=self.offline_check_s,
        )
