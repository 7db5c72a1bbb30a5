"""Grid sets handed over as files (GeoPackage, zipped Shapefile, GeoJSON) or as GeoJSON in a request."""

from __future__ import annotations

import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pyogrio
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from layers.errors import InvalidFeature, PayloadTooLarge

CODE_NAMES = ("code", "网格编码", "grid_code", "wgbm")
NAME_NAMES = ("name", "网格名称", "grid_name", "wgmc")
SUFFIXES = (".gpkg", ".zip", ".geojson", ".json")

Drawn = list[tuple[BaseGeometry, str | None, str | None]]


@dataclass(frozen=True)
class UploadLimits:
    """What an uploaded grid file may hold."""

    max_bytes: int = 20 * 1024 * 1024
    max_features: int = 5_000
    max_zip_entries: int = 20
    max_unzipped_bytes: int = 100 * 1024 * 1024


def _refuse(code: str, en: str, zh: str) -> InvalidFeature:
    return InvalidFeature(en, zh, code=code)


def _check_zip(path: Path, limits: UploadLimits) -> str:
    """The .shp inside a safe zip (no absolute or `..` names, bounded size), for GDAL's /vsizip/."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except zipfile.BadZipFile:
        raise _refuse("upload_unreadable", "The zip file is damaged.", "zip 文件已损坏。") from None
    if len(entries) > limits.max_zip_entries:
        raise _refuse(
            "upload_too_many_entries",
            f"The zip holds {len(entries)} files, at most {limits.max_zip_entries} are allowed.",
            f"zip 中有 {len(entries)} 个文件，最多允许 {limits.max_zip_entries} 个。",
        )
    for entry in entries:
        name = PurePosixPath(entry.filename.replace("\\", "/"))
        if name.is_absolute() or ".." in name.parts:
            raise _refuse(
                "upload_unsafe_path",
                f"The zip entry {entry.filename!r} points outside the archive.",
                f"zip 中的文件名 {entry.filename!r} 指向压缩包之外，已拒绝。",
            )
    if sum(e.file_size for e in entries) > limits.max_unzipped_bytes:
        raise PayloadTooLarge(
            f"The zip unpacks to more than {limits.max_unzipped_bytes:,} bytes.",
            f"zip 解压后超过 {limits.max_unzipped_bytes:,} 字节，已拒绝。",
        )
    shps = [e.filename for e in entries if e.filename.lower().endswith(".shp")]
    if len(shps) != 1:
        raise _refuse(
            "upload_no_shapefile",
            "The zip must hold exactly one Shapefile (.shp with its .shx, .dbf, .prj).",
            "zip 中必须恰好包含一个 Shapefile（.shp 及其 .shx、.dbf、.prj）。",
        )
    return f"/vsizip/{path}/{shps[0]}"


def _pick(fields: list[str], wanted: tuple[str, ...]) -> int | None:
    lowered = [f.lower() for f in fields]
    for name in wanted:
        if name in lowered:
            return lowered.index(name)
    return None


def _text_column(values: Any, i: int) -> str | None:
    value = values[i]
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return str(value).strip() or None


def read_grid_file(
    data: bytes, filename: str, crs: str | None, limits: UploadLimits
) -> Callable[[int], Drawn]:
    """Grids of an uploaded file, as a function giving them in metres of a GK zone."""
    if len(data) > limits.max_bytes:
        raise PayloadTooLarge(
            f"The file is larger than {limits.max_bytes:,} bytes.",
            f"文件超过 {limits.max_bytes:,} 字节的上限。",
        )
    suffix = Path(filename).suffix.lower()
    if suffix not in SUFFIXES:
        raise _refuse(
            "upload_format",
            f"Upload a GeoPackage, a zipped Shapefile or GeoJSON, not {suffix or 'a file without extension'}.",
            f"请上传 GeoPackage、zip 压缩的 Shapefile 或 GeoJSON，而不是 {suffix or '无扩展名的文件'}。",
        )
    with tempfile.TemporaryDirectory(prefix="citygrid-upload-") as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(data)
        source = _check_zip(path, limits) if suffix == ".zip" else str(path)
        try:
            meta, _, wkb, columns = pyogrio.raw.read(source, max_features=limits.max_features + 1)
        except Exception as exc:  # GDAL reports unreadable files with many exception types
            raise _refuse(
                "upload_unreadable",
                f"The file cannot be read as vector data ({exc}).",
                f"无法读取该文件中的矢量数据（{exc}）。",
            ) from None
    if len(wkb) > limits.max_features:
        raise PayloadTooLarge(
            f"The file holds more than {limits.max_features:,} features.",
            f"文件中的要素超过 {limits.max_features:,} 个。",
        )
    geoms = shapely.from_wkb(wkb)
    fields = list(meta["fields"])
    code_i, name_i = _pick(fields, CODE_NAMES), _pick(fields, NAME_NAMES)
    rows = [
        (
            geom,
            None if code_i is None else _text_column(columns[code_i], n),
            None if name_i is None else _text_column(columns[name_i], n),
        )
        for n, geom in enumerate(geoms)
    ]
    return in_zone(rows, crs or meta.get("crs"))


def _source_crs(given: str | None) -> CRS:
    if not given:
        raise _refuse(
            "upload_no_crs",
            "The file does not say its coordinate system: give crs (e.g. EPSG:4490 or EPSG:4549).",
            "文件未声明坐标系：请指定 crs（例如 EPSG:4490 或 EPSG:4549）。",
        )
    try:
        return CRS.from_user_input(given)
    except CRSError:
        raise _refuse(
            "unknown_crs", f"Unknown coordinate system {given!r}.", f"无法识别的坐标系 {given!r}。"
        ) from None


def in_zone(rows: Drawn, crs: str | None) -> Callable[[int], Drawn]:
    """Rows in a source CRS as a function giving them in metres of GK zone `epsg`."""
    source = _source_crs(crs)
    for n, (geom, _, _) in enumerate(rows, start=1):
        if geom is None or geom.geom_type not in {"Polygon", "MultiPolygon"}:
            kind = "no geometry" if geom is None else geom.geom_type
            raise _refuse(
                "geometry_wrong_type",
                f"Feature {n} is {kind}; grids are polygons.",
                f"第 {n} 个要素是 {kind}，网格必须是面。",
            )

    def to_zone(epsg: int) -> Drawn:
        transformer = Transformer.from_crs(source, epsg, always_xy=True)

        def on_coords(xy: Any) -> Any:
            x, y = transformer.transform(xy[:, 0], xy[:, 1])
            return np.column_stack([x, y])

        geoms = shapely.transform(np.asarray([g for g, _, _ in rows], dtype=object), on_coords)
        return [(g, c, n) for g, (_, c, n) in zip(geoms, rows, strict=True)]

    return to_zone


def from_feature_collection(doc: Any) -> Callable[[int], Drawn]:
    """Grids of a GeoJSON FeatureCollection in longitude/latitude (CGCS2000 or WGS84)."""
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise _refuse(
            "body_not_feature_collection",
            "features must be a GeoJSON FeatureCollection.",
            "features 必须是 GeoJSON FeatureCollection。",
        )
    rows: Drawn = []
    for n, feature in enumerate(doc.get("features") or [], start=1):
        props = (feature or {}).get("properties") or {}
        try:
            geom = shape(feature["geometry"])
        except Exception:  # shapely raises several types on malformed GeoJSON
            raise _refuse(
                "geometry_malformed",
                f"Feature {n} has no usable geometry.",
                f"第 {n} 个要素的几何无法使用。",
            ) from None
        code = props.get("code")
        name = props.get("name")
        rows.append(
            (geom, str(code) if code is not None else None, str(name) if name is not None else None)
        )
    return in_zone(rows, "EPSG:4490")


def drawn_geometry(doc: Any, kinds: set[str]) -> BaseGeometry:
    """A drawn GeoJSON geometry (longitude/latitude) of one of `kinds`, or a clear refusal."""
    kind = doc.get("type") if isinstance(doc, dict) else None
    if not isinstance(kind, str) or kind not in kinds:
        raise _refuse(
            "geometry_wrong_type",
            f"Expected a GeoJSON {' or '.join(sorted(kinds))}, got {kind!r}.",
            f"需要 GeoJSON {' 或 '.join(sorted(kinds))} 几何，收到的是 {kind!r}。",
        )
    try:
        geom = shape(doc)
    except Exception:  # shapely raises several types on malformed GeoJSON
        raise _refuse(
            "geometry_malformed", "The geometry is malformed.", "几何格式不正确。"
        ) from None
    coords = shapely.get_coordinates(geom)
    if (
        geom.is_empty
        or not np.isfinite(coords).all()
        or not ((np.abs(coords[:, 0]) <= 180).all() and (np.abs(coords[:, 1]) <= 90).all())
    ):
        raise _refuse(
            "geometry_malformed",
            "The geometry must be longitude/latitude in degrees.",
            "几何坐标必须是以度为单位的经纬度。",
        )
    return geom
