"""Debian's GDAL command-line tools (ogrinfo, ogr2ogr) against a live server: filters and bounding
boxes go to the server (the URLs GDAL requests show it), pages are as large as asked, every layer
copies whole into a GeoPackage, and the MVT driver opens the vector tiles."""

from __future__ import annotations

import math
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from functools import cache
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from hypothesis import find
from hypothesis.strategies import from_regex
from sqlalchemy import Engine, text

from layers.registry import LAYERS
from tests.accounts import bearer, ensure_account, token_for
from tests.support import live_server
from tests.world import World

# CPL_DEBUG's line for each request: by the HTTP client, and by /vsicurl/ (the MVT driver's)
FETCH_LINE = re.compile(r"^(?:HTTP: Fetch|VSICURL: GetFileSize)\((\S+?)\)", re.MULTILINE)


def gdal_tool(name: str) -> str:
    """The path of a GDAL tool, or a loud skip when Debian's gdal-bin is not installed."""
    path = shutil.which(name)
    if path is None:
        message = f"SKIPPED GDAL tests: {name} not found (apt-get install gdal-bin)."
        print(f"\n{'!' * 20}\n{message}\n{'!' * 20}", file=sys.stderr)
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def server(database_url: str, demo: dict[str, int]) -> Iterator[str]:
    ensure_account(database_url, "admin", "admin")
    with live_server(database_url) as base:
        yield base


@pytest.fixture(scope="module")
def small_server(world: World) -> Iterator[str]:
    """A live server on the small shared world: for answers the demo's size does not change."""
    with live_server(world.url) as base:
        yield base


@pytest.fixture(scope="module")
def header_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bearer token in a header file: GDAL sends it on every request, beside its own Accept."""
    path = tmp_path_factory.mktemp("gdal") / "headers.txt"
    path.write_text(f"Authorization: Bearer {token_for('admin', timedelta(hours=1))}\n")
    return path


def run(header_file: Path, tool: str, *args: str) -> tuple[str, list[str]]:
    """Run a GDAL tool with its debug log; its output and the URLs it requested."""
    env = {
        **os.environ,
        "GDAL_HTTP_HEADER_FILE": str(header_file),
        "CPL_DEBUG": "ON",
    }
    done = subprocess.run(
        [gdal_tool(tool), *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-5000:]
    return done.stdout, FETCH_LINE.findall(done.stderr)


def items_requests(paths: list[str], layer: str) -> list[dict[str, list[str]]]:
    """The query parameters of each items request GDAL made for the layer."""
    return [
        parse_qs(urlsplit(p).query)
        for p in paths
        if urlsplit(p).path == f"/collections/{layer}/items"
    ]


def scalar(engine: Engine, sql: str, **params: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())


def feature_count(output: str) -> int:
    found = re.search(r"^Feature Count: (\d+)$", output, re.MULTILINE)
    assert found, output[-2000:]
    return int(found.group(1))


def test_where_is_evaluated_by_the_server(server: str, header_file: Path, engine: Engine) -> None:
    where = "status = 'closed'"
    output, paths = run(
        header_file, "ogrinfo", "-ro", "-so", f"OAPIF:{server}", "cases", "-where", where,
        "-oo", "PAGE_SIZE=10000",
    )  # fmt: skip
    closed = scalar(engine, "SELECT count(*) FROM cases WHERE status = 'closed'")
    assert 0 < closed < scalar(engine, "SELECT count(*) FROM cases")
    assert feature_count(output) == closed
    filtered = [q for q in items_requests(paths, "cases") if "filter" in q]
    assert filtered, paths
    for query in filtered:
        assert query["filter"] == [where] and query["filter-lang"] == ["cql-text"]
        assert query["limit"] == ["10000"]
    # no unfiltered read of the layer but the one page GDAL takes to learn the fields
    assert len(items_requests(paths, "cases")) - len(filtered) <= 1


def test_spatial_filter_is_a_bbox_request(server: str, header_file: Path, engine: Engine) -> None:
    box = scalar_box(engine)
    output, paths = run(
        header_file, "ogrinfo", "-ro", "-so", f"OAPIF:{server}", "billboards",
        "-spat", *(f"{v:.6f}" for v in box), "-oo", "PAGE_SIZE=1000",
    )  # fmt: skip
    inside = scalar(
        engine,
        "SELECT count(*) FROM billboards WHERE ST_Intersects(geom, "
        "ST_MakeEnvelope(:a, :b, :c, :d, 4490))",
        **dict(zip("abcd", (round(v, 6) for v in box), strict=True)),
    )
    assert 0 < inside < scalar(engine, "SELECT count(*) FROM billboards")
    assert feature_count(output) == inside
    boxed = [q for q in items_requests(paths, "billboards") if "bbox" in q]
    assert boxed, paths
    for query in boxed:
        numbers = [float(v) for v in query["bbox"][0].split(",")]
        assert numbers == pytest.approx([round(v, 6) for v in box])


def scalar_box(engine: Engine) -> tuple[float, float, float, float]:
    """The south-west quarter of the billboards' extent."""
    with engine.connect() as conn:
        x0, y0, x1, y1 = conn.execute(
            text(
                "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
                "FROM (SELECT ST_Extent(geom) AS e FROM billboards) AS x"
            )
        ).one()
    return x0, y0, (x0 + x1) / 2, (y0 + y1) / 2


