"""The layer registry: every layer and child table declared once.

Tables, migrations checks, OGC metadata, import/export schemas and map styles all read these
declarations; nothing else in the code base lists a layer's fields. What a layer does beyond plain
rows is declared with it too, as capabilities the engine reads (versioned rows, read scope, grid
placement, drawing level, file import, per-grid counts): code outside this module never branches
on a layer's id, and a new kind of need is a new capability.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

STORAGE_SRID = 4490
MAX_ROW_ID = 2**63 - 1  # bigint ids


class FieldType(StrEnum):
    """Column types a layer field can have."""

    TEXT = "text"
    INTEGER = "integer"
    REAL = "real"
    DATE = "date"
    TIMESTAMP = "timestamp"
    BOOLEAN = "boolean"


class GeometryKind(StrEnum):
    """Geometry types stored by layers (PostGIS type names)."""

    POINT = "POINT"
    MULTIPOINT = "MULTIPOINT"
    LINESTRING = "LINESTRING"
    MULTILINESTRING = "MULTILINESTRING"
    MULTIPOLYGON = "MULTIPOLYGON"

    @property
    def geojson(self) -> str:
        """The GeoJSON (and OGR) name of the type: "MultiLineString" …"""
        return _GEOJSON_NAMES[self]

    @property
    def is_point(self) -> bool:
        """Points or multipoints: drawn as markers, never simplified."""
        return self in (GeometryKind.POINT, GeometryKind.MULTIPOINT)

    @property
    def is_line(self) -> bool:
        """Lines or multilines: drawn as polylines, measured by length."""
        return self in (GeometryKind.LINESTRING, GeometryKind.MULTILINESTRING)

    @property
    def shape(self) -> str:
        """The catalogue's word for the type (case_categories.geometry): point, line or area."""
        return "point" if self.is_point else "line" if self.is_line else "area"


_GEOJSON_NAMES = {
    GeometryKind.POINT: "Point",
    GeometryKind.MULTIPOINT: "MultiPoint",
    GeometryKind.LINESTRING: "LineString",
    GeometryKind.MULTILINESTRING: "MultiLineString",
    GeometryKind.MULTIPOLYGON: "MultiPolygon",
}


class Role(StrEnum):
    """User roles; which of them may edit a layer is declared with the layer."""

    ADMIN = "admin"
    PLANNER = "planner"
    INSPECTOR = "inspector"
    LEADER = "leader"
    DISPATCHER = "dispatcher"  # the command centre: registers, dispatches, closes cases
    HANDLER = "handler"  # a handling unit: handles the cases dispatched to it


ROLE_LABELS = {
    Role.ADMIN: "系统管理员",
    Role.PLANNER: "网格规划员",
    Role.INSPECTOR: "监督员",
    Role.LEADER: "领导",
    Role.DISPATCHER: "指挥中心派遣员",
    Role.HANDLER: "处置单位",
}


@dataclass(frozen=True)
class Code:
    """One value of a code list, stored as `value`, shown as `label_zh`."""

    value: str
    label_zh: str
    label_en: str


@dataclass(frozen=True)
class Field:
    """One attribute column of a layer."""

    name: str
    type: FieldType
    label_zh: str
    label_en: str
    codes: tuple[Code, ...] = ()
    required: bool = False
    indexed: bool = False
    derived: bool = False
    references: str | None = None
    pattern: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    short: str | None = None  # a Shapefile column name (10 bytes at most) for a long field name
    handling_unit: bool = False  # names a handling unit, which must be one of the row's county
    column_names: tuple[str, ...] = ()  # other column names files use for it (部件编码 …)

    def __post_init__(self) -> None:
        numeric = self.type in (FieldType.INTEGER, FieldType.REAL)
        if numeric and not self.derived and None in self.bounds:
            raise ValueError(f"numeric field {self.name} needs a minimum and a maximum")

    @property
    def short_name(self) -> str:
        """The ASCII column name where only 10 bytes fit (dBASE): declared, or the field's name."""
        return self.short or self.name

    @property
    def code_values(self) -> tuple[str, ...]:
        """The stored values allowed by the code list."""
        return tuple(c.value for c in self.codes)

    @property
    def bounds(self) -> tuple[float | None, float | None]:
        """The smallest and largest value a numeric field accepts (row ids for references)."""
        if self.references and self.type is FieldType.INTEGER and self.minimum is None:
            return 1, MAX_ROW_ID
        return self.minimum, self.maximum


@dataclass(frozen=True)
class Style:
    """Default map style of a layer."""

    color: str
    fill_color: str
    fill_opacity: float = 0.3
    weight: float = 2.0


@dataclass(frozen=True)
class Versioning:
    """Rows are versions: each valid from its `start` day until its `end` day; the current
    version has no end yet (see layers/store/versions.py for the conditions).

    `kept_on_edit`: an item edit or an import update keeps the version it changes (ended on the
    day of the change) and the row starts that day, so the layer can be read as of any day.
    `retired`: (field, value) an update import writes on the rows its file no longer holds."""

    start: str = "valid_from"
    end: str = "valid_to"
    kept_on_edit: bool = False
    retired: tuple[str, str] | None = None


class PatrolReach(StrEnum):
    """Which rows an inspector's patrol area lets them read."""

    TOUCHING = "touching"  # the rows meeting the area (or whose parent row meets it)
    INSIDE = "inside"  # the rows the area covers: their own grids and those inside, no neighbours


@dataclass(frozen=True)
class ReadScope:
    """How a viewer's role narrows what they read of a layer (every role is held to its counties)."""

    patrol: PatrolReach = PatrolReach.TOUCHING
    unit_field: str | None = None  # a handling unit reads only the rows naming it in this field


@dataclass(frozen=True)
class GridPlacement:
    """A row lies in a grid: when not given, the grid of `level` under it (for a line or an
    area, the grid holding most of it) and the nearest responsible unit up that grid's family
    are written to `grid_field` and `unit_field`; the names of its community and street grids
    to `community_field` and `street_field`."""

    grid_field: str = "grid_code"
    unit_field: str | None = "unit"
    level: str = "section"
    community_field: str | None = None
    street_field: str | None = None

    @property
    def fields(self) -> tuple[str, ...]:
        """The fields the placement writes."""
        named = (self.grid_field, self.unit_field, self.community_field, self.street_field)
        return tuple(n for n in named if n)


@dataclass(frozen=True)
class CaseRouting:
    """A case row is routed on write to the unit that should handle it (layers/cases/routing.py):
    a named component's maintainer, else a routing rule for its category and area, else its
    grid's responsible unit; `rule_field` records which of them chose `unit_field`."""

    component_field: str = "component_code"
    category_field: str = "category_code"
    unit_field: str = "unit"
    rule_field: str = "routed_by"
    grid_field: str = "grid_code"

    @property
    def fields(self) -> tuple[str, ...]:
        """The fields routing reads or writes."""
        return (
            self.component_field,
            self.category_field,
            self.unit_field,
            self.rule_field,
            self.grid_field,
        )


@dataclass(frozen=True)
class IdScheme:
    """Rows carry a coded ID in `field`: the row's 6-digit county code, then the `type_field`
    category code less its kind letter (2-digit class + 2-digit subclass), then a `serial` of
    that many digits (GB/T 30428.2: 16 digits in all). Checked on every write and import;
    assigned, as the next serial of the county and subclass, when a row has none. The type's
    catalogue geometry (point, line or area) must be the layer's, so a subclass lives in one
    layer and IDs of a county never clash across the layers sharing the scheme."""

    field: str = "component_code"
    type_field: str = "subclass_code"
    type_kind: str = "component"  # the kind of case category the type field must name
    serial: int = 6

    @property
    def pattern(self) -> str:
        """The ID's format as a regular expression."""
        return f"^[0-9]{{{10 + self.serial}}}$"


