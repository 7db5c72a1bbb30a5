"""Test support: free ports, servers started and stopped, the browser harness (no request off 127.0.0.1)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest

from layers.store.db import BUREAU_TIMEZONE
from tests.accounts import SERVER_ENV

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
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
    """Wait until `base`/ready answers 200, failing with the log when the server dies or is late."""
    deadline = time.monotonic() + seconds
    while True:
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the server did not start:\n{log.read_text()}")
        try:
            # a generous timeout: a first answer slowed by a busy machine is not thrown away
            if httpx.get(f"{base}/ready", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)  # not up yet, or up but not ready: ask again soon, without hammering it


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
    """What a page did: console errors, script errors, requests stopped at the border, the
    Content-Security-Policy of each document and what that policy refused, every URL asked."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    policies: list[tuple[str, str | None]] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)
    requested: list[str] = field(default_factory=list)


CSP_LISTENER = """
document.addEventListener('securitypolicyviolation', function (e) {
  window.citygridCspViolation(e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline') +
    ' at ' + e.sourceFile + ':' + e.lineNumber);
});
"""


def _document_policy(seen: PageWatch, response: Any) -> None:
    if response.request.resource_type == "document":
        seen.policies.append((response.url, response.headers.get("content-security-policy")))


def assert_policy_kept(seen: PageWatch) -> None:
    """Every document came with the nonce policy, and the policy refused nothing on any of them."""
    assert seen.policies, "no document was loaded"
    for url, policy in seen.policies:
        assert policy and "script-src 'self' 'nonce-" in policy, (url, policy)
        assert "frame-ancestors 'none'" in policy, (url, policy)
    refused = [m for m in seen.console_errors if "Content Security Policy" in m]
    assert seen.csp_violations == [] and refused == [], (seen.csp_violations, refused)


def wait_for(page: Any, expression: str, timeout: float = 30_000) -> None:
    """Wait until a JavaScript expression is true on the page. Playwright's wait_for_function
    compiles its predicate with eval, which the pages' Content-Security-Policy rightly refuses."""
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(f"Boolean({expression})"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"still false after {timeout / 1000:.0f} s: {expression}")
        page.wait_for_timeout(100)


def watch(page: Any) -> PageWatch:
    """Block and record every request that is not to 127.0.0.1; collect errors and what the
    Content-Security-Policy refused."""
    seen = PageWatch()
    page.expose_function("citygridCspViolation", lambda text: seen.csp_violations.append(text))
    page.add_init_script(CSP_LISTENER)
    page.on("response", lambda r: _document_policy(seen, r))

    def route(r: Any) -> None:
        host = urlsplit(r.request.url).hostname
        seen.requested.append(r.request.url)
        if r.request.url.startswith("data:") or host == "127.0.0.1":
            r.continue_()
        else:
            seen.blocked.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("console", lambda m: seen.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: seen.page_errors.append(str(e)))
    return seen


QGIS_PYTHON = "/usr/bin/python3"


def qgis_python() -> str:
    """Debian's Python with python3-qgis, or a loud skip when QGIS is not installed."""
    found = (
        subprocess.run([QGIS_PYTHON, "-c", "import qgis.core"], capture_output=True, check=False)
        if Path(QGIS_PYTHON).exists()
        else None
    )
    if found is None or found.returncode != 0:
        message = "SKIPPED QGIS tests: Debian's qgis and python3-qgis are not installed (make test installs them as root)."
        print(f"\n{'!' * 20}\n{message}\n{'!' * 20}", file=sys.stderr)
        pytest.skip(message)
    return QGIS_PYTHON


def citygrid(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run a `citygrid` command in this process, as the installed script would run it: `env`
    added to ours (the whole environment restored afterwards, a command may set its config
    file there), no input, its output captured, an uncaught error's traceback on stderr and
    status 1. No interpreter start or imports per command; `citygrid_process` runs the script."""
    from typer.testing import CliRunner

    from api.cli import app

    saved = dict(os.environ)
    try:
        result = CliRunner().invoke(app, list(args), env=env, input="", prog_name="citygrid")
    finally:
        os.environ.clear()
        os.environ.update(saved)
    stderr = result.stderr
    if result.exc_info is not None and not isinstance(result.exc_info[1], SystemExit):
        stderr += "".join(traceback.format_exception(*result.exc_info))
    return subprocess.CompletedProcess([CITYGRID, *args], result.exit_code, result.stdout, stderr)


def in_own_thread(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`call(*args, **kwargs)` in a thread of its own: Playwright's sync API keeps an event loop
    running in the main thread while a browser is open, and `asyncio.run` refuses to start beside
    it."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(call, *args, **kwargs).result(600)


def citygrid_process(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the installed `citygrid` script with `env` added to ours, its output captured."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [CITYGRID, *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        check=False,
    )


def assert_clear_failure(result: subprocess.CompletedProcess[str], *phrases: str) -> None:
    """A failure in one clear sentence naming each of `phrases`, and no traceback."""
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    for phrase in phrases:
        assert phrase in result.stderr


# A small photo, as a phone sends one.
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 8 + b"\xff\xd9"


def bureau_today() -> date:
    """Today where the bureaus are: the date the product stamps, a day ahead of UTC at night."""
    return datetime.now(ZoneInfo(BUREAU_TIMEZONE)).date()
