"""Request dependencies, each resolving one thing, as `Annotated` aliases."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, Header, Path, Query, Request
from pydantic import BaseModel, BeforeValidator, ConfigDict, model_validator
from sqlalchemy import Connection, Engine

from api.auth import ViewerDep
from api.language import negotiated_language
from gis.validate import Limits
from layers.engine import jsonin
from layers.engine.access import Viewer
from layers.engine.crs import CRS84, Crs, parse_content_crs, parse_crs, uri_pattern
from layers.engine.editing import EditContext
from layers.engine.features import BBox, TimeRange, get_layer
from layers.engine.schemas import Lang
from layers.errors import BadQuery, InvalidFeature, PayloadTooLarge, UnsupportedMediaType
from layers.places import counties
from layers.registry import GRID_LEVELS, Layer
from layers.store.db import STATEMENT_BUDGET


async def get_engine(request: Request) -> Engine:
    """The engine owned by the application."""
    engine: Engine = request.app.state.engine
    return engine


def get_connection(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Connection]:
    """A connection for the request, returned to the pool afterwards."""
    with engine.connect() as conn:
        yield conn


def statement_kind(kind: str) -> Callable[[Request], Coroutine[Any, Any, None]]:
    """A dependency giving the request's statements the timeout of `kind` (statistics, export,
    import); others keep the short one of reads (CITYGRID_READ_TIMEOUT_MS)."""

    async def dependency(request: Request) -> None:
        budget = STATEMENT_BUDGET.get()
        if budget is not None:
            budget.kind = kind
            budget.timeout_ms = request.app.state.limits.timeout_ms(kind)

    return dependency


EngineDep = Annotated[Engine, Depends(get_engine)]
ConnectionDep = Annotated[Connection, Depends(get_connection)]
LangDep = Annotated[Lang, Depends(negotiated_language)]


async def get_layer_dep(
    collection_id: Annotated[str, Path(alias="collectionId", description="the layer's id")],
) -> Layer:
    """The layer named by the path (`collectionId`, the name OGC API clients look for)."""
    return get_layer(collection_id)


CRS_PATTERN = uri_pattern()
# cql-text is the draft's name for CQL2 text, which GDAL's OAPIF driver sends
FilterLang = Literal["cql2-text", "cql2-json", "cql-text"]
NUMBER = r"\s*[-+]?([0-9]{1,20}\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]{1,2})?\s*"  # finite
BBOX_PATTERN = rf"^{NUMBER}(,{NUMBER}){{3}}(,{NUMBER},{NUMBER})?$"
CODE_PATTERN = r"^[0-9]{15}$"
LEVEL_PATTERN = f"^({'|'.join(c.value for c in GRID_LEVELS)})$"  # street|community|section
DAY = r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
INSTANT = (
    rf"{DAY}(T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?(Z|[+-][01][0-9]:[0-5][0-9]))?"
)
DATETIME_PATTERN = rf"^({INSTANT}|{INSTANT}/({INSTANT}|\.\.)?|(\.\.)?/{INSTANT})$"
CATEGORY = r"\s*[EC][0-9]{2}([0-9]{2})?\s*"
CATEGORIES_PATTERN = rf"^({CATEGORY}(,{CATEGORY})*)?$"
CrsName = Annotated[str | None, Query(pattern=CRS_PATTERN, description="a CRS URI or EPSG:code")]
Categories = Annotated[
    str | None,
    Query(
        pattern=CATEGORIES_PATTERN, description="codes (E0101) or classes (E01), comma separated"
    ),
]
CategoryClass = Annotated[
    str | None,
    Query(
        alias="class",
        pattern=r"^\s*[EeCc][0-9]{2}\s*$",
        description="a class of the catalogue: E (event) or C (component) + 2 digits, e.g. C01",
    ),
]
Subclass = Annotated[
    str | None,
    Query(
        pattern=r"^\s*[EeCc][0-9]{4}\s*$",
        description="a subclass of the catalogue, e.g. C0113 (无主井盖)",
    ),
]
GridCode = Annotated[str, Path(pattern=CODE_PATTERN, description="15-digit grid code")]


def _day_text(value: Any) -> Any:
    """Only YYYY-MM-DD: left alone, the date type also reads numbers as timestamps."""
    if isinstance(value, str) and not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        raise ValueError("a day is written YYYY-MM-DD")
    return value


Day = Annotated[date, BeforeValidator(_day_text)]


async def parse_crs_param(
    crs: Annotated[str | None, Query(pattern=CRS_PATTERN, description="Output CRS URI")] = None,
) -> Crs:
    """`crs`: the CRS of the geometries in the answer (default CRS84)."""
    return parse_crs(crs, "crs")


def parse_bbox(
    bbox: Annotated[
        str | None,
        Query(pattern=BBOX_PATTERN, description="minx,miny,maxx,maxy in bbox-crs axis order"),
    ] = None,
    bbox_crs: Annotated[str | None, Query(alias="bbox-crs", pattern=CRS_PATTERN)] = None,
) -> BBox | None:
    """`bbox` (4 or 6 numbers) in `bbox-crs` (default CRS84: longitude, latitude)."""
    if bbox is None:
        return None
    crs = parse_crs(bbox_crs, "bbox-crs")
    try:
        numbers = [float(v) for v in bbox.split(",")]
        if len(numbers) not in (4, 6) or not all(math.isfinite(n) for n in numbers):
            raise ValueError
    except ValueError:
        raise BadQuery(
            "bbox must be four (or six) numbers: minx,miny,maxx,maxy.",
            "bbox 必须是四个（或六个）数：最小x,最小y,最大x,最大y。",
        ) from None
    low, high = (numbers[:2], numbers[2:]) if len(numbers) == 4 else (numbers[:2], numbers[3:5])
    if not (low[0] < high[0] and low[1] < high[1]):
        raise BadQuery(
            f"bbox {bbox}: the minimum must be below the maximum on both axes.",
            f"bbox {bbox}：两个轴上最小值都必须小于最大值。",
            code="bbox_reversed",
        )
    if not crs.contains((low[0], low[1], high[0], high[1])):
        a0, b0, a1, b1 = crs.domain
        if crs.uri == CRS84:
            raise BadQuery(
                f"bbox {bbox} is not longitude/latitude; give bbox-crs for other coordinates.",
                f"bbox {bbox} 不是经纬度范围；其他坐标请同时给出 bbox-crs。",
                code="bbox_outside_crs",
            )
        raise BadQuery(
            f"bbox {bbox} lies outside {a0:g},{b0:g},{a1:g},{b1:g}, where {crs.uri} is defined.",
            f"bbox {bbox} 超出坐标系 {crs.uri} 的有效范围 {a0:g},{b0:g},{a1:g},{b1:g}。",
            code="bbox_outside_crs",
        )
    return BBox(low[0], low[1], high[0], high[1], crs)


def _instant(raw: str) -> date | datetime:
    if len(raw) == 10:
        return date.fromisoformat(raw)
    value = datetime.fromisoformat(raw)
    if value.tzinfo is None:
        raise ValueError("no time zone")
    return value


def parse_datetime(
    datetime_: Annotated[str | None, Query(alias="datetime", pattern=DATETIME_PATTERN)] = None,
) -> TimeRange | None:
    """`datetime`: an instant or an interval (`a/b`, `../b`, `a/..`) in RFC 3339."""
    if datetime_ is None:
        return None
    parts = datetime_.split("/")
    try:
        if len(parts) == 1:
            instant = _instant(parts[0])
            return TimeRange(instant, instant)
        if len(parts) == 2:
            start = None if parts[0] in ("", "..") else _instant(parts[0])
            end = None if parts[1] in ("", "..") else _instant(parts[1])
            if start is None and end is None:
                raise ValueError("open at both ends")
            if start is not None and end is not None and _as_datetime(start) > _as_datetime(end):
                raise BadQuery(
                    f"datetime={datetime_} starts after it ends.",
                    f"datetime={datetime_} 的开始时间晚于结束时间。",
                    code="period_reversed",
                )
            return TimeRange(start, end)
    except ValueError as exc:
        raise BadQuery(
            f"datetime={datetime_} is not an RFC 3339 instant or interval ({exc}); e.g. 2023-05-01T00:00:00Z or 2023-05-01/2023-05-31.",
            f"datetime={datetime_} 不是有效的 RFC 3339 时间或时间段（{exc}），例如 2023-05-01T00:00:00+08:00 或 2023-05-01/2023-05-31。",
            code="invalid_datetime",
        ) from None
    raise BadQuery(
        f"datetime={datetime_} has too many '/'.", f"datetime={datetime_} 中的 “/” 过多。"
    )


def _as_datetime(value: date | datetime) -> datetime:
    return (
        value
        if isinstance(value, datetime)
        else datetime(value.year, value.month, value.day, tzinfo=UTC)
    )


COUNTIES_PATTERN = r"^[0-9]{6}(,[0-9]{6})*$"
CountyParam = Annotated[
    str | None,
    Query(
        pattern=COUNTIES_PATTERN,
        description="only these counties, by 6-digit code, comma separated (default: every "
        "county of the account); a county the account does not hold is refused",
    ),
]


def county_viewer(conn: ConnectionDep, viewer: ViewerDep, county: CountyParam = None) -> Viewer:
    """The viewer, limited to the counties asked for with `county=`."""
    return counties.narrow(conn, viewer, counties.parse_codes(county))


CountyViewerDep = Annotated[Viewer, Depends(county_viewer)]
LayerDep = Annotated[Layer, Depends(get_layer_dep)]
BBoxDep = Annotated[BBox | None, Depends(parse_bbox)]
CrsDep = Annotated[Crs, Depends(parse_crs_param)]
DatetimeDep = Annotated[TimeRange | None, Depends(parse_datetime)]


JSON_TYPES = ("application/json", "application/geo+json", "application/merge-patch+json")
UPLOAD_TYPES = (
    "application/octet-stream",
    "application/geopackage+sqlite3",
    "application/zip",
    "application/x-zip-compressed",
    "application/geo+json",
    "application/json",
    "application/vnd.google-earth.kml+xml",
    "text/csv",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
)


def media_type(request: Request) -> str:
    """The request's Content-Type without its parameters, lower case ('' when absent)."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def require_media_type(
    request: Request, accepted: tuple[str, ...], what_en: str, what_zh: str
) -> None:
    """Refuse (415) a body whose declared Content-Type is not one of `accepted`."""
    media = media_type(request)
    if media not in accepted:
        got = media or "no Content-Type"
        raise UnsupportedMediaType(
            f"Send {what_en} as {' or '.join(accepted)} (got {got}).",
            f"请以 {'、'.join(accepted)} 提交{what_zh}（收到的是 {media or '无 Content-Type'}）。",
        )


