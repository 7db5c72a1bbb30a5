"""SQLAlchemy tables built from the layer registry (the schema the migrations must match)."""

from __future__ import annotations

from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    REAL,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Connection,
    Date,
    Double,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP
from sqlalchemy.types import DateTime

from layers.registry import CASES, LAYERS, STORAGE_SRID, Field, FieldType, IdScheme, Layer, Role
from layers.store.versions import is_current

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

_SQL_TYPES: dict[FieldType, Any] = {
    FieldType.TEXT: Text,
    FieldType.INTEGER: Integer,
    FieldType.REAL: Double,
    FieldType.DATE: Date,
    FieldType.TIMESTAMP: TIMESTAMP(timezone=True, precision=0),  # whole seconds, as clients expect
    FieldType.BOOLEAN: Boolean,
}

case_category_classes = Table(
    "case_category_classes",
    metadata,
    Column("kind", Text, primary_key=True, comment="事件 event / 部件 component"),
    Column("code", String(2), primary_key=True, comment="大类代码"),
    Column("name", Text, nullable=False, comment="大类名称"),
    Column("local", Boolean, nullable=False, server_default=text("false"), comment="扩展大类"),
    CheckConstraint("kind IN ('event', 'component')", name="kind"),
    CheckConstraint("code ~ '^[0-9]{2}$'", name="code_format"),
    CheckConstraint("length(name) BETWEEN 1 AND 100", name="name_format"),
    comment="管理部件和事件的大类",
)

case_categories = Table(
    "case_categories",
    metadata,
    Column("code", String(5), primary_key=True),
    Column("kind", Text, nullable=False),
    Column("major_code", String(2), nullable=False),
    Column("major_name", Text, nullable=False),
    Column("minor_name", Text, nullable=False),
    Column("time_limit", Integer, nullable=False),
    Column("time_unit", Text, nullable=False),
    Column("urgent_limit", Integer, nullable=True, comment="紧急时限（与处置时限同单位）"),
    Column("register_criteria", Text, nullable=False, server_default="", comment="立案标准"),
    Column("close_criteria", Text, nullable=False, server_default="", comment="结案标准"),
    Column("department", Text, nullable=False, server_default="", comment="默认责任部门"),
    Column("local", Boolean, nullable=False, server_default=text("false"), comment="本地扩展小类"),
    Column(
        "adcode",
        String(6),
        ForeignKey("counties.adcode", ondelete="CASCADE"),
        nullable=True,
        index=True,
        comment="扩展小类所属县级行政区（标准小类为空）",
    ),
    Column("geometry", Text, nullable=True, comment="部件几何类型（点/线/面）"),
    CheckConstraint("code ~ '^[EC][0-9]{4}$'", name="code_format"),
    CheckConstraint("geometry IN ('point', 'line', 'area')", name="geometry"),
    CheckConstraint("(kind = 'component') = (geometry IS NOT NULL)", name="geometry_kind"),
    CheckConstraint("(kind = 'event') = (code LIKE 'E%')", name="code_kind"),
    CheckConstraint("kind IN ('event', 'component')", name="kind"),
    CheckConstraint("time_unit IN ('working_hours', 'working_days')", name="time_unit"),
    CheckConstraint("time_limit > 0", name="time_limit"),
    CheckConstraint("urgent_limit > 0", name="urgent_limit"),
    CheckConstraint("local = (adcode IS NOT NULL)", name="local_county"),
    CheckConstraint("major_code = substr(code, 2, 2)", name="major_code"),
    ForeignKeyConstraint(
        ["kind", "major_code"],
        ["case_category_classes.kind", "case_category_classes.code"],
        onupdate="CASCADE",
    ),
    comment="案件分类代码表 (大类/小类) with handling time limits",
)

case_category_edits = Table(
    "case_category_edits",
    metadata,
    Column(
        "adcode",
        String(6),
        ForeignKey("counties.adcode", ondelete="CASCADE"),
        primary_key=True,
        comment="县级行政区",
    ),
    Column(
        "code",
        String(5),
        ForeignKey("case_categories.code", onupdate="CASCADE", ondelete="CASCADE"),
        primary_key=True,
        comment="标准小类代码",
    ),
    Column("time_limit", Integer, nullable=False),
    Column("urgent_limit", Integer, nullable=True),
    Column("time_unit", Text, nullable=False),
    Column("register_criteria", Text, nullable=False),
    Column("close_criteria", Text, nullable=False),
    Column("department", Text, nullable=False),
    CheckConstraint("time_unit IN ('working_hours', 'working_days')", name="time_unit"),
    CheckConstraint("time_limit > 0", name="time_limit"),
    CheckConstraint("urgent_limit > 0", name="urgent_limit"),
    comment="县级对标准小类的本地修改（时限、标准、责任部门）",
)