@dataclass(frozen=True)
class Sector:
    """A point drawn as the sector it watches (a camera): centred on the bearing in
    `direction_field` (degrees clockwise from north), as wide as `angle_field` (degrees), as deep
    as `range_field` (metres) or `default_range_m` where the row has none."""

    direction_field: str = "direction_deg"
    angle_field: str = "view_angle_deg"
    range_field: str | None = "view_range_m"
    default_range_m: float = 60.0

    @property
    def fields(self) -> tuple[str, ...]:
        """The fields the sector is drawn from."""
        named = (self.direction_field, self.angle_field, self.range_field)
        return tuple(n for n in named if n)


class DrawLevel(StrEnum):
    """Where a page draws a layer: frames under areas under lines under points."""

    FRAME = "frame"
    AREA = "area"
    LINE = "line"
    POINT = "point"


class FileImport(StrEnum):
    """How `citygrid import` reads a file into a layer."""

    ROWS = "rows"  # rows checked and added (or updated by the natural key)
    GRID_HIERARCHY = "grid_hierarchy"  # a county's whole hierarchy replacing it as of a day
    CASE_HISTORY = "case_history"  # a former system's cases, their labels and stage times kept


@dataclass(frozen=True)
class Layer:
    """A spatial layer or a child table, declared once."""

    id: str
    title_zh: str
    title_en: str
    fields: tuple[Field, ...]
    geometry: GeometryKind | None = None
    parent: str | None = None
    editable_by: frozenset[Role] = frozenset({Role.ADMIN})  # anywhere, any change
    inspector_creates: bool = False  # an inspector may add rows inside their patrol area
    inspector_updates: tuple[str, ...] = ()  # fields an inspector may change inside it
    style: Style | None = None
    popup_fields: tuple[str, ...] = ()
    area_field: str | None = None
    length_field: str | None = None  # kept in metres by a trigger, like the area (see `length`)
    unique_current: tuple[str, ...] = field(default=())
    temporal: tuple[str, ...] = ()  # the field (or start, end fields) `datetime` filters on
    cluster_below_zoom: int | None = None  # vector tiles aggregate points below this zoom
    binned: bool = False  # rows keep their Gauss-Krüger position and 250 m cell, for heatmaps
    natural_key: str | None = None  # a field naming a row as people do: imports may update by it
    unique_in_county: tuple[str, ...] = ()  # fields no two rows of one county share (when given)
    # set: the items API changes only these fields; shapes, codes and validity change through the
    # layer's own operations (grids: split, merge, redraw …), and files do not add rows to it
    item_edits_only: frozenset[str] | None = None
    versioned: Versioning | None = None  # rows are versions valid from a day to a day
    scope: ReadScope = ReadScope()
    placed_in_grid: GridPlacement | None = None  # a row's grid and unit derived on write
    draw_level: DrawLevel | None = None  # None: by its geometry (points over areas)
    file_import: FileImport = FileImport.ROWS
    counted_per_grid: bool = False  # the grid statistics count its rows in each grid
    id_scheme: IdScheme | None = None  # a coded ID checked against the row's county and type
    routed: CaseRouting | None = None  # the handling unit chosen on write (cases)
    sector: Sector | None = None  # points drawn as the sector they watch (cameras)

    def __post_init__(self) -> None:
        shorts = [f.short_name.lower() for f in self.fields]
        if len(set(shorts)) != len(shorts) or any(len(n) > 10 or not n.isascii() for n in shorts):
            raise ValueError(f"{self.id}: short names must be unique ASCII of 10 bytes at most")
        if self.length_field and (self.geometry is None or not self.geometry.is_line):
            raise ValueError(f"{self.id}: only a line layer has a length")
        names = {f.name for f in self.fields}
        needed = self._capability_fields()
        if missing := [n for n in needed if n not in names]:
            raise ValueError(f"{self.id}: capabilities name fields it lacks: {missing}")
        if self.unique_current and self.versioned is None:
            raise ValueError(f"{self.id}: only versioned rows can be unique among current ones")
        if self.placed_in_grid is not None and self.geometry is None:
            raise ValueError(f"{self.id}: only rows with a geometry are placed in a grid")
        if self.sector is not None and (self.geometry is None or not self.geometry.is_point):
            raise ValueError(f"{self.id}: only points are drawn as sectors")

    def _capability_fields(self) -> list[str]:
        """The fields the layer's capabilities read or write."""
        needed = [self.scope.unit_field] if self.scope.unit_field else []
        if self.versioned is not None:
            needed += [self.versioned.start, self.versioned.end]
        for capability in (self.placed_in_grid, self.routed, self.sector):
            if capability is not None:
                needed += list(capability.fields)
        if self.id_scheme is not None:
            needed += [self.id_scheme.field, self.id_scheme.type_field]
        return needed

    @property
    def parent_key(self) -> str | None:
        """Name of the foreign-key column pointing at the parent layer."""
        return f"{self.parent.removesuffix('s')}_id" if self.parent else None

    def field(self, name: str) -> Field:
        """The field called `name`; KeyError when the layer has none."""
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)


def codes(*triples: tuple[str, str, str]) -> tuple[Code, ...]:
    """Build a code list from (value, Chinese label, English label) triples."""
    return tuple(Code(*t) for t in triples)


def _area(label_zh: str = "面积(㎡)") -> Field:
    return Field("area_m2", FieldType.REAL, label_zh, "Area (m²)", derived=True)


def length(label_zh: str = "长度(米)") -> Field:
    """The derived length of a line layer, in metres in its Gauss-Krüger zone (`length_field`)."""
    return Field("length_m", FieldType.REAL, label_zh, "Length (m)", derived=True, short="length_m")


GRID_LEVELS = codes(
    ("street", "街道网格", "Street grid"),
    ("community", "社区网格", "Community grid"),
    ("section", "片区网格", "Section grid"),
)

GRIDS = Layer(
    id="grids",
    title_zh="管理网格",
    title_en="Management grids",
    geometry=GeometryKind.MULTIPOLYGON,
    fields=(
        Field(
            "level", FieldType.TEXT, "网格层级", "Level", GRID_LEVELS, required=True, indexed=True
        ),
        Field(
            "code",
            FieldType.TEXT,
            "网格编码",
            "Grid code",
            required=True,
            indexed=True,
            pattern=r"^[0-9]{15}$",
        ),
        Field("name", FieldType.TEXT, "网格名称", "Name", required=True),
        Field(
            "parent_code",
            FieldType.TEXT,
            "上级网格编码",
            "Parent code",
            indexed=True,
            pattern=r"^[0-9]{15}$",
            short="parent_cd",
        ),
        Field(
            "responsible_person", FieldType.TEXT, "责任人", "Responsible person", short="resp_name"
        ),
        Field(
            "responsible_unit",
            FieldType.TEXT,
            "责任单位",
            "Responsible unit",
            short="resp_unit",
            handling_unit=True,
        ),
        Field("phone", FieldType.TEXT, "联系电话", "Phone"),
        Field("valid_from", FieldType.DATE, "生效日期", "Valid from", required=True, indexed=True),
        Field("valid_to", FieldType.DATE, "失效日期", "Valid to", indexed=True),
        _area(),
    ),
    editable_by=frozenset({Role.ADMIN, Role.PLANNER}),
    style=Style("#1f4e9c", "#1f4e9c", 0.05, 2.0),
    popup_fields=("name", "code", "level", "responsible_person", "responsible_unit", "area_m2"),
    area_field="area_m2",
    unique_current=("code",),
    temporal=("valid_from", "valid_to"),
    natural_key="code",
    item_edits_only=frozenset({"name", "responsible_person", "responsible_unit", "phone"}),
    versioned=Versioning(),
    scope=ReadScope(patrol=PatrolReach.INSIDE),
    draw_level=DrawLevel.FRAME,
    file_import=FileImport.GRID_HIERARCHY,
)

