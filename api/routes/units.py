"""The directory of units cases are dispatched to: listing it, and the admin adding and editing."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Response
from pydantic import Field

from api.auth import ViewerDep, current_viewer, needs
from api.deps import ConnectionDep, EngineDep, Strict
from layers.cases import units
from layers.engine import access
from layers.engine.access import Viewer

router = APIRouter(prefix="/units", tags=["units 处置单位"], dependencies=[Depends(current_viewer)])
AdminDep = Annotated[Viewer, Depends(needs())]
UnitType = Literal["department", "enterprise", "street", "community", "other"]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description="The unit's ETag as read; if sent and stale, 412. Without it the last writer "
        "wins.",
    ),
]


class NewUnit(Strict):
    """A unit to add to a county's directory."""

    name: str = Field(min_length=1, max_length=units.MAX_NAME, description="单位名称")
    adcode: str = Field(pattern=r"^[0-9]{6}$", description="所服务的县级行政区划代码")
    type: UnitType = Field("department", description="类型：主管部门/企业/街道/社区/其他")
    credit_code: str | None = Field(None, max_length=18, description="统一社会信用代码")
    contact_person: str | None = Field(None, max_length=units.MAX_CONTACT, description="联系人")
    contact_phone: str | None = Field(None, max_length=30, description="联系电话")


class UnitChange(Strict):
    """The fields of a unit to change (absent ones stay)."""

    type: UnitType | None = None
    credit_code: str | None = Field(None, max_length=18)
    contact_person: str | None = Field(None, max_length=units.MAX_CONTACT)
    contact_phone: str | None = Field(None, max_length=30)
    active: bool | None = None


@router.get("", summary="Directory of units / 单位名录")
def list_units(
    conn: ConnectionDep,
    viewer: ViewerDep,
    type: Annotated[UnitType | None, Query(description="Only units of this type")] = None,
    county: Annotated[
        str | None, Query(pattern=r"^[0-9]{6}$", description="Only this county's units")
    ] = None,
    active: Annotated[bool | None, Query(description="Only active (or inactive) units")] = None,
) -> list[dict[str, Any]]:
    """The units cases of the viewer's counties may go to, with every field; `sources` says
    whether a current grid names it (`grid`) besides its entry in the directory (`declared`)."""
    scope = viewer.counties
    if county is not None:
        scope = (county,) if scope is None or county in scope else ()
    return [u.public() for u in units.list_units(conn, scope, type, active)]


@router.get("/{unit_id}", summary="One unit / 单个单位")
def get_unit(
    unit_id: Annotated[int, Path(ge=1, le=2**62)],
    conn: ConnectionDep,
    viewer: ViewerDep,
    response: Response,
) -> dict[str, Any]:
    """A unit of the viewer's counties, with its ETag (404 for another county's)."""
    unit = units.get(conn, unit_id, viewer.counties)
    response.headers["ETag"] = f'"{unit.etag}"'
    return unit.public()


@router.post("", status_code=201, summary="Add a unit / 登记单位")
def add_unit(body: NewUnit, engine: EngineDep, admin: AdminDep) -> dict[str, Any]:
    """Add a unit to a county's directory (admins only, in a county they hold: 403
    outside_county; 404 for an unknown county; 409 when its name or credit code is taken there;
    400 bad_credit_code_check for a mistyped credit code)."""
    if not access.may_write_county(admin, body.adcode):
        raise access.outside_counties()
    entry = units.NewUnit(
        body.name, body.type, body.credit_code, body.contact_person, body.contact_phone
    )
    with engine.begin() as conn:
        return units.add(conn, entry, body.adcode, admin.username).public()


@router.patch("/{unit_id}", summary="Change a unit / 修改单位")
def change_unit(
    unit_id: Annotated[int, Path(ge=1, le=2**62)],
    body: UnitChange,
    engine: EngineDep,
    admin: AdminDep,
    response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    """Change a unit's type, credit code, contact or active flag (admins of its county; its name
    and county stay). An inactive unit receives no new cases."""
    changes = body.model_dump(exclude_unset=True)
    if "active" in changes and changes["active"] is None:
        del changes["active"]
    with engine.begin() as conn:
        unit = units.update(conn, unit_id, changes, admin.username, admin.counties, if_match)
    response.headers["ETag"] = f'"{unit.etag}"'
    return unit.public()
