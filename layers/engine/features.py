"""Feature queries built from small clause helpers; PostGIS serialises the GeoJSON.

Identifiers come from the registry only and are quoted; every value is a bound parameter.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from contextlib import closing
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, text

from layers.engine import cql
from layers.engine.access import Viewer, area_clause, not_visible, read_limit
from layers.engine.crs import STORAGE, Crs, decimals, geometry_in, geometry_out
from layers.errors import UnknownLayer
from layers.registry import LAYERS, Layer
from layers.store.aio import ReadPool, fetch_row
from layers.store.raw import fetch_json_row, stream_json_rows
from layers.store.versions import open_after

MAX_LIMIT = 10_000
ROW_ETAG = "md5(to_jsonb(t)::text)"  # a feature's ETag: the hash of its whole row
EXACT_COUNT_MAX_ROWS = 100_000  # above this many rows numberMatched is the planner's estimate


@dataclass(frozen=True)
class Page:
    """A page of features: the GeoJSON PostGIS built (UTF-8), and how many features it holds."""

    body: bytes
    returned: int
    last_id: int | None = None

    def with_members(self, members: dict[str, str]) -> bytes:
        """The GeoJSON with more top-level members (JSON texts), without parsing it."""
        return with_members(self.body, members)


def with_members(body: bytes, members: dict[str, str]) -> bytes:
    """A JSON object (UTF-8) with more top-level members (JSON texts), without parsing it."""
    extra = "".join(f', "{name}" : {value}' for name, value in members.items())
    return b"".join((memoryview(body)[: body.rindex(b"}")], extra.encode(), b"}"))


@dataclass(frozen=True)
class BBox:
    """A box in the axis order of `crs` (minx, miny, maxx, maxy after any flip)."""

    west: float
    south: float
    east: float
    north: float
    crs: Crs = STORAGE


@dataclass(frozen=True)
class TimeRange:
    """An instant (start == end) or an interval, either end open (None)."""

    start: datetime | date | None
    end: datetime | date | None


@dataclass
class ItemsQuery:
    """What `/collections/{id}/items` asks for."""

    layer: Layer
    bbox: BBox | None = None
    limit: int = 100
    offset: int = 0
    equals: dict[str, Any] = field(default_factory=dict)
    sortby: list[tuple[str, bool]] = field(default_factory=list)  # (field, descending)
    time: TimeRange | None = None
    properties: list[str] | None = None
    crs: Crs = STORAGE
    filter: str | None = None
    filter_lang: str = "cql2-text"
    filter_crs: Crs = STORAGE
    after: int | None = None  # keyset cursor: ids above this one (pages in id order)
    viewer: Viewer | None = None  # whose rights limit the rows (None: every row)
    few_matches: bool = False  # the filter keeps few rows: find them first, then order them


def get_layer(layer_id: str) -> Layer:
    """The registry layer `layer_id`, or a 404-style error naming it."""
    try:
        return LAYERS[layer_id]
    except KeyError:
        raise UnknownLayer(
            f"There is no collection {layer_id!r}; see /collections.",
            f"不存在名为 {layer_id!r} 的图层，请查看 /collections。",
        ) from None


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _properties(layer: Layer, names: list[str] | None) -> str:
    """Every feature's `id` (exports and clients that read properties only need it), the id of
    its parent row (a client must send it to create one, so it reads it too), then the fields."""
    link = [layer.parent_key] if layer.parent_key else []
    chosen = ["id", *link, *(f.name for f in layer.fields if names is None or f.name in names)]
    pairs = ", ".join(f"'{name}', t.{_q(name)}" for name in chosen)
    return f"json_build_object({pairs})"


def bbox_clause(bbox: BBox, params: dict[str, Any]) -> str:
    """`t.geom` meets the box (in the box's CRS), with the box's corners as bound values."""
    params.update(west=bbox.west, south=bbox.south, east=bbox.east, north=bbox.north)
    envelope = geometry_in("ST_MakeEnvelope(:west, :south, :east, :north)", bbox.crs)
    return f"t.geom && {envelope}"


def _time_clause(layer: Layer, time: TimeRange, params: dict[str, Any]) -> str:
    start_field, end_field = layer.temporal[0], layer.temporal[-1]
    clauses = []
    if time.start is not None:
        params["t_start"] = time.start
        if layer.versioned is not None and end_field == layer.versioned.end:
            # a version ends on the day the next one starts: it is not in force that day
            clauses.append(open_after(layer, "t", ":t_start"))
        elif end_field != start_field:
            clauses.append(f"(t.{_q(end_field)} IS NULL OR t.{_q(end_field)} >= :t_start)")
        else:
            clauses.append(f"t.{_q(start_field)} >= :t_start")
    if time.end is not None:
        params["t_end"] = time.end
        clauses.append(f"t.{_q(start_field)} <= :t_end")
    return " AND ".join(clauses) or "TRUE"


@dataclass(frozen=True)
class Matching:
    """The condition a query's rows meet (rights, bbox, time, equalities, CQL2; not the paging
    cursor), built once per request with its bound values, for the count and the page alike."""

    sql: str
    params: dict[str, Any]


def matching(query: ItemsQuery) -> Matching:
    """The WHERE condition of a query on `t` without its cursor, and its bound values."""
    params: dict[str, Any] = {}
    clauses = [area_clause(query.layer, query.viewer, params)]
    if query.bbox is not None and query.layer.geometry is not None:
        clauses.append(bbox_clause(query.bbox, params))
    if query.time is not None and query.layer.temporal:
        clauses.append(_time_clause(query.layer, query.time, params))
    for i, (name, value) in enumerate(sorted(query.equals.items())):
        query.layer.field(name)  # only registry names reach the SQL
        clauses.append(f"t.{_q(name)} = :eq_{i}")
        params[f"eq_{i}"] = value
    if query.filter:
        clauses.append(
            cql.to_sql(query.layer, query.filter, query.filter_lang, query.filter_crs, params)
        )
    return Matching(" AND ".join(clauses), params)


def _with_cursor(found: Matching, query: ItemsQuery, params: dict[str, Any]) -> str:
    params.update(found.params)
    if query.after is None:
        return found.sql
    params["after"] = query.after
    return f"{found.sql} AND t.id > :after"


def where_sql(query: ItemsQuery, params: dict[str, Any]) -> str:
    """The WHERE condition of a query on `t`: rights, bbox, time, equalities, CQL2, cursor."""
    return _with_cursor(matching(query), query, params)


def _order(query: ItemsQuery) -> str:
    terms = [f"t.{_q(name)} {'DESC' if desc else 'ASC'} NULLS LAST" for name, desc in query.sortby]
    return ", ".join([*terms, "t.id"])


def _feature(layer: Layer, crs: Crs = STORAGE, properties: list[str] | None = None) -> str:
    if layer.geometry is not None:
        geometry = f"ST_AsGeoJSON({geometry_out('t.geom', crs)}, {decimals(crs)}, 0)::json"
    else:
        geometry = "NULL::json"
    return (
        f"json_build_object('type', 'Feature', 'id', t.id, 'geometry', {geometry}, "
        f"'properties', {_properties(layer, properties)})"
    )


FEW_MATCHES = 200_000  # below this, a page is cut from the matching ids rather than the id order


def _page_rows(query: ItemsQuery, params: dict[str, Any], found: Matching | None) -> str:
    """FROM … LIMIT of one page. Walking the id index until `limit` rows match is fast when most
    rows match; when few do (one month of a year, say) and they sit late in id order, it reads
    hundreds of thousands of rows, so their ids are found through the filter first and sorted."""
    where = _with_cursor(found or matching(query), query, params)
    table, order = _q(query.layer.id), _order(query)
    if not (query.few_matches and not query.sortby):
        return f"FROM {table} AS t WHERE {where} ORDER BY {order} LIMIT :limit OFFSET :offset"
    return f"""FROM {table} AS t WHERE t.id IN (
            SELECT hit.id FROM (SELECT t.id FROM {table} AS t WHERE {where} OFFSET 0) AS hit
            ORDER BY hit.id LIMIT :limit OFFSET :offset)
        ORDER BY t.id"""


def items_sql(query: ItemsQuery, found: Matching | None = None) -> tuple[str, dict[str, Any]]:
    """SQL returning the page as GeoJSON (json, and its feature count)."""
    params: dict[str, Any] = {"limit": query.limit, "offset": query.offset}
    sql = f"""
        SELECT json_build_object(
            'type', 'FeatureCollection',
            'features', coalesce(json_agg(page.feature ORDER BY page.n), '[]'::json),
            'numberReturned', count(*)
        ), count(*), max(page.id)
        FROM (
            SELECT row_number() OVER (ORDER BY {_order(query)}) AS n, t.id,
                   {_feature(query.layer, query.crs, query.properties)} AS feature
            {_page_rows(query, params, found)}
        ) AS page
    """
    return sql, params


def rows_sql(query: ItemsQuery, found: Matching | None = None) -> tuple[str, dict[str, Any]]:
    """SQL returning the page one feature a row (id, GeoJSON as json), for streaming."""
    params: dict[str, Any] = {"limit": query.limit, "offset": query.offset}
    sql = f"""
        SELECT t.id, {_feature(query.layer, query.crs, query.properties)}
        {_page_rows(query, params, found)}
    """
    return sql, params


def stream_items(
    conn: Connection,
    sql: str,
    params: dict[str, Any],
    tail: Callable[[int, int | None], str],
    batch: int = 500,
) -> Generator[bytes, None, None]:
    """A FeatureCollection streamed from a server-side cursor on the request's own connection
    (one connection a request: requests waiting for a second one could starve the pool);
    PostGIS writes each feature."""
    rows = stream_json_rows(conn, sql, params, batch)
    with closing(rows):  # the cursor is closed however the stream ends
        returned, last_id = 0, None
        chunk: list[bytes] = [b'{"type" : "FeatureCollection", "features" : [']
        for feature_id, feature in rows:
            if returned:
                chunk.append(b",")
            chunk.append(feature)
            returned, last_id = returned + 1, feature_id
            if len(chunk) >= 2 * batch:  # one write per batch, not per feature
                yield b"".join(chunk)
                chunk = []
        chunk.append(f'], "numberReturned" : {returned}, {tail(returned, last_id)}}}'.encode())
        yield b"".join(chunk)


def fetch_items(conn: Connection, query: ItemsQuery, found: Matching | None = None) -> Page:
    """The page of features as GeoJSON, serialised by PostGIS and passed on as its bytes."""
    sql, params = items_sql(query, found)
    row = fetch_json_row(conn, sql, params)
    assert row is not None, "an aggregate answers one row"
    body, returned, last_id = row
    return Page(body, int(returned), last_id)


def count_matched(
    conn: Connection, query: ItemsQuery, found: Matching | None = None
) -> tuple[int, bool]:
    """How many features match: exact for tables up to EXACT_COUNT_MAX_ROWS and whenever the
    viewer reads only part of the layer, else the planner's estimate."""
    found = found or matching(query)
    params, where = dict(found.params), found.sql
    table = _q(query.layer.id)
    rows = conn.execute(
        text("SELECT reltuples FROM pg_class WHERE oid = CAST(:t AS regclass)"),
        {"t": query.layer.id},
    ).scalar_one()
    # the planner cannot see through a read limit (a patrol area is one opaque subquery), so
    # its guess for a narrow viewer is the whole table's, not theirs: count theirs
    if rows <= EXACT_COUNT_MAX_ROWS or read_limit(query.layer, query.viewer).narrow:
        return int(
            conn.execute(
                text(f"SELECT count(*) FROM {table} AS t WHERE {where}"), params
            ).scalar_one()
        ), False
    plan = conn.execute(
        text(f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {table} AS t WHERE {where}"), params
    ).scalar_one()
    return int(plan[0]["Plan"]["Plan Rows"]), True


def fetch_item(
    conn: Connection,
    layer: Layer,
    feature_id: int,
    crs: Crs = STORAGE,
    viewer: Viewer | None = None,
) -> tuple[bytes, str]:
    """One feature as GeoJSON (UTF-8), and its ETag (the hash of the whole row), in one query."""
    sql, params = item_sql(layer, feature_id, crs, viewer)
    return _item(layer, feature_id, fetch_json_row(conn, sql, params))


def item_sql(
    layer: Layer, feature_id: int, crs: Crs, viewer: Viewer | None
) -> tuple[str, dict[str, Any]]:
    """The statement of one feature the viewer may read: its GeoJSON and its ETag."""
    params: dict[str, Any] = {"feature_id": feature_id}
    sql = (
        f"SELECT {_feature(layer, crs)}, {ROW_ETAG} "
        f"FROM {_q(layer.id)} AS t WHERE t.id = :feature_id AND {area_clause(layer, viewer, params)}"
    )
    return sql, params


def _item(layer: Layer, feature_id: int, row: Sequence[Any] | None) -> tuple[bytes, str]:
    if row is None:
        raise not_visible(layer, feature_id)
    return row[0], str(row[1])


def read_item(
    engine: Engine, layer: Layer, feature_id: int, crs: Crs = STORAGE, viewer: Viewer | None = None
) -> tuple[bytes, str]:
    """`fetch_item` on a connection of its own, returned to the pool at once."""
    with engine.connect() as conn:
        return fetch_item(conn, layer, feature_id, crs, viewer)


async def read_item_async(
    pool: ReadPool, layer: Layer, feature_id: int, crs: Crs, viewer: Viewer | None
) -> tuple[bytes, str]:
    """`fetch_item` as one prepared statement on the event loop's pool (`layers.store.aio`)."""
    sql, params = item_sql(layer, feature_id, crs, viewer)
    return _item(layer, feature_id, await fetch_row(pool, sql, params))


def extent(conn: Connection, layer: Layer, viewer: Viewer | None = None) -> dict[str, Any]:
    """Spatial (CRS84) and temporal extent of the rows of a layer the viewer may read."""
    out: dict[str, Any] = {}
    params: dict[str, Any] = {}
    visible = area_clause(layer, viewer, params)
    if layer.geometry is not None:
        box = conn.execute(
            text(
                f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                f"(SELECT ST_Extent(t.geom) AS e FROM {_q(layer.id)} AS t WHERE {visible}) AS x"
            ),
            params,
        ).one()
        out["spatial"] = {
            "bbox": [list(box)] if box[0] is not None else [],
            "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
        }
    if layer.temporal:
        first, last = layer.temporal[0], layer.temporal[-1]
        lo, hi = conn.execute(
            text(
                f"SELECT min(t.{_q(first)}), max(t.{_q(last)}) FROM {_q(layer.id)} AS t "
                f"WHERE {visible}"
            ),
            params,
        ).one()
        out["temporal"] = {
            "interval": [[_iso(lo), _iso(hi)]],
            "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian",
        }
    return out


def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True)
class Paging:
    """Where the neighbouring pages start, as query-string changes (None: there is none)."""

    next: dict[str, str] | None
    prev: dict[str, str] | None


