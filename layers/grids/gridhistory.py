"""Grids as they were on a day, counts of what lies in them, and the people responsible."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from sqlalchemy import Connection, text

from layers.cases import units
from layers.engine.access import Viewer, area_clause
from layers.errors import InvalidFeature
from layers.grids.grids import not_found
from layers.registry import CASES, GRIDS, LAYERS
from layers.store.versions import is_current, valid_on

VALID_ON = valid_on(GRIDS, "g", ":at")
COUNTED_LAYERS = tuple(layer.id for layer in LAYERS.values() if layer.counted_per_grid)


def today(conn: Connection) -> date:
    """The bureau's current day, as the database sees it."""
    day: date = conn.execute(text("SELECT CURRENT_DATE")).scalar_one()
    return day


def _filters(
    level: str | None, parent: str | None, viewer: Viewer | None, params: dict[str, Any]
) -> str:
    clauses = [VALID_ON, area_clause(GRIDS, viewer, params, alias="g")]
    if level is not None:
        clauses.append("g.level = :level")
    if parent is not None:
        clauses.append("g.parent_code = :parent")
    return " AND ".join(clauses)


def check_level(level: str | None) -> None:
    """Refuse a level that grids do not have."""
    allowed = GRIDS.field("level").code_values
    if level is not None and level not in allowed:
        raise InvalidFeature(
            f"level must be one of {', '.join(allowed)}.",
            f"网格层级必须是 {', '.join(allowed)} 之一。",
            code="invalid_parameter",
        )


def grids_on(
    conn: Connection,
    at: date,
    level: str | None,
    parent: str | None,
    viewer: Viewer | None = None,
) -> str:
    """A GeoJSON FeatureCollection of the grids valid on `at` the viewer may see, built by the database."""
    check_level(level)
    params: dict[str, Any] = {"at": at, "level": level, "parent": parent}
    where = _filters(level, parent, viewer, params)
    return str(
        conn.execute(
            text(f"""
            SELECT json_build_object(
                'type', 'FeatureCollection', 'at', CAST(:at AS date),
                'features', coalesce(json_agg(json_build_object(
                    'type', 'Feature', 'id', g.id,
                    'geometry', ST_AsGeoJSON(g.geom, 7, 0)::json,
                    'properties', json_build_object(
                        'code', g.code, 'name', g.name, 'level', g.level,
                        'parent_code', g.parent_code, 'responsible_person', g.responsible_person,
                        'responsible_unit', g.responsible_unit, 'phone', g.phone,
                        'valid_from', g.valid_from, 'valid_to', g.valid_to,
                        'area_m2', round(g.area_m2::numeric, 1),
                        'area_km2', round((g.area_m2 / 1e6)::numeric, 4))
                ) ORDER BY g.code), '[]'::json)
            )::text
            FROM grids AS g WHERE {where}
        """),
            params,
        ).scalar_one()
    )


def _layer_count(layer_id: str, viewer: Viewer | None, params: dict[str, Any]) -> str:
    point = "f.geom" if LAYERS[layer_id].geometry.value == "POINT" else "ST_PointOnSurface(f.geom)"  # type: ignore[union-attr]
    visible = area_clause(LAYERS[layer_id], viewer, params, alias="f")
    return (
        f"(SELECT count(*) FROM {layer_id} AS f "
        f"WHERE f.geom && g.geom AND ST_Intersects(g.geom, {point}) AND {visible})"
    )


def grid_stats(
    conn: Connection,
    at: date,
    level: str | None,
    parent: str | None,
    viewer: Viewer | None = None,
) -> list[Any]:
    """Per grid valid on `at` the viewer may see: area, and the cases (up to and on that day) and
    features inside that the viewer may read."""
    check_level(level)
    params: dict[str, Any] = {"at": at, "level": level, "parent": parent}
    where = _filters(level, parent, viewer, params)
    layer_counts = ", ".join(
        f"'{lid}', {_layer_count(lid, viewer, params)}" for lid in COUNTED_LAYERS
    )
    cases = area_clause(CASES, viewer, params, alias="c")  # a unit counts its own cases
    rows = conn.execute(
        text(f"""
        SELECT coalesce(json_agg(json_build_object(
            'code', g.code, 'name', g.name, 'level', g.level, 'parent_code', g.parent_code,
            'valid_from', g.valid_from, 'valid_to', g.valid_to,
            'area_km2', round((g.area_m2 / 1e6)::numeric, 4),
            'cases', (SELECT count(*) FROM cases AS c WHERE c.geom && g.geom
                      AND ST_Intersects(g.geom, c.geom) AND c.reported_at < CAST(:at AS date) + 1
                      AND {cases}),
            'cases_on_day', (SELECT count(*) FROM cases AS c WHERE c.geom && g.geom
                      AND ST_Intersects(g.geom, c.geom) AND c.reported_at >= CAST(:at AS date)
                      AND c.reported_at < CAST(:at AS date) + 1 AND {cases}),
            'features', json_build_object({layer_counts})
        ) ORDER BY g.code), '[]'::json)::text
        FROM grids AS g WHERE {where}
    """),
        params,
    ).scalar_one()
    out: list[Any] = json.loads(rows)
    return out


