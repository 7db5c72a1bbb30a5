"""Layer versions kept in memory from PostgreSQL notifications (one listener thread per process).

The version trigger NOTIFYs `citygrid_layers` with `layer:version` when a write commits. Until the
listener is connected (or after it lost its connection) `current()` answers None and callers ask
the database instead, so a stale version is never trusted.
"""

from __future__ import annotations

import threading

import psycopg
from sqlalchemy.engine import URL

CHANNEL = "citygrid_layers"


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
