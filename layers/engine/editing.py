"""Create, replace, update and delete features (OGC API - Features Part 4), all or nothing.

Every submitted feature is checked before anything is written: JSON, geometry (gis.validate),
properties against the registry. A change that sends If-Match must match the current ETag; the
row is locked while its tag is compared, so of two clients holding the same tag exactly one wins.
A change without If-Match (QGIS and OWSLib send none) is applied as the last writer's, unless the
deployment requires the tag. Areas and derived fields are computed by the database; every write
lands in the audit log, with the row before and after.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, text

from gis.validate import GeometryProblem, Limits, validate_geometry
from layers.cases import routing, units
from layers.engine import access, fieldvalues, history, idcodes, jsonin, placing, uniques
from layers.engine.access import Viewer
from layers.engine.crs import STORAGE, Crs, positions_to_storage
from layers.engine.features import ROW_ETAG
from layers.errors import (
    Forbidden,
    GridEditRefused,
    InvalidFeature,
    PreconditionFailed,
    PreconditionRequired,
)
from layers.registry import LAYERS, STORAGE_SRID, Layer

ROW_JSON = (
    "(to_jsonb(t) - 'geom') || jsonb_build_object('geometry', ST_AsGeoJSON(t.geom, 7, 0)::jsonb)"
)
ROW_JSON_NO_GEOM = "to_jsonb(t)"
ETAG = ROW_ETAG


@dataclass(frozen=True)
class Written:
    """The outcome of a write: the feature's id and its new ETag (None once deleted)."""

    feature_id: int
    etag: str | None


@dataclass(frozen=True)
class EditContext:
    """Who writes, and the limits submitted geometries must respect."""

    viewer: Viewer
    limits: Limits
    require_if_match: bool = False
    content_crs: Crs = STORAGE  # the CRS of submitted geometries (Content-Crs)

    @property
    def actor(self) -> str:
        """The name the audit log records."""
        return self.viewer.username


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quoted_etag(raw: str) -> str:
    """An ETag header value."""
    return f'"{raw}"'


def _bad(code: str, en: str, zh: str, **details: Any) -> InvalidFeature:
    return InvalidFeature(en, zh, code=code, **details)


def _reject_constant(name: str) -> Any:
    raise _bad(
        "not_finite",
        f"the body holds {name}, which JSON does not allow",
        f"请求体含有 JSON 不允许的 {name}",
    )