def people(conn: Connection, code: str, viewer: Viewer | None = None) -> dict[str, Any]:
    """The responsible person and unit of a current grid (one the viewer may see), and its inspectors."""
    params: dict[str, Any] = {"code": code}
    visible = area_clause(GRIDS, viewer, params, alias="g")
    row = conn.execute(
        text(f"""
        SELECT json_build_object(
            'code', g.code, 'name', g.name, 'responsible_person', g.responsible_person,
            'responsible_unit', g.responsible_unit, 'phone', g.phone,
            'inspectors', coalesce((SELECT json_agg(json_build_object(
                                        'name', i.name, 'phone', i.phone, 'username', i.username)
                                    ORDER BY i.name) FROM grid_inspectors AS i
                                    WHERE i.grid_code = g.code), '[]'::json))::text
        FROM grids AS g WHERE g.code = :code AND {is_current(GRIDS, "g")} AND {visible}
    """),
        params,
    ).scalar()
    if row is None:
        raise not_found(code)
    out: dict[str, Any] = json.loads(row)
    return out


PEOPLE_FIELDS = ("responsible_person", "responsible_unit", "phone")


def _text_or_none(doc: dict[str, Any], name: str, label: str) -> str | None:
    value = doc.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidFeature(
            f"{name} must be text.", f"{label}（{name}）必须是文本。", code="property_wrong_type"
        )
    return value.strip() or None if isinstance(value, str) else None


Inspector = tuple[str, str | None, str | None]  # name, phone, account


def _inspectors(conn: Connection, doc: dict[str, Any]) -> list[Inspector]:
    given = doc.get("inspectors", [])
    if not isinstance(given, list) or not all(isinstance(i, dict) for i in given):
        raise InvalidFeature(
            "inspectors must be a list of {name, phone, username} objects.",
            "监督员（inspectors）必须是 {name, phone, username} 对象的列表。",
            code="property_wrong_type",
        )
    out = []
    for item in given:
        unknown = set(item) - {"name", "phone", "username"}
        if unknown:
            raise InvalidFeature(
                f"Unknown inspector field(s): {', '.join(sorted(unknown))}.",
                f"监督员的未知字段：{', '.join(sorted(unknown))}。",
                code="unknown_property",
            )
        name = _text_or_none(item, "name", "监督员姓名")
        if name is None:
            raise InvalidFeature(
                "every inspector needs a name.", "每位监督员都需要姓名。", code="missing_property"
            )
        username = _text_or_none(item, "username", "监督员账号")
        if (
            username is not None
            and not conn.execute(
                text("SELECT 1 FROM users WHERE username = :u AND role = 'inspector'"),
                {"u": username},
            ).first()
        ):
            raise InvalidFeature(
                f"{username!r} is not an inspector's account.",
                f"{username!r} 不是监督员账号。",
                code="unknown_inspector_account",
            )
        out.append((name, _text_or_none(item, "phone", "联系电话"), username))
    if len({n for n, _, _ in out}) != len(out):
        raise InvalidFeature(
            "an inspector is listed twice.", "监督员名单中有重复。", code="duplicate_inspector"
        )
    return out


def set_people(
    conn: Connection, code: str, doc: Any, actor: str, viewer: Viewer | None = None
) -> dict[str, Any]:
    """Replace the people of a current grid the viewer may read (unknown keys refused); audited."""
    if not isinstance(doc, dict):
        raise InvalidFeature(
            "The body must be an object.", "请求体必须是对象。", code="body_not_object"
        )
    unknown = set(doc) - {*PEOPLE_FIELDS, "inspectors"}
    if unknown:
        raise InvalidFeature(
            f"Unknown field(s): {', '.join(sorted(unknown))}.",
            f"未知字段：{', '.join(sorted(unknown))}。",
            code="unknown_property",
        )
    labels = {f.name: f.label_zh for f in GRIDS.fields}
    values = {n: _text_or_none(doc, n, labels[n]) for n in PEOPLE_FIELDS}
    inspectors = _inspectors(conn, doc)
    before = people(conn, code, viewer)  # another county's grid looks absent
    if values["responsible_unit"] is not None and values["responsible_unit"] != before.get(
        "responsible_unit"
    ):
        adcode = conn.execute(
            text(
                f"SELECT adcode FROM grids AS g WHERE g.code = :code AND {is_current(GRIDS, 'g')}"
            ),
            {"code": code},
        ).scalar_one()
        units.check_known(conn, values["responsible_unit"], adcode)
    params: dict[str, Any] = values | {"code": code}
    visible = area_clause(GRIDS, viewer, params, alias="g")
    fid = conn.execute(
        text(f"""
        UPDATE grids AS g SET responsible_person = :responsible_person,
               responsible_unit = :responsible_unit, phone = :phone
        WHERE g.code = :code AND {is_current(GRIDS, "g")} AND {visible} RETURNING g.id
    """),
        params,
    ).scalar_one()
    conn.execute(text("DELETE FROM grid_inspectors WHERE grid_code = :code"), {"code": code})
    for name, phone, username in inspectors:
        conn.execute(
            text(
                "INSERT INTO grid_inspectors (grid_code, name, phone, username) VALUES (:c, :n, :p, :u)"
            ),
            {"c": code, "n": name, "p": phone, "u": username},
        )
    after = people(conn, code)
    conn.execute(
        text("""
        INSERT INTO audit_log (actor, action, layer, feature_id, adcode, before, after)
        SELECT :actor, 'update', 'grids', :fid, adcode, CAST(:before AS jsonb), CAST(:after AS jsonb)
        FROM grids WHERE id = :fid
    """),
        {
            "actor": actor,
            "fid": fid,
            "before": json.dumps(before, ensure_ascii=False),
            "after": json.dumps(after, ensure_ascii=False),
        },
    )
    return after
