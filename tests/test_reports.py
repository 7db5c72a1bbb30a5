"""The bulletins (通报): opened with python-docx and pypdf, their figures equal to the API's.

The world: the two counties of tests/counties.py and, in the demo county, cases of April and May
2026 (units U1, U2; one case open past its deadline and supervised twelve times in May, one open
since April and supervised in April) and dust sites with inspections and work orders in the
second quarter of 2026 (and one of each just outside it); 三元区 has one May case and one site
inspected in the quarter.
"""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import docx
import pypdf
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, text

from api import cli_ops
from api.app import create_app
from api.settings import DatabaseSettings, EvaluationSettings, ReportSettings
from layers.cases.codes import seed_case_categories
from layers.errors import BadQuery
from layers.reports import fonts, output, periods, wording
from layers.reports.monthfigures import LISTED, WORST_GRIDS
from layers.store import db
from tests.accounts import TEST_AUTH, bearer, ensure_account, sign_in
from tests.casebook import store_case
from tests.counties import DEMO, SANYUAN, CountyRows, two_counties
from tests.databases import fresh_database
from tests.support import assert_clear_failure, citygrid

U1, U2, UB = "启东测试中队", "二中队", "三元区测试中队"
MAY = {"month": "2026-05", "county": DEMO}
Q2 = {"quarter": "2026-Q2", "county": DEMO}
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
SUPERVISIONS = 12  # of case 3 in May: more than a bulletin lists


@dataclass(frozen=True)
class Case:
    """A case row (times local, 2026) and its events (action, at)."""

    section: int
    status: str
    stamps: dict[str, str]
    unit: str | None
    events: tuple[tuple[str, str], ...] = ()


CASES = (
    Case(0, "closed",
         {"reported_at": "05-06 09:00", "registered_at": "05-06 09:10",
          "dispatched_at": "05-06 09:30", "handled_at": "05-06 12:00",
          "closed_at": "05-06 13:10", "deadline": "05-06 14:00"}, U1),
    Case(1, "closed",
         {"reported_at": "05-07 09:00", "registered_at": "05-07 09:05",
          "dispatched_at": "05-07 11:00", "handled_at": "05-08 10:00",
          "closed_at": "05-08 11:00", "deadline": "05-08 09:00"}, U2,
         (("fail", "05-07 20:00"),)),
    Case(2, "dispatched",
         {"reported_at": "05-10 09:00", "registered_at": "05-10 09:10",
          "dispatched_at": "05-10 12:00", "deadline": "05-20 18:00"}, U1,
         tuple(("supervise", f"05-{12 + n // 4:02d} {9 + n % 4:02d}:00")
               for n in range(SUPERVISIONS))),
    Case(3, "closed",
         {"reported_at": "04-10 09:00", "registered_at": "04-10 09:10",
          "dispatched_at": "04-10 09:30", "handled_at": "04-11 09:00",
          "closed_at": "04-11 10:00", "deadline": "04-12 09:00"}, U2),
    Case(0, "dispatched",
         {"reported_at": "04-15 09:00", "registered_at": "04-15 09:10",
          "dispatched_at": "04-15 09:30", "deadline": "04-20 09:00"}, U1,
         (("supervise", "04-18 09:00"),)),
)  # fmt: skip
SANYUAN_CASE = Case(
    0, "closed",
    {"reported_at": "05-06 09:00", "registered_at": "05-06 09:10",
     "dispatched_at": "05-06 09:20", "handled_at": "05-06 10:00",
     "closed_at": "05-06 11:00", "deadline": "05-07 09:20"}, UB,
)  # fmt: skip