def test_pages_are_as_large_as_asked(server: str, header_file: Path, engine: Engine) -> None:
    total = scalar(engine, "SELECT count(*) FROM billboards")
    page = total // 2 + 1  # two pages, each far above GDAL's default of 10 features
    assert page > 100
    output, urls = run(
        header_file, "ogrinfo", "-ro", "-al", "-geom=NO", f"OAPIF:{server}", "billboards",
        "-oo", f"PAGE_SIZE={page}",
    )  # fmt: skip
    assert len(re.findall(r"^OGRFeature\(billboards\):", output, re.MULTILINE)) == total
    pages = items_requests(urls, "billboards")
    assert pages and all(q["limit"] == [str(page)] for q in pages), pages
    assert 2 <= len(pages) <= 3  # two pages (GDAL reads the first one again after the schema)


def test_every_layer_copies_whole_into_a_geopackage(
    server: str, header_file: Path, engine: Engine, tmp_path: Path
) -> None:
    target = tmp_path / "citygrid.gpkg"
    run(
        header_file, "ogr2ogr", "-f", "GPKG", str(target), f"OAPIF:{server}",
        "-oo", "PAGE_SIZE=10000",
    )  # fmt: skip
    with sqlite3.connect(target) as gpkg:
        for layer in LAYERS:
            copied = gpkg.execute(f'SELECT count(*) FROM "{layer}"').fetchone()[0]
            assert copied == scalar(engine, f"SELECT count(*) FROM {layer}"), layer
        title = gpkg.execute("SELECT name FROM grids WHERE name IS NOT NULL LIMIT 1").fetchone()
    assert re.search(r"[\u4e00-\u9fff]", title[0])  # Chinese text arrives intact


def _grids_tile(engine: Engine, z: int) -> tuple[int, int]:
    with engine.connect() as conn:
        lon, lat = conn.execute(
            text(
                "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Extent(geom)) AS c FROM grids) AS x"
            )
        ).one()
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def test_tiles_open_in_the_mvt_driver(server: str, header_file: Path, engine: Engine) -> None:
    x, y = _grids_tile(engine, 14)
    tileset = f"{server}/collections/grids/tiles/WebMercatorQuad"
    for suffix in ("pbf", "mvt"):
        output, _ = run(
            header_file,
            "ogrinfo",
            "-ro",
            "-so",
            f"MVT:/vsicurl/{tileset}/14/{x}/{y}.{suffix}",
            "grids",
        )
        assert feature_count(output) > 0
    # the tile tree of one zoom, described by the tileset's metadata.json
    output, urls = run(header_file, "ogrinfo", "-ro", "-so", f"MVT:/vsicurl/{tileset}/12", "grids")
    assert f"{tileset}/metadata.json" in urls
    assert feature_count(output) > 0


