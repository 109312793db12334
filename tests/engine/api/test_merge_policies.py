"""Merge policies through the REST API (spec/aep-api.md §9.1), on the engine's MergePolicy."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.api import errors
from engine.models import Dataset, MergePolicy, XdmClass
from tests.engine.api.conftest import UPS, Api

pytestmark = pytest.mark.django_db

POLICIES = f"{UPS}/config/mergePolicies"


def policy_body(name: str = "Dataset precedence", **extra: object) -> dict[str, object]:
    return {"name": name, "schema": {"name": "_xdm.context.profile"},
            "identityGraph": {"type": "none"}, "attributeMerge": {"type": "timestampOrdered"},
            "default": False, "isActiveOnEdge": False, **extra}


def test_list_always_has_the_sandbox_default(api: Api) -> None:
    response = api.get(POLICIES)
    assert response.status_code == 200
    body = response.json()
    assert body["_page"] == {"totalCount": 1, "pageSize": 1, "count": 1}
    assert body["_links"] == {"next": {"href": ""}}
    (policy,) = body["children"]
    assert policy["default"] is True
    assert policy["schema"] == {"name": "_xdm.context.profile"}
    assert policy["identityGraph"] == {"type": "pdg"}
    assert policy["attributeMerge"] == {"type": "timestampOrdered"}
    assert policy["imsOrgId"] == api.org
    assert policy["sandbox"]["sandboxName"] == "prod"
    assert set(policy) >= {"id", "name", "version", "isActiveOnEdge", "updateEpoch"}


def test_create_and_get_a_dataset_precedence_policy(api: Api) -> None:
    first = Dataset.objects.create(sandbox="prod", name="CRM", xdm_class=XdmClass.PROFILE)
    second = Dataset.objects.create(sandbox="prod", name="Web", xdm_class=XdmClass.PROFILE)
    response = api.post(POLICIES, policy_body(attributeMerge={
        "type": "dataSetPrecedence", "order": [second.id, first.id]}))
    assert response.status_code == 200
    created = response.json()
    assert created["attributeMerge"] == {"type": "dataSetPrecedence",
                                         "order": [second.id, first.id]}
    assert created["identityGraph"] == {"type": "none"}
    assert created["version"] == 1
    row = MergePolicy.objects.get(id=created["id"])
    assert (row.identity_graph, row.attribute_merge, row.dataset_order, row.default) == (
        "none", "dataSetPrecedence", [second.id, first.id], False)
    assert api.get(f"{POLICIES}/{created['id']}").json() == created


def test_a_new_default_replaces_the_old_one(api: Api) -> None:
    old = api.get(POLICIES).json()["children"][0]
    new = api.post(POLICIES, policy_body(name="New default", default=True)).json()
    assert new["default"] is True
    assert api.get(f"{POLICIES}/{old['id']}").json()["default"] is False
    defaults = api.get(POLICIES, {"default": "true"}).json()["children"]
    assert [p["id"] for p in defaults] == [new["id"]]


def test_list_pages_with_a_next_link(api: Api) -> None:
    for name in ("A", "B", "C"):
        api.post(POLICIES, policy_body(name=name))
    first = api.get(POLICIES, {"limit": 2, "orderBy": "+name"}).json()
    assert first["_page"] == {"totalCount": 4, "pageSize": 2, "count": 2}
    assert [p["name"] for p in first["children"]] == ["A", "B"]
    href = first["_links"]["next"]["href"]
    assert href.startswith("@/mergePolicies?")
    second = api.get(POLICIES + href.removeprefix("@/mergePolicies")).json()
    assert [p["name"] for p in second["children"]] == ["C", "Default timestamp-ordered"]
    assert second["_links"] == {"next": {"href": ""}}
    newest_first = api.get(POLICIES, {"orderBy": "-name", "limit": 1}).json()
    assert newest_first["children"][0]["name"] == "Default timestamp-ordered"


@pytest.mark.parametrize(("change", "message"), [
    ({"identityGraph": {"type": "graph"}}, "identityGraph.type"),
    ({"attributeMerge": {"type": "dataSetPrecedence"}}, "attributeMerge.order"),
    ({"attributeMerge": {"type": "dataSetPrecedence", "order": ["nope"]}},
     "attributeMerge.order"),
    ({"schema": {"name": "_xdm.context.experienceevent"}}, "schema"),
    ({"name": ""}, "name"),
])
def test_invalid_policies_are_400(api: Api, change: dict, message: str) -> None:
    response = api.post(POLICIES, policy_body(**change))
    assert response.status_code == 400
    assert message in response.json()["title"]


def test_duplicate_policy_name_is_400(api: Api) -> None:
    api.post(POLICIES, policy_body())
    response = api.post(POLICIES, policy_body())
    assert response.status_code == 400
    assert response.json()["title"] == errors.MERGE_POLICY_EXISTS.format(
        name="Dataset precedence", sandbox="prod")


def test_unknown_policy_is_404(api: Api) -> None:
    response = api.get(f"{POLICIES}/10648288-cda5-11e8-a8d5-f2801f1b9fd1")
    assert response.status_code == 404
    assert response.json()["type"] == errors.ERROR_TYPE_BASE + errors.NOT_FOUND_TYPE


def test_definition_may_name_a_policy_of_its_sandbox(api: Api, tmp_path: Path) -> None:
    from tests.engine.api.conftest import DEFINITIONS, definition_body
    from tests.engine.api.store import schema_store

    for sandbox in ("prod", "dev"):  # the fields the definition names
        schema_store(tmp_path, sandbox)
    policy = api.post(POLICIES, policy_body()).json()
    created = api.post(DEFINITIONS, definition_body(mergePolicyId=policy["id"]))
    assert created.json()["mergePolicyId"] == policy["id"]
    elsewhere = api.in_sandbox("dev").post(DEFINITIONS,
                                           definition_body(mergePolicyId=policy["id"]))
    assert elsewhere.status_code == 400
    assert elsewhere.json()["title"] == errors.MERGE_POLICY_NOT_FOUND.format(id=policy["id"])