# Dust sites beside the one tests/counties.py stores (construction, inspected in March):
# (name, type, x, y), then inspections (site, day, problems) and work orders
# (site, issued, deadline, result, rectified); site 0 is that of tests/counties.py.
SITES = (("滨江路改造", "road", 400, -300), ("东郊堆场", "yard", -400, 300))
INSPECTIONS = (
    (0, "2026-04-05", 2), (0, "2026-05-10", 0), (1, "2026-06-01", 3), (1, "2026-07-01", 4),
)  # fmt: skip
ORDERS = (
    (0, "2026-04-05", "2026-04-12", "on_time", "2026-04-10"),
    (1, "2026-06-01", "2026-06-08", "open", None),
    (1, "2026-06-02", "2026-06-20", "late", "2026-06-25"),
    (1, "2026-07-01", "2026-07-08", "open", None),
)


def store(conn: Connection, rows: CountyRows, case: Case) -> None:
    """The case and its events, written straight into the tables."""
    columns = {
        "source": "inspector",
        "status": case.status,
        "unit": case.unit,
        "address": f"测试路{case.section}号",
        "supervisions": sum(a == "supervise" for a, _ in case.events),
    }
    events = [(a, at, "leader", "dispatched", "dispatched") for a, at in case.events]
    store_case(conn, rows, case.section, columns, case.stamps, events=events)


def store_dust(conn: Connection, rows: CountyRows) -> list[int]:
    """The extra sites, inspections and work orders; the ids of sites 0, 1, 2."""
    ids = [rows.ids["dust_sites"][0]]
    for name, kind, x, y in SITES:
        lon, lat = rows.lonlat(x, y)
        ids.append(
            conn.execute(
                text(
                    "INSERT INTO dust_sites (adcode, geom, name, site_type, status) VALUES "
                    "(:a, ST_SetSRID(ST_MakePoint(:lon, :lat), 4490), :n, :t, 'active') "
                    "RETURNING id"
                ),
                {"a": rows.adcode, "lon": lon, "lat": lat, "n": name, "t": kind},
            ).scalar_one()
        )
    for site, day, problems in INSPECTIONS:
        conn.execute(
            text(
                "INSERT INTO dust_inspections (adcode, dust_site_id, inspected_on, inspector, "
                "problems_found) VALUES (:a, :s, :d, '张三', :p)"
            ),
            {"a": rows.adcode, "s": ids[site], "d": day, "p": problems},
        )
    for site, issued, deadline, result, rectified in ORDERS:
        conn.execute(
            text(
                "INSERT INTO work_orders (adcode, dust_site_id, issued_on, deadline, result, "
                "rectified_on) VALUES (:a, :s, :i, :d, :r, :f)"
            ),
            {"a": rows.adcode, "s": ids[site], "i": issued, "d": deadline}
            | {"r": result, "f": rectified},
        )
    return ids


@dataclass(frozen=True)
class World:
    """The database with both counties, the cases and the dust rows."""

    url: str
    engine: Engine
    demo: CountyRows
    second: CountyRows


@pytest.fixture(scope="module")
def world(pg_server: Any) -> Iterator[World]:
    databases = fresh_database(pg_server, "reports")
    url = next(databases)
    engine = db.make_engine(pg_server.as_owner(url))
    with engine.begin() as conn:
        seed_case_categories(conn)
        demo, second = two_counties(conn)
        for case in CASES:
            store(conn, demo, case)
        store(conn, second, SANYUAN_CASE)
        store_dust(conn, demo)
        conn.execute(
            text(
                "INSERT INTO dust_inspections (adcode, dust_site_id, inspected_on, inspector, "
                "problems_found) VALUES (:a, :s, '2026-05-05', '李四', 7)"
            ),
            {"a": SANYUAN, "s": second.ids["dust_sites"][0]},
        )
    for name, role, held in (
        ("admin", "admin", None),
        ("leader-a", "leader", (DEMO,)),
        ("leader-city", "leader", (DEMO, SANYUAN)),
        ("dispatcher-b", "dispatcher", (SANYUAN,)),
        ("inspector-a", "inspector", (DEMO,)),
        ("handler-a", "handler", (DEMO,)),
        ("planner-a", "planner", (DEMO,)),
    ):
        ensure_account(engine, name, role, unit=U1 if role == "handler" else None, counties=held)
    yield World(url, engine, demo, second)
    engine.dispose()
    next(databases, None)


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    app = create_app(DatabaseSettings(database_url=world.url), auth_settings=TEST_AUTH)
    with TestClient(app) as c:
        c.headers.update(bearer("leader-city"))
        yield c