ILLEGAL_BUILDINGS = Layer(
    id="illegal_buildings",
    title_zh="违法建设",
    title_en="Illegal buildings",
    geometry=GeometryKind.MULTIPOLYGON,
    fields=(
        Field(
            "category",
            FieldType.TEXT,
            "类别",
            "Category",
            codes(("new", "新增", "New"), ("existing", "存量", "Existing")),
            required=True,
            indexed=True,
        ),
        Field(
            "found_by",
            FieldType.TEXT,
            "发现方式",
            "Found by",
            codes(
                ("remote_sensing", "遥感图斑", "Remote-sensing patch"),
                ("patrol", "巡查发现", "Patrol"),
                ("complaint", "群众举报", "Complaint"),
            ),
            required=True,
            indexed=True,
        ),
        Field(
            "status",
            FieldType.TEXT,
            "处置状态",
            "Status",
            codes(
                ("pending", "待处置", "Pending"),
                ("ordered", "已下达整改", "Rectification ordered"),
                ("demolished", "已拆除", "Demolished"),
                ("retained", "保留处理", "Retained"),
            ),
            required=True,
            indexed=True,
        ),
        Field("address", FieldType.TEXT, "地址", "Address"),
        Field("party", FieldType.TEXT, "当事人", "Party"),
        Field("found_on", FieldType.DATE, "发现日期", "Found on", indexed=True),
        Field(
            "demolished_on",
            FieldType.DATE,
            "拆除日期",
            "Demolished on",
            indexed=True,
            short="demol_on",
        ),
        Field(
            "demolished_area_m2",
            FieldType.REAL,
            "拆除面积(㎡)",
            "Demolished area (m²)",
            minimum=0,
            maximum=1_000_000,
            short="demol_m2",
        ),
        _area("占地面积(㎡)"),
    ),
    editable_by=frozenset({Role.ADMIN}),
    style=Style("#c0392b", "#e74c3c", 0.5, 1.5),
    popup_fields=("category", "status", "found_by", "address", "area_m2", "demolished_on"),
    area_field="area_m2",
    temporal=("found_on",),
    counted_per_grid=True,
)

BILLBOARD_TYPES = codes(
    ("pole", "高炮", "Large pole"),
    ("rooftop", "楼顶", "Rooftop"),
    ("shop_sign", "店招", "Shop sign"),
    ("light_box", "灯箱", "Light box"),
    ("wall", "墙体", "Wall"),
    ("window_cover", "封窗", "Window cover"),
    ("other", "其他", "Other"),
)

BILLBOARDS = Layer(
    id="billboards",
    title_zh="户外广告招牌",
    title_en="Billboards and shop signs",
    geometry=GeometryKind.POINT,
    fields=(
        Field(
            "type", FieldType.TEXT, "设施类型", "Type", BILLBOARD_TYPES, required=True, indexed=True
        ),
        Field(
            "face_area_m2",
            FieldType.REAL,
            "牌面面积(㎡)",
            "Face area (m²)",
            required=True,
            minimum=0,
            maximum=10_000,
            short="face_m2",
        ),
        Field("owner", FieldType.TEXT, "设置单位", "Owner"),
        Field("address", FieldType.TEXT, "地址", "Address"),
        Field(
            "registration_no",
            FieldType.TEXT,
            "登记编号",
            "Registration number",
            indexed=True,
            short="reg_no",
        ),
        Field(
            "risk_grade",
            FieldType.TEXT,
            "风险等级",
            "Risk grade",
            codes(
                ("A", "A级(安全)", "A (safe)"),
                ("B", "B级(基本安全)", "B (mostly safe)"),
                ("C", "C级(局部危险)", "C (partly dangerous)"),
                ("D", "D级(危险)", "D (dangerous)"),
            ),
            indexed=True,
        ),
        Field(
            "safety_report",
            FieldType.TEXT,
            "安全检测报告",
            "Safety inspection report",
            short="safety_rpt",
        ),
        Field(
            "last_inspected_on",
            FieldType.DATE,
            "最近检查日期",
            "Last inspected on",
            indexed=True,
            short="last_insp",
        ),
        Field("removed_on", FieldType.DATE, "拆除日期", "Removed on", indexed=True),
        Field(
            "removed_area_m2",
            FieldType.REAL,
            "拆除面积(㎡)",
            "Removed area (m²)",
            minimum=0,
            maximum=1_000_000,
            short="removed_m2",
        ),
    ),
    editable_by=frozenset({Role.ADMIN}),
    style=Style("#8e44ad", "#9b59b6", 0.8, 1.0),
    popup_fields=("type", "owner", "face_area_m2", "risk_grade", "last_inspected_on", "removed_on"),
    temporal=("last_inspected_on",),
    natural_key="registration_no",  # the 设置许可/登记 number on the bureau's register
    counted_per_grid=True,
)

DUST_SITES = Layer(
    id="dust_sites",
    title_zh="扬尘六类现场",
    title_en="Dust-producing sites",
    geometry=GeometryKind.POINT,
    fields=(
        Field("name", FieldType.TEXT, "项目名称", "Name", required=True),
        Field(
            "site_type",
            FieldType.TEXT,
            "现场类型",
            "Site type",
            codes(
                ("construction", "建筑工地", "Construction"),
                ("demolition", "拆迁工地", "Demolition"),
                ("road", "道路工地", "Road works"),
                ("water", "水务工地", "Water works"),
                ("yard", "堆场", "Storage yard"),
                ("landscaping", "园林绿化工地", "Landscaping"),
            ),
            required=True,
            indexed=True,
        ),
        Field("contractor", FieldType.TEXT, "施工单位", "Contractor"),
        Field(
            "status",
            FieldType.TEXT,
            "状态",
            "Status",
            codes(
                ("active", "在建", "Active"),
                ("suspended", "停工", "Suspended"),
                ("finished", "完工", "Finished"),
            ),
            required=True,
            indexed=True,
        ),
        Field("started_on", FieldType.DATE, "开工日期", "Started on"),
    ),
    editable_by=frozenset({Role.ADMIN}),
    style=Style("#b9770e", "#f5b041", 0.8, 1.0),
    popup_fields=("name", "site_type", "contractor", "status"),
    temporal=("started_on",),
    counted_per_grid=True,
)

DUST_INSPECTIONS = Layer(
    id="dust_inspections",
    title_zh="扬尘督查记录",
    title_en="Dust-site inspections",
    parent="dust_sites",
    fields=(
        Field(
            "inspected_on",
            FieldType.DATE,
            "督查日期",
            "Inspected on",
            required=True,
            indexed=True,
            short="inspected",
        ),
        Field("inspector", FieldType.TEXT, "督查人", "Inspector", required=True),
        Field(
            "problems_found",
            FieldType.INTEGER,
            "发现问题数",
            "Problems found",
            required=True,
            minimum=0,
            maximum=1_000,
            short="n_problems",
        ),
        Field("problems", FieldType.TEXT, "问题描述", "Problems"),
    ),
    inspector_creates=True,
    temporal=("inspected_on",),
)

