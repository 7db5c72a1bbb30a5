"""The catalogue of components (部件) and events (事件): classes and subclasses with their limits,
criteria and departments, as a county works with them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from api.auth import current_viewer
from api.deps import ConnectionDep, CountyViewerDep
from layers.cases import catalogue as service

router = APIRouter(
    prefix="/catalogue",
    tags=["catalogue 管理部件和事件"],
    dependencies=[Depends(current_viewer)],
)


@router.get("", summary="Catalogue of components and events / 管理部件和事件目录")
def read_catalogue(conn: ConnectionDep, viewer: CountyViewerDep) -> dict[str, Any]:
    """`classes` (kind, code, name, local) and `subclasses` (code, kind, class_code, class_name,
    name, aliases, time_limit, urgent_limit, time_unit, register_criteria, close_criteria,
    department, local, county, edited, geometry: point, line or area for a component subclass,
    the layer holding its components). With one county (`county=`, or the account's only one)
    its own edits of standard subclasses apply and its local subclasses are listed; otherwise the
    standard subclasses and the local ones of the counties asked for. A county the account does
    not hold is refused (403 outside_county)."""
    counties = viewer.counties
    one = counties[0] if counties is not None and len(counties) == 1 else None
    return service.catalogue(conn, one, counties)