def fetch(client: TestClient, path: str, account: str = "leader-city", **params: str) -> Any:
    answer = client.get(path, params=params, headers=bearer(account))
    assert answer.status_code == 200, answer.text
    return answer


def opened(content: bytes) -> Any:
    return docx.Document(io.BytesIO(content))


def table_by_header(document: Any, first: str) -> list[list[str]]:
    """The rows (header included) of the table whose first header cell is `first`."""
    for table in document.tables:
        rows = [[c.text for c in row.cells] for row in table.rows]
        if rows[0][0] == first:
            return rows
    raise AssertionError(f"no table headed {first}")


def paragraphs(document: Any) -> list[str]:
    return [p.text for p in document.paragraphs]


@pytest.fixture(scope="module")
def may(client: TestClient) -> Any:
    return opened(fetch(client, "/reports/monthly", **MAY).content)


def test_the_monthly_bulletin_is_a_word_document(client: TestClient) -> None:
    answer = fetch(client, "/reports/monthly", **MAY)
    assert answer.headers["content-type"] == DOCX
    disposition = answer.headers["content-disposition"]
    assert 'filename="monthly-2026-05.docx"' in disposition
    chinese = re.search(r"filename\*=UTF-8''(\S+)", disposition)
    assert chinese and unquote(chinese[1]) == "启东市城市管理局2026年5月数字城管运行情况通报.docx"
    document = opened(answer.content)
    text_ = paragraphs(document)
    assert text_[0] == "启东市城市管理局 2026年5月数字城管运行情况通报"
    assert text_[1] == "统计时段：2026年5月1日至2026年5月31日"
    assert len(document.tables) == 5  # key figures, ranking, worst grids, overdue, supervised
    assert len(document.inline_shapes) == 2  # the trend chart and the map
    assert all(s.width > 0 and s.height > 0 for s in document.inline_shapes)


def test_key_figures_equal_the_api(client: TestClient, may: Any) -> None:
    rows = {r[0]: r for r in table_by_header(may, "指标")[1:]}
    for month, column in (("2026-05", 1), ("2026-04", 2)):
        first, last = f"{month}-01", f"{month}-{30 if month.endswith('04') else 31}"
        period = {"from": first, "to": last, "county": DEMO}
        found = fetch(client, "/stats/indicators", by="month", **period).json()["rows"]
        (api,) = [r for r in found if r["key"] == first]
        regions = fetch(client, "/stats/evaluation", object="region", **period).json()["rows"]
        shown = {
            "受理数（件）": str(sum(r["received"] for r in regions)),
            "立案数（件）": str(api["registered"]),
            "结案数（件）": str(api["closed"]),
            "应结案数（件）": str(api["due"]),
            "结案率": wording.rate(api["closed_rate"]),
            "按期结案率": wording.rate(api["on_time_rate"]),
            "超期数（件）": str(api["overdue"]),
        }
        assert {k: rows[k][column] for k in shown} == shown, month
    # May: cases 1–3 registered, 1 and 2 closed, 1–3 due, 2 and 3 past their deadline
    assert [rows[k][1] for k in ("立案数（件）", "结案数（件）", "应结案数（件）")] == [
        "3",
        "2",
        "3",
    ]
    assert rows["立案数（件）"][3] == "+50.0%"  # 3 against April's 2