case_category_aliases = Table(
    "case_category_aliases",
    metadata,
    Column("alias", Text, primary_key=True, comment="别名（原系统中的类别名称）"),
    Column(
        "category_code",
        String(5),
        ForeignKey("case_categories.code", onupdate="CASCADE", ondelete="CASCADE"),
        nullable=False,
        index=True,
        comment="案件类别",
    ),
    CheckConstraint(
        "alias = btrim(alias) AND length(alias) BETWEEN 1 AND 100", name="alias_format"
    ),
    comment="案件类别别名（导入原系统案件时按名称对应）",
)


counties = Table(
    "counties",
    metadata,
    Column("adcode", String(6), primary_key=True, comment="县级行政区划代码"),
    Column("name", Text, nullable=False, comment="名称"),
    Column(
        "boundary",
        Geometry("MULTIPOLYGON", srid=STORAGE_SRID, spatial_index=True),
        nullable=False,
        comment="官方行政区界（CGCS2000）",
    ),
    Column("gk_srid", SmallInteger, nullable=False, comment="高斯-克吕格投影带 EPSG"),
    Column(
        "centre",
        Geometry("POINT", srid=STORAGE_SRID, spatial_index=False),
        nullable=False,
        comment="地图中心",
    ),
    Column(
        "time_zone",
        Text,
        nullable=False,
        server_default=text("'Asia/Shanghai'"),
        comment="时区",
    ),
    Column("added_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("adcode ~ '^[0-9]{6}$'", name="adcode_format"),
    CheckConstraint("name = btrim(name) AND length(name) BETWEEN 1 AND 100", name="name_format"),
    CheckConstraint("gk_srid BETWEEN 4513 AND 4554", name="gk_srid"),
    CheckConstraint("ST_IsValid(boundary) AND NOT ST_IsEmpty(boundary)", name="boundary_valid"),
    comment="县级行政区（每行数据的 adcode 指向此表）",
)


deployment = Table(
    "deployment",
    metadata,
    Column("singleton", Boolean, primary_key=True, server_default=text("true")),
    Column(
        "id",
        Text,
        nullable=False,
        server_default=text("gen_random_uuid()::text"),
        comment="部署编号（令牌的签发者与受众）",
    ),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("singleton", name="one_row"),
    comment="本部署（首次迁移时生成，区分不同部署签发的令牌）",
)


layer_versions = Table(
    "layer_versions",
    metadata,
    Column("layer", Text, primary_key=True),
    Column("version", BigInteger, nullable=False, server_default="1"),
    Column("changed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    comment="图层版本：每次写入加一，用于缓存失效",
)


audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now(), index=True),
    Column("actor", Text, nullable=False, index=True, comment="操作人"),
    Column("action", Text, nullable=False, comment="操作"),
    Column("layer", Text, nullable=False, comment="图层"),
    Column("feature_id", BigInteger, nullable=True, comment="要素编号"),
    Column("adcode", String(6), nullable=True, comment="县级行政区划代码"),
    Column("before", JSONB, nullable=True, comment="修改前"),
    Column("after", JSONB, nullable=True, comment="修改后"),
    CheckConstraint(
        "action IN ('create', 'replace', 'update', 'delete', 'login', 'login_failed')",
        name="action",
    ),
    Index("ix_audit_log_layer", "layer", "feature_id"),
    comment="审计日志",
)


def _county_reference(
    nullable: bool, comment: str, primary_key: bool = False, index: bool = False
) -> Column[Any]:
    """The county a row belongs to (gone with it, following a change of its code)."""
    return Column(
        "adcode",
        String(6),
        ForeignKey("counties.adcode", onupdate="CASCADE", ondelete="CASCADE"),
        nullable=nullable,
        primary_key=primary_key,
        index=index,
        comment=comment,
    )


def _case_reference(comment: str) -> list[Any]:
    """The case a row belongs to, by county and id (gone with it): its county is `comment`."""
    return [
        Column("adcode", String(6), nullable=False, comment=comment),
        Column("case_id", BigInteger, nullable=False, index=True, comment="案件"),
        ForeignKeyConstraint(
            ["adcode", "case_id"],
            ["cases.adcode", "cases.id"],
            onupdate="CASCADE",
            ondelete="CASCADE",
        ),
    ]


