"""Grid management: grids on a day, checks, split/merge/redraw/generate/replace, people, statistics."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import Field, StringConstraints, field_validator
from sqlalchemy import Connection, Engine
from starlette.datastructures import UploadFile

from api.auth import GridReaderDep, PlannerDep, ViewerDep, current_viewer
from api.deps import (
    CODE_PATTERN,
    LEVEL_PATTERN,
    UPLOAD_BODY,
    BodyDep,
    ConnectionDep,
    CountyViewerDep,
    Day,
    EditContextDep,
    EngineDep,
    GridCode,
    Strict,
    require_media_type,
    statement_kind,
    upload_body_type,
)
from api.openapi import (
    FEATURE_COLLECTION,
    answers,
    as_geometry,
    described_as,
    json_body,
    text,
)
from api.settings import EditingSettings
from gis.gridops import UnitPlan
from gis.topology import CheckOptions, Report
from gis.zones import to_gk
from layers.engine import filein, fileout
from layers.engine.access import Viewer, may_write_county, outside_counties
from layers.engine.editing import EditContext, parse_body
from layers.engine.filein import FileLimits
from layers.engine.importing import parse_mapping
from layers.errors import InvalidFeature, PayloadTooLarge
from layers.grids import gridchanges, gridfiles, gridhistory, gridimport
from layers.grids.grids import (
    Family,
    all_parents,
    check_family,
    check_stored,
    load_family,
    report_document,
)

router = APIRouter(prefix="/grids", tags=["grids 网格管理"], dependencies=[Depends(current_viewer)])
GEOJSON = "application/geo+json"
LINE = {"LineString", "MultiLineString"}
POLYGON_TYPES = ("Polygon", "MultiPolygon")
POLYGON = set(POLYGON_TYPES)
CODE = CODE_PATTERN


class CheckRequest(Strict):
    """What to check: one parent's stored children, every family, or an uploaded set."""

    parent: str | None = Field(default=None, pattern=CODE, description="上级网格编码")
    sliver_m2: float | None = Field(default=None, gt=0, description="碎片面积下限（㎡）")
    features: dict[str, Any] | None = Field(
        default=None,
        description="待检查的网格 GeoJSON FeatureCollection（经纬度）",
        json_schema_extra=described_as(FEATURE_COLLECTION),
    )


class SplitRequest(Strict):
    """A drawn line; the grid it cuts across is found when no code is given."""

    line: dict[str, Any] = Field(
        description="GeoJSON LineString（经纬度）",
        json_schema_extra=as_geometry("LineString", "MultiLineString"),
    )
    code: str | None = Field(default=None, pattern=CODE)


class AddRequest(Strict):
    """A grid drawn by hand; its parent is the grid of the level above under it."""

    geometry: dict[str, Any] = Field(
        description="GeoJSON Polygon（经纬度）", json_schema_extra=as_geometry(*POLYGON_TYPES)
    )
    level: str = Field(default="section", pattern="^(community|section)$")
    name: str | None = Field(default=None, max_length=100)


class MergeRequest(Strict):
    """Adjacent grids of one parent to merge."""

    codes: list[Annotated[str, StringConstraints(pattern=CODE)]] = Field(
        min_length=2, max_length=50, json_schema_extra={"uniqueItems": True}
    )

    @field_validator("codes")
    @classmethod
    def _distinct(cls, codes: list[str]) -> list[str]:
        if len(set(codes)) != len(codes):
            raise ValueError("each grid is named once")
        return codes


class RedrawRequest(Strict):
    """A grid's new boundary."""

    geometry: dict[str, Any] = Field(
        description="GeoJSON Polygon（经纬度）", json_schema_extra=as_geometry(*POLYGON_TYPES)
    )
    snap_m: float | None = Field(default=None, ge=0, le=50, description="吸附容差（米）")


class GenerateRequest(Strict):
    """Regular unit cells for a parent."""

    nominal_area_m2: float = Field(default=10_000, ge=100, le=10_000_000)
    sliver_ratio: float = Field(default=0.3, ge=0, lt=1)


def _options(request: Request, sliver_m2: float | None = None) -> CheckOptions:
    settings: EditingSettings = request.app.state.editing
    return settings.check_options(sliver_m2)


def _code(code: str) -> str:
    if not code.isdigit() or len(code) != 15:
        raise InvalidFeature(
            f"{code!r} is not a 15-digit grid code.",
            f"{code!r} 不是 15 位网格编码。",
            code="invalid_parameter",
        )
    return code


