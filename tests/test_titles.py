"""Field names for people: titles and code labels in Chinese or English (queryables, Part 5
schemas, collection metadata), chosen by `lang` or `Accept-Language`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator

from api.app import create_app
from api.language import pick_language
from api.settings import DatabaseSettings
from layers.registry import LAYERS
from tests.accounts import TEST_AUTH, sign_in

CJK = re.compile(r"[\u4e00-\u9fff]")
ZH = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}
EN = {"Accept-Language": "en-US,en;q=0.9"}


@pytest.fixture(scope="module")
def client(database_url: str, demo: dict[str, int]) -> Iterator[TestClient]:
    settings = DatabaseSettings(database_url=database_url)
    with TestClient(create_app(settings, auth_settings=TEST_AUTH)) as c:
        yield sign_in(c, database_url)


def get(client: TestClient, url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = client.get(url, headers=headers or {})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "zh"),
        ("", "zh"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        ("en;q=0.5, zh-TW;q=0.9", "zh"),
        ("zh-Hans-CN", "zh"),
        ("fr-FR, de;q=0.8", "zh"),
        ("fr, *;q=0.1", "zh"),
        ("zh;q=0, en;q=0.1", "en"),
        ("ZH", "zh"),
        ("zh;q=bad, en", "en"),
    ],
)
def test_accept_language_picks_the_best_language_spoken(header: str | None, expected: str) -> None:
    assert pick_language(header) == expected


def test_queryables_are_titled_in_the_language_asked_for(client: TestClient) -> None:
    url = "/collections/billboards/queryables"
    default = client.get(url)
    assert default.headers["content-language"] == "zh-CN"
    assert "Accept-Language" in default.headers["vary"]
    assert default.json()["properties"]["type"]["title"] == "设施类型"
    chinese = client.get(url, headers=ZH)
    assert chinese.headers["content-language"] == "zh-CN"
    assert chinese.json()["title"] == "户外广告招牌"
    assert chinese.json()["properties"]["type"]["title"] == "设施类型"
    assert get(client, url, EN)["properties"]["type"]["title"] == "Type"
    # the parameter wins over the header
    assert get(client, f"{url}?lang=zh", EN)["properties"]["owner"]["title"] == "设置单位"
    assert get(client, f"{url}?lang=en", ZH)["properties"]["owner"]["title"] == "Owner"


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("layer_id", list(LAYERS))
def test_every_field_has_a_title_in_both_languages(
    client: TestClient, layer_id: str, lang: str
) -> None:
    layer = LAYERS[layer_id]
    for resource in ("queryables", "schema"):
        body = get(client, f"/collections/{layer_id}/{resource}?lang={lang}")
        Draft202012Validator.check_schema(body)
        assert body["title"] == (layer.title_zh if lang == "zh" else layer.title_en)
        props = body["properties"]
        for f in layer.fields:
            assert props[f.name]["title"] == (f.label_zh if lang == "zh" else f.label_en)
        for name, entry in props.items():
            title = entry["title"]
            assert title and (bool(CJK.search(title)) == (lang == "zh")), (name, title)


def test_code_lists_carry_their_labels(client: TestClient) -> None:
    zh = get(client, "/collections/billboards/schema", ZH)["properties"]["type"]
    en = get(client, "/collections/billboards/schema", EN)["properties"]["type"]
    assert {"const": "shop_sign", "title": "店招"} in zh["oneOf"]
    assert {"const": "shop_sign", "title": "Shop sign"} in en["oneOf"]
    for layer in LAYERS.values():
        for lang in ("zh", "en"):
            schema = get(client, f"/collections/{layer.id}/queryables?lang={lang}")
            for f in layer.fields:
                entry = schema["properties"][f.name]
                if not f.codes:
                    assert "oneOf" not in entry and "enum" not in entry
                    continue
                assert entry["enum"] == [c.value for c in f.codes]
                labels = [c.label_zh if lang == "zh" else c.label_en for c in f.codes]
                assert entry["oneOf"] == [
                    {"const": c.value, "title": label}
                    for c, label in zip(f.codes, labels, strict=True)
                ]


def test_schema_declares_the_roles_of_id_geometry_time_and_parent(client: TestClient) -> None:
    cases = get(client, "/collections/cases/schema", EN)
    props = cases["properties"]
    assert props["id"]["x-ogc-role"] == "id" and props["id"]["readOnly"] is True
    assert props["geom"] == {
        "title": "Geometry",
        "format": "geometry-point",
        "x-ogc-role": "primary-geometry",
        "x-ogc-propertySeq": 2,
    }
    assert props["reported_at"]["x-ogc-role"] == "primary-instant"
    assert {"category_code", "source", "status", "reported_at"} <= set(cases["required"])
    grids = get(client, "/collections/grids/schema")["properties"]
    assert grids["valid_from"]["x-ogc-role"] == "primary-interval-start"
    assert grids["valid_to"]["x-ogc-role"] == "primary-interval-end"
    assert grids["area_m2"]["readOnly"] is True
    orders = get(client, "/collections/work_orders/schema", ZH)["properties"]
    assert orders["dust_site_id"]["x-ogc-collectionId"] == "dust_sites"
    assert orders["dust_site_id"]["title"] == "所属扬尘六类现场"
    assert (
        orders["inspection_id"] | {"x-ogc-collectionId": "dust_inspections"}
        == orders["inspection_id"]
    )
    seqs = [entry["x-ogc-propertySeq"] for entry in orders.values()]
    assert seqs == list(range(1, len(orders) + 1))


@pytest.mark.parametrize("layer_id", list(LAYERS))
def test_features_are_what_their_schema_says(client: TestClient, layer_id: str) -> None:
    schema = get(client, f"/collections/{layer_id}/schema")
    validator = Draft202012Validator(schema)
    features = get(client, f"/collections/{layer_id}/items?limit=300")["features"]
    assert features, layer_id
    for feature in features:
        # a null value is an absent property (Part 5); GeoJSON carries id and geometry beside
        values = {k: v for k, v in feature["properties"].items() if v is not None}
        values["id"] = feature["id"]
        assert set(values) <= set(schema["properties"]), set(values) - set(schema["properties"])
        validator.validate(values)


def test_collection_metadata_is_titled_and_links_its_schema(client: TestClient) -> None:
    zh = client.get("/collections/billboards", headers=ZH)
    assert zh.headers["content-language"] == "zh-CN" and "Accept-Language" in zh.headers["vary"]
    assert zh.json()["title"] == "户外广告招牌"
    assert get(client, "/collections/billboards")["title"] == "户外广告招牌"  # the default
    assert get(client, "/collections/billboards", EN)["title"] == "Billboards and shop signs"
    listed = get(client, "/collections?lang=zh")["collections"]
    assert [c["title"] for c in listed] == [layer.title_zh for layer in LAYERS.values()]
    links = {link["rel"]: link for link in zh.json()["links"]}
    schema = links["http://www.opengis.net/def/rel/ogc/1.0/schema"]
    assert schema["type"] == "application/schema+json" and schema["title"] == "要素模式"
    answer = client.get(schema["href"], headers=ZH)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/schema+json")
    assert answer.json()["properties"]["type"]["title"] == "设施类型"
    conforms = get(client, "/conformance")["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-5/1.0/conf/schemas" in conforms


def test_an_unknown_lang_is_a_400_naming_it(client: TestClient) -> None:
    response = client.get("/collections/billboards/queryables?lang=fr")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_request" and "lang" in body["message_en"]
