"""Work orders (交办单) of dust sites: rectified on a day, on time or late by the bureau's rule."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Connection, text

from layers.engine import access, editing
from layers.engine.access import area_clause, not_visible
from layers.engine.editing import EditContext, Written
from layers.errors import InvalidFeature, StateConflict
from layers.registry import WORK_ORDERS, Role
from layers.store.db import BUREAU_TIMEZONE


def _order(conn: Connection, order_id: int, ctx: EditContext) -> Any:
    """The order's deadline, issue day, result and its county's today, if the viewer reads it."""
    params: dict[str, Any] = {"id": order_id, "zone": BUREAU_TIMEZONE}
    where = area_clause(WORK_ORDERS, ctx.viewer, params)
    row = conn.execute(
        text(f"""
        SELECT t.deadline, t.issued_on, t.result,
               (now() AT TIME ZONE coalesce(co.time_zone, :zone))::date AS today
        FROM work_orders AS t LEFT JOIN counties AS co ON co.adcode = t.adcode
        WHERE t.id = :id AND {where}
    """),
        params,
    ).first()
    if row is None:
        raise not_visible(WORK_ORDERS, order_id)
    return row


def rectify(
    conn: Connection,
    order_id: int,
    ctx: EditContext,
    on: date | None = None,
    if_match: str | None = None,
) -> tuple[Written, dict[str, Any]]:
    """Record an open work order as rectified on `on` (default: today in its county): on time
    when that day is not after its deadline, else late. The server's calendar decides, never the
    client's clock."""
    order = _order(conn, order_id, ctx)  # one the viewer cannot read looks absent
    # inspectors record it in their patrol area (the order's read scope); no generic edit may
    access.require_role(ctx.viewer, Role.INSPECTOR, *WORK_ORDERS.editable_by)
    if order.result != "open":
        raise StateConflict(
            f"Work order {order_id} was already closed ({order.result}).",
            f"交办单 {order_id} 已完成整改，不能重复提交。",
            code="already_rectified",
        )
    day = on or order.today
    if day > order.today or day < order.issued_on:
        raise InvalidFeature(
            f"rectified_on must lie between the issue day {order.issued_on} and today "
            f"{order.today}.",
            f"整改完成日期必须在交办日期 {order.issued_on} 与今天 {order.today} 之间。",
            code="property_out_of_range",
            field="rectified_on",
        )
    result = "on_time" if day <= order.deadline else "late"
    values = {"result": result, "rectified_on": day.isoformat()}
    written = editing.update(
        conn, WORK_ORDERS, order_id, {"properties": values}, if_match, ctx, rights_checked=True
    )
    return written, {"id": order_id, "deadline": order.deadline.isoformat()} | values
