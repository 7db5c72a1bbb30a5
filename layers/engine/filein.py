"""Vector files as handed over — GeoPackage, Shapefile (zipped or not), GeoJSON, KML, CSV and XLSX
with longitude/latitude columns — read by GDAL (pyogrio) into columns and geometries.

Chinese Shapefiles and CSVs are often GBK: the text's encoding is taken from the .cpg when there is
one and checked against the bytes; without one it is detected (strict UTF-8 first, then GB18030,
a superset of GBK). Text that fits neither is refused rather than stored as mojibake.
"""

from __future__ import annotations

import re
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from layers.errors import InvalidFeature, PayloadTooLarge

SUFFIXES = (".gpkg", ".zip", ".shp", ".geojson", ".json", ".kml", ".csv", ".xlsx")
LON_NAMES = ("lon", "lng", "longitude", "经度", "x", "东经")
LAT_NAMES = ("lat", "latitude", "纬度", "y", "北纬")
CPG_NAMES = {
    "utf-8": "UTF-8",
    "utf8": "UTF-8",
    "65001": "UTF-8",
    "gbk": "GBK",
    "936": "GBK",
    "cp936": "GBK",
    "gb2312": "GBK",
    "gb18030": "GB18030",
}


@dataclass(frozen=True)
class FileLimits:
    """What an uploaded or imported file may hold."""

    max_bytes: int = 200 * 1024 * 1024
    max_features: int = 500_000
    max_zip_entries: int = 20
    max_unzipped_bytes: int = 1024 * 1024 * 1024


@dataclass
class SourceData:
    """What a file holds: column names and values, geometries (or None), and how it was read."""

    columns: list[str]
    values: list[Any]  # one array per column
    geometries: list[BaseGeometry | None]
    crs: str | None
    encoding: str | None = None
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.geometries)


def refuse(code: str, en: str, zh: str) -> InvalidFeature:
    """The error of a file that cannot be used."""
    return InvalidFeature(en, zh, code=code)


def _zip_member(path: Path, limits: FileLimits) -> Path:
    """Unpack a safe zip (no absolute or `..` names, bounded) and return its one .shp."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
            if len(entries) > limits.max_zip_entries:
                raise refuse(
                    "upload_too_many_entries",
                    f"The zip holds {len(entries)} files, at most {limits.max_zip_entries} are allowed.",
                    f"zip 中有 {len(entries)} 个文件，最多允许 {limits.max_zip_entries} 个。",
                )
            for entry in entries:
                name = PurePosixPath(entry.filename.replace("\\", "/"))
                if name.is_absolute() or ".." in name.parts:
                    raise refuse(
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
                raise refuse(
                    "upload_no_shapefile",
                    "The zip must hold exactly one Shapefile (.shp with its .shx, .dbf, .prj).",
                    "zip 中必须恰好包含一个 Shapefile（.shp 及其 .shx、.dbf、.prj）。",
                )
            target = path.parent / "unzipped"
            archive.extractall(target)
    except zipfile.BadZipFile:
        raise refuse("upload_unreadable", "The zip file is damaged.", "zip 文件已损坏。") from None
    return target / shps[0]


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def text_encoding(data: bytes, declared: str | None, what: str) -> tuple[str, list[str]]:
    """The encoding of text bytes: the declared one when the bytes agree, else the one they fit."""
    notes: list[str] = []
    if declared is not None:
        codec = "GB18030" if declared == "GBK" else declared
        if _decodes(data, codec) and (codec != "GB18030" or not _looks_utf8(data)):
            return declared, notes
        notes.append(f"{what} 声明的编码 {declared} 与内容不符，已按实际内容识别")
    if _decodes(data, "utf-8"):
        return "UTF-8", notes
    if _decodes(data, "gb18030"):
        return "GBK", notes
    raise refuse(
        "upload_encoding",
        f"The text of {what} is neither UTF-8 nor GBK; save it as UTF-8.",
        f"{what} 的文字既不是 UTF-8 也不是 GBK 编码，请另存为 UTF-8 后再导入。",
    )


def _looks_utf8(data: bytes) -> bool:
    """Valid UTF-8 with multi-byte characters: GBK text almost never is."""
    return any(b >= 0x80 for b in data) and _decodes(data, "utf-8")


def _shapefile_encoding(shp: Path) -> tuple[str, list[str]]:
    dbf = next(
        (p for p in shp.parent.iterdir() if p.stem == shp.stem and p.suffix.lower() == ".dbf"), None
    )
    cpg = next(
        (p for p in shp.parent.iterdir() if p.stem == shp.stem and p.suffix.lower() == ".cpg"), None
    )
    declared = CPG_NAMES.get(cpg.read_text(errors="replace").strip().lower()) if cpg else None
    data = dbf.read_bytes() if dbf else b""
    header = int.from_bytes(data[8:10], "little") if len(data) > 10 else 0
    return text_encoding(data[header:], declared, "Shapefile 属性表（.dbf）")


def _points_from_columns(columns: list[str], values: list[Any]) -> list[BaseGeometry | None]:
    """Shapes from a WKT column, else points from longitude/latitude columns."""
    lowered = [c.strip().lower() for c in columns]
    if "wkt" in lowered:
        out_wkt: list[BaseGeometry | None] = []
        for value in values[lowered.index("wkt")]:
            try:
                out_wkt.append(
                    shapely.from_wkt(value) if isinstance(value, str) and value else None
                )
            except shapely.errors.GEOSException:
                out_wkt.append(None)
        return out_wkt
    lon = next((lowered.index(n) for n in LON_NAMES if n in lowered), None)
    lat = next((lowered.index(n) for n in LAT_NAMES if n in lowered), None)
    if lon is None or lat is None:
        raise refuse(
            "upload_no_coordinates",
            f"No longitude/latitude columns found (looked for {', '.join(LON_NAMES)} and {', '.join(LAT_NAMES)}).",
            f"没有找到经纬度列（经度列名可为 {'、'.join(LON_NAMES)}，纬度列名可为 {'、'.join(LAT_NAMES)}）。",
        )
    out: list[BaseGeometry | None] = []
    for x, y in zip(values[lon], values[lat], strict=True):
        try:
            fx, fy = float(x), float(y)
            out.append(shapely.Point(fx, fy) if np.isfinite(fx) and np.isfinite(fy) else None)
        except (TypeError, ValueError):
            out.append(None)
    return out


@contextmanager
def opened(data: bytes, filename: str, limits: FileLimits) -> Iterator[Path]:
    """The upload as a file on disk (unzipped when it is a zipped Shapefile), removed afterwards."""
    if len(data) > limits.max_bytes:
        raise PayloadTooLarge(
            f"The file is larger than {limits.max_bytes:,} bytes.",
            f"文件超过 {limits.max_bytes:,} 字节的上限。",
        )
    suffix = Path(filename).suffix.lower()
    if suffix not in SUFFIXES or suffix == ".shp":
        raise refuse(
            "upload_format",
            f"Send GeoPackage, zipped Shapefile, GeoJSON, KML, CSV or XLSX, not {suffix or 'a file without extension'}.",
            f"请上传 GeoPackage、zip 压缩的 Shapefile、GeoJSON、KML、CSV 或 XLSX，而不是 {suffix or '无扩展名的文件'}。",
        )
    with tempfile.TemporaryDirectory(prefix="citygrid-import-") as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(data)
        yield _zip_member(path, limits) if suffix == ".zip" else path


_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])/(?:[^\s/'\"(),:]+/)+([^\s/'\"(),:]*)")


def without_paths(message: str) -> str:
    """A library's message with every absolute path cut to its last part: the server's
    directories are nobody's business."""
    return _ABSOLUTE_PATH.sub(lambda m: m.group(1) or "…", message)