@router.get(
    "",
    summary="Grids valid on a day / 某日的网格",
    response_class=Response,
    responses=answers(GEOJSON),
)
def grids_on(
    conn: ConnectionDep,
    viewer: CountyViewerDep,
    at: Annotated[Day | None, Query(description="YYYY-MM-DD, default today")] = None,
    level: Annotated[
        str | None, Query(pattern=LEVEL_PATTERN, description="street | community | section")
    ] = None,
    parent: Annotated[str | None, Query(pattern=CODE)] = None,
) -> Response:
    """The grids valid on `at` (valid_from ≤ at < valid_to), as GeoJSON."""
    day = at or gridhistory.today(conn)
    return Response(gridhistory.grids_on(conn, day, level, parent, viewer), media_type=GEOJSON)


@router.get(
    "/stats",
    summary="Counts per grid on a day / 网格统计",
    dependencies=[Depends(statement_kind("statistics"))],
)
def grid_stats(
    conn: ConnectionDep,
    viewer: CountyViewerDep,
    at: Annotated[Day | None, Query(description="YYYY-MM-DD, default today")] = None,
    level: Annotated[str | None, Query(pattern=LEVEL_PATTERN)] = "section",
    parent: Annotated[str | None, Query(pattern=CODE)] = None,
) -> list[Any]:
    """Per grid valid on `at`: area (km²), cases reported up to that day and on it, features inside."""
    return gridhistory.grid_stats(conn, at or gridhistory.today(conn), level, parent, viewer)


@router.post("/check", summary="Check grids / 网格拓扑检查")
def check(
    request: Request, conn: ConnectionDep, body: CheckRequest, viewer: GridReaderDep
) -> dict[str, Any]:
    """Gaps, overlaps, spill-over, invalid shapes, slivers and code errors, each as a feature."""
    options = _options(request, body.sliver_m2)
    if body.features is not None:
        if body.parent is None:
            raise InvalidFeature(
                "Checking uploaded grids needs their parent's code.",
                "检查上传的网格需要提供上级网格编码（parent）。",
                code="missing_property",
            )
        family = load_family(conn, body.parent, counties=viewer.counties)
        rows = gridfiles.from_feature_collection(body.features)(family.epsg)
        return report_document([(_check_rows(conn, family, rows, options), family.epsg)])
    held = viewer.counties
    parents = [body.parent] if body.parent else all_parents(conn, counties=held)
    return report_document([check_stored(conn, p, options, held) for p in parents])


def _check_rows(
    conn: Connection, family: Family, rows: gridfiles.Drawn, options: CheckOptions
) -> Report:
    fresh = iter(gridchanges.next_codes(conn, family, sum(1 for _, c, _ in rows if c is None)))
    codes = [c or next(fresh) for _, c, _ in rows]
    return check_family(family, [g for g, _, _ in rows], codes, options)


def _answer(change: gridchanges.Change) -> dict[str, Any]:
    return change.document()


@router.post("", summary="Draw a new grid / 新增网格")
def add(
    request: Request, engine: EngineDep, ctx: EditContextDep, body: AddRequest, _: PlannerDep
) -> dict[str, Any]:
    """Add a hand-drawn grid to the parent under it; refused with the report if it breaks the rules."""
    drawn = _valid_polygon(body.geometry)
    with engine.begin() as conn:
        change = gridchanges.add(
            conn,
            drawn,
            body.level,
            body.name,
            lambda epsg: to_gk(drawn, epsg)[()],
            ctx.actor,
            _options(request),
            ctx.viewer.counties,
        )
    return _answer(change)


def _valid_polygon(doc: dict[str, Any]) -> Any:
    drawn = gridfiles.drawn_geometry(doc, POLYGON)
    if not drawn.is_valid:
        raise InvalidFeature(
            "The drawn boundary crosses itself.", "绘制的边界自相交。", code="geometry_invalid"
        )
    return drawn


@router.post("/split", summary="Split a grid by a line / 拆分网格")
def split(
    request: Request, engine: EngineDep, ctx: EditContextDep, body: SplitRequest, _: PlannerDep
) -> dict[str, Any]:
    """Cut the grid the line crosses; every piece gets a new code, the old grid is closed."""
    line = gridfiles.drawn_geometry(body.line, LINE)
    with engine.begin() as conn:
        held = ctx.viewer.counties
        code = body.code or gridchanges.split_target(conn, line, held)
        change = gridchanges.split(
            conn, code, lambda epsg: to_gk(line, epsg)[()], ctx.actor, _options(request), held
        )
    return _answer(change)


@router.post("/merge", summary="Merge adjacent grids / 合并网格")
def merge(
    request: Request, engine: EngineDep, ctx: EditContextDep, body: MergeRequest, _: PlannerDep
) -> dict[str, Any]:
    """Join adjacent grids of one parent into one with a new code."""
    codes = [_code(c) for c in body.codes]
    with engine.begin() as conn:
        change = gridchanges.merge(conn, codes, ctx.actor, _options(request), ctx.viewer.counties)
    return _answer(change)


