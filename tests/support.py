"""Test support: free ports, servers started and stopped, the browser harness (no request off 127.0.0.1)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.accounts import SERVER_ENV

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CITYGRID = str(Path(sys.executable).with_name("citygrid"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def chromium_path() -> str:
    """Debian's Chromium, or a loud skip when the machine has none."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        message = "SKIPPED browser tests: Debian's chromium is not installed (make test installs it as root)."
        print(f"\n{'!' * 20}\n{message}\n{'!' * 20}", file=sys.stderr)
        pytest.skip(message)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(proc: subprocess.Popen[bytes], group: bool = False) -> None:
    """Ctrl-C a process (or its whole group), killing it if it does not stop in time."""
    signal_to = (lambda sig: os.killpg(proc.pid, sig)) if group else proc.send_signal
    signal_to(signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        signal_to(signal.SIGKILL)
        proc.wait()


def wait_healthy(proc: subprocess.Popen[bytes], base: str, log: Path, seconds: float) -> None:
    """Wait until `base`/health answers 200, failing with the log when the server dies or is late."""
    deadline = time.monotonic() + seconds
    while True:
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the server did not start:\n{log.read_text()}")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.3)


@contextmanager
def live_server(database_url: str, **env: str) -> Iterator[str]:
    """`citygrid serve` on a free loopback port, stopped afterwards."""
    port = free_port()
    log = ARTIFACTS / f"server-{port}.log"
    ARTIFACTS.mkdir(exist_ok=True)
    with log.open("w") as out:
        proc = subprocess.Popen(
            [CITYGRID, "serve", "--port", str(port)],
            env={**os.environ, "CITYGRID_DATABASE_URL": database_url, **SERVER_ENV, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(proc, base, log, 60)
        yield base
    finally:
        stop(proc)
        log.unlink(missing_ok=True)


@dataclass
class PageWatch:
    """What a page did: console errors, script errors, and requests stopped at the border."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)


def watch(page: Any) -> PageWatch:
    """Block and record every request that is not to 127.0.0.1; collect errors."""
    seen = PageWatch()

    def route(r: Any) -> None:
        host = urlsplit(r.request.url).hostname
        if r.request.url.startswith("data:") or host == "127.0.0.1":
            r.continue_()
        else:
            seen.blocked.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("console", lambda m: seen.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: seen.page_errors.append(str(e)))
    return seen
