"""The files a new bureau hands over, generated for 三明市三元区 (350404, Gauss-Krüger zone
EPSG:4548, around lon 117.61 lat 26.23): its boundary and all its grid levels as Shapefiles in
projected metres (the grids in GBK), billboards traced on Amap as an XLSX, parking lots as a
GeoPackage, illegal buildings as a KML, and a year of cases from its former 数字城管 system as a
GBK CSV with that system's Chinese headings; and the indicators those cases give, counted by hand.
"""

from __future__ import annotations

import csv
import io
import random
import zipfile
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pyogrio.raw
import shapely
from chinese_calendar import constants
from pyproj import Transformer
from shapely.geometry import MultiPolygon, Polygon, box

from gis.gcj02 import wgs84_to_gcj02
from layers.cases.worktime import WorkCalendar

ADCODE = "350404"
EPSG = 4548  # CGCS2000 / 3-degree Gauss-Kruger CM 117E
TO_ZONE = Transformer.from_crs(4490, EPSG, always_xy=True)
TO_LONLAT = Transformer.from_crs(EPSG, 4490, always_xy=True)
X0, Y0 = TO_ZONE.transform(117.61, 26.23)
WIDTH, HEIGHT = 6000.0, 4000.0
ZONE = ZoneInfo("Asia/Shanghai")
# The oracle's working calendar: the statutory days straight from the package, not the database
STATUTORY = WorkCalendar(
    holidays=frozenset(constants.holidays), workdays=frozenset(constants.workdays)
)
Row = dict[str, Any]


# --- the county and its grids, in metres of its zone ---------------------------------------------


def at(dx: float, dy: float) -> tuple[float, float]:
    """A point `dx`, `dy` metres east and north of the county's south-west corner."""
    return X0 + dx, Y0 + dy


def rect(x0: float, y0: float, x1: float, y1: float) -> Polygon:
    """A rectangle given in metres from the county's south-west corner."""
    return box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def lonlat(geom: shapely.Geometry) -> shapely.Geometry:
    """A geometry in metres of the zone, as CGCS2000 longitude/latitude."""
    return shapely.transform(
        geom, lambda xy: np.column_stack(TO_LONLAT.transform(xy[:, 0], xy[:, 1]))
    )


def boundary_metres() -> Polygon:
    """The county as another source draws it: its north edge bulges 20 m between the streets."""
    ring = [at(0, 0), at(WIDTH, 0), at(WIDTH, HEIGHT), at(WIDTH / 2, HEIGHT + 20), at(0, HEIGHT)]
    return Polygon(ring)


def official_boundary() -> MultiPolygon:
    """The official boundary in CGCS2000 longitude/latitude."""
    return MultiPolygon([lonlat(boundary_metres())])


def code(street: int, community: int = 0, section: int = 0) -> str:
    """A grid's 15-digit code in the county."""
    return f"{ADCODE}{street:03d}{community:03d}{section:03d}"


def grid(level: str, grid_code: str, parent: str, name: str, shape: shapely.Geometry) -> Row:
    """One row of the surveyors' grid file, with its people."""
    return {
        "层级": level,
        "网格编码": grid_code,
        "上级编码": parent,
        "网格名称": name,
        "责任人": f"王{name[-3:]}",
        "责任单位": "三元区城市管理局",
        "geom": shape,
    }


def hierarchy() -> list[Row]:
    """Two streets side by side, each two communities (south, north); the first community of the
    first street cut into four sections."""
    rows: list[Row] = []
    for s in (1, 2):
        x = (s - 1) * WIDTH / 2
        rows.append(grid("街道", code(s), "", f"第{s}街道", rect(x, 0, x + 3000, HEIGHT)))
        for c in (1, 2):
            y = (c - 1) * HEIGHT / 2
            shape = rect(x, y, x + 3000, y + 2000)
            rows.append(grid("社区", code(s, c), code(s), f"第{s}街道{c}社区", shape))
    for k in range(4):
        i, j = k % 2, k // 2
        shape = rect(i * 1500, (1 - j) * 1000, (i + 1) * 1500, (2 - j) * 1000)
        rows.append(grid("单元", code(1, 1, k + 1), code(1, 1), f"一社区第{k + 1}网格", shape))
    return rows