def _photo_columns() -> tuple[Any, ...]:
    """A stored picture: its type (checked), bytes, size, digest, and who sent it when."""
    return (
        Column("content_type", Text, nullable=False, comment="图片类型"),
        Column("data", LargeBinary, nullable=False, comment="图片"),
        Column("size_bytes", Integer, nullable=False),
        Column("sha256", String(64), nullable=False),
        Column("uploaded_by", Text, nullable=False, comment="上传人"),
        Column("uploaded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        CheckConstraint(
            "content_type IN ('image/jpeg', 'image/png', 'image/webp')", name="content_type"
        ),
    )


case_photos = Table(
    "case_photos",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    *_case_reference("案件照片所属县级行政区"),
    *_photo_columns(),
    comment="案件照片",
)


component_photos = Table(
    "component_photos",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    _county_reference(False, "县级行政区"),
    Column("component_code", Text, nullable=False, comment="部件标识码"),
    *_photo_columns(),
    Index("ix_component_photos_adcode_component_code", "adcode", "component_code"),
    comment="部件照片（按部件标识码保存，跨版本保留）",
)


def _quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


users = Table(
    "users",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("username", Text, nullable=False, unique=True, comment="用户名"),
    Column("display_name", Text, nullable=True, comment="姓名"),
    Column("role", Text, nullable=False, comment="角色"),
    Column("password_hash", Text, nullable=False, comment="口令哈希 (argon2id)"),
    Column("disabled", Boolean, nullable=False, server_default=text("false"), comment="已停用"),
    Column(
        "sessions_valid_from",
        DateTime(timezone=True),
        nullable=False,
        server_default=func.now(),
        comment="此前签发的令牌作废",
    ),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("unit", Text, nullable=True, comment="所属处置单位"),
    CheckConstraint("username ~ '^[A-Za-z0-9_.-]{2,64}$'", name="username_format"),
    CheckConstraint("role <> 'handler' OR unit IS NOT NULL", name="handler_unit"),
    CheckConstraint(f"role IN ({', '.join(_quote_literal(r.value) for r in Role)})", name="role"),
    comment="用户",
)


user_counties = Table(
    "user_counties",
    metadata,
    Column(
        "username",
        Text,
        ForeignKey("users.username", onupdate="CASCADE", ondelete="CASCADE"),
        primary_key=True,
        comment="用户名",
    ),
    _county_reference(False, "可读写的县级行政区", primary_key=True, index=True),
    comment="用户可读写的县级行政区（部署管理员不受限）",
)


login_failures = Table(
    "login_failures",
    metadata,
    Column("client", Text, primary_key=True, comment="客户端地址"),
    Column(
        "username",
        Text,
        primary_key=True,
        comment="尝试登录的用户名（小写）；空串 = 该地址尝试的所有用户名",
    ),
    Column("failures", Integer, nullable=False, comment="失败次数"),
    Column("last_failure_at", DateTime(timezone=True), nullable=False, index=True),
    Column("blocked_until", DateTime(timezone=True), nullable=True, comment="此前拒绝再试"),
    comment="登录失败计数（按用户名与客户端地址、按客户端地址；防暴力破解）",
)


sessions = Table(
    "sessions",
    metadata,
    Column("sid", Text, primary_key=True, comment="会话编号（令牌中的 sid）"),
    Column(
        "username",
        Text,
        ForeignKey("users.username", onupdate="CASCADE", ondelete="CASCADE"),
        nullable=False,
        index=True,
        comment="用户名",
    ),
    Column("kind", Text, nullable=False, comment="cookie（页面登录）或 bearer（接口令牌）"),
    Column("client", Text, nullable=True, comment="登录时的客户端地址"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True, comment="注销时间"),
    CheckConstraint("kind IN ('cookie', 'bearer')", name="kind"),
    comment="登录会话（注销、改密、停用后立即失效）",
)


case_events = Table(
    "case_events",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    *_case_reference("案件流转记录所属县级行政区"),
    Column("at", DateTime(timezone=True), nullable=False, comment="时间"),
    Column("action", Text, nullable=False, comment="环节"),
    Column("from_status", Text, nullable=False, comment="原状态"),
    Column("to_status", Text, nullable=False, comment="新状态"),
    Column("actor", Text, nullable=False, comment="操作人"),
    Column("note", Text, nullable=True, comment="说明"),
    Column("unit", Text, nullable=True, comment="派遣的处置单位"),
    Column("suggested_unit", Text, nullable=True, comment="按规则建议的处置单位"),
    Column("routed_by", Text, nullable=True, comment="派遣依据"),
    Column("detail", JSONB, nullable=True, comment="环节数据（延期天数、合并案件、回访结果等）"),
    CheckConstraint(
        "routed_by IN ('component', 'rule', 'territory', 'dispatcher')", name="routed_by"
    ),
    comment="案件流转记录",
)


