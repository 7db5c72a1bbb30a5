"""Cases linked to cameras, merchants and garbage points (tests/test_case_links.py) again, on
keys moved to the county: a link is cleared when its row goes, the case keeps its county."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.databases import PgServer
from tests.keyed import keyed
from tests.test_case_links import *  # noqa: F403  (its tests, collected again here)
from tests.test_case_links import World, links_world


@pytest.fixture(scope="module")
def world(pg_server: PgServer) -> Iterator[World]:
    yield from keyed(links_world(pg_server, "keyed_caselinks"), pg_server)