def test_tilejson_describes_the_tiles(server: str, database_url: str) -> None:
    headers = bearer("admin")
    document = httpx.get(
        f"{server}/collections/billboards/tiles/WebMercatorQuad/tilejson.json", headers=headers
    ).json()
    assert document["tilejson"] == "3.0.0"
    assert (document["minzoom"], document["maxzoom"]) == (0, 22)
    west, south, east, north = document["bounds"]
    assert 73 < west < east < 136 and 3 < south < north < 54
    (source,) = document["vector_layers"]
    assert source["id"] == "billboards" and "id" in source["fields"]
    template = document["tiles"][0]
    assert template.endswith("/{z}/{x}/{y}.pbf")
    tile = httpx.get(template.format(z=0, x=0, y=0), headers=headers)
    assert tile.status_code == 200 and tile.headers["content-type"].startswith(
        "application/vnd.mapbox-vector-tile"
    )
    assert tile.content  # the whole layer lies in the one tile of zoom 0


@cache
def simplest_match(pattern: str) -> str:
    """The simplest text the pattern admits: found once a pattern (hypothesis shrinks to it,
    and 107 fields share 7 patterns)."""
    return str(find(from_regex(pattern, fullmatch=True), lambda _: True))


def _valid_value(schema: dict[str, object]) -> str:
    """A value the parameter's schema admits."""
    if "enum" in schema:
        return str(schema["enum"][0])  # type: ignore[index]
    if schema.get("format") == "date":
        return "2024-05-01"
    if schema.get("format") == "date-time":
        return "2024-05-01T08:00:00+08:00"
    if schema["type"] in ("integer", "number"):
        return str(schema.get("minimum", 0))
    if "pattern" in schema:
        return simplest_match(str(schema["pattern"]))
    return "true" if schema["type"] == "boolean" else "某"


def test_each_collection_declares_its_queryables(small_server: str) -> None:
    """The document names `collectionId`, lists each layer's fields as parameters of its items
    path, offers cql-text, and the server takes every such parameter at a schema-valid value
    (asked of the small world: the demo's counts for 220 filters proved nothing more, slowly)."""
    with httpx.Client(base_url=small_server, headers=bearer("admin"), timeout=30) as client:
        paths = client.get("/api").json()["paths"]
        generic = paths["/collections/{collectionId}/items"]["get"]["parameters"]
        (lang,) = [p for p in generic if p["name"] == "filter-lang"]
        assert "cql-text" in lang["schema"]["enum"]
        for layer in LAYERS.values():
            operation = paths[f"/collections/{layer.id}/items"]["get"]
            declared = {p["name"]: p for p in operation["parameters"]}
            assert "collectionId" not in declared
            assert {f.name for f in layer.fields} <= set(declared)
            for f in layer.fields:
                value = _valid_value(declared[f.name]["schema"])
                answer = client.get(
                    f"/collections/{layer.id}/items", params={f.name: value, "limit": "1"}
                )
                assert answer.status_code == 200, (layer.id, f.name, value, answer.text)


def test_cql_text_is_read_as_cql2_text(server: str, engine: Engine) -> None:
    headers = bearer("admin")
    url = f"{server}/collections/illegal_buildings/items"
    counts = [
        httpx.get(
            url, params={"filter": "status = 'ordered'", "filter-lang": lang}, headers=headers
        ).json()["numberMatched"]
        for lang in ("cql-text", "cql2-text")
    ]
    ordered = scalar(engine, "SELECT count(*) FROM illegal_buildings WHERE status = 'ordered'")
    assert counts == [ordered] * 2
