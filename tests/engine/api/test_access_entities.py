"""Profile access through the REST API (spec/aep-api.md §9.2), on the demo store's snapshot."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import pytest

from engine.api import errors
from tests.engine.api.conftest import UPS, Api
from tests.engine.conftest import DEMO_SANDBOX, DemoStore

pytestmark = pytest.mark.django_db

ENTITIES = f"{UPS}/access/entities"
PROFILE = "_xdm.context.profile"
EVENT = "_xdm.context.experienceevent"


@pytest.fixture
def demo_api(make_api: Any, demo_store: DemoStore, settings: Any) -> Api:
    settings.ENGINE_DATA_DIR = demo_store.engine_dir
    return make_api(sandboxes=(DEMO_SANDBOX, "prod")).in_sandbox(DEMO_SANDBOX)


def a_profile_with(demo_store: DemoStore, namespace: str, events: int = 3) -> Any:
    """A stitched profile with an identity of `namespace` and at least `events` events."""
    return next(p for p in sorted(demo_store.profiles.values(), key=lambda p: p.profile_id)
                if namespace in (p.profile.get("identityMap") or {}) and len(p.events) >= events)


def test_a_profile_by_one_of_its_identities(demo_api: Api, demo_store: DemoStore) -> None:
    loaded = a_profile_with(demo_store, "Email")
    email = loaded.profile["identityMap"]["Email"][0]["id"]
    response = demo_api.get(ENTITIES, {"schema.name": PROFILE, "entityId": email,
                                       "entityIdNS": "email"})
    assert response.status_code == 200
    body = response.json()
    assert list(body) == [loaded.profile_id]
    item = body[loaded.profile_id]
    assert item["entityId"] == loaded.profile_id
    identities = {(i["namespace"]["code"], i["id"]) for i in item["entity"]["identities"]}
    assert identities == {(ns, x["id"]) for ns, items in loaded.profile["identityMap"].items()
                          for x in items}
    assert item["entity"]["person"]["name"] == loaded.profile["person"]["name"]
    assert item["lastModifiedAt"]
    # the same profile by its id (our XID), with only some fields
    by_id = demo_api.get(ENTITIES, {"schema.name": PROFILE, "entityId": loaded.profile_id,
                                    "fields": "person.name.lastName"}).json()
    entity = by_id[loaded.profile_id]["entity"]
    assert entity["person"] == {"name": {"lastName": loaded.profile["person"]["name"]["lastName"]}}
    assert "homeAddress" not in entity and entity["identities"]


def test_an_unknown_identity_is_404_saying_why_excluded_ones_are_not_found(
    demo_api: Api,
) -> None:
    response = demo_api.get(ENTITIES, {"schema.name": PROFILE, "entityId": "nobody@example.com",
                                       "entityIdNS": "Email"})
    assert response.status_code == 404
    body = response.json()
    assert body["type"] == errors.ERROR_TYPE_BASE + errors.NOT_FOUND_TYPE
    assert "Email:nobody@example.com" in body["title"]
    assert "over 50 identities" in body["title"]


def test_the_events_of_a_profile_in_time_order(demo_api: Api, demo_store: DemoStore) -> None:
    loaded = a_profile_with(demo_store, "ECID", events=4)
    ecid = loaded.profile["identityMap"]["ECID"][0]["id"]
    query = {"schema.name": EVENT, "relatedSchema.name": PROFILE, "relatedEntityId": ecid,
             "relatedEntityIdNS": "ECID"}
    body = demo_api.get(ENTITIES, query).json()
    times = [int(e["timestamp"].replace(tzinfo=UTC).timestamp() * 1000) for e in loaded.events]
    assert [child["timestamp"] for child in body["children"]] == sorted(times)
    assert {child["relatedEntityId"] for child in body["children"]} == {loaded.profile_id}
    assert [c["entityId"] for c in body["children"]] == [e["_id"] for e in loaded.events]
    assert body["children"][0]["entity"]["eventType"] == loaded.events[0]["eventType"]
    assert body["_page"]["count"] == len(loaded.events)
    assert body["_page"]["next"] == "" and body["_links"] == {"next": {"href": ""}}

    newest = demo_api.get(ENTITIES, {**query, "orderby": "-timestamp", "limit": 2}).json()
    assert [c["timestamp"] for c in newest["children"]] == sorted(times, reverse=True)[:2]
    assert newest["_page"]["orderby"] == "-timestamp"
    href = newest["_links"]["next"]["href"]
    assert href.startswith("/entities?")
    following = demo_api.get(f"{UPS}/access{href}").json()  # §9.2: GET /access/{href}
    assert [c["timestamp"] for c in following["children"]] == sorted(times, reverse=True)[2:4]

    window = demo_api.get(ENTITIES, {**query, "startTime": sorted(times)[1],
                                     "endTime": sorted(times)[-2]}).json()
    assert [c["timestamp"] for c in window["children"]] == sorted(times)[1:-1]


def test_events_of_an_unknown_profile_are_404(demo_api: Api) -> None:
    response = demo_api.get(ENTITIES, {"schema.name": EVENT, "relatedEntityId": "x",
                                       "relatedEntityIdNS": "ECID"})
    assert response.status_code == 404


@pytest.mark.parametrize("query", [
    {},
    {"schema.name": "_xdm.context.account", "entityId": "x"},
    {"schema.name": PROFILE},
    {"schema.name": EVENT},
])
def test_missing_or_bad_parameters_are_400(demo_api: Api, query: dict[str, str]) -> None:
    assert demo_api.get(ENTITIES, query).status_code == 400


def test_a_sandbox_without_a_store_finds_nothing(demo_api: Api) -> None:
    response = demo_api.in_sandbox("prod").get(ENTITIES, {"schema.name": PROFILE,
                                                          "entityId": "x"})
    assert response.status_code == 404