def write_shapefile(
    folder: Path, rows: list[Row], cpg: bool = True, name: str = "三元区网格"
) -> Path:
    """The rows as a GBK Shapefile in EPSG:4548 metres (with or without its .cpg)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.shp"
    columns = [c for c in rows[0] if c != "geom"]
    pyogrio.raw.write(
        str(path),
        shapely.to_wkb(np.asarray([r["geom"] for r in rows], dtype=object)),
        [np.asarray([r[c] for r in rows], dtype=object) for c in columns],
        columns,
        geometry_type="Polygon",
        crs=f"EPSG:{EPSG}",
        driver="ESRI Shapefile",
        encoding="GBK",
    )
    if not cpg:
        path.with_suffix(".cpg").unlink(missing_ok=True)
    return path


def write_boundary(path: Path) -> Path:
    """The official boundary as a Shapefile in EPSG:4548 metres without its .prj, as surveyors'
    files often come (so `--crs` must name the zone)."""
    pyogrio.raw.write(
        str(path),
        shapely.to_wkb(np.asarray([boundary_metres()], dtype=object)),
        [np.asarray(["三元区"], dtype=object)],
        ["名称"],
        geometry_type="Polygon",
        crs=f"EPSG:{EPSG}",
        driver="ESRI Shapefile",
        encoding="UTF-8",
    )
    path.with_suffix(".prj").unlink(missing_ok=True)
    return path


def zipped(shp: Path) -> bytes:
    """A Shapefile's parts as one zip, as the API takes it."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for part in shp.parent.glob(f"{shp.stem}.*"):
            archive.write(part, part.name)
    return out.getvalue()


# --- other layers --------------------------------------------------------------------------------

BILLBOARD_TYPES = ("店招", "高炮", "灯箱", "墙体")


def billboard_truth(count: int = 12) -> list[tuple[float, float]]:
    """Where the billboards really stand (CGCS2000 lon/lat), spread over the first street."""
    return [lonlat(shapely.Point(at(200 + 230 * k, 300 + 270 * k))).coords[0] for k in range(count)]


def write_billboards_xlsx(path: Path, truth: list[tuple[float, float]]) -> Path:
    """Billboards traced on Amap: an XLSX whose 经度/纬度 are GCJ-02, with Chinese headings and
    code labels."""
    lon, lat = wgs84_to_gcj02(np.array([p[0] for p in truth]), np.array([p[1] for p in truth]))
    n = len(truth)
    columns = {
        "登记编号": np.array([f"SYGG{k + 1:04d}" for k in range(n)], dtype=object),
        "设施类型": np.array([BILLBOARD_TYPES[k % 4] for k in range(n)], dtype=object),
        "牌面面积(㎡)": np.array([2.5 + k for k in range(n)], dtype=float),
        "设置单位": np.array([f"三元商行{k + 1}" for k in range(n)], dtype=object),
        "经度": np.asarray(lon, dtype=float),
        "纬度": np.asarray(lat, dtype=float),
    }
    pyogrio.raw.write(str(path), None, list(columns.values()), list(columns), driver="XLSX")
    return path


def write_parking_gpkg(path: Path, count: int = 3) -> Path:
    """Parking lots as a GeoPackage in CGCS2000 with Chinese column names and code labels."""
    shapes = [lonlat(rect(500 + 800 * k, 2500, 560 + 800 * k, 2540)) for k in range(count)]
    columns = {
        "名称": np.array([f"三元区第{k + 1}停车场" for k in range(count)], dtype=object),
        "类别": np.array(["公共停车场"] * count, dtype=object),
        "泊位数": np.array([40 + 10 * k for k in range(count)], dtype=np.int64),
        "备案状态": np.array(["已备案"] * count, dtype=object),
    }
    pyogrio.raw.write(
        str(path),
        shapely.to_wkb(np.asarray(shapes, dtype=object)),
        list(columns.values()),
        list(columns),
        geometry_type="Polygon",
        crs="EPSG:4490",
        driver="GPKG",
    )
    return path


