"""The floor of one HTTP request on this machine: an ASGI application answering a constant
feature, started as citygrid is (the same launcher, workers and wrk). No server on uvicorn
answers faster whatever its database does, so it bounds how near the database's own rate a
small request can come; `features_vs_tipg.py` prints it under its table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from scaled import start

BENCH = Path(__file__).resolve().parent
FEATURE = b'{"type":"Feature","id":1,"geometry":null,"properties":{}}'


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answer every HTTP request with the same small GeoJSON feature."""
    if scope["type"] != "http":
        return
    headers = [(b"content-type", b"application/geo+json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": FEATURE})


def server(port: int, workers: int) -> subprocess.Popen[bytes]:
    """This application under the launcher citygrid's benchmarks use."""
    command = [
        sys.executable, "-m", "api.workers", "floor:app",
        "--port", str(port), "--workers", str(workers), "--log-level", "warning",
    ]  # fmt: skip
    return start(command, {"PYTHONPATH": f"{BENCH}:{BENCH.parent}"}, port)
