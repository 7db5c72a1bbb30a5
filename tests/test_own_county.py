"""The README's "Your own county" is the script: its commands run as written, as real processes,
on files generated under the names it uses, beside the demo's county; then the pages, grids,
layers and statistics of the new county are checked through the API only, as the accounts those
commands made."""

from __future__ import annotations

import csv
import io
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import mapbox_vector_tile
import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from api.settings import DatabaseSettings
from layers.store import db
from tests import countyfiles as files
from tests.accounts import TEST_AUTH, TEST_PASSWORD, ensure_account
from tests.databases import PgServer, fresh_database
from tests.support import ROOT, citygrid
from tests.world import tile_index

README = ROOT / "README.md"
HEADING = "## Your own county"
BASE = "http://127.0.0.1:8000"
YEAR = 2021
CASE_AREA = (117.615, 26.235, 117.665, 26.261)  # inside the streets' grids
EDITED = ("E0102", "2", "工作日")  # 暴露垃圾: 2 working days instead of the shipped 4 hours


def section() -> str:
    """The README's section, up to the next heading of its level."""
    readme = README.read_text("utf-8")
    start = readme.index(f"\n{HEADING}\n")
    end = readme.index("\n## ", start + 1)
    return readme[start:end]


def commands(text_: str) -> list[list[str]]:
    """The shell commands of the section's code blocks, split as a shell would split them."""
    blocks = re.findall(r"```sh\n(.*?)```", text_, flags=re.S)
    return [words for b in blocks for line in b.splitlines() if (words := shlex.split(line, True))]


@dataclass
class Story:
    """What running the section left: its outputs, the passwords it set and the API's answers."""

    folder: Path
    env: dict[str, str]
    cases: list[dict[str, Any]]
    client: Any = None
    token: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    passwords: dict[str, str] = field(default_factory=dict)
    answers: dict[str, Any] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def generate(folder: Path) -> list[dict[str, Any]]:
    """The bureau's files under the names the README gives them; returns the cases written."""
    files.write_boundary(folder / "三元区边界.shp")
    files.write_shapefile(folder, files.hierarchy(), cpg=False, name="三元区网格")
    files.write_billboards_xlsx(folder / "户外广告.xlsx", files.billboard_truth())
    files.write_parking_gpkg(folder / "停车场.gpkg")
    files.write_buildings_kml(folder / "违法建设.kml")
    cases = files.year_of_cases(300, YEAR, CASE_AREA)
    files.write_gbk_csv(folder / f"{YEAR}年案件.csv", cases)
    return cases


def edit_limits(path: Path) -> None:
    """What the bureau does in Excel between export and import: one time limit changed."""
    table = list(csv.reader(io.StringIO(path.read_text("utf-8-sig"))))
    head = table[0]
    for row in table[1:]:
        if row[0] == EDITED[0]:
            row[head.index("处置时限")], row[head.index("时限单位")] = EDITED[1:]
    out = io.StringIO()
    csv.writer(out).writerows(table)
    path.write_text("\ufeff" + out.getvalue(), encoding="utf-8")


def local(story: Story, words: list[str]) -> list[str]:
    """The command with each file it names taken from the test's folder."""
    named = [i for i, w in enumerate(words) if re.fullmatch(r"[^-/][^/]*\.[a-z]{3,4}", w)]
    for i in named:
        exported = words[1:3] == ["categories", "export"]
        assert exported or (story.folder / words[i]).exists(), f"{words[i]} is not generated"
    return [str(story.folder / w) if i in named else w for i, w in enumerate(words)]


def run_shell(story: Story, words: list[str], client: TestClient) -> None:
    """One command of the section: `citygrid …` as a process, `curl` through the API client."""
    line = shlex.join(words)
    if words[:2] == ["citygrid", "run"]:
        story.skipped.append(line)  # the database is migrated and empty already
        return
    if words[0] == "citygrid":
        done = citygrid(*local(story, words)[1:], env=story.env, timeout=300)
        assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
        assert "Traceback" not in done.stderr
        story.outputs[line] = done.stdout + done.stderr
        if "--password" in words:
            story.passwords[words[3]] = words[words.index("--password") + 1]
        if words[1:3] == ["categories", "export"]:
            edit_limits(story.folder / words[3])
        return
    target = next(w for w in words if w.startswith(BASE))
    parts = urlsplit(target)
    if words[0] == "TOKEN=$(curl":
        form = {k: v[0] for k, v in parse_qs(words[words.index("-d") + 1]).items()}
        assert story.passwords[form["username"]] == form["password"]
        answer = client.post(parts.path, data=form)
        assert answer.status_code == 200, answer.text
        story.token = answer.json()["access_token"]
        return
    assert words[0] == "curl", line
    name, value = words[words.index("-H") + 1].replace("$TOKEN", story.token).split(": ", 1)
    answer = client.get(f"{parts.path}?{parts.query}", headers={name: value})
    assert answer.status_code == 200, answer.text
    story.answers[target] = answer.json()


