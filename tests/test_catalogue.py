"""The catalogue of components (部件) and events (事件): shipped with its classes and subclasses, read
per county through GET /catalogue, edited by a county through `citygrid catalogue export|import`
(its own limits, criteria and departments; local subclasses), and the former codes moved.

三元区 (350404) holds a local subclass E0690; 启东 (320681) keeps its own limit for E0102.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from api.settings import DatabaseSettings
from layers.cases import catalogue, categories, codes
from layers.store import db, migrate
from tests.accounts import ROLES, TEST_AUTH, bearer, ensure_account
from tests.counties import DEMO, SANYUAN, two_counties
from tests.databases import fresh_database
from tests.support import citygrid

SCOPES = {"a": (DEMO,), "b": (SANYUAN,), "city": (DEMO, SANYUAN)}
NAMES = ["admin", *(f"{r}-{s}" for r in ROLES for s in SCOPES)]
GRID_UNITS = {DEMO: "启东测试中队", SANYUAN: "三元区测试中队"}
LOCAL = "E0690"  # 三元区's own subclass, in the extension class
EVENTS = {
    "市容环境": "私搭乱建 暴露垃圾 积存垃圾渣土 道路不洁 水域不洁 绿地脏乱 乱堆物堆料 垃圾站（箱）满溢 非法占绿毁绿",
    "宣传广告": "非法小广告 街头散发广告 违规户外广告 店招标牌破损",
    "施工管理": "施工扰民 施工占道 工地扬尘 施工废弃料 渣土运输撒漏",
    "街面秩序": "无照经营游商 店外经营 占道经营 机动车乱停放 非机动车乱停放 占道废品收购 夜市大排档",
    "突发事件": "管道破裂 路面塌陷 道路积水 火灾隐患",
}
COMPONENTS = {
    "公用设施": "上水井盖 污水井盖 雨水井盖 雨水箅子 电力井盖 路灯井盖 通信井盖 电视井盖 热力井盖 燃气井盖 "
    "公安井盖 消防井盖 无主井盖 路灯 电杆 报刊亭 邮筒 信息亭 健身设施 变压器 电闸箱 通信交接箱 消防栓",
    "道路交通": "立交桥 过街天桥 跨河桥 地下通道 路名牌 护栏 交通标志牌 公交站亭 停车场 停车咪表 存车支架",
    "市容环境": "公共厕所 垃圾间 广告牌匾 化粪池 果皮箱",
    "园林绿化": "古树名木 绿地 行道树 花钵 城市雕塑 街头坐椅",
    "房屋土地": "人防工事",
    "其他设施": "液化气站 水域附属设施",
}
HEADINGS = [heading for _, heading in catalogue.COLUMNS]


@dataclass(frozen=True)
class World:
    """The database, its owner's engine and the counties each account holds."""

    url: str
    owner_url: str
    engine: Engine
    held: dict[str, tuple[str, ...] | None]