def read(path: Path, limits: FileLimits, encoding: str | None = None) -> SourceData:
    """Columns, geometries and CRS of the file at `path` (a .shp, .gpkg, .csv, … on disk)."""
    import pyogrio.raw  # GDAL loads slowly: only reading/writing files needs it

    suffix = path.suffix.lower()
    if suffix == ".zip":
        with tempfile.TemporaryDirectory(prefix="citygrid-import-") as tmp:
            copy = Path(tmp) / path.name
            copy.write_bytes(path.read_bytes())
            return read(_zip_member(copy, limits), limits, encoding)
    notes: list[str] = []
    options: dict[str, Any] = {}
    if suffix == ".shp" and encoding is None:
        encoding, notes = _shapefile_encoding(path)
    if suffix == ".csv":
        if encoding is None:
            encoding, notes = text_encoding(path.read_bytes(), None, "CSV 文件")
        if encoding != "UTF-8":  # GDAL's CSV driver reads UTF-8
            text = path.read_bytes().decode("gb18030" if encoding == "GBK" else encoding)
            path = path.with_name("utf8.csv")
            path.write_text(text, encoding="utf-8")
        options["encoding"] = None
    try:
        meta, _, wkb, values = pyogrio.raw.read(
            str(path),
            max_features=limits.max_features + 1,
            encoding=options.get("encoding", encoding if suffix == ".shp" else None),
            **({"HEADERS": "FORCE"} if suffix == ".xlsx" else {}),  # the first row names columns
        )
    except Exception as exc:  # GDAL reports unreadable files with many exception types
        reason = without_paths(str(exc))
        raise refuse(
            "upload_unreadable",
            f"The file cannot be read as vector data ({reason}).",
            f"无法读取该文件中的矢量数据（{reason}）。",
        ) from None
    columns = [str(c) for c in meta["fields"]]
    if len(values[0] if values else (wkb if wkb is not None else [])) > limits.max_features:
        raise PayloadTooLarge(
            f"The file holds more than {limits.max_features:,} features.",
            f"文件中的要素超过 {limits.max_features:,} 个。",
        )
    values = list(values)
    if suffix == ".kml":
        columns, values = _kml_columns(columns, values)
    if suffix in (".csv", ".xlsx"):
        geometries = _points_from_columns(columns, values)
        crs = None
    else:
        geometries = list(shapely.from_wkb(wkb)) if wkb is not None else [None] * len(values[0])
        crs = meta.get("crs")
    return SourceData(columns, values, geometries, crs, encoding, notes)


def _kml_columns(columns: list[str], values: list[Any]) -> tuple[list[str], list[Any]]:
    """GDAL names a Placemark's own id attribute `id` and a data field called id `id2`: the
    attribute is the writing program's, the field is the row's."""
    if "id" not in columns:
        return columns, values
    at = columns.index("id")
    columns, values = columns[:at] + columns[at + 1 :], values[:at] + values[at + 1 :]
    return ["id" if c == "id2" else c for c in columns], values
