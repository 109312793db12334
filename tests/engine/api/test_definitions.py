"""Segment definitions through the REST API (spec/aep-api.md §2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import pql
from engine.api import errors
from engine.api.auth import MAX_PARAM
from engine.models import SegmentDefinition
from tests.engine.api.conftest import DEFINITIONS, UPS, Api, definition_body
from tests.engine.api.store import schema_store

pytestmark = pytest.mark.django_db

TEXT = 'workAddress.country = "US"'
JSON_VALUE = json.dumps(pql.to_json(pql.parse(TEXT)))


@pytest.fixture(autouse=True)
def schemas(tmp_path: Path) -> None:
    """Both sandboxes have the fields these definitions name (the API checks them)."""
    for sandbox in ("prod", "dev"):
        schema_store(tmp_path / "input", sandbox)


def test_create_with_pql_text_answers_the_full_object(api: Api) -> None:
    response = api.post(DEFINITIONS, definition_body(ttlInDays=30))
    assert response.status_code == 200
    body = response.json()
    assert response["X-Location"] == f"{DEFINITIONS}/{body['id']}"
    assert body["name"] == "US workers"
    assert body["description"] == "Works in the US"
    assert body["expression"] == {"type": "PQL", "format": "pql/text", "value": TEXT}
    assert body["schema"] == {"name": "_xdm.context.profile"}
    assert body["profileInstanceId"] == "ups"
    assert body["imsOrgId"] == api.org
    assert body["sandbox"]["sandboxName"] == "prod"
    assert body["evaluationInfo"] == {"batch": {"enabled": True},
                                      "continuous": {"enabled": False},
                                      "synchronous": {"enabled": False}}
    assert body["dataGovernancePolicy"] == {"excludeOptOut": True}
    assert body["ttlInDays"] == 30
    assert body["creationTime"] == body["updateTime"] > 1_600_000_000_000  # epoch ms
    assert body["updateEpoch"] == body["updateTime"] // 1000  # epoch s
    default_policy = api.get(f"{UPS}/config/mergePolicies", {"default": "true"}).json()
    assert body["mergePolicyId"] == default_policy["children"][0]["id"]
    assert api.get(f"{DEFINITIONS}/{body['id']}").json() == body


def test_create_with_pql_json_keeps_what_was_sent_and_stores_canonical_text(api: Api) -> None:
    response = api.post(DEFINITIONS, definition_body(value=JSON_VALUE, fmt="pql/json"))
    assert response.status_code == 200
    body = response.json()
    assert body["expression"] == {"type": "PQL", "format": "pql/json", "value": JSON_VALUE}
    assert SegmentDefinition.objects.get(id=body["id"]).pql_text == TEXT


@pytest.mark.parametrize(("value", "line", "column"), [
    ('workAddress.country = "US" and', 1, 31),
    ('a = 1\nand b ==', 2, 8),
])
def test_bad_pql_is_400_with_line_and_column_and_nothing_stored(
    api: Api, value: str, line: int, column: int
) -> None:
    response = api.post(DEFINITIONS, definition_body(value=value))
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == errors.ERROR_TYPE_BASE + errors.VALIDATION_TYPE
    assert body["status"] == 400
    assert f"(line {line}, column {column})" in body["title"]
    item = body["errors"]["400"][0]
    assert (item["line"], item["column"]) == (line, column)
    assert item["message"] == body["title"]
    assert not SegmentDefinition.objects.exists()


def test_bad_pql_json_is_400_naming_the_node(api: Api) -> None:
    value = json.dumps({"nodeType": "fnApply", "fnName": "=", "params": [{"nodeType": "?"}]})
    response = api.post(DEFINITIONS, definition_body(value=value, fmt="pql/json"))
    assert response.status_code == 400
    assert response.json()["title"].startswith("The PQL expression is not valid:")
    assert "path" in response.json()["errors"]["400"][0]
    assert not SegmentDefinition.objects.exists()


@pytest.mark.parametrize(("change", "message"), [
    ({"name": None}, errors.FIELD_REQUIRED.format(field="name")),
    ({"expression": None}, errors.FIELD_REQUIRED.format(field="expression")),
    ({"expression": {"type": "ARL", "format": "pql/text", "value": "a"}},
     errors.EXPRESSION_TYPE_UNSUPPORTED.format(type="ARL")),
    ({"expression": {"type": "PQL", "format": "sql", "value": "a"}},
     errors.EXPRESSION_FORMAT_UNSUPPORTED.format(format="sql")),
    ({"mergePolicyId": "no-such-policy"},
     errors.MERGE_POLICY_NOT_FOUND.format(id="no-such-policy")),
])
def test_invalid_bodies_are_400_with_a_message(api: Api, change: dict, message: str) -> None:
    body = {key: value for key, value in {**definition_body(), **change}.items()
            if value is not None}
    response = api.post(DEFINITIONS, body)
    assert response.status_code == 400
    assert response.json()["title"] == message


def test_body_that_is_not_json_is_400(api: Api) -> None:
    response = api.client.post(DEFINITIONS, "{oops", content_type="application/json",
                               headers=api.headers())
    assert response.status_code == 400
    assert response.json()["type"] == errors.ERROR_TYPE_BASE + errors.BODY_INVALID_TYPE


def test_duplicate_name_in_a_sandbox_is_422(api: Api) -> None:
    assert api.post(DEFINITIONS, definition_body()).status_code == 200
    response = api.post(DEFINITIONS, definition_body(value="loyalty.points = 1"))
    assert response.status_code == 422
    assert response.json()["title"] == errors.DEFINITION_EXISTS.format(name="US workers",
                                                                       sandbox="prod")
    assert SegmentDefinition.objects.count() == 1


def test_unknown_id_is_404_in_aep_shape(api: Api) -> None:
    missing = "4afe34ae-8c98-4513-8a1d-67ccaa54bc05"
    response = api.get(f"{DEFINITIONS}/{missing}")
    assert response.status_code == 404
    body = response.json()
    assert body["type"] == errors.ERROR_TYPE_BASE + errors.NOT_FOUND_TYPE
    assert body["title"] == errors.DEFINITION_NOT_FOUND.format(id=missing)
    assert body["errors"]["404"][0]["message"] == body["title"]
    assert api.get(f"{DEFINITIONS}/not-a-uuid").status_code == 404


def test_list_pages_sorts_and_links_the_next_page(api: Api) -> None:
    for name in ("b", "c", "a"):
        assert api.post(DEFINITIONS, definition_body(name=name)).status_code == 200
    everything = api.get(DEFINITIONS).json()
    assert [s["name"] for s in everything["segments"]] == ["a", "c", "b"]  # creationTime desc
    assert everything["page"] == {"totalCount": 3, "totalPages": 1, "sortField": "creationTime",
                                  "sort": "desc", "pageSize": 3, "limit": 100}
    assert everything["link"] == {}  # as Adobe's example
    assert everything["_links"] == {"next": {"href": ""}}

    first = api.get(DEFINITIONS, {"limit": 2, "sort": "name:asc"}).json()
    assert [s["name"] for s in first["segments"]] == ["a", "b"]
    assert first["page"]["totalPages"] == 2
    assert first["link"]["next"].startswith(DEFINITIONS + "?")
    assert first["_links"]["next"]["href"] == first["link"]["next"]
    second = api.get(first["link"]["next"]).json()
    assert [s["name"] for s in second["segments"]] == ["c"]
    assert second["link"] == {} and second["_links"] == {"next": {"href": ""}}

    by_page = api.get(DEFINITIONS, {"limit": 2, "page": 1, "sort": "name:desc"}).json()
    assert [s["name"] for s in by_page["segments"]] == ["a"]
    by_start = api.get(DEFINITIONS, {"start": 1, "limit": 1, "sort": "name:asc"}).json()
    assert [s["name"] for s in by_start["segments"]] == ["b"]


def test_list_rejects_an_unknown_sort(api: Api) -> None:
    response = api.get(DEFINITIONS, {"sort": "size:asc"})
    assert response.status_code == 400
    assert response.json()["title"].startswith("The sort 'size:asc' is not valid")


def test_list_filters_streaming_definitions(api: Api) -> None:
    streaming = {"batch": {"enabled": False}, "continuous": {"enabled": True},
                 "synchronous": {"enabled": False}}
    api.post(DEFINITIONS, definition_body(name="batch"))
    api.post(DEFINITIONS, definition_body(name="streaming", evaluationInfo=streaming))
    body = api.get(DEFINITIONS, {"evaluationInfo.continuous.enabled": "true"}).json()
    assert [s["name"] for s in body["segments"]] == ["streaming"]


def test_bulk_get_is_207_with_found_and_missing_ids(api: Api) -> None:
    one = api.post(DEFINITIONS, definition_body(name="one")).json()
    two = api.post(DEFINITIONS, definition_body(name="two")).json()
    elsewhere = api.in_sandbox("dev").post(DEFINITIONS, definition_body(name="x")).json()
    missing = "c527dc3f-07fe-4b96-be4e-23f38e734ff8"
    response = api.post(f"{DEFINITIONS}/bulk-get", {"ids": [
        {"id": one["id"]}, {"id": two["id"]}, {"id": missing}, {"id": elsewhere["id"]}]})
    assert response.status_code == 207
    results = response.json()["results"]
    assert results[one["id"]] == one
    assert results[two["id"]] == two
    for absent in (missing, elsewhere["id"]):
        assert results[absent]["errors"] == {"404": [{"code": 404, "message": "Not found."}]}


@pytest.mark.parametrize("ids", [[], [{"id": "x"}] * 101, "x"])
def test_bulk_get_needs_1_to_100_ids(api: Api, ids: object) -> None:
    response = api.post(f"{DEFINITIONS}/bulk-get", {"ids": ids})
    assert response.status_code == 400
    assert response.json()["title"] == errors.BULK_IDS_INVALID


def test_patch_overwrites_the_whole_object_and_keeps_creation_time(api: Api) -> None:
    created = api.post(DEFINITIONS, definition_body(ttlInDays=30)).json()
    sent = {**created, "name": "US or CA workers", "description": "",
            "expression": {"type": "PQL", "format": "pql/text",
                           "value": 'workAddress.country in ["US", "CA"]'},
            "creationTime": 0, "updateTime": 0, "updateEpoch": 0}
    del sent["ttlInDays"]
    response = api.patch(f"{DEFINITIONS}/{created['id']}", sent)
    assert response.status_code == 200
    body = response.json()
    assert response["X-Location"] == f"{DEFINITIONS}/{created['id']}"
    assert body["id"] == created["id"]
    assert body["name"] == "US or CA workers"
    assert body["description"] == ""
    assert body["expression"]["value"] == 'workAddress.country in ["US", "CA"]'
    assert "ttlInDays" not in body  # overwritten, not merged
    assert body["creationTime"] == created["creationTime"]
    assert body["updateTime"] > created["updateTime"]
    assert api.get(f"{DEFINITIONS}/{created['id']}").json() == body


def test_patch_with_bad_pql_changes_nothing(api: Api) -> None:
    created = api.post(DEFINITIONS, definition_body()).json()
    response = api.patch(f"{DEFINITIONS}/{created['id']}", definition_body(value="a ="))
    assert response.status_code == 400
    assert "(line 1, column" in response.json()["title"]
    assert api.get(f"{DEFINITIONS}/{created['id']}").json() == created


def test_patch_to_another_definitions_name_is_422(api: Api) -> None:
    api.post(DEFINITIONS, definition_body(name="taken"))
    mine = api.post(DEFINITIONS, definition_body(name="mine")).json()
    response = api.patch(f"{DEFINITIONS}/{mine['id']}", definition_body(name="taken"))
    assert response.status_code == 422


def test_delete_answers_a_message_and_removes_the_definition(api: Api) -> None:
    created = api.post(DEFINITIONS, definition_body()).json()
    response = api.delete(f"{DEFINITIONS}/{created['id']}")
    assert response.status_code == 200
    assert response.json()["status"] is True
    assert api.get(f"{DEFINITIONS}/{created['id']}").status_code == 404
    assert api.delete(f"{DEFINITIONS}/{created['id']}").status_code == 404


def test_delete_is_refused_while_another_definition_uses_it_with_in_segment(api: Api) -> None:
    base = api.post(DEFINITIONS, definition_body(name="base")).json()
    user = api.post(DEFINITIONS, definition_body(
        name="uses base", value=f'inSegment("{base["id"]}") and homeAddress.city = "Paris"',
    )).json()
    # A definition that only mentions the id in a string literal does not depend on it.
    assert api.post(DEFINITIONS, definition_body(
        name="mentions", value=f'homeAddress.city = "{base["id"]}"')).status_code == 200
    response = api.delete(f"{DEFINITIONS}/{base['id']}")
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == errors.ERROR_TYPE_BASE + errors.HAS_DEPENDENTS_TYPE
    assert body["title"] == errors.DEFINITION_REFERENCED.format(
        names=f"'uses base' ({user['id']})")
    assert api.get(f"{DEFINITIONS}/{base['id']}").status_code == 200

    assert api.delete(f"{DEFINITIONS}/{user['id']}").status_code == 200
    assert api.delete(f"{DEFINITIONS}/{base['id']}").status_code == 200


def test_in_segment_reference_in_pql_json_also_blocks_delete(api: Api) -> None:
    base = api.post(DEFINITIONS, definition_body(name="base")).json()
    value = json.dumps(pql.to_json(pql.parse(f'not inSegment("{base["id"]}")')))
    assert api.post(DEFINITIONS, definition_body(name="not base", value=value,
                                                 fmt="pql/json")).status_code == 200
    assert api.delete(f"{DEFINITIONS}/{base['id']}").status_code == 400


def test_conversion_text_to_json(api: Api) -> None:
    response = api.post(f"{UPS}/segment/conversion", definition_body(ttlInDays=60))
    assert response.status_code == 200
    body = response.json()
    assert body["expression"]["type"] == "PQL"
    assert body["expression"]["format"] == "pql/json"
    assert pql.from_json(json.loads(body["expression"]["value"])) == pql.parse(TEXT)
    assert json.loads(body["expression"]["value"]) == {
        "nodeType": "fnApply", "fnName": "=", "params": [
            {"nodeType": "fieldLookup", "fieldName": "country",
             "object": {"nodeType": "fieldLookup", "fieldName": "workAddress",
                        "object": {"nodeType": "parameterReference", "position": 1}}},
            {"nodeType": "literal", "literalType": "String", "value": "US"}]}
    assert body["imsOrgId"] == api.org
    assert body["sandbox"]["sandboxName"] == "prod"
    assert body["ttlInDays"] == 60
    assert body["name"] == "US workers"
    assert not SegmentDefinition.objects.exists()


def test_conversion_json_to_text(api: Api) -> None:
    response = api.post(f"{UPS}/segment/conversion",
                        definition_body(value=JSON_VALUE, fmt="pql/json"))
    assert response.status_code == 200
    assert response.json()["expression"] == {"type": "PQL", "format": "pql/text",
                                             "value": TEXT}


def test_conversion_of_bad_pql_is_400(api: Api) -> None:
    response = api.post(f"{UPS}/segment/conversion", definition_body(value="a = "))
    assert response.status_code == 400
    assert "(line 1, column" in response.json()["title"]


@pytest.mark.parametrize("param", ["limit", "start", "page"])
def test_list_rejects_a_paging_parameter_that_is_not_a_number(api: Api, param: str) -> None:
    response = api.get(DEFINITIONS, {param: "-1"})
    assert response.status_code == 400
    assert response.json()["title"] == errors.NUMBER_INVALID.format(name=param, maximum=MAX_PARAM)


def test_name_longer_than_1024_characters_is_400(api: Api) -> None:
    response = api.post(DEFINITIONS, definition_body(name="n" * 1025))
    assert response.status_code == 400
    assert response.json()["title"] == errors.FIELD_INVALID.format(
        field="name", reason="at most 1024 characters")