def test_the_ranking_equals_the_evaluation(client: TestClient, may: Any) -> None:
    table = table_by_header(may, "排名")
    api = fetch(
        client,
        "/stats/evaluation",
        object="department",
        **{"from": "2026-05-01", "to": "2026-05-31", "county": DEMO},
    ).json()["rows"]
    expected = sorted(api, key=lambda r: -r["score"])
    assert [(r[1], r[7], r[8]) for r in table[1:]] == [
        (r["label"], f"{r['score']:.2f}", r["grade"]) for r in expected
    ]
    assert [r[0] for r in table[1:]] == [str(n) for n in range(1, len(expected) + 1)]
    assert {r[1] for r in table[1:]} == {U1, U2}  # never the other county's unit


def test_the_ranking_uses_the_deployments_weights_file(world: World, tmp_path: Any) -> None:
    packaged = (Path(__file__).parents[1] / "data" / "evaluation_weights.toml").read_text("utf-8")
    department = "[default.department]\non_time_handled_rate = 50\nhandled_rate = 30\nrework = 10\nsupervision = 10\n"
    assert department in packaged
    path = tmp_path / "bureau.toml"
    path.write_text(
        packaged.replace(department, "[default.department]\nhandled_rate = 100\n"), "utf-8"
    )
    app = create_app(
        DatabaseSettings(database_url=world.url),
        auth_settings=TEST_AUTH,
        evaluation=EvaluationSettings(evaluation_weights=path),
    )
    period = {"from": "2026-05-01", "to": "2026-05-31", "county": DEMO}
    with TestClient(app) as own:
        own.headers.update(bearer("leader-city"))
        api = fetch(own, "/stats/evaluation", object="department", **period).json()["rows"]
        table = table_by_header(opened(fetch(own, "/reports/monthly", **MAY).content), "排名")
    assert {r[1]: r[7] for r in table[1:]} == {r["label"]: f"{r['score']:.2f}" for r in api}
    assert {r["score"] for r in api} <= {100 * (r["handled_rate"] or 0) for r in api}


def test_the_lists_are_capped_with_a_count_of_the_rest(client: TestClient, may: Any) -> None:
    overdue = table_by_header(may, "案件编号")  # the overdue list comes first
    api = fetch(client, "/stats/overdue", county=DEMO, top=str(LISTED)).json()
    assert [int(r[0]) for r in overdue[1:]] == [c["id"] for c in api["cases"]]
    assert api["count"] == 3  # case 3 (due May 20), the April case and a March one
    texts = paragraphs(may)
    assert f"超期未结案件共{api['count']}件。" in "".join(texts)
    assert "2026年5月共督办案件12件。" in texts
    assert f"另有{SUPERVISIONS - LISTED}件未列出。" in texts
    last = [t for t in may.tables if t.rows[0].cells[-1].text == "督办时间"]
    assert len(last) == 1 and len(last[0].rows) - 1 == LISTED


def test_the_summary_is_written_from_the_figures(may: Any) -> None:
    summary = paragraphs(may)[3]
    assert summary.startswith("2026年5月，启东市共受理案件3件，环比上升50.0%；立案3件")
    assert "本月督办案件12件" in summary


def test_the_pdf_carries_the_chinese_title(client: TestClient) -> None:
    answer = fetch(client, "/reports/monthly", format="pdf", **MAY)
    assert answer.headers["content-type"] == "application/pdf"
    assert answer.content.startswith(b"%PDF")
    reader = pypdf.PdfReader(io.BytesIO(answer.content))
    first = reader.pages[0].extract_text()
    assert "启东市城市管理局 2026年5月数字城管运行情况通报" in first
    assert "处置部门考核排名" in "".join(p.extract_text() for p in reader.pages)
    assert sum(len(p.images) for p in reader.pages) == 2


def test_a_month_without_cases_still_gives_a_bulletin(client: TestClient) -> None:
    document = opened(fetch(client, "/reports/monthly", month="2025-01", county=DEMO).content)
    assert "无案件数据" in paragraphs(document)[3]
    assert len(document.inline_shapes) == 2