def _file(rows: list[dict[str, str]]) -> bytes:
    """A catalogue CSV with Chinese headings holding these rows (headings → values)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=HEADINGS)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def _row(code: str, name: str, limit: str = "2", **more: str) -> dict[str, str]:
    return {
        "代码": code,
        "大类代码": code[1:3],
        "小类名称": name,
        "处置时限": limit,
        "时限单位": "工作日",
        **more,
    }


@pytest.fixture(scope="module")
def world(pg_server: Any) -> Iterator[World]:
    databases = fresh_database(pg_server, "catalogue")
    url = next(databases)
    owner_url = pg_server.as_owner(url)
    engine = db.make_engine(owner_url)
    with engine.begin() as conn:
        demo, second = two_counties(conn)
        local = _row(LOCAL, "违规占用消防通道", "1", 别名="堵塞消防通道", 立案标准="消防通道被占用")
        catalogue.import_file(conn, SANYUAN, _file([local]), False, "tests")
        edited = _row("E0102", "暴露垃圾", "1", 时限单位="工作时", 责任部门="启东市环卫处")
        catalogue.import_file(conn, DEMO, _file([edited]), False, "tests")
    ensure_account(engine, "admin", "admin")
    held: dict[str, tuple[str, ...] | None] = {"admin": None}
    rows = {DEMO: demo, SANYUAN: second}
    for role in ROLES:
        for scope, adcodes in SCOPES.items():
            held[f"{role}-{scope}"] = adcodes
            grids = tuple(rows[a].communities[0] for a in adcodes) if role == "inspector" else ()
            unit = GRID_UNITS[adcodes[-1]] if role == "handler" else None
            ensure_account(engine, f"{role}-{scope}", role, grids, unit, adcodes)
    yield World(url, owner_url, engine, held)
    engine.dispose()
    next(databases, None)


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    app = create_app(DatabaseSettings(database_url=world.url), auth_settings=TEST_AUTH)
    with TestClient(app) as c:
        yield c


def traces(engine: Engine) -> tuple[Any, ...]:
    """The catalogue's tables and the audit log: what a refusal leaves as it was."""
    tables = (
        "case_categories", "case_category_aliases", "case_category_edits",
        "case_category_classes", "audit_log",
    )  # fmt: skip
    with engine.connect() as conn:
        return tuple(
            conn.execute(
                text(f"SELECT md5(coalesce(string_agg(to_jsonb(t)::text, '' ORDER BY t::text), ''))"
                     f" FROM {table} AS t")
            ).scalar_one()
            for table in tables
        )  # fmt: skip


# --- the shipped catalogue --------------------------------------------------------------------


def test_the_catalogue_is_loaded_with_its_counts_per_kind(world: World) -> None:
    with world.engine.connect() as conn:
        counts = dict(
            conn.execute(
                text("SELECT kind, count(*) FROM case_categories WHERE NOT local GROUP BY kind")
            ).all()
        )
        classes = {
            (kind, name): local
            for kind, name, local in conn.execute(
                text("SELECT kind, name, local FROM case_category_classes")
            )
        }
        named = set(
            conn.execute(text("SELECT kind, major_name, minor_name FROM case_categories")).all()
        )
    assert counts["component"] >= 80 and counts["event"] >= 50
    assert len(codes.read_case_categories()) == counts["component"] + counts["event"]
    for kind, listed in (("event", EVENTS), ("component", COMPONENTS)):
        for major, minors in listed.items():
            assert classes[(kind, major)] is False
            missing = [m for m in minors.split() if (kind, major, m) not in named]
            assert missing == [], (major, missing)
    assert classes[("event", "扩展事件")] is True and classes[("component", "扩展部件")] is True


def test_every_code_matches_its_class_and_kind(world: World) -> None:
    with world.engine.connect() as conn:
        rows = conn.execute(
            text("""
            SELECT k.code, k.kind, k.major_code, k.major_name, c.name, k.time_limit,
                   k.urgent_limit, k.register_criteria, k.close_criteria, k.department
            FROM case_categories AS k
            LEFT JOIN case_category_classes AS c ON c.kind = k.kind AND c.code = k.major_code
            WHERE NOT k.local
        """)
        ).all()
    for code, kind, major, major_name, class_name, limit, urgent, register, close, dept in rows:
        assert code[0] == ("E" if kind == "event" else "C") and code[1:3] == major, code
        assert class_name == major_name, code
        assert limit > 0 and (urgent is None or urgent <= limit), code
        assert register and close and dept, code
    shipped = codes.read_case_categories()
    assert len({c.code for c in shipped}) == len(shipped)
    assert len({(c.kind, c.minor_name) for c in shipped}) == len(shipped)


def test_former_codes_and_names_lead_to_the_catalogue(world: World) -> None:
    with world.engine.connect() as conn:
        assert codes.resolve_category(conn, "井盖破损") == "C0113"  # a problem named by 0016
        assert codes.resolve_category(conn, "违法搭建(私搭乱建)") == "E0101"
        assert codes.resolve_category(conn, "流动摊贩") == "E0501"
        assert codes.resolve_category(conn, "e0503") == "E0503"
        assert codes.resolve_category(conn, "通讯井盖") == "C0107"
        assert codes.resolve_category(conn, "不存在的类别") == "不存在的类别"


