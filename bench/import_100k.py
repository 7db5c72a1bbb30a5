"""Import of 100,000 billboards from a GeoPackage, through `citygrid import`, timed.

Makes a scratch database `citygrid_bench_import` on the project's cluster with the demo city (for
its county), writes 100,000 billboards at random places inside the county into a GeoPackage with
Chinese column names and code labels, runs the real command on it, checks the rows arrived, and
drops the database again.

Run: .venv/bin/python bench/import_100k.py [--features 100000]
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

from layers.demo import load as demo_city
from layers.store import db

DATABASE = "citygrid_bench_import"
CITYGRID = str(Path(sys.executable).with_name("citygrid"))


def county_points(url: str, n: int) -> list[tuple[float, float]]:
    """`n` random points inside today's street grids."""
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            wkb = conn.execute(
                text(
                    "SELECT ST_AsBinary(ST_Union(geom)) FROM grids WHERE level = 'street' AND valid_to IS NULL"
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


def main() -> None:
    """Build, import, check, drop."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=100_000)
    args = parser.parse_args()
    with scratch_database(DATABASE) as url:
        engine = db.make_engine(url)
        demo_city.load(engine, 20231231, 2023)
        with engine.connect() as conn:
            before = conn.execute(text("SELECT count(*) FROM billboards")).scalar_one()
        engine.dispose()
        points = county_points(url, args.features)
        kinds = np.array(["高炮", "店招", "灯箱", "墙体"], dtype=object)[
            np.arange(args.features) % 4
        ]
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "billboards.gpkg"
            pyogrio.raw.write(
                str(path),
                shapely.to_wkb([shapely.Point(p) for p in points]),
                [
                    kinds,
                    np.full(args.features, 8.0),
                    np.full(args.features, "某某广告公司", dtype=object),
                ],
                ["设施类型", "牌面面积(㎡)", "设置单位"],
                driver="GPKG",
                crs="EPSG:4490",
                geometry_type="Point",
            )
            started = time.perf_counter()
            done = subprocess.run(
                [CITYGRID, "import", "billboards", str(path)],
                env={**os.environ, "CITYGRID_DATABASE_URL": url},
                capture_output=True,
                text=True,
                check=False,
            )
            seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(done.stderr)
        engine = db.make_engine(url)
        with engine.connect() as conn:
            after = conn.execute(text("SELECT count(*) FROM billboards")).scalar_one()
        engine.dispose()
        if after - before != args.features:
            raise SystemExit(f"{after - before} rows arrived, not {args.features}")
        print(
            f"{args.features:,} billboards imported by `citygrid import` in {seconds:.1f} s "
            f"({args.features / seconds:,.0f} rows/s, the command's start included)"
        )


if __name__ == "__main__":
    main()
