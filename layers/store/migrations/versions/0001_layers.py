"""Layers of the registry, the case code table, and the area / updated_at triggers.

Revision ID: 0001
Revises:
Create Date: 2026-11-22 15:21:52.491242
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SPATIAL_TABLE_COMMENTS = {
    "grids": "管理网格",
    "illegal_buildings": "违法建设",
    "billboards": "户外广告招牌",
    "dust_sites": "扬尘六类现场",
    "parking_lots": "停车场",
    "cases": "城管案件",
}
AREA_TABLES = ("grids", "illegal_buildings", "parking_lots")
UPDATED_AT_TABLES = (
    "grids",
    "illegal_buildings",
    "billboards",
    "dust_sites",
    "dust_inspections",
    "work_orders",
    "parking_lots",
    "cases",
)

# Areas are measured in the 3-degree Gauss-Krüger zone of the geometry (EPSG:4534-4554, central
# meridians 75-135 E), unless the session or database sets citygrid.gk_srid to force one zone.
SQL_FUNCTIONS = """
CREATE FUNCTION citygrid_gk_srid(g geometry) RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT COALESCE(
    NULLIF(current_setting('citygrid.gk_srid', true), '')::integer,
    4534 + LEAST(20, GREATEST(0, round((ST_X(ST_Centroid(g)) - 75) / 3)::integer)))
$$;

CREATE FUNCTION citygrid_area_m2(g geometry) RETURNS double precision
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT ST_Area(ST_Transform(g, citygrid_gk_srid(g)))
$$;

CREATE FUNCTION citygrid_set_area_m2() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.area_m2 := citygrid_area_m2(NEW.geom);
  RETURN NEW;
END
$$;