def write_buildings_kml(path: Path, count: int = 2) -> Path:
    """Illegal buildings found on patrol, as a KML (WGS84 longitude/latitude)."""
    shapes = [lonlat(rect(4000 + 300 * k, 1000, 4020 + 300 * k, 1015)) for k in range(count)]
    columns = {
        "类别": np.array(["新增"] * count, dtype=object),
        "发现方式": np.array(["巡查发现"] * count, dtype=object),
        "处置状态": np.array(["待处置"] * count, dtype=object),
        "地址": np.array([f"列西路{k + 1}号" for k in range(count)], dtype=object),
    }
    pyogrio.raw.write(
        str(path),
        shapely.to_wkb(np.asarray(shapes, dtype=object)),
        list(columns.values()),
        list(columns),
        geometry_type="Polygon",
        crs="EPSG:4326",
        driver="KML",
    )
    return path


# --- a former system's cases ---------------------------------------------------------------------

# (大类, the name the former system writes, the category it stands for)
CATEGORIES = (
    ("市容环境", "暴露垃圾", "E0102"),
    ("街面秩序", "店外经营", "E0502"),
    ("市容环境", "私搭乱建", "E0101"),
    ("街面秩序", "流动摊贩", "E0501"),
    ("市容环境", "道路不洁", "E0104"),
    ("宣传广告", "小广告", "E0201"),
    ("施工管理", "E0301", "E0301"),
    ("公用设施", "井盖破损", "C0113"),
)
STATUSES = (  # label, weight
    ("结案", 60),
    ("不予立案", 5),
    ("处置中", 10),
    ("已派遣", 5),
    ("已立案", 5),
    ("待受理", 5),
    ("已处置", 10),
)
SOURCES = ("监督员上报", "公众举报", "12345热线", "视频监控")
HEADINGS = (
    "案件编号", "上报时间", "立案时间", "派遣时间", "处置时间", "结案时间", "处置时限",
    "大类", "小类", "来源", "状态", "经度", "纬度", "问题描述",
)  # fmt: skip
CASE_AREA = (117.592, 26.212, 117.628, 26.248)  # where cases fall: west, south, east, north


def _when(at: datetime | None, style: int) -> str:
    if at is None:
        return ""
    if style % 2:
        return f"{at.year}/{at.month}/{at.day} {at.hour}:{at.minute:02d}"
    return at.strftime("%Y-%m-%d %H:%M:%S")


def case_row(
    rng: random.Random, n: int, reported: datetime, where: tuple[float, float], year: int = 2025
) -> dict[str, Any]:
    """One case as the former system exported it (times as datetimes, the rest as text)."""
    major, name, category = rng.choice(CATEGORIES)
    status = rng.choices([s for s, _ in STATUSES], [w for _, w in STATUSES])[0]
    registered = dispatched = handled = closed = deadline = None
    if status not in ("待受理", "不予立案"):
        registered = reported + timedelta(minutes=rng.randint(5, 60))
    if status in ("处置中", "已派遣", "已处置", "结案"):
        dispatched = registered + timedelta(minutes=rng.randint(5, 90))  # type: ignore[operator]
        if rng.random() < 0.1:
            deadline = dispatched + timedelta(days=3)
    if status in ("已处置", "结案"):
        handled = dispatched + timedelta(minutes=rng.randint(30, 150 * 60))  # type: ignore[operator]
    if status == "结案":
        closed = handled + timedelta(minutes=rng.randint(12, 1800))  # type: ignore[operator]
    if status == "不予立案":
        closed = reported + timedelta(minutes=30)
    return {
        "ref": f"SY{year}{n:05d}",
        "reported": reported,
        "registered": registered,
        "dispatched": dispatched,
        "handled": handled,
        "closed": closed,
        "deadline": deadline,
        "major": major,
        "name": name,
        "code": category,
        "source": rng.choice(SOURCES),
        "status": status,
        "lon": where[0],
        "lat": where[1],
    }


