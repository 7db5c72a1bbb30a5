"""Import of a 230,000-component census (one real city's inventory) through `citygrid import`.

Makes a scratch database `citygrid_bench_components` on the project's cluster with the demo city,
writes a census GeoPackage of 230,000 components at random places inside the demo county, with
the Chinese column names a surveyor's file has (部件标识码, 小类代码, 状态, 主管部门, 权属单位,
养护单位, 初始日期, 数据来源, 定位精度) — IDs given for nine rows in ten and assigned for the
others —, runs the real command on it, checks the rows arrived, and drops the database again.

Run: .venv/bin/python bench/components_import.py [--features 230000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyogrio.raw
import shapely
from scratch import scratch_database
from sqlalchemy import text

from layers.cases import units
from layers.demo import load as demo_city
from layers.store import db

DATABASE = "citygrid_bench_components"
CITYGRID = str(Path(sys.executable).with_name("citygrid"))
COUNTY = "320681"


def county_points(url: str, n: int) -> list[tuple[float, float]]:
    """`n` random points inside today's street grids."""
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            wkb = conn.execute(
                text(
                    "SELECT ST_AsBinary(ST_Union(geom)) FROM grids "
                    "WHERE level = 'street' AND valid_to IS NULL"
                )
            ).scalar_one()
    finally:
        engine.dispose()
    county = shapely.from_wkb(bytes(wkb))
    shapely.prepare(county)
    rng = np.random.default_rng(1)
    minx, miny, maxx, maxy = county.bounds
    out: list[tuple[float, float]] = []
    while len(out) < n:
        xs, ys = rng.uniform(minx, maxx, n), rng.uniform(miny, maxy, n)
        inside = shapely.contains_xy(county, xs, ys)
        out += list(zip(xs[inside], ys[inside], strict=True))
    return out[:n]


def census_columns(url: str, n: int) -> tuple[list[np.ndarray], list[str]]:
    """The census's attribute columns: subclasses, IDs, statuses and units of the county."""
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            subclasses = list(
                conn.execute(
                    text("SELECT code FROM case_categories WHERE kind = 'component' ORDER BY code")
                ).scalars()
            )
            names = [u.name for u in units.list_units(conn, (COUNTY,))][:6]
    finally:
        engine.dispose()
    i = np.arange(n)
    kinds = np.array(subclasses, dtype=object)[i % len(subclasses)]
    serial = i // len(subclasses) + 1
    codes = np.array(
        [f"{COUNTY}{k[1:5]}{s:06d}" for k, s in zip(kinds, serial, strict=True)], dtype=object
    )
    codes[i % 10 == 9] = None  # assigned on import
    statuses = np.array(["完好", "完好", "完好", "破损", "丢失"], dtype=object)[i % 5]
    unit = np.array(names, dtype=object)
    columns = [
        codes,
        kinds,
        statuses,
        unit[i % len(unit)],
        unit[(i + 1) % len(unit)],
        unit[(i + 2) % len(unit)],
        np.full(n, "2025-05-01", dtype=object),
        np.full(n, "普查", dtype=object),
        np.full(n, "≤1米", dtype=object),
    ]
    labels = ["部件标识码", "小类代码", "状态", "主管部门", "权属单位", "养护单位", "初始日期",
              "数据来源", "定位精度"]  # fmt: skip
    return columns, labels


def main() -> None:
    """Build, import, check, drop."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=230_000)
    args = parser.parse_args()
    with scratch_database(DATABASE) as url:
        engine = db.make_engine(url)
        demo_city.load(engine, 20231231, 2023)
        engine.dispose()
        points = county_points(url, args.features)
        columns, labels = census_columns(url, args.features)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "census.gpkg"
            pyogrio.raw.write(
                str(path),
                shapely.to_wkb([shapely.Point(p) for p in points]),
                columns,
                labels,
                driver="GPKG",
                crs="EPSG:4490",
                geometry_type="Point",
            )
            started = time.perf_counter()
            done = subprocess.run(
                [CITYGRID, "import", "components", str(path), "--county", COUNTY],
                env={**os.environ, "CITYGRID_DATABASE_URL": url},
                capture_output=True,
                text=True,
                check=False,
            )
            seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(done.stdout + done.stderr)
        engine = db.make_engine(url)
        with engine.connect() as conn:
            stored, placed = conn.execute(
                text("SELECT count(*), count(grid_code) FROM components")
            ).one()
        engine.dispose()
        if stored != args.features:
            raise SystemExit(f"{stored} rows arrived, not {args.features}")
        print(
            f"{args.features:,} components imported by `citygrid import components` in "
            f"{seconds:.1f} s ({args.features / seconds:,.0f} rows/s, the command's start "
            f"included); {placed:,} placed in a unit grid"
        )


if __name__ == "__main__":
    main()
