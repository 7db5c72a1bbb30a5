"""Every layer written in two counties (tests/test_county_writes.py) again, on keys moved to
the county."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.databases import PgServer
from tests.keyed import keyed
from tests.test_county_writes import *  # noqa: F403  (its tests, collected again here)
from tests.test_county_writes import World, writes_world


@pytest.fixture(scope="module")
def world(pg_server: PgServer) -> Iterator[World]:
    yield from keyed(writes_world(pg_server, "keyed_countywrites"), pg_server)