def _sends_body(request: Request) -> bool:
    length = request.headers.get("content-length")
    return "transfer-encoding" in request.headers or (length is not None and length != "0")


async def declared_body_type(request: Request) -> None:
    """A body the framework parses for a route is read only with the media type the route
    declares (JSON for models, a form for form fields): 415 otherwise, before anything is done."""
    field = getattr(request.scope.get("route"), "body_field", None)
    if field is None or not _sends_body(request):
        return
    declared: str = field.field_info.media_type
    require_media_type(request, (declared,), "the body", "请求体")


def upload_body_type(request: Request) -> None:
    """An uploaded file comes with its own media type or application/octet-stream."""
    require_media_type(request, UPLOAD_TYPES, "the file", "文件")


UPLOAD_BODY = {
    "required": True,
    "content": {
        media: {"schema": {"type": "string", "format": "binary"}} for media in UPLOAD_TYPES
    },
}


async def _read_limited(request: Request, limit: int, what_en: str, what_zh: str) -> bytes:
    """The request body, refused (413) when declared or found larger than `limit`."""
    too_large = PayloadTooLarge(
        f"{what_en} is larger than {limit:,} bytes.", f"{what_zh}超过 {limit:,} 字节的上限。"
    )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


async def read_upload(request: Request, limit: int) -> bytes:
    """An uploaded file's bytes, refused (413) past `limit`."""
    return await _read_limited(request, limit, "The file", "文件")