@pytest.mark.parametrize(
    ("account", "county", "status"),
    [
        ("leader-a", None, 200),
        ("leader-a", DEMO, 200),
        ("leader-a", SANYUAN, 403),
        ("dispatcher-b", None, 200),
        ("dispatcher-b", DEMO, 403),
        ("admin", SANYUAN, 200),
        ("inspector-a", None, 403),
        ("handler-a", None, 403),
        ("planner-a", None, 403),
    ],
)
def test_roles_and_counties(
    client: TestClient, account: str, county: str | None, status: int
) -> None:
    for path, period in (
        ("/reports/monthly", {"month": "2026-05"}),
        ("/reports/dust", {"quarter": "2026-Q2"}),
    ):
        params = period | ({"county": county} if county else {})
        answer = client.get(path, params=params, headers=bearer(account))
        assert answer.status_code == status, (path, answer.text)
        if status == 403:
            assert answer.json()["code"] in ("forbidden", "outside_county")


def test_each_county_gets_its_own_figures(client: TestClient) -> None:
    ours = opened(fetch(client, "/reports/monthly", "dispatcher-b", month="2026-05").content)
    assert paragraphs(ours)[0].startswith("三元区城市管理局")
    ranking = table_by_header(ours, "排名")
    assert [r[1] for r in ranking[1:]] == [UB]
    # the city-wide leader asking for one county gets the same document's figures
    theirs = opened(fetch(client, "/reports/monthly", month="2026-05", county=SANYUAN).content)
    assert table_by_header(theirs, "排名") == ranking
    assert table_by_header(theirs, "指标") == table_by_header(ours, "指标")


@pytest.mark.parametrize(
    ("path", "params", "status", "code", "names"),
    [
        ("/reports/monthly", {"month": "2026-13", "county": DEMO}, 400, "invalid_request", "month"),
        ("/reports/monthly", {"month": "May 2026", "county": DEMO}, 400, "invalid_request", "month"),
        ("/reports/monthly", {"month": "1999-12", "county": DEMO}, 400, "invalid_request", "month"),
        ("/reports/monthly", {"county": DEMO}, 400, "invalid_request", "month"),
        ("/reports/monthly", {"month": "2026-05", "county": DEMO, "format": "odt"}, 400, "invalid_request", "format"),
        ("/reports/monthly", {"month": "2026-05"}, 400, "report_county_required", "county"),
        ("/reports/monthly", {"month": "2026-05", "county": "999999"}, 404, "unknown_county", "999999"),
        ("/reports/monthly", {"month": "2026-05", "county": "abc"}, 400, "invalid_request", "county"),
        ("/reports/dust", {"quarter": "2026-Q5", "county": DEMO}, 400, "invalid_request", "quarter"),
        ("/reports/dust", {"quarter": "2026-2", "county": DEMO}, 400, "invalid_request", "quarter"),
        ("/reports/dust", {"quarter": "2026-Q2", "county": DEMO, "format": "xlsx"}, 400, "invalid_request", "format"),
        ("/reports/dust", {"quarter": "2026-Q2"}, 400, "report_county_required", "county"),
    ],
)  # fmt: skip
def test_bad_requests_are_refused(
    client: TestClient, path: str, params: dict[str, str], status: int, code: str, names: str
) -> None:
    answer = client.get(path, params=params)
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["code"] == code and re.search("[\u4e00-\u9fff]", body["message"])
    assert names in body["message_en"] + json.dumps(body), body


@pytest.mark.parametrize(
    ("parse", "raw", "code"),
    [
        (periods.month, "2026-13", "report_month"),
        (periods.month, "1999-12", "report_month"),
        (periods.month, "2026/05", "report_month"),
        (periods.quarter, "2026-Q0", "report_quarter"),
        (periods.quarter, "2101-Q1", "report_quarter"),
        (output.check_format, "odt", "report_format"),
    ],
)
def test_the_command_line_gets_the_same_refusals(parse: Any, raw: str, code: str) -> None:
    with pytest.raises(BadQuery) as refused:
        parse(raw)
    assert refused.value.code == code and raw in refused.value.message_zh


