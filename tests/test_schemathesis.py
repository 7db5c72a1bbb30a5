"""schemathesis with every check (conformance, status codes, media types, Allow on 405, stateful
links) against a live server, signed in as the admin and as an inspector: no server error, no
answer the OpenAPI document does not describe, no schema-valid request refused but by a domain
rule (tests/schemathesis_hooks.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.accounts import token_for
from tests.support import live_server
from tests.world import make_world

HOOKS = Path(__file__).with_name("schemathesis_hooks.py")
SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
EXAMPLES = 10  # per operation and phase; the coverage phase adds its own cases to every operation


@pytest.fixture(scope="module")
def server(pg_server: Any) -> Iterator[str]:
    """A live server on a database with a row of every layer in two communities."""
    worlds = make_world(pg_server, "fuzz")
    world = next(worlds)
    with live_server(world.url) as base:
        yield base
    next(worlds, None)


@pytest.mark.parametrize("role", ["admin", "inspector"])
def test_schemathesis_with_all_checks_finds_nothing(server: str, role: str, tmp_path: Path) -> None:
    token = token_for(role, timedelta(hours=1))
    command = [
        SCHEMATHESIS,
        "run",
        f"{server}/api",
        "--checks",
        "all",
        "--exclude-checks",
        "positive_data_acceptance",  # run as the hook's domain-aware version of it
        "--header",
        f"Authorization: Bearer {token}",
        "--max-examples",
        str(EXAMPLES),
        "--workers",
        "1",
        "--seed",
        "20261201",
        "--no-shrink",
        "--exclude-path-regex",  # copies of the templated items path: cases stands for them, and
        "^/collections/(?!cases/)[a-z_]+/items$",  # test_gdal.py sends each field's parameter
        "--exclude-path",  # the live stream never ends by design: tests/test_live.py reads it
        "/tracking/live",
        "--request-timeout",
        "30",
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS), "NO_COLOR": "1"}
    run = subprocess.run(  # in tmp_path: the run leaves its cache in .schemathesis/
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert run.returncode == 0, run.stdout[-30_000:] + run.stderr[-5_000:]