async def read_json_body(request: Request) -> bytes:
    """The request body, refused when it is not JSON or exceeds the configured size."""
    limit: int = request.app.state.editing.max_body_bytes
    require_media_type(request, JSON_TYPES, "the feature", "要素")
    return await _read_limited(request, limit, "The body", "请求体")


def edit_context(request: Request, viewer: ViewerDep) -> EditContext:
    """Who is writing and the limits of what they may write."""
    settings = request.app.state.editing
    return EditContext(
        viewer=viewer,
        limits=Limits(settings.max_vertices, settings.county_tolerance_m),
        require_if_match=settings.require_if_match,
    )


BodyDep = Annotated[bytes, Depends(read_json_body)]
EditContextDep = Annotated[EditContext, Depends(edit_context)]
ContentCrsHeader = Annotated[
    str | None,
    Header(
        alias="Content-Crs",
        max_length=200,
        description="CRS of the submitted geometry, e.g. <http://www.opengis.net/def/crs/EPSG/0/4490> "
        "(axes in its order); default CRS84",
    ),
]


def feature_edit_context(ctx: EditContextDep, content_crs: ContentCrsHeader = None) -> EditContext:
    """The edit context of a submitted feature, with the CRS its geometry is given in."""
    return replace(ctx, content_crs=parse_content_crs(content_crs))


FeatureEditDep = Annotated[EditContext, Depends(feature_edit_context)]


class Strict(BaseModel):
    """A request body that refuses unknown fields, deep nesting and text PostgreSQL cannot store."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        try:
            return jsonin.check(data)
        except jsonin.JsonRefused as refused:
            if refused.code == "unstorable_name":  # its own code: no schema can exclude it
                raise InvalidFeature(
                    refused.message_en, refused.message_zh, code=refused.code
                ) from None
            raise ValueError(refused.message_en) from None