@router.post("/{code}/redraw", summary="Redraw a grid's boundary / 调整网格边界")
def redraw(
    code: GridCode,
    request: Request,
    engine: EngineDep,
    ctx: EditContextDep,
    body: RedrawRequest,
    _: PlannerDep,
) -> dict[str, Any]:
    """New boundary for a grid; neighbours along the moved edges are adjusted to match."""
    drawn = _valid_polygon(body.geometry)
    snap = body.snap_m if body.snap_m is not None else request.app.state.editing.grid_snap_m
    with engine.begin() as conn:
        change = gridchanges.redraw(
            conn,
            _code(code),
            lambda epsg: to_gk(drawn, epsg)[()],
            snap,
            ctx.actor,
            _options(request),
            ctx.viewer.counties,
        )
    return _answer(change)


@router.post("/{code}/generate", summary="Generate unit grids / 生成单元网格")
def generate(
    code: GridCode,
    request: Request,
    engine: EngineDep,
    ctx: EditContextDep,
    body: GenerateRequest,
    _: PlannerDep,
) -> dict[str, Any]:
    """Replace the children of a grid by regular cells of the nominal area."""
    plan = UnitPlan(body.nominal_area_m2, body.sliver_ratio)
    with engine.begin() as conn:
        change = gridchanges.generate(
            conn, _code(code), plan, ctx.actor, _options(request), ctx.viewer.counties
        )
    return _answer(change)


@router.post(
    "/{code}/children",
    summary="Replace children from a file / 上传替换下级网格",
    dependencies=[Depends(upload_body_type), Depends(statement_kind("import"))],
    openapi_extra={"requestBody": UPLOAD_BODY},
)
async def replace_children(
    code: GridCode,
    request: Request,
    engine: EngineDep,
    ctx: EditContextDep,
    _: PlannerDep,
    filename: Annotated[str, Query(description="e.g. grids.gpkg, grids.zip (Shapefile)")],
    crs: Annotated[str | None, Query(description="source CRS when the file has none")] = None,
) -> dict[str, Any]:
    """Upload a GeoPackage, zipped Shapefile or GeoJSON drawn in QGIS; checked, then all or nothing."""
    most = request.app.state.editing.max_upload_bytes
    limits = FileLimits(max_bytes=most, max_features=5_000, max_unzipped_bytes=5 * most)
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limits.max_bytes:
            break
    # reading the file (GDAL) and the transaction block: they run beside the event loop, not on it
    return await run_in_threadpool(
        _replace_children,
        engine,
        bytes(data),
        (filename, crs),
        limits,
        code,
        ctx,
        _options(request),
    )


def _replace_children(
    engine: Engine,
    data: bytes,
    source: tuple[str, str | None],
    limits: FileLimits,
    code: str,
    ctx: EditContext,
    options: CheckOptions,
) -> dict[str, Any]:
    drawn = gridfiles.read_grid_file(data, source[0], source[1], limits)
    with engine.begin() as conn:
        change = gridchanges.replace_children(
            conn, _code(code), drawn, ctx.actor, options, ctx.viewer.counties
        )
    return _answer(change)


IMPORT_FIELDS = {
    "county": {"type": "string", "pattern": "^[0-9]{6}$", "description": "县级行政区划代码"},
    "valid_from": {"type": "string", "format": "date", "description": "生效日期 YYYY-MM-DD"},
    "dry_run": {"type": "boolean", "description": "只检查，不写入"},
    "crs": {"type": "string", "description": "文件未声明时的坐标系：EPSG:4548、gcj02 …"},
    "encoding": {"type": "string", "description": "Shapefile 文字编码：UTF-8、GBK …"},
    "map": {
        "type": "array",
        "items": {"type": "string", "pattern": "^[^=\\x00]+=[^\\x00]+$"},
        "description": "列名=字段，如 层级=level",
    },
    "file": {
        "type": "array",
        "items": {"type": "string", "format": "binary"},
        "description": "GeoPackage、zip 压缩的 Shapefile、GeoJSON、KML（可多个）",
    },
}
IMPORT_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["county", "valid_from", "file"],
                "properties": IMPORT_FIELDS,
            }
        }
    },
}
MAX_IMPORT_FILES = 10


def _form_text(form: Any, name: str) -> str | None:
    value = form.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidFeature(
            f"{name} must be text.", f"{name} 必须是文本。", code="invalid_parameter"
        )
    return value.strip() or None if isinstance(value, str) else None


