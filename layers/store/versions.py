"""Versions: the rows of a versioned layer valid now or on a day, and layer versions kept in
memory from PostgreSQL notifications (one listener thread per process).

A versioned layer (`Layer.versioned`) keeps every version of a row; `is_current` and `valid_on`
are the only places that say which of them count.

The version trigger NOTIFYs `citygrid_layers` with `layer:version` when a write commits. Until the
listener is connected (or after it lost its connection) `VersionWatcher.current()` answers None
and callers ask the database instead, so a stale version is never trusted.
"""

from __future__ import annotations

import threading

import psycopg
from sqlalchemy.engine import URL

from layers.registry import Layer, Versioning

CHANNEL = "citygrid_layers"


def _versioning(layer: Layer) -> Versioning:
    if layer.versioned is None:
        raise ValueError(f"{layer.id} keeps no versions")
    return layer.versioned


def _column(alias: str | None, name: str) -> str:
    return f"{alias}.{name}" if alias else name


def is_current(layer: Layer, alias: str | None = None) -> str:
    """SQL keeping the current versions of `layer`'s rows (those not ended), as `alias`."""
    return f"{_column(alias, _versioning(layer).end)} IS NULL"


def open_after(layer: Layer, alias: str | None, day: str) -> str:
    """SQL keeping the versions not ended on or before `day` (a bound name or SQL expression)."""
    end = _column(alias, _versioning(layer).end)
    return f"({end} IS NULL OR {end} > {day})"


def valid_on(layer: Layer, alias: str | None, day: str) -> str:
    """SQL keeping the versions valid on `day` (a bound name or SQL expression): started on or
    before it and not ended by it."""
    start = _column(alias, _versioning(layer).start)
    return f"{start} <= {day} AND {open_after(layer, alias, day)}"


class VersionWatcher:
    """Listens for layer version changes; `current(layer)` is the latest committed version."""

    def __init__(self, url: URL, application_name: str = "citygrid") -> None:
        self._dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._application_name = application_name
        self._versions: dict[str, int] = {}
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="layer-versions", daemon=True)

    def start(self) -> None:
        """Begin listening in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop listening."""
        self._stop.set()
        self._ready.clear()

    def current(self, layer: str) -> int | None:
        """The layer's version, or None when the listener cannot vouch for it."""
        return self._versions.get(layer) if self._ready.is_set() else None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(
                    self._dsn,
                    autocommit=True,
                    connect_timeout=5,
                    application_name=self._application_name,
                ) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    rows = conn.execute("SELECT layer, version FROM layer_versions").fetchall()
                    self._versions = {layer: int(version) for layer, version in rows}
                    self._ready.set()
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=1.0):
                            layer, _, version = note.payload.partition(":")
                            self._versions[layer] = max(int(version), self._versions.get(layer, 0))
            except (psycopg.Error, ValueError):
                self._ready.clear()
                self._stop.wait(1.0)
        self._ready.clear()
