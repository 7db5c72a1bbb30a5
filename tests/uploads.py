"""Files to import: points inside the west community written by GDAL, and their upload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyogrio.raw
import shapely
from fastapi.testclient import TestClient

from tests.street import TO_LONLAT
from tests.world import middle

OWNER = "启东市广告有限公司"


def spots(n: int) -> list[tuple[float, float]]:
    """`n` longitude/latitude points spread inside the west community."""
    x, y = middle(1)
    rng = np.random.default_rng(7)
    xs, ys = x + rng.uniform(-500, 500, n), y + rng.uniform(-350, 350, n)
    return list(zip(*TO_LONLAT.transform(xs, ys), strict=True))


def write(
    path: Path,
    points: list[tuple[float, float]],
    columns: dict[str, list[Any]],
    driver: str,
    crs: str | None = "EPSG:4490",
    encoding: str | None = None,
) -> Path:
    geometry = (
        None if driver in ("CSV", "XLSX") else shapely.to_wkb([shapely.Point(p) for p in points])
    )
    fields = list(columns)
    data = [np.asarray(v, dtype=object) for v in columns.values()]
    pyogrio.raw.write(
        str(path), geometry, data, fields, driver=driver, crs=crs, encoding=encoding,
        geometry_type=None if geometry is None else "Point",
    )  # fmt: skip
    return path


def billboard_columns(n: int) -> dict[str, list[Any]]:
    return {"设施类型": ["高炮"] * n, "牌面面积(㎡)": [12.5] * n, "owner": [OWNER] * n}


def upload(client: TestClient, layer: str, path: Path, **params: Any) -> Any:
    return client.post(
        f"/collections/{layer}/import",
        params={"filename": path.name, **params},
        content=path.read_bytes(),
        headers={"Content-Type": "application/octet-stream"},
    )