CELL_KEY = ("gk_srid", "cell_x", "cell_y")


def _cell_counts(
    name: str, period: str, key: tuple[str, ...], period_comment: str, comment: str
) -> Table:
    """Cases counted per county, period, subclass and 250 m cell: derived from `cases` by the
    triggers of migration 0036 and read by the heatmap (layers/cases/cellcounts.py)."""
    return Table(
        name,
        metadata,
        Column("adcode", String(6), nullable=False, comment="县级行政区划代码"),
        Column(period, Date, nullable=False, comment=period_comment),
        Column("category_code", Text, nullable=False, comment="案件小类（* 为全部）"),
        Column("gk_srid", SmallInteger, nullable=False, comment="高斯-克吕格投影带 EPSG"),
        Column("cell_x", Integer, nullable=False, comment="250米格网列号"),
        Column("cell_y", Integer, nullable=False, comment="250米格网行号"),
        Column("n", Integer, nullable=False, comment="案件数"),
        PrimaryKeyConstraint(*key, postgresql_include=["n"]),
        Index(f"ix_{name}_n", "n", postgresql_where=text("n = 0")),
        comment=comment,
    )


case_cell_days = _cell_counts(
    "case_cell_days",
    "day",
    ("day", "adcode", "category_code", *CELL_KEY),
    "上报日期",
    "案件按县、日、小类与250米格网计数（由 cases 的触发器维护）",
)
case_cell_months = _cell_counts(
    "case_cell_months",
    "month",
    ("category_code", "adcode", "month", *CELL_KEY),
    "上报月份",
    "案件按县、月、小类与250米格网计数（由 cases 的触发器维护）",
)


routing_rules = Table(
    "routing_rules",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    _county_reference(False, "县级行政区", index=True),
    Column(
        "subclass_code",
        String(5),
        ForeignKey("case_categories.code", onupdate="CASCADE", ondelete="CASCADE"),
        nullable=False,
        comment="小类代码",
    ),
    Column("area_code", String(15), nullable=True, comment="区域网格编码（空：全县）"),
    Column("area_level", Text, nullable=True, comment="区域网格层级"),
    Column("unit", Text, nullable=False, comment="处置单位"),
    Column("note", Text, nullable=True, comment="说明"),
    Column("created_by", Text, nullable=False, comment="登记人"),
    Column(
        "created_at",
        DateTime(timezone=True),
        nullable=False,
        server_default=func.now(),
        comment="登记时间",
    ),
    CheckConstraint("area_code ~ '^[0-9]{15}$'", name="area_code_format"),
    CheckConstraint(
        "(area_code IS NULL) = (area_level IS NULL) AND "
        "area_level IN ('street', 'community', 'section')",
        name="area_level",
    ),
    UniqueConstraint("adcode", "subclass_code", "area_code"),
    Index(  # one whole-county rule per subclass (NULLs are distinct to a unique constraint)
        "uq_routing_rules_adcode_subclass_code_county",
        "adcode",
        "subclass_code",
        unique=True,
        postgresql_where=text("area_code IS NULL"),
    ),
    comment="派遣规则（小类 × 区域 → 处置单位）",
)


