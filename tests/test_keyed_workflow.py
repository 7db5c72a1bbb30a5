"""The case workflow (tests/test_workflow.py) again, on keys moved to the county: the whole way
of a case with its events, every legal move, the side paths and a handler's own cases (the 221
refused moves change nothing and are left to the original module)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.databases import PgServer
from tests.keyed import keyed
from tests.test_workflow import (  # noqa: F401  (its tests and client, collected again here)
    client,
    test_a_case_goes_the_whole_way_with_its_times_deadline_and_events,
    test_a_handling_unit_sees_and_moves_only_its_own_cases,
    test_each_legal_move_works_for_its_role_and_no_other,
    test_side_paths_return_rework_park_and_reject,
)
from tests.world import World, make_world


@pytest.fixture(scope="module")
def world(pg_server: PgServer) -> Iterator[World]:
    yield from keyed(make_world(pg_server, "keyed_workflow"), pg_server)
