"""Who may read and write what, enforced inside the SQL that reads and writes.

Every account but the deployment's admin is limited to its counties: no row of another county is
read or written, whatever the role. Within them, leaders, planners, dispatchers and admins read
every layer; a handling unit reads every layer but, of a layer scoped by unit (cases: see
`ReadScope`), only the rows naming it. An inspector reads only what lies in their patrol area
(the rows meeting it, or for grids the rows it covers): the current grids assigned to them,
buffered by a few metres, computed by the database in the query itself, so a row outside can
never reach a body, a tile or a count. Writes follow the registry: the roles in a layer's
`editable_by` may change it anywhere; an inspector may create (`inspector_creates`) and update
(`inspector_updates`) only inside their area.

`read_limit` builds the condition once, with its key (the kind of limit, the values it binds and
the tables it reads): a cache of anything a viewer reads keys on it, so a new kind of limit
reaches every cache key by being written here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from layers.errors import FeatureNotFound, Forbidden
from layers.registry import GRIDS, ROLE_LABELS, Layer, PatrolReach, Role
from layers.store import versions


@dataclass(frozen=True)
class Viewer:
    """The signed-in user a query runs for."""

    username: str
    role: Role
    display_name: str | None = None
    patrol_buffer_m: float = 50.0
    unit: str | None = None  # a handling unit's name: its cases are the ones it reads
    counties: tuple[str, ...] | None = None  # the adcodes it reads and writes; None = every one

    @property
    def patrols(self) -> bool:
        """Whether what this user reads is limited to a patrol area."""
        return self.role is Role.INSPECTOR


# The patrol area: the union of the inspector's current grids, buffered in metres in their
# Gauss-Krüger zone. An uncorrelated subquery: PostgreSQL computes it once per statement.
PATROL_AREA = f"""(SELECT ST_Transform(ST_Buffer(ST_Transform(a.geom, citygrid_gk_srid(a.geom)),
                                               :patrol_buffer_m), 4490)
    FROM (SELECT ST_Union(g.geom) AS geom FROM grids AS g
          JOIN grid_inspectors AS i ON i.grid_code = g.code
          WHERE i.username = :patrol_user AND {versions.is_current(GRIDS, "g")}) AS a)"""


PATROL_TABLES = (GRIDS.id, "grid_inspectors")  # the tables the patrol area is computed from


@dataclass(frozen=True)
class ReadLimit:
    """What a viewer may read of a layer: a SQL condition, the values it binds, and the tables
    besides the layer whose rows decide which rows pass. `key` names the limit for any cache."""

    kind: Literal["all", "unit", "patrol", "none"]
    sql: str
    params: tuple[tuple[str, Any], ...] = ()
    tables: tuple[str, ...] = ()
    counties: tuple[str, ...] | None = None  # None: every county

    @property
    def narrow(self) -> bool:
        """Whether the viewer's role reads fewer rows than its counties hold (a county limit is
        a plain condition on an indexed column: the planner estimates it well)."""
        return self.kind != "all"

    @property
    def key(self) -> tuple[Any, ...]:
        """Everything that limits the rows: two viewers with equal keys read the same rows."""
        bound = tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in self.params)
        return (self.kind, self.counties, bound, self.tables)  # hashable even with a list bound


def _patrol_params(viewer: Viewer) -> tuple[tuple[str, Any], ...]:
    return (("patrol_buffer_m", viewer.patrol_buffer_m), ("patrol_user", viewer.username))


def _role_limit(layer: Layer, viewer: Viewer | None, alias: str) -> ReadLimit:
    unit_field = layer.scope.unit_field
    if viewer is not None and viewer.role is Role.HANDLER and unit_field is not None:
        return ReadLimit(
            "unit", f'{alias}."{unit_field}" = :viewer_unit', (("viewer_unit", viewer.unit),)
        )
    if viewer is None or not viewer.patrols:
        return ReadLimit("all", "TRUE")
    bound = _patrol_params(viewer)
    if layer.scope.patrol is PatrolReach.INSIDE:
        return ReadLimit(
            "patrol", f"ST_CoveredBy({alias}.geom, {PATROL_AREA})", bound, PATROL_TABLES
        )
    if layer.geometry is not None:
        return ReadLimit(
            "patrol", f"ST_Intersects({alias}.geom, {PATROL_AREA})", bound, PATROL_TABLES
        )
    if layer.parent is not None and layer.parent_key is not None:
        return ReadLimit(
            "patrol",
            f'EXISTS (SELECT 1 FROM "{layer.parent}" AS p WHERE p.id = {alias}."{layer.parent_key}" '
            f"AND ST_Intersects(p.geom, {PATROL_AREA}))",
            bound,
            (*PATROL_TABLES, layer.parent),
        )
    return ReadLimit("none", "FALSE")


def county_condition(viewer: Viewer | None, column: str) -> tuple[str, tuple[tuple[str, Any], ...]]:
    """A condition on an adcode column keeping the viewer's counties, and the values it binds."""
    if viewer is None or viewer.counties is None:
        return "TRUE", ()
    return f"{column} = ANY(:viewer_counties)", (("viewer_counties", list(viewer.counties)),)