Members = Callable[[Paging], dict[str, str]]  # top-level members a face adds (links, a time)


@dataclass(frozen=True)
class ItemsResult:
    """The answer to an items query: how many match, and the page, whole or as a query to stream.

    The face only renders it: it names the extra members (links from `Paging`), and sends the
    text or the chunks."""

    query: ItemsQuery
    matched: int
    estimated: bool
    page: Page | None = None  # a small page, whole
    rows: tuple[Connection, str, dict[str, Any]] | None = None  # a large page's query, to stream

    def paging(self, returned: int, last_id: int | None) -> Paging:
        """next and prev: a keyset cursor in id order (fast at any depth), offsets when sorted."""
        q, limit = self.query, str(self.query.limit)
        more = returned == q.limit and (self.estimated or q.offset + returned < self.matched)
        following = None
        if more and not q.sortby and q.offset == 0:
            following = {"after": str(last_id), "limit": limit}
        elif more:
            following = {"offset": str(q.offset + q.limit), "limit": limit}
        previous = {"offset": str(max(0, q.offset - q.limit)), "limit": limit} if q.offset else None
        return Paging(following, previous)

    def members(self, returned: int, last_id: int | None, more: Members) -> dict[str, str]:
        """numberMatched, the face's members, and whether the number is the planner's estimate."""
        out = {"numberMatched": str(self.matched)} | more(self.paging(returned, last_id))
        return out | ({"numberMatchedIsEstimate": "true"} if self.estimated else {})

    def body(self, more: Members) -> bytes:
        """The whole page as GeoJSON with its members."""
        assert self.page is not None, "a streamed page has no text"
        return self.page.with_members(self.members(self.page.returned, self.page.last_id, more))

    def chunks(self, more: Members) -> tuple[bytes, Generator[bytes, None, None]]:
        """The page as PostGIS writes it: the first chunk and the rest. The first is taken here:
        it runs the query, so a database error or a statement timeout is raised
        before any status is sent (an answer, not a body cut short); the rest must be closed."""
        assert self.rows is not None, "a whole page is not streamed"
        conn, sql, params = self.rows

        def tail(returned: int, last_id: int | None) -> str:
            members = self.members(returned, last_id, more)
            return ", ".join(f'"{k}" : {v}' for k, v in members.items())

        stream = stream_items(conn, sql, params, tail)
        return next(stream), stream


def find_items(conn: Connection, query: ItemsQuery, stream_above: int) -> ItemsResult:
    """Count what matches, choose the plan from the count, and fetch the page, or prepare its
    streaming (pages above `stream_above` features are never held whole in memory)."""
    found = matching(query)
    matched, estimated = count_matched(conn, query, found)
    planned = replace(query, few_matches=matched <= FEW_MATCHES)
    if query.limit > stream_above:
        sql, params = rows_sql(planned, found)
        return ItemsResult(planned, matched, estimated, rows=(conn, sql, params))
    return ItemsResult(planned, matched, estimated, page=fetch_items(conn, planned, found))