def _import_request(form: Any, viewer: Viewer) -> tuple[str, date, bool]:
    county, day, dry = (
        _form_text(form, "county"),
        _form_text(form, "valid_from"),
        _form_text(form, "dry_run"),
    )
    if county is None or not county.isdigit() or len(county) != 6:
        raise InvalidFeature(
            "county must be a 6-digit county code.",
            "county 必须是 6 位县级行政区划代码。",
            code="invalid_parameter",
        )
    if not may_write_county(viewer, county):
        raise outside_counties()
    try:
        valid_from = date.fromisoformat(day or "")
    except ValueError:
        raise InvalidFeature(
            "valid_from must be a date (YYYY-MM-DD).",
            "valid_from 必须是日期（YYYY-MM-DD）。",
            code="invalid_parameter",
        ) from None
    return county, valid_from, (dry or "false").lower() in ("true", "1", "yes", "on")


def _import_grids(
    engine: Any,
    files: list[tuple[str, bytes]],
    county: str,
    valid_from: date,
    options: Any,
    actor: str,
    settings: dict[str, Any],
) -> dict[str, Any]:
    limits = FileLimits(
        max_bytes=settings["most"], max_features=50_000, max_unzipped_bytes=5 * settings["most"]
    )
    sources = []
    for name, data in files:
        with filein.opened(data, name, limits) as path:
            sources.append((name, filein.read(path, limits, settings["encoding"])))
    with engine.begin() as conn:
        done = gridimport.import_grids(
            conn,
            sources,
            county,
            valid_from,
            options,
            actor,
            settings["crs"],
            settings["mapping"],
            settings["dry_run"],
        )
    return done.document()


@router.post(
    "/import",
    summary="Import a county's whole grid hierarchy / 导入全县网格",
    dependencies=[Depends(statement_kind("import"))],
    openapi_extra={"requestBody": IMPORT_BODY},
)
async def import_grids(
    request: Request, engine: EngineDep, ctx: EditContextDep, viewer: PlannerDep
) -> dict[str, Any]:
    """multipart/form-data: `file` (one or more: every level, 层级/网格编码/上级编码/网格名称/责任人/
    责任单位/联系电话), `county`, `valid_from`, optional `dry_run`, `crs`, `encoding`, `map`
    (COLUMN=FIELD). Every check runs first; any problem answers 422 with each one located in
    longitude/latitude and in the file's CRS, and nothing is written."""
    editing = request.app.state.editing
    most = editing.max_upload_bytes
    require_media_type(request, ("multipart/form-data",), "the grid files", "网格文件")
    async with request.form(max_files=MAX_IMPORT_FILES, max_fields=40, max_part_size=most) as form:
        county, valid_from, dry_run = _import_request(form, viewer)
        uploads = [u for u in form.getlist("file") if isinstance(u, UploadFile)]
        if not uploads:
            raise InvalidFeature(
                "Send the grids as one or more `file` parts.",
                "请以 file 字段上传一个或多个网格文件。",
                code="missing_property",
            )
        files = []
        for upload in uploads:
            data = await upload.read(most + 1)
            if len(data) > most:
                raise PayloadTooLarge(
                    f"{upload.filename} is larger than {most:,} bytes.",
                    f"{upload.filename} 超过 {most:,} 字节的上限。",
                )
            files.append((upload.filename or "grids", data))
        pairs = [p for p in form.getlist("map") if isinstance(p, str)]
        named = _form_text(form, "encoding")
        settings = {
            "most": most,
            "crs": _form_text(form, "crs"),
            "encoding": fileout.encoding_name(named) if named else None,
            "mapping": parse_mapping(pairs, "="),
            "dry_run": dry_run,
        }
    return await run_in_threadpool(
        _import_grids,
        engine,
        files,
        county,
        valid_from,
        editing.check_options(),
        ctx.actor,
        settings,
    )


@router.get("/{code}/people", summary="People of a grid / 网格责任人与监督员")
def get_people(code: GridCode, conn: ConnectionDep, viewer: ViewerDep) -> dict[str, Any]:
    """Responsible person, unit and phone, and the assigned inspectors."""
    return gridhistory.people(conn, _code(code), viewer)


NAME = r"^[^\x00]*[^\s\x00][^\x00]*$"  # not blank
INSPECTOR = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": text(NAME, nullable=False, maxLength=100),
        "phone": text(),
        "username": text(),
    },
}
PEOPLE_BODY = json_body(
    {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "responsible_person": text(),
            "responsible_unit": text(),
            "phone": text(),
            "inspectors": {"type": "array", "items": INSPECTOR},
        },
    }
)


@router.put(
    "/{code}/people",
    summary="Set the people of a grid / 设置网格责任人",
    openapi_extra={"requestBody": PEOPLE_BODY},
)
def put_people(
    code: GridCode, _: PlannerDep, body: BodyDep, engine: EngineDep, ctx: EditContextDep
) -> dict[str, Any]:
    """Replace the responsible person, unit, phone and inspectors of a current grid."""
    doc = parse_body(body)
    with engine.begin() as conn:
        return gridhistory.set_people(conn, _code(code), doc, ctx.actor, ctx.viewer)
