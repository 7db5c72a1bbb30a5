"""Routing rules: which unit a subclass's cases in an area go to (admins keep them; dispatchers
and leaders read them), each limited to the viewer's counties."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import Field

from api.auth import ViewerDep, current_viewer
from api.deps import ConnectionDep, EngineDep, Strict
from layers.cases import routingrules

router = APIRouter(
    prefix="/routing_rules",
    tags=["routing 派遣规则"],
    dependencies=[Depends(current_viewer)],
)
RuleId = Annotated[int, Path(ge=1, le=2**62)]


class NewRule(Strict):
    """A routing rule: cases of a subclass in an area go to a unit."""

    adcode: str = Field(pattern=r"^[0-9]{6}$", description="县级行政区划代码")
    subclass: str = Field(min_length=1, max_length=100, description="小类（代码、名称或别名）")
    area_code: str | None = Field(
        default=None, pattern=r"^[0-9]{15}$", description="区域网格编码（任一层级；空：全县）"
    )
    unit: str = Field(
        min_length=1, max_length=200, description="处置单位（名称或统一社会信用代码）"
    )
    note: str | None = Field(default=None, max_length=500, description="说明")


@router.get("", summary="Routing rules / 派遣规则")
def list_rules(
    conn: ConnectionDep,
    viewer: ViewerDep,
    county: Annotated[
        str | None, Query(pattern=r"^[0-9]{6}$", description="Only this county's rules")
    ] = None,
) -> list[dict[str, Any]]:
    """The rules of the viewer's counties (admins, dispatchers and leaders)."""
    return routingrules.list_rules(conn, viewer, county)


@router.post("", status_code=201, summary="Add a routing rule / 新增派遣规则")
def add_rule(body: NewRule, engine: EngineDep, viewer: ViewerDep) -> dict[str, Any]:
    """Add a rule in a county the admin holds (400 unknown_subclass, unknown_area, unknown_unit;
    409 rule_exists; 403 outside_county)."""
    rule = routingrules.NewRule(body.subclass, body.area_code, body.unit, body.note)
    with engine.begin() as conn:
        return routingrules.add(conn, viewer, body.adcode, rule)


@router.delete("/{rule_id}", status_code=204, summary="Delete a routing rule / 删除派遣规则")
def delete_rule(rule_id: RuleId, engine: EngineDep, viewer: ViewerDep) -> Response:
    """Delete a rule of a county the admin holds (404 for another county's)."""
    with engine.begin() as conn:
        routingrules.delete(conn, viewer, rule_id)
    return Response(status_code=204)
