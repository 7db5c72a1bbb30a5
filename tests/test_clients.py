"""Real OGC clients read every collection completely: GDAL's OAPIF driver (pyogrio) and OWSLib."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pyogrio
import pytest
from owslib.ogcapi.features import Features
from pyogrio import raw
from sqlalchemy import Engine, text

from layers.registry import LAYERS
from tests.accounts import bearer, ensure_account, token_for
from tests.support import live_server


@pytest.fixture(scope="module")
def server(
    database_url: str, demo: dict[str, int], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    ensure_account(database_url, "admin", "admin")
    # GDAL's OAPIF driver sets its own Accept header, which replaces GDAL_HTTP_HEADERS; a header
    # file is sent besides it.
    headers = tmp_path_factory.mktemp("gdal") / "headers.txt"
    headers.write_text(f"Authorization: Bearer {token_for('admin', timedelta(hours=1))}\n")
    with live_server(database_url) as base:
        pyogrio.set_gdal_config_options({"GDAL_HTTP_HEADER_FILE": str(headers)})
        try:
            yield base
        finally:
            pyogrio.set_gdal_config_options({"GDAL_HTTP_HEADER_FILE": None})


def table_count(engine: Engine, layer: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {layer}")).scalar_one())


@pytest.mark.parametrize("layer", list(LAYERS))
def test_gdal_reads_every_feature(server: str, engine: Engine, layer: str) -> None:
    _meta, fids, geometry, _fields = raw.read(
        f"OAPIF:{server}", layer=layer, return_fids=True, PAGE_SIZE="10000"
    )
    assert len(fids) == table_count(engine, layer)
    if LAYERS[layer].geometry is not None:
        assert geometry is not None and all(g is not None for g in geometry)


def test_owslib_lists_and_reads_collections(server: str, engine: Engine) -> None:
    api = Features(server, headers=bearer("admin"))
    assert [c["id"] for c in api.collections()["collections"]] == list(LAYERS)
    assert "conformsTo" in api.conformance()
    for layer in ("grids", "billboards", "work_orders"):
        items = api.collection_items(layer, limit=10000)
        assert items["numberReturned"] == len(items["features"]) == table_count(engine, layer)
    queryables = api.collection_queryables("cases")
    assert "category_code" in queryables["properties"]
