"""What an inspector's map shows beyond the plain layers: dust sites with their last inspection
and open work orders, and the open cases with their deadlines. GeoJSON built by the database,
limited to what the viewer may read."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from layers.engine.access import Viewer, area_clause
from layers.registry import CASE_FINAL_STATUSES, CASES, DUST_SITES

MAX_FEATURES = 2000


def dust_sites(conn: Connection, viewer: Viewer) -> str:
    """Dust sites with their last inspection's result and their open work orders."""
    params: dict[str, Any] = {"limit": MAX_FEATURES}
    where = area_clause(DUST_SITES, viewer, params)
    return str(
        conn.execute(
            text(f"""
            SELECT json_build_object('type', 'FeatureCollection', 'features',
                coalesce(json_agg(json_build_object(
                    'type', 'Feature', 'id', s.id,
                    'geometry', ST_AsGeoJSON(s.geom, 7, 0)::json,
                    'properties', json_build_object(
                        'name', s.name, 'site_type', s.site_type, 'status', s.status,
                        'contractor', s.contractor,
                        'last_inspected_on', last.inspected_on,
                        'last_problems_found', last.problems_found,
                        'last_result', CASE WHEN last.id IS NULL THEN 'none'
                                            WHEN last.problems_found > 0 THEN 'problems'
                                            ELSE 'clean' END,
                        'open_work_orders', coalesce((
                            SELECT json_agg(json_build_object('id', w.id, 'issued_on', w.issued_on,
                                'deadline', w.deadline, 'requirement', w.requirement,
                                'overdue', w.deadline < CURRENT_DATE) ORDER BY w.deadline)
                            FROM work_orders AS w WHERE w.dust_site_id = s.id AND w.result = 'open'
                        ), '[]'::json)))
                ORDER BY s.id), '[]'::json))::text
            FROM (SELECT t.* FROM dust_sites AS t WHERE {where} ORDER BY t.id LIMIT :limit) AS s
            LEFT JOIN LATERAL (
                SELECT i.id, i.inspected_on, i.problems_found FROM dust_inspections AS i
                WHERE i.dust_site_id = s.id ORDER BY i.inspected_on DESC, i.id DESC LIMIT 1
            ) AS last ON TRUE
        """),
            params,
        ).scalar_one()
    )


def open_cases(conn: Connection, viewer: Viewer) -> str:
    """Cases not yet closed, soonest deadline (or verification limit) first, marking the overdue
    and those awaiting a check (核查) or a verification (核实)."""
    params: dict[str, Any] = {"limit": MAX_FEATURES, "closed": list(CASE_FINAL_STATUSES)}
    where = area_clause(CASES, viewer, params)
    return str(
        conn.execute(
            text(f"""
            SELECT json_build_object('type', 'FeatureCollection', 'features',
                coalesce(json_agg(json_build_object(
                    'type', 'Feature', 'id', c.id,
                    'geometry', ST_AsGeoJSON(c.geom, 7, 0)::json,
                    'properties', json_build_object(
                        'category_code', c.category_code,
                        'category', k.major_name || '/' || k.minor_name,
                        'status', c.status, 'source', c.source, 'description', c.description,
                        'address', c.address, 'reported_at', c.reported_at,
                        'deadline', c.deadline, 'verify_deadline', c.verify_deadline,
                        'overdue', coalesce(c.deadline, c.verify_deadline) < now(),
                        'awaiting_check', c.status = 'feedback',
                        'awaiting_verify', c.status = 'unverified',
                        'supervisions', c.supervisions, 'grid_code', c.grid_code,
                        'camera', (SELECT coalesce(v.name, v.device_id) FROM cameras AS v
                                   WHERE v.id = c.camera_id),
                        'merchant', (SELECT m.name FROM merchants AS m WHERE m.id = c.merchant_id),
                        'garbage_point', (SELECT g.name FROM garbage_points AS g
                                          WHERE g.id = c.garbage_point_id)))
                ORDER BY coalesce(c.deadline, c.verify_deadline) NULLS LAST, c.id), '[]'::json))::text
            FROM (SELECT t.* FROM cases AS t WHERE t.status <> ALL(:closed) AND {where}
                  ORDER BY coalesce(t.deadline, t.verify_deadline) NULLS LAST, t.id
                  LIMIT :limit) AS c
            LEFT JOIN case_categories AS k ON k.code = c.category_code
        """),
            params,
        ).scalar_one()
    )