WORK_ORDERS = Layer(
    id="work_orders",
    title_zh="交办单",
    title_en="Work orders",
    parent="dust_sites",
    fields=(
        Field(
            "inspection_id",
            FieldType.INTEGER,
            "督查记录",
            "Inspection",
            indexed=True,
            references="dust_inspections.id",
            short="insp_id",
        ),
        Field("issued_on", FieldType.DATE, "交办日期", "Issued on", required=True, indexed=True),
        Field("deadline", FieldType.DATE, "整改期限", "Deadline", required=True),
        Field("rectified_on", FieldType.DATE, "整改完成日期", "Rectified on", short="rectified"),
        Field(
            "result",
            FieldType.TEXT,
            "整改结果",
            "Result",
            codes(
                ("open", "整改中", "Open"),
                ("on_time", "按期整改", "Rectified on time"),
                ("late", "逾期整改", "Rectified late"),
            ),
            required=True,
            indexed=True,
        ),
        Field("requirement", FieldType.TEXT, "整改要求", "Requirement", short="rect_req"),
    ),
    # the result is the server's rule applied on POST /work_orders/{id}/rectified, never a client's
    # say: no generic edit of it by inspectors
    temporal=("issued_on",),
)

PARKING_LOTS = Layer(
    id="parking_lots",
    title_zh="停车场",
    title_en="Parking lots",
    geometry=GeometryKind.MULTIPOLYGON,
    fields=(
        Field("name", FieldType.TEXT, "名称", "Name", required=True),
        Field(
            "category",
            FieldType.TEXT,
            "类别",
            "Category",
            codes(
                ("public", "公共停车场", "Public"),
                ("dedicated", "专用停车场", "Dedicated"),
                ("temporary", "临时停车场", "Temporary"),
                ("on_street", "道路泊位", "On-street"),
            ),
            required=True,
            indexed=True,
        ),
        Field(
            "spaces",
            FieldType.INTEGER,
            "泊位数",
            "Spaces",
            required=True,
            minimum=0,
            maximum=100_000,
        ),
        Field(
            "shared_windows",
            FieldType.TEXT,
            "错时共享时段",
            "Shared-time windows",
            short="shared_win",
        ),
        Field(
            "registration",
            FieldType.TEXT,
            "备案状态",
            "Registration",
            codes(
                ("registered", "已备案", "Registered"),
                ("pending", "备案中", "Pending"),
                ("unregistered", "未备案", "Unregistered"),
            ),
            required=True,
            indexed=True,
            short="reg_status",
        ),
        Field("operator", FieldType.TEXT, "经营单位", "Operator"),
        _area(),
    ),
    editable_by=frozenset({Role.ADMIN}),
    style=Style("#1e8449", "#52be80", 0.4, 1.5),
    popup_fields=("name", "category", "spaces", "shared_windows", "registration"),
    area_field="area_m2",
    counted_per_grid=True,
)

CASE_STATUSES = codes(
    ("unverified", "待核实", "Awaiting on-site verification"),
    ("reported", "上报", "Reported"),
    ("registered", "立案", "Registered"),
    ("rejected", "不予立案", "Not registered"),
    ("dispatched", "派遣", "Dispatched"),
    ("handled", "处置", "Handled"),
    ("feedback", "反馈", "Fed back"),
    ("verified", "核查", "Verified"),
    ("closed", "结案", "Closed"),
    ("returned", "退回", "Returned"),
    ("rework", "返工", "Rework"),
    ("parked", "挂账", "Parked"),
    ("cancelled", "作废", "Cancelled"),
)

CASE_FINAL_STATUSES = ("closed", "rejected", "cancelled")  # a case in these is no longer open
COMPONENT_PROBLEMS = codes(
    ("damaged", "破损", "Damaged"),
    ("lost", "丢失", "Lost"),
    ("displaced", "移位倾斜", "Displaced or tilted"),
    ("soiled", "污损", "Soiled"),
    ("occupied", "被占用", "Occupied"),
    ("other", "其他", "Other"),
)
ROUTED_BY = codes(
    ("component", "部件养护单位", "Component maintainer"),
    ("rule", "派遣规则", "Routing rule"),
    ("territory", "属地兜底", "Grid's responsible unit"),
    ("dispatcher", "人工指定", "Chosen by the dispatcher"),
)
CALLBACK_RESULTS = codes(
    ("satisfied", "满意", "Satisfied"),
    ("unsatisfied", "不满意", "Unsatisfied"),
    ("unreachable", "联系不上", "Unreachable"),
)

CASES = Layer(
    id="cases",
    title_zh="城管案件",
    title_en="Cases",
    geometry=GeometryKind.POINT,
    fields=(
        Field(
            "category_code",
            FieldType.TEXT,
            "案件类别",
            "Category",
            required=True,
            indexed=True,
            references="case_categories.code",
            short="category",
        ),
        Field(
            "source",
            FieldType.TEXT,
            "案件来源",
            "Source",
            codes(
                ("inspector", "监督员上报", "Inspector"),
                ("public", "公众举报", "Public report"),
                ("hotline", "12345热线", "12345 hotline"),
                ("video", "视频监控", "Video"),
                ("patrol", "执法巡查", "Enforcement patrol"),
                ("vehicle", "车辆定位报警", "Vehicle tracking alarm"),
            ),
            required=True,
            indexed=True,
        ),
        Field(
            "status",
            FieldType.TEXT,
            "案件状态",
            "Status",
            CASE_STATUSES,
            required=True,
            indexed=True,
        ),
        Field("description", FieldType.TEXT, "问题描述", "Description", short="descr"),
        Field("address", FieldType.TEXT, "地址", "Address"),
        Field(
            "reported_at",
            FieldType.TIMESTAMP,
            "上报时间",
            "Reported at",
            required=True,
            indexed=True,
            short="reported",
        ),
        Field(
            "registered_at", FieldType.TIMESTAMP, "立案时间", "Registered at", short="registered"
        ),
        Field(
            "dispatched_at", FieldType.TIMESTAMP, "派遣时间", "Dispatched at", short="dispatched"
        ),
        Field("handled_at", FieldType.TIMESTAMP, "处置时间", "Handled at"),
        Field("feedback_at", FieldType.TIMESTAMP, "反馈时间", "Fed back at", short="feedback"),
        Field("verified_at", FieldType.TIMESTAMP, "核查时间", "Verified at", short="verified"),
        Field("closed_at", FieldType.TIMESTAMP, "结案时间", "Closed at", indexed=True),
        Field("deadline", FieldType.TIMESTAMP, "处置时限", "Deadline", indexed=True),
        Field(
            "grid_code",
            FieldType.TEXT,
            "所属网格",
            "Grid",
            indexed=True,
            pattern=r"^[0-9]{15}$",
        ),
        Field(
            "unit", FieldType.TEXT, "处置单位", "Handling unit", indexed=True, handling_unit=True
        ),
        Field(
            "component_code",
            FieldType.TEXT,
            "部件标识码",
            "Component ID",
            indexed=True,
            pattern=r"^[0-9]{16}$",
            short="comp_code",
        ),
        Field("problem", FieldType.TEXT, "部件问题", "Component problem", COMPONENT_PROBLEMS),
        # the registered things a case is about or was seen by, each of the case's county
        Field(
            "camera_id",
            FieldType.INTEGER,
            "发现视频点位",
            "Seen by camera",
            indexed=True,
            references="cameras.id",
            short="camera",
        ),
        Field(
            "merchant_id",
            FieldType.INTEGER,
            "涉及门前三包商户",
            "Merchant concerned",
            indexed=True,
            references="merchants.id",
            short="merchant",
        ),
        Field(
            "garbage_point_id",
            FieldType.INTEGER,
            "涉及垃圾分类投放点",
            "Garbage-sorting point concerned",
            indexed=True,
            references="garbage_points.id",
            short="garb_point",
        ),
        Field(
            "routed_by",
            FieldType.TEXT,
            "派遣依据",
            "Routed by",
            ROUTED_BY,
            derived=True,  # set by routing on write and by an override on dispatch
        ),
        Field(
            "external_ref",
            FieldType.TEXT,
            "原系统案件编号",
            "Case number in the former system",
            derived=True,  # set only by `import cases`, where it is unique in its county
            short="ext_ref",
        ),
        # the steps beyond the main line (核实, 作废/合并, 延期, 督办, 回访, 自行处置), set by moves only
        Field(
            "verify_deadline",
            FieldType.TIMESTAMP,
            "核实时限",
            "Verify by",
            derived=True,
            short="verify_by",
        ),
        Field(
            "confirmed_at",
            FieldType.TIMESTAMP,
            "核实时间",
            "Verified on site at",
            derived=True,
            short="confirmed",
        ),
        Field(
            "merged_into",
            FieldType.INTEGER,
            "合并至案件",
            "Merged into case",
            derived=True,
            short="merged_to",
        ),
        Field(
            "extension_asked",
            FieldType.INTEGER,
            "申请延期工作日",
            "Extension asked (working days)",
            derived=True,
            short="ext_asked",
        ),
        Field("extensions", FieldType.INTEGER, "延期次数", "Extensions granted", derived=True),
        Field(
            "supervisions",
            FieldType.INTEGER,
            "督办次数",
            "Times supervised",
            derived=True,
            short="supervised",
        ),
        Field(
            "supervise_deadline",
            FieldType.TIMESTAMP,
            "督办时限",
            "Supervision deadline",
            derived=True,
            short="sup_by",
        ),
        Field(
            "callback_result",
            FieldType.TEXT,
            "回访结果",
            "Callback result",
            CALLBACK_RESULTS,
            derived=True,
            short="callback",
        ),
        Field(
            "self_handled",
            FieldType.BOOLEAN,
            "自行处置",
            "Fixed on the spot",
            derived=True,
            short="self_fixed",
        ),
    ),
    unique_in_county=("external_ref",),
    # cases are reported through POST /cases, which sets their status and time itself
    style=Style("#d35400", "#e67e22", 0.8, 1.0),
    popup_fields=("category_code", "status", "source", "reported_at", "deadline", "address"),
    temporal=("reported_at",),
    cluster_below_zoom=15,
    binned=True,
    scope=ReadScope(unit_field="unit"),
    placed_in_grid=GridPlacement(),
    file_import=FileImport.CASE_HISTORY,
    routed=CaseRouting(),
)