calendar_days = Table(
    "calendar_days",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    _county_reference(True, "县级行政区；空 = 全部署默认"),
    Column("day", Date, nullable=False, comment="日期"),
    Column("kind", Text, nullable=False, comment="类型：holiday 放假 / workday 上班"),
    Column("name", Text, nullable=False, comment="名称"),
    Column("source", Text, nullable=False, comment="来源"),
    Column("changed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("kind IN ('holiday', 'workday')", name="kind"),
    Index(
        "uq_calendar_days_adcode_day",
        "adcode",
        "day",
        unique=True,
        postgresql_where=text("adcode IS NOT NULL"),
    ),
    Index(
        "uq_calendar_days_day_default", "day", unique=True, postgresql_where=text("adcode IS NULL")
    ),
    comment="工作日历：法定节假日与调休上班日",
)


county_working_hours = Table(
    "county_working_hours",
    metadata,
    _county_reference(False, "县级行政区", primary_key=True),
    Column("periods", Text, nullable=False, comment="上班时段，如 08:30-12:00,13:30-17:30"),
    Column("changed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    comment="各县级行政区的上班时段（无记录 = 部署默认）",
)


grid_inspectors = Table(
    "grid_inspectors",
    metadata,
    Column("grid_code", String(15), primary_key=True, comment="网格编码"),
    Column("name", Text, primary_key=True, comment="监督员"),
    Column("phone", Text, nullable=True, comment="联系电话"),
    Column(
        "username",
        Text,
        ForeignKey("users.username", onupdate="CASCADE", ondelete="SET NULL"),
        nullable=True,
        index=True,
        comment="监督员账号",
    ),
    CheckConstraint("grid_code ~ '^[0-9]{15}$'", name="code_format"),
    CheckConstraint("length(btrim(name)) > 0", name="name_present"),
    comment="网格监督员",
)


units = Table(
    "units",
    metadata,
    Column(
        "adcode",
        String(6),
        ForeignKey("counties.adcode", onupdate="CASCADE", ondelete="RESTRICT"),
        primary_key=True,
        comment="所属县级行政区",
    ),
    Column("name", Text, primary_key=True, comment="处置单位名称"),
    Column("added_by", Text, nullable=False, comment="登记人"),
    Column(
        "added_at",
        DateTime(timezone=True),
        nullable=False,
        server_default=func.now(),
        comment="登记时间",
    ),
    Column("id", BigInteger, Identity(), nullable=False, unique=True),
    Column("credit_code", String(18), comment="统一社会信用代码"),
    Column("type", Text, nullable=False, server_default="other", comment="单位类型"),
    Column("contact_person", Text, comment="联系人"),
    Column("contact_phone", Text, comment="联系电话"),
    Column("active", Boolean, nullable=False, server_default=true(), comment="启用"),
    Column("version", Integer, nullable=False, server_default="1"),
    CheckConstraint("name = btrim(name) AND length(name) BETWEEN 1 AND 200", name="name_format"),
    CheckConstraint(
        "type IN ('department', 'enterprise', 'street', 'community', 'other')", name="type"
    ),
    CheckConstraint(
        "credit_code ~ '^[0-9A-HJ-NP-RTUWXY]{2}[0-9]{6}[0-9A-HJ-NP-RTUWXY]{10}$'",
        name="credit_code_format",
    ),
    UniqueConstraint("adcode", "credit_code"),
    comment="处置单位（网格责任单位之外由管理员登记）",
)


def _field_column(layer: Layer, f: Field) -> Column[Any]:
    args: list[ForeignKey] = []
    if f.references:
        args.append(ForeignKey(f.references, ondelete="RESTRICT" if f.required else "SET NULL"))
    sql_type = BigInteger if f.references and f.type is FieldType.INTEGER else _SQL_TYPES[f.type]
    return Column(
        f.name, sql_type, *args, nullable=not f.required, index=f.indexed, comment=f.label_zh
    )


def _field_checks(f: Field) -> list[CheckConstraint]:
    checks = []
    if f.codes:
        allowed = ", ".join(_quote_literal(v) for v in f.code_values)
        checks.append(CheckConstraint(f"{f.name} IN ({allowed})", name=f.name))
    if f.pattern:
        checks.append(
            CheckConstraint(f"{f.name} ~ {_quote_literal(f.pattern)}", name=f"{f.name}_format")
        )
    return checks


def _id_scheme_checks(scheme: IdScheme) -> list[CheckConstraint]:
    """The coded ID's format, county and type, as the database keeps them (the engine refuses
    a bad ID first, with the reason)."""
    code, kind = scheme.field, scheme.type_field
    return [
        CheckConstraint(f"{code} ~ {_quote_literal(scheme.pattern)}", name=f"{code}_format"),
        CheckConstraint(f"substr({code}, 1, 6) = adcode", name=f"{code}_county"),
        CheckConstraint(f"substr({code}, 7, 4) = substr({kind}, 2, 4)", name=f"{code}_type"),
    ]


def _indexes(layer: Layer, table: Table) -> None:
    """The indexes a layer's capabilities ask for (heatmaps, uniqueness)."""
    if layer.binned:  # heatmaps read this index alone (index-only scans), never the wide rows
        Index(
            f"ix_{layer.id}_heatmap",
            table.c.adcode,  # first: one county's period is one range, however many counties
            table.c[layer.temporal[0]],
            postgresql_include=["gk_srid", "cell_x", "cell_y", "category_code", "geom"],
        )
    for name in layer.unique_in_county:  # of a versioned layer: among the current versions
        current = f" AND {is_current(layer)}" if layer.versioned is not None else ""
        Index(
            f"uq_{layer.id}_adcode_{name}",
            table.c.adcode,
            table.c[name],
            unique=True,
            postgresql_where=text(f"{name} IS NOT NULL{current}"),
        )
    if layer.unique_current:
        Index(
            f"uq_{layer.id}_current_{'_'.join(layer.unique_current)}",
            *(table.c[name] for name in layer.unique_current),
            unique=True,
            postgresql_where=text(is_current(layer)),
        )


def build_table(layer: Layer) -> Table:
    """Declare the table of one registry layer on the shared metadata."""
    columns: list[object] = [Column("id", BigInteger, Identity(), primary_key=True)]
    if layer.parent:
        columns.append(
            Column(
                layer.parent_key,
                BigInteger,
                ForeignKey(f"{layer.parent}.id", ondelete="CASCADE"),
                nullable=False,
                index=True,
            )
        )
    columns.append(
        Column(
            "adcode",
            String(6),
            ForeignKey("counties.adcode", onupdate="CASCADE", ondelete="RESTRICT"),
            nullable=False,
            index=True,
            comment="县级行政区划代码",
        )
    )
    if layer.geometry is not None:
        columns.append(
            Column(
                "geom",
                Geometry(layer.geometry.value, srid=STORAGE_SRID, spatial_index=True),
                nullable=False,
            )
        )
    columns.extend(_field_column(layer, f) for f in layer.fields)
    if layer.binned:  # kept by a trigger: see migration 0010
        columns += [
            Column("gk_srid", SmallInteger, nullable=False, comment="高斯-克吕格投影带 EPSG"),
            Column("gk_x", Double, nullable=False, comment="投影坐标X（米）"),
            Column("gk_y", Double, nullable=False, comment="投影坐标Y（米）"),
            Column("cell_x", Integer, nullable=False, comment="250米格网列号"),
            Column("cell_y", Integer, nullable=False, comment="250米格网行号"),
        ]
    columns += [
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        CheckConstraint("adcode ~ '^[0-9]{6}$'", name="adcode_format"),
    ]
    for f in layer.fields:
        columns.extend(_field_checks(f))
    if layer.id_scheme is not None:
        columns.extend(_id_scheme_checks(layer.id_scheme))
    if layer.area_field:
        columns.append(CheckConstraint("ST_IsValid(geom)", name="geom_valid"))
    if layer.length_field:  # a line that crosses itself has no meaningful length
        columns.append(
            CheckConstraint("ST_IsValid(geom) AND ST_IsSimple(geom)", name="geom_simple")
        )
    table = Table(layer.id, metadata, *columns, comment=layer.title_zh)  # type: ignore[call-overload]
    _indexes(layer, table)
    return table


TABLES: dict[str, Table] = {layer_id: build_table(layer) for layer_id, layer in LAYERS.items()}
# the key a case's events and photos reference: one county's rows stay together when distributed
TABLES[CASES.id].append_constraint(UniqueConstraint("adcode", "id"))


def layer_table(layer: Layer) -> Table:
    """The table of a layer, built from its declaration on first use (a layer registered after
    import, see `registry.register`)."""
    table = TABLES.get(layer.id)
    if table is None:
        table = TABLES[layer.id] = build_table(layer)
    return table


def layer_table_triggers(layer: Layer) -> list[str]:
    """The triggers every layer table has (updated_at, the layer version) and those its
    derived fields need (area, length), as SQL."""
    table = '"' + layer.id.replace('"', '""') + '"'
    statements = [
        f"CREATE TRIGGER touch_updated_at BEFORE UPDATE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION citygrid_touch_updated_at()",
        f"CREATE TRIGGER bump_layer_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION citygrid_bump_layer_version()",
    ]
    if layer.area_field:
        if layer.area_field != "area_m2":
            raise ValueError(f"{layer.id}: the area trigger keeps a field called area_m2")
        statements.append(
            f"CREATE TRIGGER set_area_m2 BEFORE INSERT OR UPDATE OF geom ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION citygrid_set_area_m2()"
        )
    if layer.length_field:
        statements.append(
            f"CREATE TRIGGER set_length BEFORE INSERT OR UPDATE OF geom ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION citygrid_set_length({_quote_literal(layer.length_field)})"
        )
    return statements


def create_layer_table(conn: Connection, layer: Layer) -> Table:
    """Create a declared layer's table with its indexes, checks and triggers: what a migration
    adding a layer runs (as the schema's owner)."""
    table = layer_table(layer)
    table.create(conn)
    for statement in layer_table_triggers(layer):
        conn.execute(text(statement))
    conn.execute(
        text("INSERT INTO layer_versions (layer) VALUES (:layer) ON CONFLICT DO NOTHING"),
        {"layer": layer.id},
    )
    return table


def drop_layer_table(conn: Connection, layer: Layer) -> None:
    """Drop a layer's table created by `create_layer_table` (a migration's downgrade)."""
    layer_table(layer).drop(conn)
    conn.execute(text("DELETE FROM layer_versions WHERE layer = :layer"), {"layer": layer.id})


def forget_layer_table(layer: Layer) -> None:
    """Forget the table built for a layer no longer declared (a layer unregistered by a test); a
    downgrade keeps it: the running code still declares the layer."""
    table = TABLES.pop(layer.id, None)
    if table is not None:
        metadata.remove(table)


# Live tracking (layers/tracking): terminals speaking JT/T 808, one row of latest position per
# tracked terminal or person, and every position in a table partitioned by China-time day.
terminals = Table(
    "terminals",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("phone", Text, nullable=False, unique=True, comment="终端手机号"),
    Column("auth_code", Text, nullable=False, comment="鉴权码"),
    Column(
        "vehicle_id",
        BigInteger,
        ForeignKey("vehicles.id", ondelete="SET NULL"),
        comment="登记车辆（空：未登记车辆）",
    ),
    Column("plate", Text, comment="注册时上报的车牌"),
    Column("maker", Text, comment="制造商"),
    Column("model", Text, comment="终端型号"),
    Column("terminal_ident", Text, comment="终端ID"),
    Column("protocol", Text, nullable=False, comment="协议版本 2013/2019，或转发平台 platform"),
    Column(
        "registered_at",
        DateTime(timezone=True),
        nullable=False,
        server_default=func.now(),
        comment="注册时间",
    ),
    Column("authenticated_at", DateTime(timezone=True), comment="最近鉴权时间"),
    CheckConstraint("phone ~ '^[1-9][0-9]{0,19}$'", name="phone_format"),
    CheckConstraint("protocol IN ('2013', '2019', 'platform')", name="protocol"),
    comment="车载终端（JT/T 808）",
)

latest_positions = Table(
    "latest_positions",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column(
        "terminal_id",
        BigInteger,
        ForeignKey("terminals.id", ondelete="CASCADE"),
        unique=True,
        comment="终端",
    ),
    Column(
        "username",
        Text,
        ForeignKey("users.username", onupdate="CASCADE", ondelete="CASCADE"),
        unique=True,
        comment="上报位置的人员（手机）",
    ),
    Column(
        "owner_adcode",
        String(6),
        ForeignKey("counties.adcode", onupdate="CASCADE", ondelete="SET NULL"),
        comment="车辆或人员所属县（空：按位置所在县）",
    ),
    Column("adcode", String(6), index=True, comment="最新位置所属县"),
    Column("time", DateTime(timezone=True), comment="定位时间"),
    Column("geom", Geometry("POINT", srid=STORAGE_SRID, spatial_index=True)),
    Column("speed", Double, comment="速度 km/h"),
    Column("heading", SmallInteger, comment="方向"),
    Column("alarm", BigInteger, comment="报警标志"),
    Column("status", BigInteger, comment="状态"),
    CheckConstraint("(terminal_id IS NULL) <> (username IS NULL)", name="one_subject"),
    comment="最新位置（每台终端或每人一行）",
)

positions = Table(
    "positions",
    metadata,
    Column("tracker_id", BigInteger, nullable=False, comment="latest_positions.id"),
    Column("time", DateTime(timezone=True), nullable=False, comment="定位时间"),
    Column("adcode", String(6), comment="所属县"),
    Column("geom", Geometry("POINT", srid=STORAGE_SRID, spatial_index=False), nullable=False),
    Column("speed", Double, nullable=False, comment="速度 km/h"),
    Column("heading", SmallInteger, nullable=False, comment="方向"),
    Column("altitude", Integer, nullable=False, comment="高程 m"),
    Column("alarm", BigInteger, nullable=False, comment="报警标志"),
    Column("status", BigInteger, nullable=False, comment="状态"),
    Column(
        "received_at",
        DateTime(timezone=True),
        nullable=False,
        server_default=func.now(),
        comment="接收时间",
    ),
    Index("ix_positions_time_brin", "time", postgresql_using="brin"),
    Index("ix_positions_tracker_id_time", "tracker_id", "time"),
    postgresql_partition_by="RANGE (time)",
    comment="位置（按日分区）",
)

ALARM_KINDS = (
    "dwell_outside_sites",
    "no_go_entry",
    "off_route",
    "out_of_hours",
    "unregistered_vehicle",
    "cross_county",
    "offline",
)

alarms = Table(
    "alarms",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("kind", Text, nullable=False, comment="报警类型"),
    Column(
        "tracker_id",
        BigInteger,
        ForeignKey("latest_positions.id", ondelete="CASCADE"),
        nullable=False,
        comment="终端的最新位置行",
    ),
    Column(
        "vehicle_id",
        BigInteger,
        ForeignKey("vehicles.id", ondelete="SET NULL"),
        index=True,
        comment="车辆",
    ),
    Column(
        "terminal_id",
        BigInteger,
        ForeignKey("terminals.id", ondelete="SET NULL"),
        comment="终端",
    ),
    Column("adcode", String(6), index=True, comment="报警所在县"),
    Column("started", DateTime(timezone=True), nullable=False, comment="开始时间"),
    Column("ended", DateTime(timezone=True), comment="结束时间（空：持续中）"),
    Column("geom", Geometry("POINT", srid=STORAGE_SRID, spatial_index=True), nullable=False),
    Column(
        "track",
        Geometry("LINESTRING", srid=STORAGE_SRID, spatial_index=False),
        comment="停留期间的轨迹（证据）",
    ),
    Column(
        "details", JSONB, nullable=False, server_default=text("'{}'::jsonb"), comment="报警详情"
    ),
    Column(
        "case_id",
        BigInteger,
        ForeignKey("cases.id", ondelete="SET NULL"),
        comment="由报警生成的案件",
    ),
    CheckConstraint(
        "kind IN (" + ", ".join(_quote_literal(k) for k in ALARM_KINDS) + ")", name="kind"
    ),
    CheckConstraint("ended IS NULL OR ended >= started", name="period"),
    Index(
        "uq_alarms_open",
        "tracker_id",
        "kind",
        unique=True,
        postgresql_where=text("ended IS NULL"),
    ),
    Index("ix_alarms_started", "started"),
    comment="车辆报警（每车每类同时只有一条未结束）",
)

tracker_states = Table(
    "tracker_states",
    metadata,
    Column(
        "tracker_id",
        BigInteger,
        ForeignKey("latest_positions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("stopped_since", DateTime(timezone=True), comment="本次停车开始时间（空：行驶中）"),
    comment="报警判定所需的终端状态",
)

# Online fume monitoring (layers/fume): each county's limit, and the restaurants' readings in a
# table partitioned by China-time month on `time` (about 220,000 rows a month for 300 restaurants).
fume_limits = Table(
    "fume_limits",
    metadata,
    _county_reference(False, "县级行政区", primary_key=True),
    Column("limit_mg_m3", REAL, nullable=False, comment="油烟排放浓度限值 mg/m³"),
    Column("changed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("limit_mg_m3 > 0 AND limit_mg_m3 <= 100", name="limit_range"),
    comment="各县级行政区的油烟排放限值（无记录 = 国家标准 GB 18483 的 2.0 mg/m³）",
)

fume_readings = Table(
    "fume_readings",
    metadata,
    Column(
        "restaurant_id",
        BigInteger,
        ForeignKey("restaurants.id", ondelete="CASCADE"),
        primary_key=True,
        comment="餐饮单位",
    ),
    Column("time", TIMESTAMP(timezone=True, precision=0), primary_key=True, comment="监测时间"),
    _county_reference(False, "所属县"),
    Column("concentration", REAL, nullable=False, comment="油烟浓度 mg/m³"),
    Column("purifier_on", Boolean, nullable=False, comment="净化器开启"),
    Column("exceeded", Boolean, nullable=False, comment="超标（按写入时所属县的限值）"),
    CheckConstraint("concentration >= 0 AND concentration <= 100", name="concentration_range"),
    Index("ix_fume_readings_time_brin", "time", postgresql_using="brin"),
    postgresql_partition_by="RANGE (time)",
    comment="油烟在线监测数据（按月分区）",
)
