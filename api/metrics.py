"""Prometheus metrics of the service, and their exposition (one process or several workers).

With several worker processes, each one counts on its own: prometheus_client then keeps the values
in files under PROMETHEUS_MULTIPROC_DIR (read by the library when it is first imported, so it must
be set before the workers start and emptied at each start) and `exposition` sums them over the
workers, whichever worker answers the scrape.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from sqlalchemy import Engine, event

from api import metric_files

CONTENT_TYPE = CONTENT_TYPE_LATEST
MULTIPROCESS_ENV = metric_files.MULTIPROCESS_ENV
UNMATCHED = "unmatched"  # the route label of a request no route answers (404)

REQUESTS = Counter(
    "citygrid_http_requests",
    "Requests answered, by route template, method and status",
    ["route", "method", "status"],
)
LATENCY = Histogram(
    "citygrid_http_request_duration_seconds",
    "Time from the request's arrival to its answer, by route template",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
POOL_IN_USE = Gauge(
    "citygrid_db_pool_connections_in_use",
    "Database connections checked out of the pool (summed over live workers)",
    multiprocess_mode="livesum",
)
POOL_SIZE = Gauge(
    "citygrid_db_pool_size",
    "Connections each pool keeps, overflow excluded (summed over live workers)",
    multiprocess_mode="livesum",
)
POOL_OVERFLOW = Gauge(
    "citygrid_db_pool_max_overflow",
    "Connections a pool may open beyond its size under load (summed over live workers)",
    multiprocess_mode="livesum",
)
TILE_CACHE = Counter(
    "citygrid_tile_cache_lookups", "Vector tile cache lookups, by result (hit, miss)", ["result"]
)
IMPORT_ROWS = Histogram(
    "citygrid_import_rows",
    "Rows in each file import (refused and dry runs included), by layer",
    ["layer"],
    buckets=(1, 10, 100, 1_000, 10_000, 100_000, 1_000_000),
)
SIGN_IN_FAILURES = Counter(
    "citygrid_sign_in_failures", "Refused sign-ins, by reason (the error's code)", ["reason"]
)
QUERY_TIMEOUTS = Counter(
    "citygrid_query_timeouts",
    "Statements cancelled at their kind's statement timeout",
    ["kind"],
)
POSITIONS = Counter(
    "citygrid_positions",
    "Positions received and positions stored and acknowledged, by source (jt808, http)",
    ["source", "stage"],
)


ALARMS = Counter(
    "citygrid_alarms",
    "Tracking alarms raised, by kind",
    ["kind"],
)


def alarms(kind: str, count: int) -> None:
    """Count tracking alarms raised of a kind."""
    ALARMS.labels(kind).inc(count)


def positions(source: str, stage: str, count: int) -> None:
    """Count positions received from, or stored and acknowledged to, a source."""
    _positions_counter(source, stage).inc(count)


@functools.cache
def _positions_counter(source: str, stage: str) -> Any:
    """The counter of a source and stage, looked up once (a gateway counts every report)."""
    return POSITIONS.labels(source, stage)


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    """Count one answered request and its latency."""
    REQUESTS.labels(route, method, str(status)).inc()
    LATENCY.labels(route, method).observe(seconds)


def tile_lookup(hit: bool) -> None:
    """Count one lookup of the tile cache."""
    TILE_CACHE.labels("hit" if hit else "miss").inc()


def watch_pool(engine: Engine, max_overflow: int) -> None:
    """Keep the pool gauges current as connections are checked out and in."""
    pool = engine.pool
    size = getattr(pool, "size", lambda: 0)()
    POOL_SIZE.set(size)
    POOL_OVERFLOW.set(max_overflow)

    event.listen(pool, "checkout", lambda *_: POOL_IN_USE.inc())
    event.listen(pool, "checkin", lambda *_: POOL_IN_USE.dec())


def multiprocess_dir(state_dir: Path, clean: bool = True) -> Path:
    """Set up (and, unless told not to, empty) the folder where several processes keep their
    metrics, before they start: PROMETHEUS_MULTIPROC_DIR when set, else STATE_DIR/metrics."""
    return metric_files.prepare(state_dir, clean)


def forget_process() -> None:
    """Drop this worker's live gauges when it stops (several workers only)."""
    if os.environ.get(MULTIPROCESS_ENV):
        multiprocess.mark_process_dead(os.getpid())


def exposition() -> bytes:
    """Every metric in Prometheus's text format, summed over the workers when there are several."""
    if os.environ.get(MULTIPROCESS_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)