def test_periods() -> None:
    assert periods.month("2024-02").end == date(2024, 2, 29)
    assert periods.previous(periods.month("2026-01")).key == "2025-12"
    q = periods.quarter("2026-q4")
    assert (q.start, q.end, q.name) == (date(2026, 10, 1), date(2026, 12, 31), "2026年第四季度")
    span = periods.months_back(periods.month("2026-03"), 12)
    assert (span.start, span.end) == (date(2025, 4, 1), date(2026, 3, 31))


def expected_dust() -> dict[str, dict[str, int]]:
    """The second quarter's figures per site type and in total, counted from the rows above."""
    kinds = ("construction", *(kind for _, kind, _, _ in SITES))
    inside = [i for i in INSPECTIONS if "2026-04-01" <= i[1] <= "2026-06-30"]
    orders = [o for o in ORDERS if "2026-04-01" <= o[1] <= "2026-06-30"]
    today = date.today().isoformat()

    def figures(sites: list[int]) -> dict[str, int]:
        mine = [o for o in orders if o[0] in sites]
        return {
            "在册现场数": len(sites),
            "督查现场数": len({i[0] for i in inside if i[0] in sites}),
            "督查次数": sum(i[0] in sites for i in inside),
            "发现问题数": sum(i[2] for i in inside if i[0] in sites),
            "交办单数": len(mine),
            "已整改数": sum(o[3] != "open" for o in mine),
            "按期整改数": sum(o[3] == "on_time" for o in mine),
            "逾期数": sum(o[3] == "late" or (o[3] == "open" and o[2] < today) for o in mine),
        }

    out = {"合计": figures([0, 1, 2])}
    labels = {"construction": "建筑工地", "road": "道路工地", "yard": "堆场"}
    for n, kind in enumerate(kinds):
        out[labels[kind]] = figures([n])
    return out


def test_the_dust_bulletin_counts_inspections_and_work_orders(
    client: TestClient, world: World
) -> None:
    answer = fetch(client, "/reports/dust", **Q2)
    assert "dust-2026-Q2.docx" in answer.headers["content-disposition"]
    document = opened(answer.content)
    assert paragraphs(document)[0] == "启东市城市管理局 2026年第二季度扬尘治理督查通报"
    table = table_by_header(document, "现场类型")
    header = table[0][1:]
    found = {row[0]: dict(zip(header, map(int, row[1:]), strict=True)) for row in table[1:]}
    assert found == expected_dust()
    streets = table_by_header(document, "街道/镇")
    assert streets[-1] == table[-1]  # the totals
    street = world.demo.street
    assert [r[0] for r in streets[1:-1]] == [f"{DEMO}测试{street[-6:]}"]  # it holds them all
    worst = table_by_header(document, "序号")
    assert [r[1] for r in worst[1:]] == ["滨江路改造", "测试工地"]  # 3 problems, then 2
    assert len(document.inline_shapes) == 1
    assert "共督查扬尘现场2个（在册3个）3次，发现问题5个" in paragraphs(document)[3]


def test_the_dust_bulletin_of_the_other_county(client: TestClient) -> None:
    document = opened(fetch(client, "/reports/dust", "dispatcher-b", quarter="2026-Q2").content)
    table = table_by_header(document, "现场类型")
    assert table[-1][:5] == ["合计", "1", "1", "1", "7"]


def test_the_dust_pdf(client: TestClient) -> None:
    answer = fetch(client, "/reports/dust", format="pdf", **Q2)
    text_ = pypdf.PdfReader(io.BytesIO(answer.content)).pages[0].extract_text()
    assert "扬尘治理督查通报" in text_