def year_of_cases(
    count: int = 300, year: int = 2025, area: tuple[float, float, float, float] = CASE_AREA
) -> list[dict[str, Any]]:
    """A year of cases reported from 2 January on, at random places of `area` (lon/lat)."""
    rng = random.Random(14)
    start = datetime(year, 1, 2, tzinfo=ZONE)
    cases = []
    for n in range(count):
        reported = start + timedelta(minutes=rng.randint(0, 320 * 24 * 60))
        place = (rng.uniform(area[0], area[2]), rng.uniform(area[1], area[3]))
        cases.append(case_row(rng, n + 1, reported, place, year))
    return cases


def write_gbk_csv(path: Path, cases: list[dict[str, Any]]) -> Path:
    """The cases as the former system's GBK CSV with its Chinese headings."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADINGS)
    for i, c in enumerate(cases):
        times = [
            _when(c[k], i)
            for k in ("reported", "registered", "dispatched", "handled", "closed", "deadline")
        ]
        writer.writerow(
            [c["ref"], *times, c["major"], c["name"], c["source"], c["status"],
             f"{c['lon']:.6f}", f"{c['lat']:.6f}", f"{c['name']}，编号 {c['ref']}"]
        )  # fmt: skip
    path.write_bytes(out.getvalue().encode("gbk"))
    return path


def _tally(
    cases: list[dict[str, Any]], limits: dict[str, tuple[int, str]], start: date, end: date
) -> dict[str, dict[str, int]]:
    """Per category: registered, closed, due, and of those due the closed ("done") and the
    closed by their deadline ("ok"), each counted by the moment that defines it in the period."""
    calendar = STATUTORY

    def inside(at: datetime | None) -> bool:
        return at is not None and start <= at.astimezone(ZONE).date() <= end

    out: dict[str, dict[str, int]] = {}
    for c in cases:
        row = out.setdefault(
            c["code"], {"registered": 0, "closed": 0, "due": 0, "done": 0, "ok": 0}
        )
        closed = c["status"] == "结案"
        row["registered"] += inside(c["registered"])
        row["closed"] += closed and inside(c["closed"])
        deadline = c["deadline"] or (
            calendar.add(c["dispatched"], *limits[c["code"]]) if c["dispatched"] else None
        )
        if c["status"] != "不予立案" and inside(deadline):
            row["due"] += 1
            row["done"] += closed
            row["ok"] += closed and c["closed"] <= deadline
    return out


def _share(part: int, whole: int) -> float | None:
    """A rate to four places, halves rounded up as the database rounds them."""
    if not whole:
        return None
    return float((Decimal(part) / Decimal(whole)).quantize(Decimal("0.0001"), ROUND_HALF_UP))


def _rates(r: dict[str, int]) -> dict[str, Any]:
    return {
        "registered": r["registered"],
        "closed": r["closed"],
        "due": r["due"],
        "closed_rate": _share(r["done"], r["due"]),
        "on_time_rate": _share(r["ok"], r["due"]),
    }


def expected_indicators(
    cases: list[dict[str, Any]], limits: dict[str, tuple[int, str]], start: date, end: date
) -> dict[str, dict[str, Any]]:
    """立案数, 结案数, 应结案数, 结案率 and 按期结案率 per category, counted by hand."""
    return {
        category: _rates(r)
        for category, r in _tally(cases, limits, start, end).items()
        if r["registered"] or r["closed"] or r["due"]
    }


def expected_totals(
    cases: list[dict[str, Any]], limits: dict[str, tuple[int, str]], start: date, end: date
) -> dict[str, Any]:
    """The same figures for every category together."""
    tally = _tally(cases, limits, start, end).values()
    keys = ("registered", "closed", "due", "done", "ok")
    return _rates({k: sum(r[k] for r in tally) for k in keys})