@pytest.fixture(scope="module")
def story(pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    """The section run from a migrated database holding the demo's county and nothing else."""
    folder = tmp_path_factory.mktemp("sanyuan")
    databases = fresh_database(pg_server, "owncounty")
    url = next(databases)
    env = {
        "CITYGRID_DATABASE_URL": url,
        "CITYGRID_MIGRATION_DATABASE_URL": pg_server.as_owner(url),
        "COLUMNS": "200",
    }
    result = Story(folder, env, generate(folder))
    app = create_app(DatabaseSettings(database_url=url), auth_settings=TEST_AUTH)
    with TestClient(app) as client:
        for words in commands(section()):
            run_shell(result, words, client)
        result.client = client
        yield result
    next(databases, None)


def sign_in(client: TestClient, username: str, password: str) -> dict[str, str]:
    answer = client.post("/auth/token", data={"username": username, "password": password})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def option(command: str, name: str) -> str:
    """The value of option `name` in the section's first command starting with `command`."""
    words = next(w for w in commands(section()) if shlex.join(w).startswith(command))
    return words[words.index(name) + 1]


def as_user(story: Story, username: str) -> dict[str, str]:
    """Signed in with the password the section's command gave the account."""
    return sign_in(story.client, username, story.passwords[username])


def test_the_section_runs_from_an_empty_start(story: Story) -> None:
    assert story.skipped == ["citygrid run --no-demo"]  # the database is migrated already
    assert {"admin", "sy-planner", "sy-leader"} <= set(story.passwords)
    assert sign_in(story.client, "admin", story.passwords["admin"])


def test_the_pages_are_the_countys_own(story: Story) -> None:
    leader = as_user(story, "sy-leader")
    page = story.client.get("/maps/overview?county=350404", headers=leader)
    assert page.status_code == 200
    title = re.search(r"<title>(.*?)</title>", page.text)
    assert title and title.group(1) == "三元区城市管理综合概览"
    centre = re.search(r"center: \[([\d.]+), ([\d.]+)\]", page.text)
    assert centre, "the map has no centre"
    lat, lon = float(centre.group(1)), float(centre.group(2))
    assert files.official_boundary().contains(shapely.Point(lon, lat))
    pages = re.findall(rf"{BASE}(/maps/[^\s`]+)", section())
    assert len(pages) == 2
    for url in pages:
        answer = story.client.get(url, headers=leader)
        assert answer.status_code == 200 and "三元区" in answer.text, url


def test_the_planner_reads_the_grids_with_their_people_from_their_day(story: Story) -> None:
    valid_from = option("citygrid import grids", "--valid-from")
    answer = story.client.get(
        "/collections/grids/items?limit=100", headers=as_user(story, "sy-planner")
    )
    grids = answer.json()["features"]
    expected = {r["网格编码"]: r for r in files.hierarchy()}
    assert {g["properties"]["code"] for g in grids} == set(expected)
    for g in grids:
        p = g["properties"]
        assert p["responsible_person"] == expected[p["code"]]["责任人"]
        assert p["responsible_unit"] == "三元区城市管理局"
        assert (p["valid_from"], p["valid_to"]) == (valid_from, None)


def test_billboards_traced_on_amap_stand_where_they_are(story: Story) -> None:
    answer = story.client.get(
        "/collections/billboards/items?limit=100", headers=as_user(story, "sy-planner")
    )
    truth = files.billboard_truth()
    where = {f"SYGG{k + 1:04d}": point for k, point in enumerate(truth)}
    signs = answer.json()["features"]
    assert len(signs) == len(truth)
    for f in signs:
        got = shapely.Point(files.TO_ZONE.transform(*f["geometry"]["coordinates"]))
        real = shapely.Point(files.TO_ZONE.transform(*where[f["properties"]["registration_no"]]))
        assert got.distance(real) < 3, f["properties"]  # metres, after the GCJ-02 correction


def _limits(story: Story) -> dict[str, tuple[int, str]]:
    engine = db.make_engine(story.env["CITYGRID_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            found = conn.execute(text("SELECT code, time_limit, time_unit FROM case_categories"))
            return {code: (limit, unit) for code, limit, unit in found}
    finally:
        engine.dispose()


def test_the_years_indicators_are_those_counted_by_hand(story: Story) -> None:
    url = next(u for u in story.answers if "/stats/indicators" in u)
    query = parse_qs(urlsplit(url).query)
    start, end = (date.fromisoformat(query[k][0]) for k in ("from", "to"))
    body = story.answers[url]
    limits = _limits(story)
    assert limits[EDITED[0]] == (
        2,
        "working_days",
    )  # the edited limit was imported before the cases
    by_hand = files.expected_indicators(story.cases, limits, start, end)
    fields = ("registered", "closed", "due", "closed_rate", "on_time_rate")
    assert {r["key"]: {k: r[k] for k in fields} for r in body["rows"]} == by_hand
    ((county,),) = [[c] for c in body["counties"]]
    assert (county["adcode"], county["name"], county["rows"]) == (
        files.ADCODE,
        "三元区",
        body["rows"],
    )

    total = files.expected_totals(story.cases, limits, start, end)
    period = f"county=350404&by=month&from={start}&to={end}"
    months = story.client.get(f"/stats/indicators?{period}", headers=as_user(story, "sy-leader"))
    rows = months.json()["rows"]
    assert sum(r["registered"] for r in rows) == total["registered"] > 200  # 立案数
    assert sum(r["closed"] for r in rows) == total["closed"] > 100  # 结案数
    due = sum(r["due"] for r in rows)
    closed_due = sum(round(r["closed_rate"] * r["due"]) for r in rows if r["due"])
    assert due == total["due"] and round(closed_due / due, 4) == total["closed_rate"]  # 结案率


def test_county_show_counts_grids_per_level_and_rows_per_layer(story: Story) -> None:
    shown = next(v for k, v in story.outputs.items() if k.startswith("citygrid county show"))
    assert "三元区" in shown and "EPSG:4548" in shown
    assert "街道 street 2, 社区 community 4, 单元 section 4" in shown
    for layer, n in (
        ("户外广告招牌 billboards", 12),
        ("停车场 parking_lots", 3),
        ("违法建设 illegal_buildings", 2),
        ("案件 cases", len(story.cases)),
    ):
        assert f"{layer}: {n}" in shown


def test_a_demo_county_account_reads_nothing_of_the_new_county(story: Story) -> None:
    client: TestClient = story.client
    ensure_account(story.env["CITYGRID_DATABASE_URL"], "qd-leader", "leader", counties=("320681",))
    qidong = sign_in(client, "qd-leader", TEST_PASSWORD)
    for layer in ("grids", "billboards", "parking_lots", "illegal_buildings", "cases"):
        answer = client.get(f"/collections/{layer}/items?limit=10", headers=qidong).json()
        assert answer["features"] == [] and answer["numberMatched"] == 0, layer
    x, y = tile_index(*files.billboard_truth()[0], 14)
    sanyuan = as_user(story, "sy-leader")
    for name, headers in (("qd", qidong), ("sy", sanyuan), ("qd", qidong)):  # both orders
        tile = client.get(
            f"/collections/billboards/tiles/WebMercatorQuad/14/{x}/{y}", headers=headers
        )
        assert tile.status_code == 200
        found = mapbox_vector_tile.decode(tile.content).get("billboards", {}).get("features", [])
        assert bool(found) == (name == "sy"), name
    period = f"from={YEAR}-01-01&to={YEAR}-12-31&by=month"
    own = client.get(f"/stats/indicators?{period}", headers=qidong).json()
    assert sum(r["registered"] for r in own["rows"]) == 0
    assert [c["adcode"] for c in own["counties"]] == ["320681"]
    refused = client.get(f"/stats/indicators?county=350404&{period}", headers=qidong)
    assert refused.status_code == 403 and refused.json()["code"] == "outside_county"
    assert client.get("/maps/overview?county=350404", headers=qidong).status_code == 403
