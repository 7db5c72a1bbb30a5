"""The files `citygrid service install` writes: systemd units and an example nginx site."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import jinja2

from api.client_address import parse_networks
from api.settings import AuthSettings, DatabaseSettings, EditingSettings, ServerSettings

UNIT_DIR = Path("etc/systemd/system")
NGINX_DIR = Path("etc/nginx/sites-available")
TEMPLATES = {
    UNIT_DIR / "citygrid-api.service": "citygrid-api.service.j2",
    UNIT_DIR / "citygrid-gateway.service": "citygrid-gateway.service.j2",
    UNIT_DIR / "citygrid-merchants-rerate.service": "citygrid-merchants-rerate.service.j2",
    UNIT_DIR / "citygrid-merchants-rerate.timer": "citygrid-merchants-rerate.timer.j2",
    NGINX_DIR / "citygrid.conf": "nginx-citygrid.conf.j2",
}


@dataclass(frozen=True)
class Install:
    """Who runs the service, from where, and how many API workers."""

    config: Path
    citygrid: Path
    user: str
    workers: int
    server_name: str


MANAGER_MEMORY_MB = 256  # uvicorn's manager process and the page cache it leaves


@dataclass(frozen=True)
class ServiceFile:
    """One file to write, its path relative to the install prefix."""

    path: Path
    text: str


def _loopback_trusted(trusted_proxies: str) -> bool:
    loopback = ipaddress.ip_address("127.0.0.1")
    return any(loopback in net for net in parse_networks(trusted_proxies))


def render(
    install: Install,
    database: DatabaseSettings,
    server: ServerSettings,
    editing: EditingSettings,
    auth: AuthSettings,
) -> list[ServiceFile]:
    """The unit files and nginx example, rendered from the settings."""
    env = jinja2.Environment(
        autoescape=False,  # configuration files, not HTML
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    host = "127.0.0.1" if server.host in ("0.0.0.0", "::", "localhost") else server.host
    values = {
        "config": install.config,
        "citygrid": install.citygrid,
        "user": install.user,
        "group": install.user,
        "workers": install.workers,
        "memory_max_mb": install.workers * server.worker_memory_mb + MANAGER_MEMORY_MB,
        "state_dir": database.state_dir.resolve(),
        "own_cluster": database.uses_own_cluster,
        "server_name": install.server_name,
        "upstream": f"[{host}]:{server.port}" if ":" in host else f"{host}:{server.port}",
        "max_upload_bytes": editing.max_upload_bytes,
        "trusted_proxies": auth.trusted_proxies,
        "proxy_address": "127.0.0.1",
        # nginx on the same machine connects from loopback; elsewhere only the admin knows.
        "proxy_trusted": not _is_loopback(host) or _loopback_trusted(auth.trusted_proxies),
    }
    folder = files("api").joinpath("templates")
    return [
        ServiceFile(path, env.from_string(folder.joinpath(name).read_text("utf-8")).render(values))
        for path, name in TEMPLATES.items()
    ]


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