def test_the_migration_moves_former_component_cases_to_the_subclass_of_their_thing(
    scratch_owner: Engine,
) -> None:
    migrate.downgrade(scratch_owner, "0019")
    with scratch_owner.begin() as conn:
        for former in codes.read_former_categories():  # the rows as 0016 stored them
            conn.execute(
                text("""
                UPDATE case_categories SET minor_name = :minor_name, time_limit = :time_limit,
                    time_unit = :time_unit WHERE code = :code
            """),
                former,
            )
        demo, _ = two_counties(conn)
        ids = demo.ids["cases"][:3]
        for case_id, code in zip(ids, ("C0101", "C0102", "E0502"), strict=True):
            conn.execute(
                text("UPDATE cases SET category_code = :c WHERE id = :id"),
                {"c": code, "id": case_id},
            )
        conn.execute(text("UPDATE case_categories SET time_limit = 9 WHERE code = 'E0502'"))
    migrate.upgrade(scratch_owner)
    assert migrate.schema_drift(scratch_owner) == []
    with scratch_owner.connect() as conn:
        moved = conn.execute(
            text("SELECT category_code FROM cases WHERE id = ANY(:ids) ORDER BY id"), {"ids": ids}
        ).scalars()
        assert list(moved) == ["C0113", "C0117", "E0502"]
        names = dict(conn.execute(text("SELECT code, minor_name FROM case_categories")).all())
        assert names["C0101"] == "上水井盖" and names["E0501"] == "无照经营游商"
        kept = conn.execute(text("SELECT time_limit FROM case_categories WHERE code = 'E0502'"))
        assert kept.scalar_one() == 9  # the bureau's own row stays as it made it
        assert names["E0502"] == "店外经营(超门窗经营)"
        aliases = dict(
            conn.execute(text("SELECT alias, category_code FROM case_category_aliases")).all()
        )
        assert aliases["井盖破损"] == "C0113" and aliases["井盖"] == "C0113"
        assert aliases["无照经营游商(流动摊贩)"] == "E0501"


# --- GET /catalogue ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_every_role_reads_the_catalogue_of_its_counties(
    client: TestClient, world: World, name: str
) -> None:
    held = world.held[name]
    answer = client.get("/catalogue", headers=bearer(name))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert {(c["kind"], c["name"]) for c in body["classes"]} >= {
        *(("event", major) for major in EVENTS),
        *(("component", major) for major in COMPONENTS),
    }
    subclasses = {s["code"]: s for s in body["subclasses"]}
    assert set(subclasses["C0113"]) >= {
        "code", "kind", "class_code", "class_name", "name", "aliases", "time_limit",
        "urgent_limit", "time_unit", "register_criteria", "close_criteria", "department",
        "local", "county",
    }  # fmt: skip
    sees_local = held is None or SANYUAN in held
    assert (LOCAL in subclasses) is sees_local
    if sees_local:
        local = subclasses[LOCAL]
        assert local["local"] is True and local["county"] == SANYUAN
        assert local["aliases"] == ["堵塞消防通道"] and local["class_name"] == "扩展事件"
    garbage = subclasses["E0102"]
    if held == (DEMO,):  # the county's own limit and department
        assert (garbage["time_limit"], garbage["time_unit"]) == (1, "working_hours")
        assert garbage["department"] == "启东市环卫处" and garbage["edited"] is True
    else:
        assert (garbage["time_limit"], garbage["edited"]) == (4, False)


def test_a_county_outside_the_account_is_refused(client: TestClient) -> None:
    refused = client.get(f"/catalogue?county={SANYUAN}", headers=bearer("leader-a"))
    assert refused.status_code == 403 and refused.json()["code"] == "outside_county"
    asked = client.get(f"/catalogue?county={SANYUAN}", headers=bearer("leader-city")).json()
    assert LOCAL in {s["code"] for s in asked["subclasses"]}
    mine = client.get(f"/catalogue?county={DEMO}", headers=bearer("admin")).json()
    assert LOCAL not in {s["code"] for s in mine["subclasses"]}
    assert client.get("/catalogue").status_code == 401
    assert "/catalogue" in client.get("/api").json()["paths"]


