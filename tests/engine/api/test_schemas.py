"""Union schemas of the Schema Registry, read back by pql.schema.Schema."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from engine import xdm
from engine.models import Dataset, XdmClass
from pql.schema import Schema
from tests.engine.api.conftest import Api

pytestmark = pytest.mark.django_db

REGISTRY = "/data/foundation/schemaregistry"
FULL = "application/vnd.adobe.xed-full+json;version=1"
PROFILE_TREE: xdm.Tree = {"type": "object", "fields": {
    "person": {"type": "object", "fields": {
        "name": {"type": "object", "fields": {"firstName": {"type": "string"}}},
        "birthDate": {"type": "date"}}},
    "loyalty": {"type": "object", "fields": {"points": {"type": "integer"},
                                             "score": {"type": "number"},
                                             "member": {"type": "boolean"}}},
    "identityMap": xdm.IDENTITY_MAP,
    "segmentMembership": xdm.SEGMENT_MEMBERSHIP,
    "emails": {"type": "array", "items": {"type": "string"}},
    "orders": {"type": "array", "items": {"type": "object", "fields": {
        "total": {"type": "number"}, "placed": {"type": "date-time"}}}},
}}
EVENT_TREE: xdm.Tree = {"type": "object", "fields": {
    "timestamp": {"type": "date-time"},
    "eventType": {"type": "string"},
    "commerce": {"type": "object", "fields": {"order": {"type": "object", "fields": {
        "priceTotal": {"type": "number"}}}}},
    "productListItems": {"type": "array", "items": {"type": "object", "fields": {
        "SKU": {"type": "string"}, "quantity": {"type": "integer"}}}},
}}


@pytest.fixture
def datasets() -> None:
    Dataset.objects.create(sandbox="prod", name="Profiles", xdm_class=XdmClass.PROFILE,
                           schema=PROFILE_TREE)
    Dataset.objects.create(sandbox="prod", name="Events", xdm_class=XdmClass.EVENT,
                           schema=EVENT_TREE)


def get_schema(api: Api, schema_id: str, accept: str = FULL) -> Any:
    return api.get(f"{REGISTRY}/tenant/schemas/{quote(schema_id, safe='')}", Accept=accept)


def test_unions_lists_profile_and_event_unions(api: Api) -> None:
    response = api.get(f"{REGISTRY}/tenant/unions")
    assert response.status_code == 200
    ids = {item["$id"] for item in response.json()["results"]}
    assert ids == {"https://ns.adobe.com/xdm/context/profile__union",
                   "https://ns.adobe.com/xdm/context/experienceevent__union"}


def test_union_schema_reads_back_into_the_same_field_paths(api: Api, datasets: None) -> None:
    profile = get_schema(api, "https://ns.adobe.com/xdm/context/profile__union")
    events = get_schema(api, "https://ns.adobe.com/xdm/context/experienceevent__union")
    assert profile.status_code == events.status_code == 200
    schema = Schema.from_json_schema(profile.json(), events.json())
    expected = Schema.from_dict(dict(xdm.flat_paths(PROFILE_TREE)),
                                dict(xdm.flat_paths(EVENT_TREE)))
    assert set(schema.profile) == set(expected.profile)
    assert set(schema.event) == set(expected.event)
    assert {path: kind.kind for path, kind in schema.profile.items()} == {
        path: kind.kind for path, kind in expected.profile.items()}
    # Maps are compared one level deep: from_json_schema types a map's values by their own
    # node only (a map of arrays reads as map<array>), and the paths below carry the rest.
    assert {p: k for p, k in schema.profile.items() if k.kind != "map"} == {
        p: k for p, k in expected.profile.items() if k.kind != "map"}
    assert schema.event == expected.event
    assert str(schema.profile["person.birthDate"]) == "date"
    assert str(schema.event["timestamp"]) == "date-time"


def test_union_schema_shapes(api: Api, datasets: None) -> None:
    body = get_schema(api, "https://ns.adobe.com/xdm/context/profile__union").json()
    assert body["$id"] == "https://ns.adobe.com/xdm/context/profile__union"
    assert body["meta:altId"] == "_xdm.context.profile__union"
    props = body["properties"]
    assert props["person"]["type"] == "object"
    assert props["person"]["properties"]["birthDate"] == {"type": "string", "format": "date"}
    assert props["emails"] == {"type": "array", "items": {"type": "string"}}
    assert props["identityMap"]["type"] == "object"
    assert props["identityMap"]["additionalProperties"]["type"] == "array"
    placed = props["orders"]["items"]["properties"]["placed"]
    assert placed == {"type": "string", "format": "date-time"}


def test_union_schema_by_alt_id_and_with_trailing_slash(api: Api, datasets: None) -> None:
    by_alt = api.get(f"{REGISTRY}/tenant/schemas/_xdm.context.profile__union/", Accept=FULL)
    assert by_alt.status_code == 200
    assert by_alt.json() == get_schema(
        api, "https://ns.adobe.com/xdm/context/profile__union").json()


def test_union_schema_is_per_sandbox(api: Api, datasets: None) -> None:
    dev = api.in_sandbox("dev")
    body = get_schema(dev, "https://ns.adobe.com/xdm/context/profile__union").json()
    assert body["properties"] == {}


def test_union_schema_needs_a_full_accept_header(api: Api) -> None:
    response = get_schema(api, "https://ns.adobe.com/xdm/context/profile__union",
                          accept="application/json")
    assert response.status_code == 406
    assert response.json()["title"] == "NotAcceptableError"


def test_unknown_schema_is_404(api: Api) -> None:
    response = get_schema(api, "https://ns.adobe.com/xdm/context/nothing__union")
    assert response.status_code == 404
