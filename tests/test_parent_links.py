"""Every feature says what a client needs to write it back: its id, as a property too, and the
id of its parent row (a dust inspection's or a work order's site), which creating one requires."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from api.settings import DatabaseSettings
from layers.registry import LAYERS, Layer
from tests.accounts import TEST_AUTH, sign_in


@pytest.fixture(scope="module")
def client(database_url: str, demo: dict[str, int]) -> Iterator[TestClient]:
    app = create_app(DatabaseSettings(database_url=database_url), auth_settings=TEST_AUTH)
    with TestClient(app) as c:
        yield sign_in(c, database_url)


def must_send(layer: Layer) -> set[str]:
    """The properties a create is refused without."""
    needed = {f.name for f in layer.fields if f.required and not f.derived}
    return needed | ({layer.parent_key} if layer.parent_key else set())


def parents(engine: Engine, layer: Layer) -> dict[int, int]:
    with engine.connect() as conn:
        rows = conn.execute(text(f'SELECT id, "{layer.parent_key}" FROM {layer.id}')).all()
    return {int(r[0]): int(r[1]) for r in rows}


@pytest.mark.parametrize("layer", list(LAYERS.values()), ids=list(LAYERS))
def test_every_feature_returns_its_id_and_what_a_create_needs(
    client: TestClient, layer: Layer
) -> None:
    page = client.get(f"/collections/{layer.id}/items?limit=20").json()
    assert page["features"], layer.id
    for feature in page["features"]:
        assert feature["properties"]["id"] == feature["id"]
        assert must_send(layer) <= set(feature["properties"]), layer.id
    one = page["features"][0]
    single = client.get(f"/collections/{layer.id}/items/{one['id']}").json()
    assert single["properties"]["id"] == one["id"]
    assert must_send(layer) <= set(single["properties"])


@pytest.mark.parametrize("layer_id", ["dust_inspections", "work_orders"])
def test_child_rows_name_their_site(client: TestClient, engine: Engine, layer_id: str) -> None:
    layer = LAYERS[layer_id]
    truth = parents(engine, layer)
    for limit in (100, 1001):  # a page built whole, and a page streamed feature by feature
        features: list[dict[str, Any]] = client.get(
            f"/collections/{layer_id}/items?limit={limit}"
        ).json()["features"]
        assert features
        for feature in features:
            assert feature["properties"]["dust_site_id"] == truth[feature["id"]]
    fid = next(iter(truth))
    single = client.get(f"/collections/{layer_id}/items/{fid}").json()
    assert single["properties"]["dust_site_id"] == truth[fid]
    # chosen properties still say which site the row belongs to
    chosen = client.get(f"/collections/{layer_id}/items?limit=5&properties=issued_on").json()
    if layer_id == "work_orders":
        for feature in chosen["features"]:
            assert set(feature["properties"]) == {"id", "dust_site_id", "issued_on"}
