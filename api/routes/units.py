"""Handling units: the list cases are dispatched to, and the admin declaring more."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import Field

from api.auth import ViewerDep, current_viewer, needs
from api.deps import ConnectionDep, EngineDep, Strict
from layers import units
from layers.access import Viewer

router = APIRouter(prefix="/units", tags=["units 处置单位"], dependencies=[Depends(current_viewer)])
AdminDep = Annotated[Viewer, Depends(needs())]


class NewUnit(Strict):
    """A handling unit to declare."""

    name: str = Field(min_length=1, max_length=units.MAX_NAME, description="处置单位名称")


def _public(unit: units.Unit) -> dict[str, Any]:
    return {"name": unit.name, "sources": list(unit.sources)}


@router.get("", summary="Handling units / 处置单位")
def list_units(conn: ConnectionDep, _: ViewerDep) -> list[dict[str, Any]]:
    """Every unit cases may be dispatched to: the current grids' responsible units (`grid`) and
    those the admin declared (`declared`)."""
    return [_public(u) for u in units.list_units(conn)]


@router.post("", status_code=201, summary="Declare a handling unit / 登记处置单位")
def add_unit(body: NewUnit, engine: EngineDep, admin: AdminDep) -> dict[str, Any]:
    """Declare a unit cases may be dispatched to (admins only; 409 when already declared)."""
    with engine.begin() as conn:
        return _public(units.add(conn, body.name, admin.username))