COMPONENT_STATUSES = codes(
    ("intact", "完好", "Intact"),
    ("damaged", "破损", "Damaged"),
    ("lost", "丢失", "Lost"),
    ("abandoned", "废弃", "Abandoned"),
    ("removed", "移除", "Removed"),
)


def _unit_field(name: str, label_zh: str, label_en: str, short: str) -> Field:
    """A unit of the directory responsible for a component (checked as a handling unit)."""
    return Field(
        name, FieldType.TEXT, label_zh, label_en, indexed=True, short=short, handling_unit=True
    )


def _component_layer(
    layer_id: str,
    title_zh: str,
    title_en: str,
    geometry: GeometryKind,
    measure: tuple[Field, ...] = (),
    **capabilities: Any,
) -> Layer:
    """One layer of the component inventory (部件普查, GB/T 30428.2): the standard attributes,
    versions, placement and ID scheme shared by the points, lines and areas; a subclass's
    catalogue geometry says which of them holds its components."""
    return Layer(
        id=layer_id,
        title_zh=title_zh,
        title_en=title_en,
        geometry=geometry,
        fields=_COMPONENT_FIELDS + measure,
        # the inventory is the bureau's asset register, kept by its data staff (admin) from
        # censuses; planners draw grids, inspectors report problems as cases and read
        # components in their area
        editable_by=frozenset({Role.ADMIN}),
        popup_fields=(
            "component_code",
            "subclass_code",
            "name",
            "status",
            "owner_unit",
            "maintainer_unit",
            *(f.name for f in measure),
        ),
        temporal=("valid_from", "valid_to"),
        natural_key="component_code",
        unique_in_county=("component_code",),
        versioned=Versioning(kept_on_edit=True, retired=("status", "removed")),
        placed_in_grid=GridPlacement(
            unit_field=None, community_field="community", street_field="street"
        ),
        id_scheme=IdScheme(),
        **capabilities,
    )


_COMPONENT_FIELDS = (
    Field(
        "component_code",
        FieldType.TEXT,
        "部件标识码",
        "Component ID",
        indexed=True,
        short="comp_code",
        column_names=("部件编码", "标识码", "部件标识"),
    ),
    Field(
        "subclass_code",
        FieldType.TEXT,
        "小类代码",
        "Subclass",
        required=True,
        indexed=True,
        references="case_categories.code",
        short="subclass",
        column_names=("小类名称", "部件小类", "小类", "部件类型"),
    ),
    Field("name", FieldType.TEXT, "部件名称", "Name"),
    Field(
        "status",
        FieldType.TEXT,
        "状态",
        "Status",
        COMPONENT_STATUSES,
        required=True,
        indexed=True,
        column_names=("部件状态",),
    ),
    _unit_field("department", "主管部门", "Competent department", "department"),
    _unit_field("owner_unit", "权属单位", "Owner", "owner_unit"),
    _unit_field("maintainer_unit", "养护单位", "Maintainer", "maint_unit"),
    Field(
        "grid_code",
        FieldType.TEXT,
        "所属单元网格",
        "Unit grid",
        indexed=True,
        derived=True,
        pattern=r"^[0-9]{15}$",
    ),
    Field("community", FieldType.TEXT, "所属社区", "Community", derived=True),
    Field("street", FieldType.TEXT, "所属街道", "Street", derived=True),
    Field(
        "first_surveyed_on",
        FieldType.DATE,
        "初始日期",
        "First surveyed on",
        short="surveyed",
        column_names=("普查日期",),
    ),
    Field("changed_on", FieldType.DATE, "变更日期", "Changed on", indexed=True),
    Field(
        "data_source",
        FieldType.TEXT,
        "数据来源",
        "Data source",
        codes(
            ("census", "普查", "Census"),
            ("update", "更新", "Update"),
            ("inspector", "巡查上报", "Inspector report"),
            ("other", "其他", "Other"),
        ),
        short="source",
    ),
    Field(
        "accuracy",
        FieldType.TEXT,
        "定位精度",
        "Location accuracy",
        codes(
            ("0.5m", "≤0.5米", "≤ 0.5 m"),
            ("1m", "≤1米", "≤ 1 m"),
            ("5m", "≤5米", "≤ 5 m"),
            ("unknown", "未知", "Unknown"),
        ),
    ),
    Field("remark", FieldType.TEXT, "备注", "Remark"),
    Field("valid_from", FieldType.DATE, "版本生效日期", "Valid from", indexed=True, derived=True),
    Field("valid_to", FieldType.DATE, "版本失效日期", "Valid to", indexed=True, derived=True),
)

COMPONENTS = _component_layer(
    "components",
    "城市管理部件",
    "City-management components",
    GeometryKind.POINT,
    style=Style("#5d6d7e", "#85929e", 0.9, 1.0),
    cluster_below_zoom=16,
)
COMPONENT_LINES = _component_layer(
    "component_lines",
    "线状部件",
    "Linear components",
    GeometryKind.MULTILINESTRING,
    (length(),),
    style=Style("#6c3483", "#6c3483", 0.0, 3.0),
    length_field="length_m",
)
COMPONENT_AREAS = _component_layer(
    "component_areas",
    "面状部件",
    "Areal components",
    GeometryKind.MULTIPOLYGON,
    (_area(),),
    style=Style("#1e8449", "#52be80", 0.25, 1.5),
    area_field="area_m2",
)
# the layers sharing the component ID scheme, one per catalogue geometry (point, line, area)
COMPONENT_LAYERS = (COMPONENTS, COMPONENT_LINES, COMPONENT_AREAS)