def read_limit(layer: Layer, viewer: Viewer | None, alias: str = "t") -> ReadLimit:
    """The condition keeping only the rows of `layer` that `viewer` may read, with its scope."""
    role = _role_limit(layer, viewer, alias)
    if viewer is None or viewer.counties is None:
        return role
    county_sql, county_params = county_condition(viewer, f"{alias}.adcode")
    sql = county_sql if role.sql == "TRUE" else f"({county_sql} AND {role.sql})"
    return ReadLimit(role.kind, sql, (*county_params, *role.params), role.tables, viewer.counties)


def may_write_county(viewer: Viewer, adcode: str | None) -> bool:
    """Whether the viewer may write a row of this county."""
    return viewer.counties is None or adcode in viewer.counties


def outside_counties() -> Forbidden:
    """The error of a write in a county the account does not hold."""
    return forbidden(
        "That place is outside the counties of your account.",
        "该位置不在您账号所辖的县级行政区内。",
        code="outside_county",
    )


def area_clause(
    layer: Layer, viewer: Viewer | None, params: dict[str, Any], alias: str = "t"
) -> str:
    """A WHERE condition keeping only the rows of `layer` that `viewer` may read."""
    limit = read_limit(layer, viewer, alias)
    params.update(limit.params)
    return limit.sql


def point_clause(viewer: Viewer, params: dict[str, Any], geometry_sql: str) -> str:
    """A condition true when the geometry lies in the viewer's patrol area."""
    params.update(_patrol_params(viewer))
    return f"ST_Intersects({geometry_sql}, {PATROL_AREA})"


def may_edit_anywhere(layer: Layer, viewer: Viewer) -> bool:
    """Whether the viewer's role edits this layer without an area limit."""
    return viewer.role is Role.ADMIN or viewer.role in layer.editable_by


def forbidden(en: str, zh: str, code: str = "forbidden") -> Forbidden:
    """The error of an action the role does not allow."""
    return Forbidden(en, zh, code=code)


def check_create(layer: Layer, viewer: Viewer) -> None:
    """Refuse a create the role does not allow at all (the area is checked with the row)."""
    if may_edit_anywhere(layer, viewer):
        return
    if viewer.patrols and layer.inspector_creates:
        return
    raise forbidden(
        f"Your role ({viewer.role.value}) may not add to {layer.id}.",
        f"您的角色无权在{layer.title_zh}中新增。",
    )


def check_update(layer: Layer, viewer: Viewer, fields: set[str]) -> None:
    """Refuse an update touching what the role may not change."""
    if may_edit_anywhere(layer, viewer):
        return
    if viewer.patrols and layer.inspector_updates and fields <= set(layer.inspector_updates):
        return
    raise forbidden(
        f"Your role ({viewer.role.value}) may not change {', '.join(sorted(fields)) or 'this'} in {layer.id}.",
        f"您的角色无权修改{layer.title_zh}的这些内容。",
    )


def check_replace_or_delete(layer: Layer, viewer: Viewer) -> None:
    """Replacing or deleting a row is for the roles that edit the layer anywhere."""
    if not may_edit_anywhere(layer, viewer):
        raise forbidden(
            f"Your role ({viewer.role.value}) may not replace or delete in {layer.id}.",
            f"您的角色无权替换或删除{layer.title_zh}中的要素。",
        )


def outside_area() -> Forbidden:
    """The error of a write at a place outside the inspector's patrol area."""
    return forbidden(
        "That place is outside your patrol area.",
        "该位置不在您负责的巡查网格内。",
        code="outside_patrol_area",
    )


def not_visible(layer: Layer, fid: int) -> FeatureNotFound:
    """What a row the viewer may not read looks like: absent."""
    return FeatureNotFound(
        f"{layer.id} has no feature {fid}.",
        f"图层 {layer.title_zh} 中没有编号为 {fid} 的要素。",
    )


def require_role(viewer: Viewer, *roles: Role) -> None:
    """Refuse a viewer whose role is not among `roles` (admins always pass)."""
    if viewer.role is Role.ADMIN or viewer.role in roles:
        return
    names = "、".join(ROLE_LABELS[r] for r in roles)
    raise forbidden(
        f"This needs one of the roles {', '.join(r.value for r in roles)}.",
        f"此操作需要以下角色之一：{names}。",
    )