# --- import and export ------------------------------------------------------------------------


@pytest.mark.parametrize("xlsx", [False, True], ids=["csv", "xlsx"])
def test_an_exported_catalogue_imports_back_unchanged(world: World, xlsx: bool) -> None:
    with world.engine.begin() as conn:
        data = catalogue.export_file(conn, SANYUAN, xlsx)
        before = traces(world.engine)
        report = catalogue.import_file(conn, SANYUAN, data, xlsx, "tests")
    assert report.rows >= 135 and report.unchanged == report.rows, report.document()
    assert not report.added and not report.changed and not report.errors
    assert traces(world.engine) == before


def test_a_county_edits_a_standard_subclass_and_adds_a_local_one(world: World) -> None:
    with world.engine.begin() as conn:
        rows, _ = catalogue.read_table(catalogue.export_file(conn, DEMO, False), False)
    edited = [dict(r) for r in rows if r["code"] in ("C0107", "E0102")]
    for row in edited:
        row["time_limit"] = "3" if row["code"] == "C0107" else row["time_limit"]
    own = _row("C0790", "智能垃圾桶", "5", 别名="智能垃圾箱")
    data = _file(
        [{h: r[name] for name, h in catalogue.COLUMNS if name in r} for r in edited] + [own]
    )
    with world.engine.begin() as conn:
        report = catalogue.import_file(conn, DEMO, data, False, "tests")
        assert report.added == ["C0790"] and report.changed == ["C0107"], report.document()
        assert report.unchanged == 1
        seen = catalogue.catalogue(conn, DEMO, (DEMO,))["subclasses"]
        standard = catalogue.catalogue(conn, SANYUAN, (SANYUAN,))["subclasses"]
        standard_limit = conn.execute(
            text("SELECT time_limit FROM case_categories WHERE code = 'C0107'")
        ).scalar_one()
    mine = {s["code"]: s for s in seen}
    assert mine["C0107"]["time_limit"] == 3 and mine["C0107"]["edited"] is True
    assert mine["C0790"]["local"] is True and mine["C0790"]["class_name"] == "扩展部件"
    assert {s["code"]: s["time_limit"] for s in standard}["C0107"] == standard_limit != 3
    assert "C0790" not in {s["code"] for s in standard}


def test_bad_rows_are_refused_each_with_its_row(world: World) -> None:
    rows = [
        _row("E0102", "暴露垃圾", "3"),  # 2: good
        _row("E0901", "无名大类的小类"),  # 3: no event class 09
        _row("E0691", "本地甲"),  # 4
        _row("E0691", "本地乙"),  # 5: duplicate code
        _row("C0101", "自来水井盖"),  # 6: a standard code renamed
        _row(LOCAL, "三元区的小类"),  # 7: a code another county holds
        _row("E0692", "本地丙", "0"),  # 8: no time limit
        _row("E0693", "本地丁", 别名="流动摊贩"),  # 9: an alias of another subclass
    ]
    before = traces(world.engine)
    with world.engine.begin() as conn, pytest.raises(catalogue.CatalogueRefused) as refused:
        catalogue.import_file(conn, DEMO, _file(rows), False, "tests")
    found = {(e.row, e.code) for e in refused.value.report.errors}
    assert found == {
        (3, "category_class_unknown"),
        (5, "category_duplicate"),
        (6, "category_standard_changed"),
        (7, "category_code_taken"),
        (8, "category_time_limit"),
        (9, "category_alias_taken"),
    }
    assert "未做任何修改" in refused.value.message_zh
    assert traces(world.engine) == before


def test_the_command_line_exports_and_imports_a_county_catalogue(
    world: World, tmp_path: Path
) -> None:
    env = {"CITYGRID_DATABASE_URL": world.url, "COLUMNS": "200"}
    path = tmp_path / "目录.xlsx"
    done = citygrid("catalogue", "export", str(path), "--county", SANYUAN, env=env)
    assert done.returncode == 0, done.stderr
    again = citygrid("catalogue", "import", str(path), "--county", SANYUAN, env=env)
    assert again.returncode == 0 and "0 local subclasses added" in again.stderr + again.stdout
    bad = tmp_path / "bad.csv"
    bad.write_bytes(_file([_row("E0901", "无名大类的小类")]))
    refused = citygrid("catalogue", "import", str(bad), "--county", SANYUAN, env=env)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr
    assert "没有事件大类 09" in refused.stdout
    unknown = citygrid("catalogue", "export", str(path), "--county", "999999", env=env)
    assert unknown.returncode != 0 and "Traceback" not in unknown.stderr