# Opening hours as the bureaus post them: one or more HH:MM-HH:MM periods, comma-separated
_PERIOD = r"([01][0-9]|2[0-4]):[0-5][0-9]-([01][0-9]|2[0-4]):[0-5][0-9]"
HOURS_PATTERN = rf"^{_PERIOD}(,{_PERIOD})*$"


def _hours(label_zh: str = "开放时间") -> Field:
    """Opening hours, e.g. 07:00-09:00,18:00-20:00."""
    return Field(
        "opening_hours",
        FieldType.TEXT,
        label_zh,
        "Opening hours",
        pattern=HOURS_PATTERN,
        short="open_hours",
    )


RESIDENTIAL_COMPOUNDS = Layer(
    id="residential_compounds",
    title_zh="居民小区",
    title_en="Residential compounds",
    geometry=GeometryKind.MULTIPOLYGON,
    fields=(
        Field("name", FieldType.TEXT, "小区名称", "Name", required=True, indexed=True),
        Field("address", FieldType.TEXT, "地址", "Address"),
        Field(
            "households",
            FieldType.INTEGER,
            "户数",
            "Households",
            minimum=0,
            maximum=50_000,
        ),
        Field(
            "property_manager",
            FieldType.TEXT,
            "物业服务企业",
            "Property manager",
            short="prop_mgr",
        ),
        Field(
            "sorting_coverage",
            FieldType.INTEGER,
            "垃圾分类覆盖率(%)",
            "Waste-sorting coverage (%)",
            minimum=0,
            maximum=100,
            short="sort_cover",
        ),
        Field(
            "certification",
            FieldType.TEXT,
            "创建称号",
            "Certification",
            codes(
                ("none", "未创建", "None"),
                ("no_illegal_building", "无违建小区", "Free of illegal buildings"),
                ("sorting_model", "垃圾分类示范小区", "Model waste-sorting compound"),
                ("model_property", "物业管理示范小区", "Model property management"),
                ("civilised", "文明小区", "Civilised compound"),
            ),
            indexed=True,
            short="certif",
        ),
        _area("占地面积(㎡)"),
    ),
    # the compounds register is kept by the bureau's data staff, like the other registers
    editable_by=frozenset({Role.ADMIN}),
    style=Style("#117864", "#48c9b0", 0.25, 1.5),
    popup_fields=(
        "name",
        "households",
        "property_manager",
        "sorting_coverage",
        "certification",
        "area_m2",
    ),
    area_field="area_m2",
    natural_key="name",
)

GARBAGE_POINTS = Layer(
    id="garbage_points",
    title_zh="垃圾分类投放点",
    title_en="Garbage-sorting points",
    geometry=GeometryKind.POINT,
    fields=(
        Field("name", FieldType.TEXT, "名称", "Name", required=True),
        Field(
            "compound_id",
            FieldType.INTEGER,
            "所属小区",
            "Compound",
            indexed=True,
            references="residential_compounds.id",
            short="compound",
        ),
        Field(
            "kind",
            FieldType.TEXT,
            "设施类型",
            "Kind",
            codes(
                ("sorting_point", "分类投放点", "Sorting point"),
                ("sorting_room", "分类房", "Sorting room"),
                ("transfer", "中转站", "Transfer station"),
            ),
            required=True,
            indexed=True,
        ),
        Field(
            "build_status",
            FieldType.TEXT,
            "建设进度",
            "Build status",
            # in the order a point goes through them (撤桶并点: planned, built, connected, in use)
            codes(
                ("planned", "规划", "Planned"),
                ("building", "在建", "Under construction"),
                ("built", "已建成", "Built"),
                ("connected", "水电已接通", "Water and power connected"),
                ("in_service", "投用", "In service"),
            ),
            required=True,
            indexed=True,
            short="build_stat",
        ),
        Field("supervisor", FieldType.TEXT, "督导员", "Supervisor"),
        _hours("投放时间"),
        Field(
            "in_service_on",
            FieldType.DATE,
            "投用日期",
            "In service since",
            indexed=True,
            short="in_service",
        ),
    ),
    editable_by=frozenset({Role.ADMIN}),
    # the inspector who walks the compound reports how far its point has got
    inspector_updates=("build_status",),
    style=Style("#7d6608", "#f4d03f", 0.9, 1.0),
    popup_fields=("name", "kind", "build_status", "supervisor", "opening_hours", "in_service_on"),
    temporal=("in_service_on",),
    cluster_below_zoom=15,
)

STATIONS = Layer(
    id="stations",
    title_zh="城管驿站",
    title_en="Service stations",
    geometry=GeometryKind.POINT,
    fields=(
        Field("name", FieldType.TEXT, "驿站名称", "Name", required=True),
        Field("address", FieldType.TEXT, "地址", "Address"),
        Field("staff", FieldType.TEXT, "人员公示", "Staff on display"),
        Field("duties", FieldType.TEXT, "职责清单", "Duties"),
        _hours(),
        Field("phone", FieldType.TEXT, "服务电话", "Phone"),
    ),
    editable_by=frozenset({Role.ADMIN}),
    style=Style("#1a5276", "#5dade2", 0.9, 2.0),
    popup_fields=("name", "address", "staff", "duties", "opening_hours", "phone"),
    natural_key="name",
)

# GB/T 28181-2022 §E: centre code (8: county 6 + unit 2), industry (2), type (3: 131 camera,
# 132 IP camera), network (1), serial (6)
CAMERA_ID_PATTERN = r"^[0-9]{10}13[12][0-9]{7}$"

CAMERAS = Layer(
    id="cameras",
    title_zh="视频监控点位",
    title_en="Cameras",
    geometry=GeometryKind.POINT,
    fields=(
        Field(
            "device_id",
            FieldType.TEXT,
            "设备编码(GB/T 28181)",
            "Device ID (GB/T 28181)",
            required=True,
            indexed=True,
            pattern=CAMERA_ID_PATTERN,
            column_names=("设备编码", "国标编码"),
        ),
        Field("name", FieldType.TEXT, "点位名称", "Name"),
        Field(
            "source",
            FieldType.TEXT,
            "来源部门",
            "Source department",
            codes(
                ("comprehensive", "综治", "Comprehensive governance"),
                ("police", "公安", "Public security"),
                ("greenway", "绿道", "Greenway"),
                ("urban_management", "城管", "Urban management"),
                ("traffic", "交警", "Traffic police"),
                ("other", "其他", "Other"),
            ),
            required=True,
            indexed=True,
        ),
        Field(
            "direction_deg",
            FieldType.REAL,
            "朝向(度)",
            "Direction (°)",
            minimum=0,
            maximum=360,
            short="direction",
        ),
        Field(
            "view_angle_deg",
            FieldType.REAL,
            "视场角(度)",
            "Field of view (°)",
            minimum=1,
            maximum=360,
            short="view_angle",
        ),
        Field(
            "view_range_m",
            FieldType.REAL,
            "可视距离(米)",
            "Viewing range (m)",
            minimum=1,
            maximum=1_000,
            short="range_m",
        ),
        Field(
            "status",
            FieldType.TEXT,
            "运行状态",
            "Status",
            codes(
                ("online", "在线", "Online"),
                ("offline", "离线", "Offline"),
                ("fault", "故障", "Faulty"),
            ),
            indexed=True,
        ),
        Field("installed_on", FieldType.DATE, "安装日期", "Installed on", short="installed"),
    ),
    editable_by=frozenset({Role.ADMIN}),
    style=Style("#4a235a", "#af7ac5", 0.35, 1.0),
    popup_fields=(
        "name",
        "device_id",
        "source",
        "status",
        "direction_deg",
        "view_angle_deg",
        "view_range_m",
    ),
    natural_key="device_id",
    unique_in_county=("device_id",),
    sector=Sector(),
    cluster_below_zoom=15,  # a county has thousands: counted cells until the sectors can be read
)

