"""Settings, one class per concern, read from `CITYGRID_*` variables when constructed."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from layers.cluster import Cluster


class DatabaseSettings(BaseSettings):
    """Where the data lives: an external server, or the project's own cluster."""

    model_config = SettingsConfigDict(env_prefix="CITYGRID_", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of an existing PostGIS database; unset = own cluster",
    )
    state_dir: Path = Field(default=Path(".citygrid"), description="Where the own cluster lives")
    cluster_port: int = Field(default=55432, ge=1024, le=65535)
    database_name: str = Field(default="citygrid", pattern=r"^[a-z_][a-z0-9_]*$")
    gk_epsg: int | None = Field(
        default=None, ge=4534, le=4554, description="Force one Gauss-Krüger zone for all areas"
    )
    pool_size: int = Field(default=5, ge=1, le=50)

    @property
    def uses_own_cluster(self) -> bool:
        """Whether the project runs its own PostgreSQL cluster."""
        return self.database_url is None

    def cluster(self) -> Cluster:
        """The project's own cluster."""
        return Cluster(self.state_dir.resolve(), self.cluster_port)

    def url(self) -> str:
        """The SQLAlchemy URL to connect to."""
        if self.database_url:
            return _with_driver(self.database_url)
        return self.cluster().url(self.database_name)


def _with_driver(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class ServerSettings(BaseSettings):
    """How the web server listens."""

    model_config = SettingsConfigDict(env_prefix="CITYGRID_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)


class DemoSettings(BaseSettings):
    """The demo city built by `citygrid demo load`."""

    model_config = SettingsConfigDict(env_prefix="CITYGRID_DEMO_", extra="ignore")

    seed: int = 20231231
    year: int = Field(default=2023, ge=2000, le=2100)
