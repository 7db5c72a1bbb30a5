"""Counties are data: a `counties` table every row's adcode refers to, the counties each account
may read and write, and this deployment's own id (the issuer and audience of its tokens).

Rows already stored keep their adcode: each one found gets a county named by its code, bounded by
its current street grids (or, without grids, by the hull of its rows) until `citygrid county
set-boundary` gives it the official line; accounts other than admins keep reading them all.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 03:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# The tables holding an adcode when this revision was written (a migration is a snapshot).
SPATIAL = ("grids", "illegal_buildings", "billboards", "dust_sites", "parking_lots", "cases")
CHILDREN = {"dust_inspections": "dust_sites", "work_orders": "dust_sites"}


def _create_tables() -> None:
    op.create_table(
        "counties",
        sa.Column("adcode", sa.String(6), nullable=False, comment="县级行政区划代码"),
        sa.Column("name", sa.Text(), nullable=False, comment="名称"),
        sa.Column(
            "boundary",
            Geometry("MULTIPOLYGON", srid=4490, spatial_index=False),
            nullable=False,
            comment="官方行政区界（CGCS2000）",
        ),
        sa.Column("gk_srid", sa.SmallInteger(), nullable=False, comment="高斯-克吕格投影带 EPSG"),
        sa.Column(
            "centre",
            Geometry("POINT", srid=4490, spatial_index=False),
            nullable=False,
            comment="地图中心",
        ),
        sa.Column(
            "time_zone",
            sa.Text(),
            server_default=sa.text("'Asia/Shanghai'"),
            nullable=False,
            comment="时区",
        ),
        sa.Column(
            "added_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.CheckConstraint("adcode ~ '^[0-9]{6}$'", name=op.f("ck_counties_adcode_format")),
        sa.CheckConstraint(
            "name = btrim(name) AND length(name) BETWEEN 1 AND 100",
            name=op.f("ck_counties_name_format"),
        ),
        sa.CheckConstraint("gk_srid BETWEEN 4513 AND 4554", name=op.f("ck_counties_gk_srid")),
        sa.CheckConstraint(
            "ST_IsValid(boundary) AND NOT ST_IsEmpty(boundary)",
            name=op.f("ck_counties_boundary_valid"),
        ),
        sa.PrimaryKeyConstraint("adcode", name=op.f("pk_counties")),
        comment="县级行政区（每行数据的 adcode 指向此表）",
    )
    op.create_index(
        "idx_counties_boundary", "counties", ["boundary"], unique=False, postgresql_using="gist"
    )
    op.create_table(
        "user_counties",
        sa.Column("username", sa.Text(), nullable=False, comment="用户名"),
        sa.Column("adcode", sa.String(6), nullable=False, comment="可读写的县级行政区"),
        sa.ForeignKeyConstraint(
            ["adcode"],
            ["counties.adcode"],
            name=op.f("fk_user_counties_adcode_counties"),
            onupdate="CASCADE",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["username"],
            ["users.username"],
            name=op.f("fk_user_counties_username_users"),
            onupdate="CASCADE",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("username", "adcode", name=op.f("pk_user_counties")),
        comment="用户可读写的县级行政区（部署管理员不受限）",
    )
    op.create_index(op.f("ix_user_counties_adcode"), "user_counties", ["adcode"], unique=False)
    op.create_table(
        "deployment",
        sa.Column("singleton", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column(
            "id",
            sa.Text(),
            server_default=sa.text("gen_random_uuid()::text"),
            nullable=False,
            comment="部署编号（令牌的签发者与受众）",
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("singleton", name=op.f("ck_deployment_one_row")),
        sa.PrimaryKeyConstraint("singleton", name=op.f("pk_deployment")),
        comment="本部署（首次迁移时生成，区分不同部署签发的令牌）",
    )
    op.execute("INSERT INTO deployment DEFAULT VALUES")


def _adopt_stored_counties() -> None:
    """A county for every adcode already stored, so the references below hold."""
    rows = " UNION ALL ".join(f"SELECT adcode, geom FROM {t}" for t in SPATIAL)
    children = " UNION ALL ".join(
        f"SELECT c.adcode, p.geom FROM {c} AS c JOIN {p} AS p ON p.id = c.{p[:-1]}_id"
        for c, p in CHILDREN.items()
    )
    op.execute(f"""
        INSERT INTO counties (adcode, name, boundary, gk_srid, centre)
        SELECT adcode, adcode, boundary, citygrid_gk_srid(boundary), ST_PointOnSurface(boundary)
        FROM (
            SELECT a.adcode, coalesce(
                (SELECT ST_Multi(ST_CollectionExtract(ST_MakeValid(ST_Union(g.geom)), 3))
                 FROM grids AS g
                 WHERE g.adcode = a.adcode AND g.level = 'street' AND g.valid_to IS NULL),
                ST_Multi(ST_Buffer(ST_ConvexHull(ST_Collect(a.geom)), 0.01))
            ) AS boundary
            FROM ({rows} UNION ALL {children}) AS a
            GROUP BY a.adcode
        ) AS found
    """)
    op.execute("""
        INSERT INTO user_counties (username, adcode)
        SELECT u.username, c.adcode FROM users AS u CROSS JOIN counties AS c
        WHERE u.role <> 'admin'
    """)


def upgrade() -> None:
    """Apply this revision."""
    _create_tables()
    _adopt_stored_counties()
    for table in (*SPATIAL, *CHILDREN):
        op.create_foreign_key(
            op.f(f"fk_{table}_adcode_counties"),
            table,
            "counties",
            ["adcode"],
            ["adcode"],
            onupdate="CASCADE",
            ondelete="RESTRICT",
        )


def downgrade() -> None:
    """Revert this revision."""
    for table in (*SPATIAL, *CHILDREN):
        op.drop_constraint(op.f(f"fk_{table}_adcode_counties"), table, type_="foreignkey")
    op.drop_table("deployment")
    op.drop_index(op.f("ix_user_counties_adcode"), table_name="user_counties")
    op.drop_table("user_counties")
    op.drop_index("idx_counties_boundary", table_name="counties", postgresql_using="gist")
    op.drop_table("counties")