def test_the_cli_writes_the_bulletins(world: World, tmp_path: Any) -> None:
    env = {"CITYGRID_DATABASE_URL": world.url}
    out = tmp_path / "may.docx"
    result = citygrid(
        "report", "monthly", "--month", "2026-05", "--county", DEMO, "--out", str(out), env=env
    )
    assert result.returncode == 0, result.stderr
    document = opened(out.read_bytes())
    assert paragraphs(document)[0] == "启东市城市管理局 2026年5月数字城管运行情况通报"
    assert len(table_by_header(document, "排名")) == 3
    pdf = tmp_path / "dust.pdf"
    result = citygrid(
        "report", "dust", "--quarter", "2026-Q2", "--county", DEMO, "--format", "pdf",
        "--out", str(pdf), env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert pdf.read_bytes().startswith(b"%PDF")
    assert_clear_failure(citygrid("report", "monthly", "--month", "2026-05", env=env), "county")
    assert_clear_failure(
        citygrid("report", "monthly", "--month", "2026-13", "--county", DEMO, env=env), "YYYY-MM"
    )
    assert_clear_failure(
        citygrid("report", "dust", "--quarter", "2026-Q2", "--county", SANYUAN, "--format", "odt",
                 env=env),
        "docx or pdf",
    )  # fmt: skip


def test_check_reports_the_font(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli_ops.font_finding().level == "OK"
    monkeypatch.setenv("CITYGRID_REPORT_FONT", str(tmp_path / "absent.ttf"))
    finding = cli_ops.font_finding()
    assert finding.level == "WARN" and "absent.ttf" in finding.en and "中文" in finding.zh


def test_a_missing_font_is_a_clear_error(world: World, tmp_path: Any) -> None:
    not_a_font = tmp_path / "font.ttf"
    not_a_font.write_bytes(b"not a font")
    with pytest.raises(fonts.CjkFontMissing, match="CITYGRID_REPORT_FONT"):
        fonts.find(not_a_font)
    app = create_app(
        DatabaseSettings(database_url=world.url),
        auth_settings=TEST_AUTH,
        report_settings=ReportSettings(font=not_a_font),
    )
    with TestClient(app) as c:
        answer = c.get("/reports/monthly", params=MAY, headers=bearer("leader-a"))
    assert answer.status_code == 503 and answer.json()["code"] == "cjk_font_missing"
    assert "fonts-wqy-microhei" in answer.json()["message"]


@pytest.fixture(scope="module")
def demo_client(database_url: str, demo: dict[str, int]) -> Iterator[TestClient]:
    settings = DatabaseSettings(database_url=database_url)
    with TestClient(create_app(settings, auth_settings=TEST_AUTH)) as c:
        yield sign_in(c, database_url, "leader", "leader")


def test_the_demo_months_bulletin_equals_the_api(demo_client: TestClient) -> None:
    started = time.perf_counter()
    answer = demo_client.get("/reports/monthly", params={"month": "2023-05"})
    took = time.perf_counter() - started
    assert answer.status_code == 200, answer.text
    print(f"demo bulletin of 2023-05: {took:.2f} s, {len(answer.content)} bytes")
    document = opened(answer.content)
    period = {"from": "2023-05-01", "to": "2023-05-31"}
    api = demo_client.get("/stats/evaluation", params={"object": "department", **period})
    departments = api.json()["rows"]
    assert departments, "the demo month should have departments to rank"
    table = table_by_header(document, "排名")
    assert {r[1]: (r[7], r[8]) for r in table[1:]} == {
        r["label"]: (wording.number(r["score"]), r["grade"] or wording.NONE) for r in departments
    }
    indicators = demo_client.get("/stats/indicators", params={"by": "month", **period}).json()
    (row,) = [r for r in indicators["rows"] if r["key"] == "2023-05-01"]
    key = {r[0]: r[1] for r in table_by_header(document, "指标")[1:]}
    assert key["立案数（件）"] == str(row["registered"]) and int(key["立案数（件）"]) > 0
    assert key["按期结案率"] == wording.rate(row["on_time_rate"])
    assert len(table_by_header(document, "网格编码")) == 1 + WORST_GRIDS
    assert len(document.inline_shapes) == 2