# --- statistics by the catalogue --------------------------------------------------------------


def _reported(client: TestClient, query: str) -> Any:
    answer = client.get(
        f"/stats/indicators?county={DEMO}&from=2026-01-01&to=2026-12-31&{query}",
        headers=bearer("leader-a"),
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_statistics_take_a_class_or_a_subclass_of_the_catalogue(client: TestClient) -> None:
    whole = _reported(client, "")
    by_class = _reported(client, "class=E01")
    by_subclass = _reported(client, "subclass=E0102")
    ads = _reported(client, "class=e02")
    assert ads == _reported(client, "category=E02") != by_class
    assert by_class == _reported(client, "category=E01") != whole
    assert by_subclass == _reported(client, "category=E0102") != by_class
    days = "from=2026-01-01&to=2026-12-31"
    unknown = client.get(f"/stats/indicators?{days}&class=E09", headers=bearer("leader-a"))
    assert unknown.status_code == 400 and unknown.json()["code"] == "unknown_category"
    malformed = client.get(f"/stats/indicators?{days}&subclass=X1", headers=bearer("leader-a"))
    assert malformed.status_code in (400, 422)


def test_the_deployment_wide_categories_file_leaves_local_subclasses_to_their_county(
    world: World,
) -> None:
    with world.engine.begin() as conn:
        exported = categories.export_csv(conn)
    assert "C0113" in exported and LOCAL not in exported
    taken = "代码,类型,大类代码,大类名称,小类名称,处置时限,时限单位\n" + (
        f"{LOCAL},事件,06,扩展事件,改名,1,工作日\n"
    )
    before = traces(world.engine)
    with world.engine.begin() as conn, pytest.raises(categories.CategoriesRefused) as refused:
        categories.import_csv(conn, taken.encode(), "tests")
    assert [e.code for e in refused.value.report.errors] == ["category_code_taken"]
    assert traces(world.engine) == before


def test_the_catalogue_says_which_geometry_a_component_subclass_takes(world: World) -> None:
    with world.engine.begin() as conn:
        rows, _ = catalogue.read_table(catalogue.export_file(conn, DEMO, False), False)
    exported = {r["code"]: r["geometry"] for r in rows}
    assert (exported["C0206"], exported["C0405"], exported["C0101"], exported["E0101"]) == (
        "线",
        "面",
        "点",
        "",
    )
    bad = [
        _row("C0206", "护栏", 几何类型="点"),  # 2: a standard subclass keeps its geometry
        _row("E0694", "本地戊", 几何类型="线"),  # 3: an event has none
        _row("C0792", "本地己", 几何类型="圆"),  # 4: no such geometry
    ]
    before = traces(world.engine)
    with world.engine.begin() as conn, pytest.raises(catalogue.CatalogueRefused) as refused:
        catalogue.import_file(conn, DEMO, _file(bad), False, "tests")
    assert {(e.row, e.code) for e in refused.value.report.errors} == {
        (2, "category_geometry_fixed"),
        (3, "category_geometry"),
        (4, "category_geometry"),
    }
    assert traces(world.engine) == before
    own = [_row("C0793", "智慧灯杆线缆", 几何类型="线"), _row("C0794", "智能井盖")]
    with world.engine.begin() as conn:
        report = catalogue.import_file(conn, DEMO, _file(own), False, "tests")
        assert report.added == ["C0793", "C0794"], report.document()
        stored = dict(
            conn.execute(
                text("SELECT code, geometry FROM case_categories WHERE code IN ('C0793', 'C0794')")
            ).all()
        )
    assert stored == {"C0793": "line", "C0794": "point"}  # a local subclass is a point unless said
