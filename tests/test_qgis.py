"""QGIS 3.22 (Debian's qgis, headless) signs in with its OAuth2 method and reads citygrid: every
collection through OGC API - Features, and the vector tiles."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely
from sqlalchemy import Engine, text

from layers.registry import LAYERS, FieldType
from tests.accounts import TEST_PASSWORD, ensure_account
from tests.support import ARTIFACTS, live_server, qgis_python

SCRIPT = Path(__file__).with_name("qgis_read.py")
SCREENSHOT = ARTIFACTS / "qgis-grids-billboards.png"
TILES = ARTIFACTS / "qgis-grid-tiles.png"
COMPARED = (FieldType.TEXT, FieldType.INTEGER, FieldType.REAL, FieldType.DATE)


@pytest.fixture(scope="module")
def qgis(
    database_url: str, demo: dict[str, int], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    python = qgis_python()
    ensure_account(database_url, "qgis_planner", "planner")
    work = tmp_path_factory.mktemp("qgis")
    job = {
        "username": "qgis_planner",
        "password": TEST_PASSWORD,
        "master_password": "citygrid-test-master",
        "layers": dict.fromkeys(LAYERS),  # every layer whole, no box
        "screenshot": str(SCREENSHOT),
        "tiles": str(TILES),
    }
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "QGIS_AUTH_DB_DIR_PATH": str(work),
        "HOME": str(work),
        "PYTHONPATH": "",
    }
    with live_server(database_url) as base:
        (work / "job.json").write_text(json.dumps(job | {"base": base}))
        done = subprocess.run(
            [
                python,
                "-X",
                "faulthandler",
                str(SCRIPT),
                str(work / "job.json"),
                str(work / "result.json"),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    assert done.returncode == 0, done.stderr[-4000:]
    result: dict[str, Any] = json.loads((work / "result.json").read_text())
    return result


def stored_rows(engine: Engine, layer: str) -> list[dict[str, Any]]:
    """The layer's rows in id order (the order QGIS reads them in), as the database holds them."""
    spec = LAYERS[layer]
    names = [f.name for f in spec.fields if f.type in COMPARED]
    columns = ", ".join([*names, "ST_AsText(geom) AS wkt" if spec.geometry else "NULL AS wkt"])
    with engine.connect() as conn:
        sql = f"SELECT {columns} FROM {layer} ORDER BY id"
        return [dict(row._mapping) for row in conn.execute(text(sql))]


def as_read(layer: str, name: str, value: Any) -> Any:
    """A value QGIS read, as a number where the field is one: QGIS 3.22 guesses a field's type
    from the first features, and a number column empty there is read as text."""
    kind = LAYERS[layer].field(name).type
    if value is None or kind not in (FieldType.REAL, FieldType.INTEGER):
        return value
    return float(value) if kind is FieldType.REAL else int(value)


def geometries_differing(read: list[str | None], stored: list[str | None]) -> list[int]:
    """Where QGIS's geometry is not the stored one: a null for a null, else as many
    coordinates, none off by more than 1e-7 degrees (all rows parsed at once: a row at a time
    took 20 s for the cases)."""
    nulls = [
        i for i, (a, b) in enumerate(zip(read, stored, strict=True)) if (a is None) != (b is None)
    ]
    ours = shapely.from_wkt(np.asarray(stored, dtype=object))
    theirs = shapely.from_wkt(np.asarray(read, dtype=object))
    ours_xy, ours_at = shapely.get_coordinates(ours, return_index=True)
    theirs_xy, theirs_at = shapely.get_coordinates(theirs, return_index=True)
    counts = np.bincount(ours_at, minlength=len(stored))
    miscounted = np.flatnonzero(counts != np.bincount(theirs_at, minlength=len(read)))
    if len(miscounted):
        return sorted({*nulls, *miscounted.tolist()})
    off = np.abs(ours_xy - theirs_xy).max(axis=1, initial=0.0) > 1e-7
    return sorted({*nulls, *np.unique(ours_at[off]).tolist()})


@pytest.mark.parametrize("layer", list(LAYERS))
def test_qgis_reads_every_feature_with_its_geometry_and_chinese_text(
    qgis: dict[str, Any], engine: Engine, layer: str
) -> None:
    read = qgis["layers"][layer]["features"]
    rows = stored_rows(engine, layer)
    assert len(read) == len(rows) > 0
    stored_wkt = [row.pop("wkt") for row in rows]
    wrong = geometries_differing([got["wkt"] for got in read], stored_wkt)
    assert not wrong, [(rows[i].get("id"), read[i]["wkt"], stored_wkt[i]) for i in wrong[:5]]
    for got, row in zip(read, rows, strict=True):
        expected = {k: v.isoformat() if isinstance(v, date) else v for k, v in row.items()}
        read_back = {name: as_read(layer, name, got["attributes"][name]) for name in row}
        differing = {  # equal values need no approx (the slow part on the cases' 150,000 rows)
            name: (read_back[name], expected[name])
            for name in row
            if read_back[name] != expected[name]
            and read_back[name] != pytest.approx(expected[name])
        }
        assert not differing, (row.get("id"), differing)


def test_qgis_reads_chinese_text(qgis: dict[str, Any]) -> None:
    names = {f["attributes"]["name"] for f in qgis["layers"]["grids"]["features"]}
    assert any("社区" in str(name) for name in names), sorted(map(str, names))[:5]


def test_qgis_draws_the_vector_tiles_only_when_signed_in(qgis: dict[str, Any]) -> None:
    assert qgis["tiles"]["signed_in"] > 1000 and qgis["tiles"]["anonymous"] == 0, qgis["tiles"]
    assert TILES.stat().st_size > 0


def test_qgis_renders_grids_and_billboards(qgis: dict[str, Any]) -> None:
    assert SCREENSHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    print({layer: read["seconds"] for layer, read in qgis["layers"].items()})
