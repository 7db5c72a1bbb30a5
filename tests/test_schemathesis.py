"""Property-based requests generated from the app's own OpenAPI: no server error, no answer off-schema."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from api.app import create_app
from api.settings import DatabaseSettings
from tests.accounts import TEST_AUTH, bearer, ensure_account
from tests.conftest import PgServer, fresh_database


@pytest.fixture(scope="module")
def schema(pg_server: PgServer) -> Iterator[Any]:
    databases = fresh_database(pg_server, "fuzz")
    url = next(databases)
    ensure_account(url, "admin", "admin")
    app = create_app(DatabaseSettings(database_url=url), auth_settings=TEST_AUTH)
    with TestClient(app):  # run the lifespan: the app owns its engine
        yield schemathesis.openapi.from_asgi("/api", app)
    next(databases, None)


def operations() -> list[str]:
    app = create_app(DatabaseSettings(database_url="postgresql://unused@127.0.0.1/unused"))
    return [
        f"{method.upper()} {path}"
        for path, item in app.openapi()["paths"].items()
        for method in item
    ]


@pytest.mark.parametrize("operation", operations())
def test_no_server_error_and_no_off_schema_answer(schema: Any, operation: str) -> None:
    method, path = operation.split(" ", 1)
    api_operation = schema[path][method]

    @given(case=api_operation.as_strategy())
    @settings(
        max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    def check(case: Any) -> None:
        case.call_and_validate(
            headers=bearer("admin"), checks=[not_a_server_error, response_schema_conformance]
        )

    check()
