"""The pages label cases with the categories as the bureau keeps them, not as shipped."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from api.settings import DatabaseSettings
from layers.store import db
from tests.accounts import TEST_AUTH, bearer, ensure_account
from tests.databases import PgServer

MINOR = "露天垃圾堆放（本局）"  # E0102's own name at this bureau
MAJOR = "市容秩序（本局）"  # its class's
# the leader's filter names classes with their kind (a component class is named 市容环境 too)
LEADER_CLASS = f"事件·{MAJOR}"


@pytest.mark.parametrize(
    ("path", "shows"),
    [("/maps/overview", MINOR), ("/maps/inspector", MINOR), ("/maps/leader", LEADER_CLASS)],
)
def test_a_category_the_bureau_renamed_is_shown_by_its_new_name(
    pg_server: PgServer, scratch_url: str, path: str, shows: str
) -> None:
    engine = db.make_engine(pg_server.as_owner(scratch_url))
    with engine.begin() as conn:
        shipped = conn.execute(
            text("SELECT minor_name, major_name FROM case_categories WHERE code = 'E0102'")
        ).one()
        conn.execute(
            text("UPDATE case_categories SET minor_name = :n WHERE code = 'E0102'"), {"n": MINOR}
        )
        conn.execute(
            text("UPDATE case_categories SET major_name = :n WHERE major_name = :old"),
            {"n": MAJOR, "old": shipped.major_name},
        )
        conn.execute(  # the catalogue's own class table, which the leader's filter reads
            text("UPDATE case_category_classes SET name = :n WHERE kind = 'event' AND code = '01'"),
            {"n": MAJOR},
        )
    engine.dispose()
    ensure_account(scratch_url, "admin", "admin")
    app = create_app(DatabaseSettings(database_url=scratch_url), auth_settings=TEST_AUTH)
    with TestClient(app) as client:
        page = client.get(path, headers=bearer("admin"))
    assert page.status_code == 200, page.text

    def shown(name: str) -> bool:  # as text, or escaped inside the page's JSON
        return name in page.text or json.dumps(name)[1:-1] in page.text

    assert shown(shows)
    assert not shown(shipped.minor_name if shows == MINOR else f"事件·{shipped.major_name}")
