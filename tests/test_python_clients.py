"""The README's "Use it from Python" lines, run as written against a live server."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyogrio
import pytest
from sqlalchemy import Engine, text

from layers.registry import LAYERS
from tests.accounts import TEST_PASSWORD, ensure_account
from tests.support import live_server

README = Path(__file__).resolve().parent.parent / "README.md"
HEADING = "## Use it from Python (OWSLib, geopandas)"
USERNAME = "py-clerk"


def readme_lines() -> str:
    """The Python block of the README section, as a reader would copy it."""
    section = README.read_text(encoding="utf-8").split(HEADING, 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the section has no python block"
    return match.group(1)


@pytest.fixture(scope="module")
def server(database_url: str, demo: dict[str, int]) -> Iterator[str]:
    ensure_account(database_url, USERNAME, "planner")
    with live_server(database_url) as base:
        try:
            yield base
        finally:
            pyogrio.set_gdal_config_options({"GDAL_HTTP_AUTH": None, "GDAL_HTTP_BEARER": None})


def count(engine: Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


def test_readme_python_lines_work(server: str, engine: Engine) -> None:
    code = readme_lines()
    # only the server's address and the account are this test's own
    code, n = re.subn(r'^BASE = ".*"$', f"BASE = {server!r}", code, flags=re.M)
    code, m = re.subn(
        r"^USERNAME, PASSWORD = .*$",
        f"USERNAME, PASSWORD = {USERNAME!r}, {TEST_PASSWORD!r}",
        code,
        flags=re.M,
    )
    assert n == m == 1
    names: dict[str, Any] = {}
    exec(compile(code, str(README), "exec"), names)
    assert names["layers"] == list(LAYERS)
    assert names["titles"]["type"] == "设施类型" and names["labels"]["shop_sign"] == "店招"
    signs = names["signs"]["features"]
    assert {f["properties"]["type"] for f in signs} == {"shop_sign"}
    assert len(signs) == count(engine, "SELECT count(*) FROM billboards WHERE type = 'shop_sign'")
    grids = names["grids"]
    assert len(grids) == count(engine, "SELECT count(*) FROM grids")
    assert {"网格编码", "网格名称", "网格层级"} <= set(grids.columns)
    assert grids.geometry.notna().all()
    pending = names["pending"]
    sql = "SELECT count(*) FROM illegal_buildings WHERE status = 'pending'"
    assert len(pending) == count(engine, sql) > 0
    assert set(pending["status"]) == {"pending"} and str(pending.crs) == "OGC:CRS84"