def parse_body(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object (NaN and Infinity refused, nesting and text checked)."""
    try:
        doc = jsonin.loads(body, parse_constant=_reject_constant)
    except jsonin.JsonRefused as refused:
        raise _bad(
            refused.code, f"the body: {refused.message_en}", f"请求体：{refused.message_zh}"
        ) from None
    if not isinstance(doc, dict):
        raise _bad(
            "body_not_object",
            "the body must be a GeoJSON Feature object",
            "请求体必须是 GeoJSON Feature 对象",
        )
    return doc


def _without_id(props: Any, fid: int | None) -> Any:
    """Properties less `id`, which every feature returns: a client may send it back unchanged."""
    if not isinstance(props, dict) or "id" not in props:
        return props
    sent = props["id"]
    if sent is not None and fid is not None and (isinstance(sent, bool) or str(sent) != str(fid)):
        raise _bad(
            "id_mismatch",
            f"properties.id {sent!r} is not the id of the feature changed ({fid})",
            f"properties.id {sent!r} 与所修改要素的编号 {fid} 不一致",
            field="id",
        )
    return {k: v for k, v in props.items() if k != "id"}


def clean_properties(
    layer: Layer, props: Any, partial: bool, fid: int | None = None
) -> dict[str, Any]:
    """Registry-checked values to write; derived fields are left to the database.

    `id` may be sent back as read: ignored on a create, and on a change it must name `fid`."""
    props = _without_id(props, fid)
    if not isinstance(props, dict):
        raise _bad("properties_not_object", "properties must be an object", "properties 必须是对象")
    out: dict[str, Any] = {}
    for name, value in props.items():
        if name == layer.parent_key:
            out[name] = fieldvalues.parse(fieldvalues.parent_field(layer), value, fieldvalues.JSON)
            continue
        try:
            f = layer.field(name)
        except KeyError:
            raise _bad(
                "unknown_property",
                f"{layer.id} has no property {name!r}",
                f"图层 {layer.title_zh} 没有属性 {name!r}",
                field=name,
            ) from None
        if not f.derived:
            out[name] = fieldvalues.parse(f, value, fieldvalues.JSON)
    if not partial:
        needed = [f for f in layer.fields if f.required and not f.derived and f.name not in out]
        if layer.parent_key and layer.parent_key not in out:
            needed.insert(0, fieldvalues.parent_field(layer))
        if needed:
            raise fieldvalues.missing(needed[0])
    return out


def _geometry(conn: Connection, layer: Layer, doc: Any, ctx: EditContext) -> BaseGeometry | None:
    if layer.geometry is None:
        if doc is not None:
            raise _bad(
                "geometry_not_allowed",
                f"{layer.id} has no geometry",
                f"图层 {layer.title_zh} 不含几何",
            )
        return None
    expected = layer.geometry.geojson
    if ctx.content_crs != STORAGE and isinstance(doc, dict):
        doc = {**doc, "coordinates": positions_to_storage(doc.get("coordinates"), ctx.content_crs)}
    try:
        return validate_geometry(doc, expected, None, ctx.limits)  # the county: see _derived
    except GeometryProblem as problem:
        details = {"location": list(problem.location)} if problem.location else {}
        raise InvalidFeature(
            problem.message_en[0].upper() + problem.message_en[1:] + ".",
            problem.message_zh + "。",
            code=problem.code,
            **details,
        ) from None


def _check_references(conn: Connection, layer: Layer, values: dict[str, Any]) -> None:
    refs = [
        (f.name, f.references)
        for f in layer.fields
        if f.references and values.get(f.name) is not None
    ]
    if layer.parent and values.get(layer.parent_key or "") is not None:
        refs.append((layer.parent_key or "", f"{layer.parent}.id"))
    for name, target in refs:
        assert target is not None
        table, column = target.split(".")
        found = conn.execute(
            text(f"SELECT 1 FROM {_q(table)} WHERE {_q(column)} = :v"), {"v": values[name]}
        ).first()
        if found is None:
            raise _bad(
                "reference_not_found",
                f"{name}: {values[name]!r} does not exist in {table}",
                f"{name}：{table} 中不存在 {values[name]!r}",
                field=name,
            )


def _check_reference_counties(
    conn: Connection, layer: Layer, values: dict[str, Any], county: str | None
) -> None:
    """Refuse a reference to a row of a layer of another county than the row's own."""
    for f in layer.fields:
        target = (f.references or "").split(".")[0]
        if county is None or target not in LAYERS or values.get(f.name) is None:
            continue
        theirs = conn.execute(
            text(f"SELECT adcode FROM {_q(target)} WHERE id = :v"), {"v": values[f.name]}
        ).scalar()
        if theirs is not None and theirs != county:
            title = LAYERS[target].title_zh
            raise _bad(
                "reference_other_county",
                f"{f.name}: {values[f.name]!r} in {target} belongs to another county",
                f"{f.name}：{title} {values[f.name]!r} 属于其他县（市、区），不能关联",
                field=f.name,
            )


def _check_units(
    conn: Connection, layer: Layer, values: dict[str, Any], adcode: str | None
) -> None:
    """Refuse a handling unit that is not one of the row's county."""
    for f in layer.fields:
        if f.handling_unit and values.get(f.name) is not None and adcode is not None:
            units.check_known(conn, values[f.name], adcode)


def _stored_county(conn: Connection, layer: Layer, fid: int) -> str | None:
    return conn.execute(
        text(f"SELECT adcode FROM {_q(layer.id)} WHERE id = :id"), {"id": fid}
    ).scalar()


def _derived(
    conn: Connection,
    layer: Layer,
    geom: BaseGeometry | None,
    values: dict[str, Any],
    ctx: EditContext,
) -> dict[str, Any]:
    """adcode (and a grid, for a layer placed in grids) from the location; a child's adcode
    from its readable parent."""
    extra: dict[str, Any] = {}
    if geom is not None:
        adcode = placing.county_for_write(conn, geom, ctx.viewer, ctx.limits.county_tolerance_m)
        extra["adcode"] = adcode
        if layer.placed_in_grid is not None:
            extra |= placing.placed_values(conn, layer.placed_in_grid, geom, adcode, values)
    elif layer.parent and layer.parent_key in values:
        parent = LAYERS[layer.parent]
        params = {"id": values[layer.parent_key]}
        visible = access.area_clause(parent, ctx.viewer, params, alias="p")
        owner = conn.execute(
            text(f"SELECT p.adcode FROM {_q(parent.id)} AS p WHERE p.id = :id AND {visible}"),
            params,
        ).scalar()
        if owner is None:  # a parent in a county the viewer does not hold looks absent
            raise _bad(
                "reference_not_found",
                f"{layer.parent_key}: {values[layer.parent_key]!r} does not exist in {parent.id}",
                f"{layer.parent_key}：{parent.id} 中不存在 {values[layer.parent_key]!r}",
                field=layer.parent_key,
            )
        extra["adcode"] = owner
    return extra


def audit(
    conn: Connection,
    ctx: EditContext,
    action: str,
    layer: Layer,
    fid: int | None,
    before: Any,
    after: Any,
) -> None:
    """Record a write in the audit log: who, what, and the row before and after."""
    conn.execute(
        text("""
        INSERT INTO audit_log (actor, action, layer, feature_id, adcode, before, after)
        VALUES (:actor, :action, :layer, :fid, :adcode, CAST(:before AS jsonb), CAST(:after AS jsonb))
    """),
        {
            "actor": ctx.actor,
            "action": action,
            "layer": layer.id,
            "fid": fid,
            "adcode": (after or before or {}).get("adcode"),
            "before": json.dumps(before, ensure_ascii=False, default=str)
            if before is not None
            else None,
            "after": json.dumps(after, ensure_ascii=False, default=str)
            if after is not None
            else None,
        },
    )


def _row_json(layer: Layer) -> str:
    return ROW_JSON if layer.geometry is not None else ROW_JSON_NO_GEOM


def assignments(
    values: dict[str, Any], geom: BaseGeometry | None, params: dict[str, Any]
) -> dict[str, str]:
    """Column → SQL value of a write (values bound into `params`, the geometry as WKB)."""
    sql_values: dict[str, str] = {}
    for i, (name, value) in enumerate(values.items()):
        params[f"v{i}"] = value
        sql_values[name] = f":v{i}"
    if geom is not None:
        params["wkb"] = shapely.to_wkb(geom)
        sql_values["geom"] = f"ST_SetSRID(ST_GeomFromWKB(:wkb), {STORAGE_SRID})"
    return sql_values


def _grid_operations_only(layer: Layer, touched: set[str]) -> None:
    """Grid shapes, codes and validity change only through the grid operations, which keep coverage."""
    if layer.item_edits_only is not None and not touched <= layer.item_edits_only:
        raise GridEditRefused(
            "Grid boundaries, codes and validity change only through /grids operations "
            "(split, merge, redraw, generate, replace), which keep the coverage valid.",
            "网格的边界、编码和有效期只能通过 /grids 的网格操作（拆分、合并、调整边界、生成、替换）修改，以保证全域覆盖、互不重叠。",
            code="use_grid_operations",
        )


def _check_place(
    conn: Connection,
    layer: Layer,
    geom: BaseGeometry | None,
    values: dict[str, Any],
    viewer: Viewer,
) -> None:
    """Refuse a row an inspector would place outside their patrol area."""
    if access.may_edit_anywhere(layer, viewer) or not viewer.patrols:
        return
    params: dict[str, Any] = {}
    if geom is not None:
        params["wkb"] = shapely.to_wkb(geom)
        where = access.point_clause(
            viewer, params, f"ST_SetSRID(ST_GeomFromWKB(:wkb), {STORAGE_SRID})"
        )
        inside = conn.execute(text(f"SELECT {where}"), params).scalar()
    else:
        parent = LAYERS[layer.parent or ""]
        params["pid"] = values.get(layer.parent_key or "")
        where = access.area_clause(parent, viewer, params)
        inside = conn.execute(
            text(
                f"SELECT EXISTS (SELECT 1 FROM {_q(parent.id)} AS t WHERE t.id = :pid AND {where})"
            ),
            params,
        ).scalar()
    if not inside:
        raise access.outside_area()


def create(conn: Connection, layer: Layer, feature: dict[str, Any], ctx: EditContext) -> Written:
    """Insert a new feature, if the viewer's role may."""
    access.check_create(layer, ctx.viewer)
    return insert(conn, layer, feature, ctx)


def insert(conn: Connection, layer: Layer, feature: dict[str, Any], ctx: EditContext) -> Written:
    """Insert a new feature whose writer's role the caller has checked (inside an inspector's area)."""
    geom = _geometry(conn, layer, feature.get("geometry"), ctx)
    values = clean_properties(layer, feature.get("properties", {}), partial=False)
    _grid_operations_only(layer, {"geometry"})
    _check_references(conn, layer, values)
    _check_place(conn, layer, geom, values, ctx.viewer)
    given_unit = values.get(layer.routed.unit_field) if layer.routed is not None else None
    values |= _derived(conn, layer, geom, values, ctx)
    if layer.routed is not None:  # a new case goes to the unit routing chooses
        values |= routing.routed_values(conn, layer.routed, values, geom, ctx.viewer, given_unit)
    _check_units(conn, layer, values, values.get("adcode"))
    _check_reference_counties(conn, layer, values, values.get("adcode"))
    values |= _started(layer, values)
    if values.get("adcode") is not None:
        values |= idcodes.check_write(conn, layer, values, values["adcode"], None)
    uniques.check_write(conn, layer, values, values.get("adcode"), None)
    params: dict[str, Any] = {}
    sql_values = assignments(values, geom, params)
    row = conn.execute(
        text(f"""
        WITH t AS (
            INSERT INTO {_q(layer.id)} ({", ".join(_q(c) for c in sql_values)})
            VALUES ({", ".join(sql_values.values())}) RETURNING *
        ) SELECT t.id, {_row_json(layer)}, {ETAG} FROM t
    """),
        params,
    ).one()
    audit(conn, ctx, "create", layer, row[0], None, row[1])
    return Written(row[0], row[2])


def _locked(
    conn: Connection, layer: Layer, fid: int, if_match: str | None, ctx: EditContext
) -> dict[str, Any]:
    """The row as it is now, locked; checked against If-Match when the client sent one."""
    viewer = ctx.viewer
    if not if_match and ctx.require_if_match:
        raise PreconditionRequired(
            "Send the feature's current ETag in If-Match to change it (GET the feature to learn it).",
            "修改要素需要在 If-Match 中提供其当前 ETag（可先 GET 该要素获得）。",
        )
    params: dict[str, Any] = {"id": fid}
    if access.may_edit_anywhere(layer, viewer):  # anywhere in the viewer's counties
        visible, bound = access.county_condition(viewer, "t.adcode")
        params.update(bound)
    else:
        visible = access.area_clause(layer, viewer, params)
    row = conn.execute(
        text(
            f"SELECT {_row_json(layer)}, {ETAG} FROM {_q(layer.id)} AS t "
            f"WHERE t.id = :id AND {visible} FOR UPDATE OF t"
        ),
        params,
    ).first()
    if row is None:
        raise access.not_visible(layer, fid)
    if not if_match:  # last writer wins: the audit log keeps the row it replaced
        before: dict[str, Any] = row[0]
        return before
    wanted = {tag.strip().removeprefix("W/").strip('"') for tag in if_match.split(",")}
    if "*" not in wanted and row[1] not in wanted:  # RFC 9110: * matches any current version
        raise PreconditionFailed(
            f"Feature {fid} of {layer.id} has changed since you read it: read it again and reapply your change.",
            f"要素 {fid} 在您读取后已被他人修改：请重新读取后再修改。",
        )
    current: dict[str, Any] = row[0]
    return current


def _started(layer: Layer, values: dict[str, Any]) -> dict[str, Any]:
    """A new row of a layer keeping versions starts today unless its writer says otherwise."""
    versioning = layer.versioned
    if versioning is None or not versioning.kept_on_edit or values.get(versioning.start):
        return {}
    return {versioning.start: history.today()}


def _versioned_change(
    conn: Connection, layer: Layer, fid: int, before: dict[str, Any], values: dict[str, Any]
) -> None:
    """Check the changed row's coded ID (assigning one when it lost it) and keep the version it
    replaces, for a layer that declares either."""
    history.refuse_ended(conn, layer, [fid])
    row = before | values
    if layer.id_scheme is not None and row.get("adcode") is not None:
        values |= idcodes.check_write(conn, layer, row, row["adcode"], fid)
    history.keep(conn, layer, [fid])


def _write_update(
    conn: Connection, layer: Layer, fid: int, values: dict[str, Any], geom: BaseGeometry | None
) -> tuple[dict[str, Any], str]:
    params: dict[str, Any] = {"id": fid}
    sql_values = assignments(values, geom, params)
    sets = ", ".join(f"{_q(c)} = {v}" for c, v in sql_values.items()) or "id = id"
    row = conn.execute(
        text(f"""
        WITH t AS (UPDATE {_q(layer.id)} SET {sets} WHERE id = :id RETURNING *)
        SELECT {_row_json(layer)}, {ETAG} FROM t
    """),
        params,
    ).one()
    return row[0], row[1]


def replace(
    conn: Connection,
    layer: Layer,
    fid: int,
    feature: dict[str, Any],
    if_match: str | None,
    ctx: EditContext,
) -> Written:
    """Replace a feature whole: properties not given become empty."""
    access.check_replace_or_delete(layer, ctx.viewer)
    _grid_operations_only(layer, {"geometry"})
    before = _locked(conn, layer, fid, if_match, ctx)
    geom = _geometry(conn, layer, feature.get("geometry"), ctx)
    given = clean_properties(layer, feature.get("properties", {}), partial=False, fid=fid)
    values = {f.name: given.get(f.name) for f in layer.fields if not f.derived} | given
    _check_references(conn, layer, values)
    values |= _derived(conn, layer, geom, values, ctx)
    county = values.get("adcode") or _stored_county(conn, layer, fid)
    _check_units(conn, layer, values, county)
    _check_reference_counties(conn, layer, values, county)
    uniques.check_write(conn, layer, values, county, fid)
    _versioned_change(conn, layer, fid, before, values)
    after, etag = _write_update(conn, layer, fid, values, geom)
    audit(conn, ctx, "replace", layer, fid, before, after)
    return Written(fid, etag)


def update(
    conn: Connection,
    layer: Layer,
    fid: int,
    patch: dict[str, Any],
    if_match: str | None,
    ctx: EditContext,
    rights_checked: bool = False,
) -> Written:
    """Change the given properties (and the geometry, if given) of a feature; `rights_checked`
    when a domain operation has checked who may make this change by its own rule."""
    asked = patch.get("properties")
    touched = set(_without_id(asked, fid)) if isinstance(asked, dict) else set()
    if not rights_checked:
        access.check_update(
            layer,
            ctx.viewer,
            touched | ({"geometry"} if patch.get("geometry") is not None else set()),
        )
    before = _locked(conn, layer, fid, if_match, ctx)
    geom = (
        _geometry(conn, layer, patch["geometry"], ctx)
        if patch.get("geometry") is not None
        else None
    )
    values = clean_properties(layer, patch.get("properties", {}), partial=True, fid=fid)
    _grid_operations_only(layer, set(values) | ({"geometry"} if geom is not None else set()))
    _check_references(conn, layer, values)
    if geom is not None or (layer.parent_key is not None and layer.parent_key in values):
        values |= _derived(conn, layer, geom, values, ctx)
    county = values.get("adcode") or _stored_county(conn, layer, fid)
    _check_units(conn, layer, values, county)
    _check_reference_counties(conn, layer, values, county)
    uniques.check_write(conn, layer, values, county, fid)
    _versioned_change(conn, layer, fid, before, values)
    after, etag = _write_update(conn, layer, fid, values, geom)
    audit(conn, ctx, "update", layer, fid, before, after)
    return Written(fid, etag)


def delete(
    conn: Connection, layer: Layer, fid: int, if_match: str | None, ctx: EditContext
) -> Written:
    """Delete a feature (its child rows go with it)."""
    access.check_replace_or_delete(layer, ctx.viewer)
    _grid_operations_only(layer, {"geometry"})
    before = _locked(conn, layer, fid, if_match, ctx)
    conn.execute(text(f"DELETE FROM {_q(layer.id)} WHERE id = :id"), {"id": fid})
    audit(conn, ctx, "delete", layer, fid, before, None)
    return Written(fid, None)


def _may(check: Callable[[], None]) -> bool:
    try:
        check()
    except Forbidden:
        return False
    return True


def allowed_methods(layer: Layer, viewer: Viewer, one_item: bool) -> list[str]:
    """The HTTP methods `viewer` may use on the layer's items, or on one of its items, by the
    same rights the writes check (an inspector's patrol area is checked with each row)."""
    methods = ["GET", "HEAD", "OPTIONS"]
    whole = layer.item_edits_only is None
    if not one_item:
        if whole and _may(lambda: access.check_create(layer, viewer)):
            methods.append("POST")
        return methods
    if whole and _may(lambda: access.check_replace_or_delete(layer, viewer)):
        methods += ["PUT", "DELETE"]
    if _may(lambda: access.check_update(layer, viewer, set())):
        methods.append("PATCH")
    return methods