BIKE_PARKING_POINTS = Layer(
    id="bike_parking_points",
    title_zh="共享电动自行车投放点",
    title_en="Shared e-bike parking points",
    geometry=GeometryKind.POINT,
    fields=(
        Field("name", FieldType.TEXT, "点位名称", "Name"),
        Field("road", FieldType.TEXT, "所在道路", "Road", indexed=True),
        Field(
            "capacity",
            FieldType.INTEGER,
            "容量(辆)",
            "Capacity (bikes)",
            required=True,
            minimum=1,
            maximum=1_000,
        ),
        Field("operator", FieldType.TEXT, "运营企业", "Operator"),
    ),
    editable_by=frozenset({Role.ADMIN}),
    style=Style("#0e6655", "#1abc9c", 0.9, 1.0),
    popup_fields=("name", "road", "capacity", "operator"),
    cluster_below_zoom=15,
)

BIKE_PARKING_LINES = Layer(
    id="bike_parking_lines",
    title_zh="非机动车停车线",
    title_en="Non-motor-vehicle parking lines",
    geometry=GeometryKind.LINESTRING,
    fields=(
        Field("road", FieldType.TEXT, "所在道路", "Road", indexed=True),
        Field("painted_on", FieldType.DATE, "施划日期", "Painted on", indexed=True),
        length("施划长度(米)"),
    ),
    editable_by=frozenset({Role.ADMIN}),
    style=Style("#148f77", "#148f77", 0.0, 3.0),
    popup_fields=("road", "painted_on", "length_m"),
    length_field="length_m",
    temporal=("painted_on",),
)
MERCHANT_RATINGS = codes(
    ("green", "绿色", "Green"),
    ("yellow", "黄色", "Yellow"),
    ("red", "红色", "Red"),
)

# 门前三包: the shops answering for the pavement in front of them. Their rating (红黄绿三色管理)
# is written by the database from their cases and inspections (migration 0029, README).
MERCHANTS = Layer(
    id="merchants",
    title_zh="门前三包商户",
    title_en="Frontage-duty merchants",
    geometry=GeometryKind.POINT,
    fields=(
        Field("name", FieldType.TEXT, "商户名称", "Name", required=True, indexed=True),
        Field("address", FieldType.TEXT, "地址", "Address"),
        Field("frontage", FieldType.TEXT, "责任区域", "Responsibility frontage"),
        Field(
            "frontage_m",
            FieldType.REAL,
            "责任区长度(米)",
            "Frontage length (m)",
            minimum=1,
            maximum=500,
        ),
        Field("contact", FieldType.TEXT, "联系人", "Contact"),
        Field("contact_phone", FieldType.TEXT, "联系电话", "Contact phone", short="phone"),
        Field("grid_code", FieldType.TEXT, "所在网格", "Grid", indexed=True, derived=True),
        Field("unit", FieldType.TEXT, "责任单位", "Responsible unit", derived=True),
        Field("inspector", FieldType.TEXT, "责任监督员", "Responsible inspector", derived=True),
        Field(
            "rating",
            FieldType.TEXT,
            "三色评级",
            "Rating",
            MERCHANT_RATINGS,
            indexed=True,
            derived=True,
        ),
        Field(
            "card_token",
            FieldType.TEXT,
            "责任牌令牌",
            "Card token",
            indexed=True,
            derived=True,  # 122 random bits from the database: the card's address, not the id
        ),
    ),
    editable_by=frozenset({Role.ADMIN}),
    style=Style("#b9770e", "#f5b041", 0.9, 1.0),
    popup_fields=("name", "address", "frontage", "frontage_m", "inspector", "rating"),
    placed_in_grid=GridPlacement(),
    cluster_below_zoom=15,
)

# an inspector's check of a merchant's frontage (门前三包检查): a failed one weighs on the rating
MERCHANT_INSPECTIONS = Layer(
    id="merchant_inspections",
    title_zh="门前三包检查记录",
    title_en="Frontage-duty inspections",
    parent="merchants",
    fields=(
        Field(
            "inspected_on",
            FieldType.DATE,
            "检查日期",
            "Inspected on",
            required=True,
            indexed=True,
            short="inspected",
        ),
        Field("inspector", FieldType.TEXT, "检查人", "Inspector", required=True),
        Field(
            "result",
            FieldType.TEXT,
            "检查结果",
            "Result",
            codes(("pass", "合格", "Passed"), ("fail", "不合格", "Failed")),
            required=True,
            indexed=True,
        ),
        Field("problems", FieldType.TEXT, "问题描述", "Problems"),
    ),
    inspector_creates=True,
    temporal=("inspected_on",),
)
MERCHANT_LAYERS = (MERCHANTS, MERCHANT_INSPECTIONS)

# the bureaus' other systems of their reports, one layer each
SYSTEM_LAYERS = (
    RESIDENTIAL_COMPOUNDS,
    GARBAGE_POINTS,
    STATIONS,
    CAMERAS,
    BIKE_PARKING_POINTS,
    BIKE_PARKING_LINES,
)

PURIFIER_TYPES = codes(
    ("electrostatic", "静电式", "Electrostatic"),
    ("mechanical", "机械式", "Mechanical"),
    ("composite", "复合式", "Composite"),
    ("uv", "UV光解式", "UV photolysis"),
    ("none", "未安装", "None"),
)

# Restaurants whose fume purifiers report to the online monitoring platform (油烟在线监控); their
# hourly readings are kept in `fume_readings` (layers/fume), too many rows for a layer table.
RESTAURANTS = Layer(
    id="restaurants",
    title_zh="餐饮油烟监控单位",
    title_en="Restaurants under fume monitoring",
    geometry=GeometryKind.POINT,
    fields=(
        Field("name", FieldType.TEXT, "店名", "Name", required=True, indexed=True),
        Field("address", FieldType.TEXT, "地址", "Address"),
        Field("seats", FieldType.INTEGER, "餐位数", "Seats", minimum=0, maximum=10_000),
        Field(
            "purifier_type",
            FieldType.TEXT,
            "净化器类型",
            "Purifier type",
            PURIFIER_TYPES,
            required=True,
            indexed=True,
            short="purifier",
        ),
        Field("cleaned_on", FieldType.DATE, "最近清洗日期", "Last cleaned on", short="cleaned_on"),
        Field(
            "device_id",
            FieldType.TEXT,
            "监控设备编号",
            "Monitoring device ID",
            required=True,
            indexed=True,
            pattern="^[0-9A-Za-z-]{4,32}$",
            column_names=("设备编号",),
        ),
        Field(
            "operator_contact",
            FieldType.TEXT,
            "经营者联系方式",
            "Operator contact",
            short="contact",
        ),
        Field(
            "grid_code",
            FieldType.TEXT,
            "所属单元网格",
            "Unit grid",
            indexed=True,
            derived=True,
            pattern=r"^[0-9]{15}$",
        ),
        Field("community", FieldType.TEXT, "所属社区", "Community", derived=True),
        Field("street", FieldType.TEXT, "所属街道", "Street", derived=True, indexed=True),
    ),
    # the last cleaning changes by an inspector's check (fume_checks) or by the register's keepers
    editable_by=frozenset({Role.ADMIN}),
    style=Style("#922b21", "#ec7063", 0.9, 1.0),
    # the operator's contact stays in the register, off the maps
    popup_fields=("name", "address", "seats", "purifier_type", "cleaned_on", "device_id"),
    natural_key="device_id",
    unique_in_county=("device_id",),
    placed_in_grid=GridPlacement(
        unit_field=None, community_field="community", street_field="street"
    ),
    cluster_below_zoom=15,
)
# An inspector's check of a restaurant's purifier (油烟检查): the cleaning date it records
# becomes the restaurant's last cleaning (a trigger of migration 0029), never older than it was.
FUME_CHECKS = Layer(
    id="fume_checks",
    title_zh="油烟检查记录",
    title_en="Fume checks",
    parent="restaurants",
    fields=(
        Field("checked_on", FieldType.DATE, "检查日期", "Checked on", required=True, indexed=True),
        Field("inspector", FieldType.TEXT, "检查人", "Inspector", required=True),
        Field(
            "purifier_running",
            FieldType.BOOLEAN,
            "净化器正常运行",
            "Purifier running",
            short="purifier",
        ),
        Field("cleaned_on", FieldType.DATE, "清洗记录日期", "Cleaned on", short="cleaned_on"),
        Field("problems", FieldType.TEXT, "问题描述", "Problems"),
    ),
    inspector_creates=True,
    temporal=("checked_on",),
)
# online fume monitoring: the restaurants and their checks (the readings are not a layer)
FUME_LAYERS = (RESTAURANTS, FUME_CHECKS)

