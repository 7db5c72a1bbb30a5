"""The peers citygrid is measured against, started on the benchmark database: tipg and pygeoapi
(its PostgreSQL provider), each from its own venv under bench/ (`make bench` makes them)."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

from scaled import start

BENCH = Path(__file__).resolve().parent
TIPG_PYTHON = BENCH / ".venv-tipg" / "bin" / "python"
PYGEOAPI_BIN = BENCH / ".venv-pygeoapi" / "bin"
TIPG_VERSION = "1.6.1"
PYGEOAPI_VERSION = "0.21.0"
# the layers the items rows ask for, with the field pygeoapi filters `datetime` on
PYGEOAPI_LAYERS = {"cases": "reported_at"}
STORAGE_CRS = "http://www.opengis.net/def/crs/EPSG/0/4490"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
# every server of a benchmark runs its workers as `citygrid serve` does (api/workers.py)
SERVED = {"PYTHONPATH": str(BENCH.parent)}


def tipg(url: str, port: int, workers: int) -> subprocess.Popen[bytes]:
    """tipg under uvicorn, serving the public schema of the database at `url`."""
    command = [
        str(TIPG_PYTHON), "-m", "api.workers", "tipg.main:app",
        "--port", str(port), "--workers", str(workers), "--log-level", "warning",
    ]  # fmt: skip
    env = {
        **SERVED,
        "DATABASE_URL": url.replace("postgresql+psycopg://", "postgresql://"),
        "TIPG_DB_SCHEMAS": '["public"]',
        "TIPG_MAX_FEATURES_PER_QUERY": "10000",
        "TIPG_TABLE_CONFIG__public_cases__datetimecol": "reported_at",
    }
    return start(command, env, port)


def pygeoapi_config(url: str, port: int) -> dict[str, object]:
    """pygeoapi's configuration: the PostgreSQL provider on each layer the items rows use."""
    parts = urlsplit(url)
    data = {
        "host": parts.hostname,
        "port": parts.port or 5432,
        "dbname": parts.path.lstrip("/"),
        "user": unquote(parts.username or ""),
        "password": unquote(parts.password or ""),
        "search_path": ["public"],
    }
    base = f"http://127.0.0.1:{port}"
    resources = {
        layer: {
            "type": "collection",
            "title": layer,
            "description": layer,
            "keywords": [layer],
            "extents": {"spatial": {"bbox": [121.0, 31.5, 122.2, 32.2]}},
            "providers": [
                {
                    "type": "feature",
                    "name": "PostgreSQL",
                    "data": data,
                    "id_field": "id",
                    "table": layer,
                    "geom_field": "geom",
                    "time_field": time_field,
                    "storage_crs": STORAGE_CRS,
                    "crs": [STORAGE_CRS, CRS84],
                }
            ],
        }
        for layer, time_field in PYGEOAPI_LAYERS.items()
    }
    return {
        "server": {
            "bind": {"host": "127.0.0.1", "port": port},
            "url": base,
            "mimetype": "application/json; charset=UTF-8",
            "encoding": "utf-8",
            "languages": ["en-US"],
            "pretty_print": False,
            "limits": {"default_items": 10, "max_items": 10_000, "on_exceed": "error"},
            "map": {"url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png", "attribution": "OSM"},
        },
        "logging": {"level": "ERROR"},
        "metadata": {
            "identification": {
                "title": "citygrid bench",
                "description": "peer under benchmark",
                "keywords": ["bench"],
                "keywords_type": "theme",
                "terms_of_service": base,
                "url": base,
            },
            "license": {"name": "CC-BY 4.0", "url": base},
            "provider": {"name": "citygrid bench", "url": base},
            "contact": {"name": "citygrid bench", "url": base},
        },
        "resources": resources,
    }


def pygeoapi(url: str, port: int, workers: int, folder: str) -> subprocess.Popen[bytes]:
    """pygeoapi's Starlette app under uvicorn, configured in `folder` (its YAML configuration,
    written as JSON, which YAML reads, and the OpenAPI document it generates from it)."""
    config, openapi = Path(folder) / "pygeoapi.yml", Path(folder) / "openapi.yml"
    config.write_text(json.dumps(pygeoapi_config(url, port), indent=1))
    env = {"PYGEOAPI_CONFIG": str(config), "PYGEOAPI_OPENAPI": str(openapi)}
    subprocess.run(
        [str(PYGEOAPI_BIN / "pygeoapi"), "openapi", "generate", str(config), "-of", str(openapi)],
        env={"PATH": str(PYGEOAPI_BIN), **env},
        check=True,
        capture_output=True,
    )
    command = [
        str(PYGEOAPI_BIN / "python"), "-m", "api.workers", "pygeoapi.starlette_app:APP",
        "--port", str(port), "--workers", str(workers), "--log-level", "warning",
    ]  # fmt: skip
    return start(command, {**SERVED, **env}, port)


def scratch() -> tempfile.TemporaryDirectory[str]:
    """A folder for a peer's generated configuration, removed when the benchmark ends."""
    return tempfile.TemporaryDirectory(prefix="citygrid-peers-")
