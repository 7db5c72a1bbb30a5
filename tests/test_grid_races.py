"""Two grid changes of the same grids at once: one is made, the other is told 409, nothing half-done."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import shapely
from fastapi.testclient import TestClient
from shapely.geometry import box, mapping
from sqlalchemy import Engine, text

from api.app import create_app
from api.settings import DatabaseSettings
from gis.topology import CheckOptions
from layers.grids.grids import check_stored
from layers.store import db
from tests.accounts import TEST_AUTH, sign_in
from tests.databases import fresh_database
from tests.street import COMMUNITIES, cell_box, insert_street, lonlat, section

Op = tuple[str, dict[str, Any]]


@pytest.fixture(scope="module")
def engine(pg_server: Any) -> Iterator[Engine]:
    databases = fresh_database(pg_server, "races")
    eng = db.make_engine(next(databases))
    with eng.begin() as conn:
        insert_street(conn, sectioned=tuple(COMMUNITIES))
    yield eng
    eng.dispose()
    next(databases, None)


@pytest.fixture(scope="module")
def client(engine: Engine) -> Iterator[TestClient]:
    url = engine.url.render_as_string(hide_password=False)
    app = create_app(DatabaseSettings(database_url=url), auth_settings=TEST_AUTH)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield sign_in(c, engine, "race-planner", "planner")


def split(community: int, k: int) -> Op:
    x0, y0, x1, y1 = cell_box(community, k).bounds
    line = shapely.LineString([((x0 + x1) / 2, y0 - 40), ((x0 + x1) / 2, y1 + 40)])
    return "/grids/split", {"line": mapping(lonlat(line)), "code": section(community, k)}


def merge(community: int, *ks: int) -> Op:
    return "/grids/merge", {"codes": [section(community, k) for k in ks]}


def redraw(community: int, k: int) -> Op:
    x0, y0, x1, y1 = cell_box(community, k).bounds
    drawn = box(x0, y0, x1 + 40, y1)  # 40 m into the eastern neighbour
    return f"/grids/{section(community, k)}/redraw", {"geometry": mapping(lonlat(drawn))}


RACES = {
    "split × split": (1, split(1, 6), split(1, 6)),
    "split × merge": (2, split(2, 6), merge(2, 6, 7)),
    "merge × merge": (3, merge(3, 1, 2), merge(3, 2, 3)),
    "redraw × split": (4, redraw(4, 6), split(4, 6)),
}


def counts(engine: Engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(
                text(
                    "SELECT (SELECT count(*) FROM grids), "
                    "(SELECT count(*) FROM grids WHERE valid_to IS NOT NULL), "
                    "(SELECT count(*) FROM audit_log)"
                )
            ).one()
        )


def wait_for_waiters(engine: Engine, n: int) -> None:
    """Until `n` sessions wait for the family lock the test holds."""
    deadline = time.monotonic() + 20
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            ).scalar_one()
            if waiting >= n:
                return
            time.sleep(0.02)
    raise AssertionError(f"{n} changes never reached the family lock")


@pytest.mark.parametrize("race", RACES, ids=list(RACES))
def test_two_changes_of_the_same_grids_at_once(
    client: TestClient, engine: Engine, race: str
) -> None:
    community, *ops = RACES[race]
    parent = COMMUNITIES[community]
    before = counts(engine)
    answers: list[Any] = [None, None]
    barrier = threading.Barrier(len(ops))

    def send(i: int, op: Op) -> None:
        barrier.wait()
        answers[i] = client.post(op[0], json=op[1])

    # The test holds the family's lock until both changes have read their grids and wait for it,
    # so the race is the same on every run: the second to get the lock finds its grids changed.
    with engine.begin() as gate:
        gate.execute(text("SELECT pg_advisory_xact_lock(hashtext(:p))"), {"p": parent})
        threads = [threading.Thread(target=send, args=(i, op)) for i, op in enumerate(ops)]
        for t in threads:
            t.start()
        wait_for_waiters(engine, 2)
    for t in threads:
        t.join(timeout=60)
    assert all(a is not None for a in answers), "a change did not answer"
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200, 409], [a.text for a in answers]
    won = next(a for a in answers if a.status_code == 200).json()
    lost = next(a for a in answers if a.status_code == 409).json()
    assert lost["code"] == "grid_changed" and "刚被他人修改" in lost["message"], lost
    # exactly one change is stored: its rows and audit entries, no more
    grids, closed, audited = counts(engine)
    assert grids == before[0] + len(won["created"])
    assert closed == before[1] + len(won["closed"])
    assert audited == before[2] + len(won["created"]) + len(won["closed"])
    with engine.connect() as conn:
        report, _ = check_stored(conn, parent, CheckOptions(sliver_m2=100.0))
        duplicates = conn.execute(
            text(
                "SELECT count(*) FROM (SELECT code FROM grids WHERE valid_to IS NULL "
                "GROUP BY code HAVING count(*) > 1) AS d"
            )
        ).scalar_one()
    assert not report.problems and duplicates == 0