VEHICLE_KINDS = codes(
    ("muck", "渣土车", "Muck truck"),
    ("sanitation", "环卫车", "Sanitation vehicle"),
    ("kitchen_waste", "餐厨垃圾车", "Kitchen-waste truck"),
    ("enforcement", "执法车", "Enforcement vehicle"),
)

# The fleets a bureau watches: the command centre (dispatchers) keeps them with the admins. The
# point is where the vehicle is kept overnight (停放点), which muck-truck permits name.
VEHICLES = Layer(
    id="vehicles",
    title_zh="车辆",
    title_en="Vehicles",
    geometry=GeometryKind.POINT,
    fields=(
        Field("plate", FieldType.TEXT, "车牌号", "Plate", required=True, indexed=True),
        Field("company", FieldType.TEXT, "所属单位", "Company", indexed=True),
        Field(
            "kind", FieldType.TEXT, "车辆类型", "Kind", VEHICLE_KINDS, required=True, indexed=True
        ),
        Field(
            "terminal_phone",
            FieldType.TEXT,
            "终端手机号",
            "Terminal number",
            indexed=True,
            pattern="^[1-9][0-9]{0,19}$",
            short="terminal",
        ),
        Field("permit_no", FieldType.TEXT, "核准证号", "Permit number", short="permit_no"),
        Field(
            "permit_from",
            FieldType.DATE,
            "核准证起始日期",
            "Permit valid from",
            short="permit_fr",
        ),
        Field("permit_to", FieldType.DATE, "核准证截止日期", "Permit valid to"),
        Field(
            "time_windows",
            FieldType.TEXT,
            "准运时段",
            "Allowed time windows",
            pattern=HOURS_PATTERN,
            short="windows",
        ),
        Field("route", FieldType.TEXT, "核准路线", "Approved route"),
    ),
    editable_by=frozenset({Role.ADMIN, Role.DISPATCHER}),
    style=Style("#7d3c98", "#a569bd", 0.8, 1.5),
    popup_fields=("plate", "company", "kind", "permit_no", "permit_to"),
    natural_key="plate",
    unique_in_county=("plate",),
)

GEOFENCE_KINDS = codes(
    ("site", "工地", "Construction site"),
    ("yard", "消纳场", "Disposal yard"),
    ("no_go", "禁行区", "No-go zone"),
    ("strict_street", "严管街", "Strict street"),
    ("corridor", "路线走廊", "Route corridor"),
)

# Areas the tracking alarms test positions against. A route corridor applies to the vehicle it
# names, else to every vehicle of its company; it complements the vehicles' text `route`, which
# stays the permit's wording. Planners draw them with the sites they plan.
GEOFENCES = Layer(
    id="geofences",
    title_zh="电子围栏",
    title_en="Geofences",
    geometry=GeometryKind.MULTIPOLYGON,
    fields=(
        Field("name", FieldType.TEXT, "围栏名称", "Name", required=True),
        Field(
            "kind", FieldType.TEXT, "围栏类型", "Kind", GEOFENCE_KINDS, required=True, indexed=True
        ),
        Field(
            "vehicle_id",
            FieldType.INTEGER,
            "适用车辆",
            "Vehicle",
            indexed=True,
            references="vehicles.id",
            short="vehicle",
        ),
        Field("company", FieldType.TEXT, "适用单位", "Company", indexed=True),
        Field(
            "time_windows",
            FieldType.TEXT,
            "生效时段",
            "Active time windows",
            pattern=HOURS_PATTERN,
            short="windows",
        ),
    ),
    editable_by=frozenset({Role.ADMIN, Role.PLANNER}),
    style=Style("#b03a2e", "#f1948a", 0.2, 1.5),
    popup_fields=("name", "kind", "company", "time_windows"),
)

ROAD_CLASSES = codes(
    ("trunk", "主干路", "Trunk road"),
    ("secondary", "次干路", "Secondary road"),
    ("branch", "支路", "Branch road"),
)

# 道路路段: the streets split at their junctions, each kept clean by a sanitation vehicle (the
# sweeping coverage counts its track over them) and walked by the inspectors of the grids they
# cross (the streets-passed share of presence, README "Presence and coverage").
ROAD_SEGMENTS = Layer(
    id="road_segments",
    title_zh="道路路段",
    title_en="Road segments",
    geometry=GeometryKind.LINESTRING,
    fields=(
        Field("name", FieldType.TEXT, "路段名称", "Name", required=True),
        Field("road", FieldType.TEXT, "道路名称", "Road", required=True, indexed=True),
        Field("road_class", FieldType.TEXT, "道路等级", "Road class", ROAD_CLASSES, short="class"),
        length("路段长度(米)"),
        Field(
            "sweeper_vehicle_id",
            FieldType.INTEGER,
            "保洁车辆",
            "Sweeping vehicle",
            indexed=True,
            references="vehicles.id",
            short="sweeper",
        ),
        Field("sweeping_unit", FieldType.TEXT, "保洁单位", "Sweeping unit", short="sweep_unit"),
    ),
    editable_by=frozenset({Role.ADMIN, Role.PLANNER}),
    style=Style("#5d6d7e", "#5d6d7e", 0.0, 2.5),
    popup_fields=("name", "road", "road_class", "length_m", "sweeping_unit"),
    length_field="length_m",
)

LAYERS: dict[str, Layer] = {
    layer.id: layer
    for layer in (
        GRIDS,
        ILLEGAL_BUILDINGS,
        BILLBOARDS,
        DUST_SITES,
        DUST_INSPECTIONS,
        WORK_ORDERS,
        PARKING_LOTS,
        CASES,
        *COMPONENT_LAYERS,
        *SYSTEM_LAYERS,
        *MERCHANT_LAYERS,
        *FUME_LAYERS,
        VEHICLES,
        GEOFENCES,
        ROAD_SEGMENTS,
    )
}


def register(layer: Layer) -> None:
    """Add a layer after import (a layer declared outside this module, e.g. by a test); every
    reader looks the registry up when called, so the layer is served from then on."""
    if layer.id in LAYERS:
        raise ValueError(f"layer {layer.id} is already declared")
    LAYERS[layer.id] = layer


def unregister(layer_id: str) -> None:
    """Remove a layer added by `register`."""
    LAYERS.pop(layer_id, None)


def spatial_layers() -> list[Layer]:
    """Layers that carry a geometry, in declaration order."""
    return [layer for layer in LAYERS.values() if layer.geometry is not None]