CREATE FUNCTION citygrid_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END
$$;
"""

DROP_FUNCTIONS = """
DROP FUNCTION IF EXISTS citygrid_set_area_m2() CASCADE;
DROP FUNCTION IF EXISTS citygrid_touch_updated_at() CASCADE;
DROP FUNCTION IF EXISTS citygrid_area_m2(geometry);
DROP FUNCTION IF EXISTS citygrid_gk_srid(geometry);
"""


def upgrade() -> None:
    """Apply this revision."""
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.create_geospatial_table(
        "billboards",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("adcode", sa.String(length=6), nullable=False, comment="县级行政区划代码"),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POINT",
                srid=4490,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("type", sa.Text(), nullable=False, comment="设施类型"),
        sa.Column("face_area_m2", sa.Double(), nullable=False, comment="牌面面积(㎡)"),
        sa.Column("owner", sa.Text(), nullable=True, comment="设置单位"),
        sa.Column("address", sa.Text(), nullable=True, comment="地址"),
        sa.Column("risk_grade", sa.Text(), nullable=True, comment="风险等级"),
        sa.Column("safety_report", sa.Text(), nullable=True, comment="安全检测报告"),
        sa.Column("last_inspected_on", sa.Date(), nullable=True, comment="最近检查日期"),
        sa.Column("removed_on", sa.Date(), nullable=True, comment="拆除日期"),
        sa.Column("removed_area_m2", sa.Double(), nullable=True, comment="拆除面积(㎡)"),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("adcode ~ '^[0-9]{6}$'", name=op.f("ck_billboards_adcode_format")),
        sa.CheckConstraint(
            "risk_grade IN ('A', 'B', 'C', 'D')", name=op.f("ck_billboards_risk_grade")
        ),
        sa.CheckConstraint(
            "type IN ('pole', 'rooftop', 'shop_sign', 'light_box', 'wall', 'window_cover', 'other')",
            name=op.f("ck_billboards_type"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billboards")),
    )
    op.create_geospatial_index(
        "idx_billboards_geom",
        "billboards",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(op.f("ix_billboards_adcode"), "billboards", ["adcode"], unique=False)
    op.create_index(
        op.f("ix_billboards_last_inspected_on"), "billboards", ["last_inspected_on"], unique=False
    )
    op.create_index(op.f("ix_billboards_removed_on"), "billboards", ["removed_on"], unique=False)
    op.create_index(op.f("ix_billboards_risk_grade"), "billboards", ["risk_grade"], unique=False)
    op.create_index(op.f("ix_billboards_type"), "billboards", ["type"], unique=False)
    op.create_table(
        "case_categories",
        sa.Column("code", sa.String(length=5), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("major_code", sa.String(length=2), nullable=False),
        sa.Column("major_name", sa.Text(), nullable=False),
        sa.Column("minor_name", sa.Text(), nullable=False),
        sa.Column("time_limit", sa.Integer(), nullable=False),
        sa.Column("time_unit", sa.Text(), nullable=False),
        sa.CheckConstraint("code ~ '^[EC][0-9]{4}$'", name=op.f("ck_case_categories_code_format")),
        sa.CheckConstraint("kind IN ('event', 'component')", name=op.f("ck_case_categories_kind")),
        sa.CheckConstraint(
            "time_unit IN ('working_hours', 'working_days')",
            name=op.f("ck_case_categories_time_unit"),
        ),
        sa.CheckConstraint(
            "(kind = 'event') = (code LIKE 'E%')", name=op.f("ck_case_categories_code_kind")
        ),
        sa.CheckConstraint("time_limit > 0", name=op.f("ck_case_categories_time_limit")),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_case_categories")),
        comment="案件分类代码表 (大类/小类) with handling time limits",
    )
    op.create_geospatial_table(
        "dust_sites",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("adcode", sa.String(length=6), nullable=False, comment="县级行政区划代码"),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POINT",
                srid=4490,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("name", sa.Text(), nullable=False, comment="项目名称"),
        sa.Column("site_type", sa.Text(), nullable=False, comment="现场类型"),
        sa.Column("contractor", sa.Text(), nullable=True, comment="施工单位"),
        sa.Column("status", sa.Text(), nullable=False, comment="状态"),
        sa.Column("started_on", sa.Date(), nullable=True, comment="开工日期"),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("adcode ~ '^[0-9]{6}$'", name=op.f("ck_dust_sites_adcode_format")),
        sa.CheckConstraint(
            "site_type IN ('construction', 'demolition', 'road', 'water', 'yard', 'landscaping')",
            name=op.f("ck_dust_sites_site_type"),
        ),
        sa.CheckConstraint(
            "status IN ('active', 'suspended', 'finished')", name=op.f("ck_dust_sites_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dust_sites")),
    )
    op.create_geospatial_index(
        "idx_dust_sites_geom",
        "dust_sites",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(op.f("ix_dust_sites_adcode"), "dust_sites", ["adcode"], unique=False)
    op.create_index(op.f("ix_dust_sites_site_type"), "dust_sites", ["site_type"], unique=False)
    op.create_index(op.f("ix_dust_sites_status"), "dust_sites", ["status"], unique=False)
    op.create_geospatial_table(
        "grids",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("adcode", sa.String(length=6), nullable=False, comment="县级行政区划代码"),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4490,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("level", sa.Text(), nullable=False, comment="网格层级"),
        sa.Column("code", sa.Text(), nullable=False, comment="网格编码"),
        sa.Column("name", sa.Text(), nullable=False, comment="网格名称"),
        sa.Column("parent_code", sa.Text(), nullable=True, comment="上级网格编码"),
        sa.Column("responsible_person", sa.Text(), nullable=True, comment="责任人"),
        sa.Column("responsible_unit", sa.Text(), nullable=True, comment="责任单位"),
        sa.Column("phone", sa.Text(), nullable=True, comment="联系电话"),
        sa.Column("valid_from", sa.Date(), nullable=False, comment="生效日期"),
        sa.Column("valid_to", sa.Date(), nullable=True, comment="失效日期"),
        sa.Column("area_m2", sa.Double(), nullable=True, comment="面积(㎡)"),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("adcode ~ '^[0-9]{6}$'", name=op.f("ck_grids_adcode_format")),
        sa.CheckConstraint("code ~ '^[0-9]{15}$'", name=op.f("ck_grids_code_format")),
        sa.CheckConstraint(
            "level IN ('street', 'community', 'section')", name=op.f("ck_grids_level")
        ),
        sa.CheckConstraint("parent_code ~ '^[0-9]{15}$'", name=op.f("ck_grids_parent_code_format")),
        sa.CheckConstraint("ST_IsValid(geom)", name=op.f("ck_grids_geom_valid")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grids")),
    )
    op.create_geospatial_index(
        "idx_grids_geom",
        "grids",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(op.f("ix_grids_adcode"), "grids", ["adcode"], unique=False)
    op.create_index(op.f("ix_grids_code"), "grids", ["code"], unique=False)
    op.create_index(op.f("ix_grids_level"), "grids", ["level"], unique=False)
    op.create_index(op.f("ix_grids_parent_code"), "grids", ["parent_code"], unique=False)
    op.create_index(op.f("ix_grids_valid_from"), "grids", ["valid_from"], unique=False)
    op.create_index(op.f("ix_grids_valid_to"), "grids", ["valid_to"], unique=False)
    op.create_index(
        "uq_grids_current_code",
        "grids",
        ["code"],
        unique=True,
        postgresql_where=sa.text("valid_to IS NULL"),
    )
    op.create_geospatial_table(
        "illegal_buildings",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("adcode", sa.String(length=6), nullable=False, comment="县级行政区划代码"),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4490,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("category", sa.Text(), nullable=False, comment="类别"),
        sa.Column("found_by", sa.Text(), nullable=False, comment="发现方式"),
        sa.Column("status", sa.Text(), nullable=False, comment="处置状态"),
        sa.Column("address", sa.Text(), nullable=True, comment="地址"),
        sa.Column("party", sa.Text(), nullable=True, comment="当事人"),
        sa.Column("found_on", sa.Date(), nullable=True, comment="发现日期"),
        sa.Column("demolished_on", sa.Date(), nullable=True, comment="拆除日期"),
        sa.Column("demolished_area_m2", sa.Double(), nullable=True, comment="拆除面积(㎡)"),
        sa.Column("area_m2", sa.Double(), nullable=True, comment="占地面积(㎡)"),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "adcode ~ '^[0-9]{6}$'", name=op.f("ck_illegal_buildings_adcode_format")
        ),
        sa.CheckConstraint(
            "category IN ('new', 'existing')", name=op.f("ck_illegal_buildings_category")
        ),
        sa.CheckConstraint(
            "found_by IN ('remote_sensing', 'patrol', 'complaint')",
            name=op.f("ck_illegal_buildings_found_by"),
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'ordered', 'demolished', 'retained')",
            name=op.f("ck_illegal_buildings_status"),
        ),
        sa.CheckConstraint("ST_IsValid(geom)", name=op.f("ck_illegal_buildings_geom_valid")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_illegal_buildings")),
    )
    op.create_geospatial_index(
        "idx_illegal_buildings_geom",
        "illegal_buildings",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(
        op.f("ix_illegal_buildings_adcode"), "illegal_buildings", ["adcode"], unique=False
    )
    op.create_index(
        op.f("ix_illegal_buildings_category"), "illegal_buildings", ["category"], unique=False
    )
    op.create_index(
        op.f("ix_illegal_buildings_demolished_on"),
        "illegal_buildings",
        ["demolished_on"],
        unique=False,
    )
    op.create_index(
        op.f("ix_illegal_buildings_found_by"), "illegal_buildings", ["found_by"], unique=False
    )
    op.create_index(
        op.f("ix_illegal_buildings_found_on"), "illegal_buildings", ["found_on"], unique=False
    )
    op.create_index(
        op.f("ix_illegal_buildings_status"), "illegal_buildings", ["status"], unique=False
    )
    op.create_geospatial_table(
        "parking_lots",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("adcode", sa.String(length=6), nullable=False, comment="县级行政区划代码"),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4490,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("name", sa.Text(), nullable=False, comment="名称"),
        sa.Column("category", sa.Text(), nullable=False, comment="类别"),
        sa.Column("spaces", sa.Integer(), nullable=False, comment="泊位数"),
        sa.Column("shared_windows", sa.Text(), nullable=True, comment="错时共享时段"),
        sa.Column("registration", sa.Text(), nullable=False, comment="备案状态"),
        sa.Column("operator", sa.Text(), nullable=True, comment="经营单位"),
        sa.Column("area_m2", sa.Double(), nullable=True, comment="面积(㎡)"),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("adcode ~ '^[0-9]{6}$'", name=op.f("ck_parking_lots_adcode_format")),
        sa.CheckConstraint(
            "category IN ('public', 'dedicated', 'temporary', 'on_street')",
            name=op.f("ck_parking_lots_category"),
        ),
        sa.CheckConstraint(
            "registration IN ('registered', 'pending', 'unregistered')",
            name=op.f("ck_parking_lots_registration"),
        ),
        sa.CheckConstraint("ST_IsValid(geom)", name=op.f("ck_parking_lots_geom_valid")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_parking_lots")),
    )
    op.create_geospatial_index(
        "idx_parking_lots_geom",
        "parking_lots",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(op.f("ix_parking_lots_adcode"), "parking_lots", ["adcode"], unique=False)
    op.create_index(op.f("ix_parking_lots_category"), "parking_lots", ["category"], unique=False)
    op.create_index(
        op.f("ix_parking_lots_registration"), "parking_lots", ["registration"], unique=False
    )
    op.create_geospatial_table(
        "cases",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("adcode", sa.String(length=6), nullable=False, comment="县级行政区划代码"),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POINT",
                srid=4490,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("category_code", sa.Text(), nullable=False, comment="案件类别"),
        sa.Column("source", sa.Text(), nullable=False, comment="案件来源"),
        sa.Column("status", sa.Text(), nullable=False, comment="案件状态"),
        sa.Column("description", sa.Text(), nullable=True, comment="问题描述"),
        sa.Column("address", sa.Text(), nullable=True, comment="地址"),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False, comment="上报时间"),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=True, comment="立案时间"),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True, comment="派遣时间"),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=True, comment="处置时间"),
        sa.Column("feedback_at", sa.DateTime(timezone=True), nullable=True, comment="反馈时间"),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True, comment="核查时间"),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True, comment="结案时间"),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=True, comment="处置时限"),
        sa.Column("grid_code", sa.Text(), nullable=True, comment="所属网格"),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("adcode ~ '^[0-9]{6}$'", name=op.f("ck_cases_adcode_format")),
        sa.CheckConstraint("grid_code ~ '^[0-9]{15}$'", name=op.f("ck_cases_grid_code_format")),
        sa.CheckConstraint(
            "source IN ('inspector', 'public', 'hotline', 'video', 'patrol')",
            name=op.f("ck_cases_source"),
        ),
        sa.CheckConstraint(
            "status IN ('reported', 'registered', 'rejected', 'dispatched', 'handled', 'feedback', 'verified', 'closed', 'returned', 'rework', 'parked')",
            name=op.f("ck_cases_status"),
        ),
        sa.ForeignKeyConstraint(
            ["category_code"],
            ["case_categories.code"],
            name=op.f("fk_cases_category_code_case_categories"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
    )
    op.create_geospatial_index(
        "idx_cases_geom",
        "cases",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(op.f("ix_cases_adcode"), "cases", ["adcode"], unique=False)
    op.create_index(op.f("ix_cases_category_code"), "cases", ["category_code"], unique=False)
    op.create_index(op.f("ix_cases_closed_at"), "cases", ["closed_at"], unique=False)
    op.create_index(op.f("ix_cases_deadline"), "cases", ["deadline"], unique=False)
    op.create_index(op.f("ix_cases_grid_code"), "cases", ["grid_code"], unique=False)
    op.create_index(op.f("ix_cases_reported_at"), "cases", ["reported_at"], unique=False)
    op.create_index(op.f("ix_cases_source"), "cases", ["source"], unique=False)
    op.create_index(op.f("ix_cases_status"), "cases", ["status"], unique=False)
    op.create_table(
        "dust_inspections",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("dust_site_id", sa.BigInteger(), nullable=False),
        sa.Column("adcode", sa.String(length=6), nullable=False, comment="县级行政区划代码"),
        sa.Column("inspected_on", sa.Date(), nullable=False, comment="督查日期"),
        sa.Column("inspector", sa.Text(), nullable=False, comment="督查人"),
        sa.Column("problems_found", sa.Integer(), nullable=False, comment="发现问题数"),
        sa.Column("problems", sa.Text(), nullable=True, comment="问题描述"),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("adcode ~ '^[0-9]{6}$'", name=op.f("ck_dust_inspections_adcode_format")),
        sa.ForeignKeyConstraint(
            ["dust_site_id"],
            ["dust_sites.id"],
            name=op.f("fk_dust_inspections_dust_site_id_dust_sites"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dust_inspections")),
        comment="扬尘督查记录",
    )
    op.create_index(
        op.f("ix_dust_inspections_adcode"), "dust_inspections", ["adcode"], unique=False
    )
    op.create_index(
        op.f("ix_dust_inspections_dust_site_id"), "dust_inspections", ["dust_site_id"], unique=False
    )
    op.create_index(
        op.f("ix_dust_inspections_inspected_on"), "dust_inspections", ["inspected_on"], unique=False
    )
    op.create_table(
        "work_orders",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("dust_site_id", sa.BigInteger(), nullable=False),
        sa.Column("adcode", sa.String(length=6), nullable=False, comment="县级行政区划代码"),
        sa.Column("inspection_id", sa.BigInteger(), nullable=True, comment="督查记录"),
        sa.Column("issued_on", sa.Date(), nullable=False, comment="交办日期"),
        sa.Column("deadline", sa.Date(), nullable=False, comment="整改期限"),
        sa.Column("rectified_on", sa.Date(), nullable=True, comment="整改完成日期"),
        sa.Column("result", sa.Text(), nullable=False, comment="整改结果"),
        sa.Column("requirement", sa.Text(), nullable=True, comment="整改要求"),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("adcode ~ '^[0-9]{6}$'", name=op.f("ck_work_orders_adcode_format")),
        sa.CheckConstraint(
            "result IN ('open', 'on_time', 'late')", name=op.f("ck_work_orders_result")
        ),
        sa.ForeignKeyConstraint(
            ["dust_site_id"],
            ["dust_sites.id"],
            name=op.f("fk_work_orders_dust_site_id_dust_sites"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["inspection_id"],
            ["dust_inspections.id"],
            name=op.f("fk_work_orders_inspection_id_dust_inspections"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_orders")),
        comment="交办单",
    )
    op.create_index(op.f("ix_work_orders_adcode"), "work_orders", ["adcode"], unique=False)
    op.create_index(
        op.f("ix_work_orders_dust_site_id"), "work_orders", ["dust_site_id"], unique=False
    )
    op.create_index(
        op.f("ix_work_orders_inspection_id"), "work_orders", ["inspection_id"], unique=False
    )
    op.create_index(op.f("ix_work_orders_issued_on"), "work_orders", ["issued_on"], unique=False)
    op.create_index(op.f("ix_work_orders_result"), "work_orders", ["result"], unique=False)
    for table, comment in SPATIAL_TABLE_COMMENTS.items():
        op.create_table_comment(table, comment)
    op.execute(SQL_FUNCTIONS)
    for table in UPDATED_AT_TABLES:
        op.execute(
            f"CREATE TRIGGER touch_updated_at BEFORE UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION citygrid_touch_updated_at()"
        )
    for table in AREA_TABLES:
        op.execute(
            f"CREATE TRIGGER set_area_m2 BEFORE INSERT OR UPDATE OF geom ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION citygrid_set_area_m2()"
        )


def downgrade() -> None:
    """Revert this revision."""
    op.execute(DROP_FUNCTIONS)
    op.drop_index(op.f("ix_work_orders_result"), table_name="work_orders")
    op.drop_index(op.f("ix_work_orders_issued_on"), table_name="work_orders")
    op.drop_index(op.f("ix_work_orders_inspection_id"), table_name="work_orders")
    op.drop_index(op.f("ix_work_orders_dust_site_id"), table_name="work_orders")
    op.drop_index(op.f("ix_work_orders_adcode"), table_name="work_orders")
    op.drop_table("work_orders")
    op.drop_index(op.f("ix_dust_inspections_inspected_on"), table_name="dust_inspections")
    op.drop_index(op.f("ix_dust_inspections_dust_site_id"), table_name="dust_inspections")
    op.drop_index(op.f("ix_dust_inspections_adcode"), table_name="dust_inspections")
    op.drop_table("dust_inspections")
    op.drop_index(op.f("ix_cases_status"), table_name="cases")
    op.drop_index(op.f("ix_cases_source"), table_name="cases")
    op.drop_index(op.f("ix_cases_reported_at"), table_name="cases")
    op.drop_index(op.f("ix_cases_grid_code"), table_name="cases")
    op.drop_index(op.f("ix_cases_deadline"), table_name="cases")
    op.drop_index(op.f("ix_cases_closed_at"), table_name="cases")
    op.drop_index(op.f("ix_cases_category_code"), table_name="cases")
    op.drop_index(op.f("ix_cases_adcode"), table_name="cases")
    op.drop_geospatial_index(
        "idx_cases_geom", table_name="cases", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("cases")
    op.drop_index(op.f("ix_parking_lots_registration"), table_name="parking_lots")
    op.drop_index(op.f("ix_parking_lots_category"), table_name="parking_lots")
    op.drop_index(op.f("ix_parking_lots_adcode"), table_name="parking_lots")
    op.drop_geospatial_index(
        "idx_parking_lots_geom",
        table_name="parking_lots",
        postgresql_using="gist",
        column_name="geom",
    )
    op.drop_geospatial_table("parking_lots")
    op.drop_index(op.f("ix_illegal_buildings_status"), table_name="illegal_buildings")
    op.drop_index(op.f("ix_illegal_buildings_found_on"), table_name="illegal_buildings")
    op.drop_index(op.f("ix_illegal_buildings_found_by"), table_name="illegal_buildings")
    op.drop_index(op.f("ix_illegal_buildings_demolished_on"), table_name="illegal_buildings")
    op.drop_index(op.f("ix_illegal_buildings_category"), table_name="illegal_buildings")
    op.drop_index(op.f("ix_illegal_buildings_adcode"), table_name="illegal_buildings")
    op.drop_geospatial_index(
        "idx_illegal_buildings_geom",
        table_name="illegal_buildings",
        postgresql_using="gist",
        column_name="geom",
    )
    op.drop_geospatial_table("illegal_buildings")
    op.drop_index(
        "uq_grids_current_code", table_name="grids", postgresql_where=sa.text("valid_to IS NULL")
    )
    op.drop_index(op.f("ix_grids_valid_to"), table_name="grids")
    op.drop_index(op.f("ix_grids_valid_from"), table_name="grids")
    op.drop_index(op.f("ix_grids_parent_code"), table_name="grids")
    op.drop_index(op.f("ix_grids_level"), table_name="grids")
    op.drop_index(op.f("ix_grids_code"), table_name="grids")
    op.drop_index(op.f("ix_grids_adcode"), table_name="grids")
    op.drop_geospatial_index(
        "idx_grids_geom", table_name="grids", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("grids")
    op.drop_index(op.f("ix_dust_sites_status"), table_name="dust_sites")
    op.drop_index(op.f("ix_dust_sites_site_type"), table_name="dust_sites")
    op.drop_index(op.f("ix_dust_sites_adcode"), table_name="dust_sites")
    op.drop_geospatial_index(
        "idx_dust_sites_geom", table_name="dust_sites", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("dust_sites")
    op.drop_table("case_categories")
    op.drop_index(op.f("ix_billboards_type"), table_name="billboards")
    op.drop_index(op.f("ix_billboards_risk_grade"), table_name="billboards")
    op.drop_index(op.f("ix_billboards_removed_on"), table_name="billboards")
    op.drop_index(op.f("ix_billboards_last_inspected_on"), table_name="billboards")
    op.drop_index(op.f("ix_billboards_adcode"), table_name="billboards")
    op.drop_geospatial_index(
        "idx_billboards_geom", table_name="billboards", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("billboards")
