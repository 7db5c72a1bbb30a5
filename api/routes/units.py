"""Handling units of each county: the list cases are dispatched to, and the admin declaring more."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import Field

from api.auth import ViewerDep, current_viewer, needs
from api.deps import ConnectionDep, EngineDep, Strict
from layers.cases import units
from layers.engine import access
from layers.engine.access import Viewer

router = APIRouter(prefix="/units", tags=["units 处置单位"], dependencies=[Depends(current_viewer)])
AdminDep = Annotated[Viewer, Depends(needs())]


class NewUnit(Strict):
    """A handling unit to declare in a county."""

    name: str = Field(min_length=1, max_length=units.MAX_NAME, description="处置单位名称")
    adcode: str = Field(pattern=r"^[0-9]{6}$", description="所属县级行政区划代码")


def _public(unit: units.Unit) -> dict[str, Any]:
    return {
        "name": unit.name,
        "adcode": unit.adcode,
        "county": unit.county,
        "sources": list(unit.sources),
    }


@router.get("", summary="Handling units / 处置单位")
def list_units(conn: ConnectionDep, viewer: ViewerDep) -> list[dict[str, Any]]:
    """The units cases of the viewer's counties may be dispatched to, with their county: the
    current grids' responsible units (`grid`) and those the admin declared (`declared`)."""
    return [_public(u) for u in units.list_units(conn, viewer.counties)]


@router.post("", status_code=201, summary="Declare a handling unit / 登记处置单位")
def add_unit(body: NewUnit, engine: EngineDep, admin: AdminDep) -> dict[str, Any]:
    """Declare a unit cases of a county may be dispatched to (admins only, in a county they hold:
    403 outside_county; 404 for an unknown county; 409 when already declared there)."""
    if not access.may_write_county(admin, body.adcode):
        raise access.outside_counties()
    with engine.begin() as conn:
        return _public(units.add(conn, body.name, body.adcode, admin.username))
