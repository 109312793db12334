"""Bad input, every write route: malformed JSON, wrong types, unknown ids, oversized bodies,
invalid PQL and another sandbox's ids each get their status and an AEP error body, and nothing
is stored (every engine table keeps its row count)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps

from tests.engine.api.conftest import DEFINITIONS, UPS, Api, definition_body
from tests.engine.api.seeded import US, Seeded, seed

pytestmark = pytest.mark.django_db

CATALOG = "/data/foundation/catalog"
EXPORT = "/data/foundation/export"
SANDBOXES = "/data/foundation/sandbox-management/sandboxes"
MERGE_POLICIES = f"{UPS}/config/mergePolicies"
POLICY_BODY = {"name": "No stitching", "schema": {"name": "_xdm.context.profile"},
               "identityGraph": {"type": "none"},
               "attributeMerge": {"type": "timestampOrdered"}}
EXPORT_BODY = {"fields": "person.name", "filter": {"segments": [{"segmentId": "{definition}"}]},
               "destination": {"datasetId": "{dataset}"},
               "schema": {"name": "_xdm.context.profile"}}
DATASET_BODY = {"name": "Exports", "schemaRef": {
    "id": "https://ns.adobe.com/xdm/context/profile__union",
    "contentType": "application/vnd.adobe.xed+json;version=1"}}

# Every route that takes a body: (method, path, a valid body, the same with a wrongly typed field).
# "{definition}" and "{dataset}" are the seeded store's ids.
WRITES: list[tuple[str, str, Any, Any]] = [
    ("POST", DEFINITIONS, definition_body(name="New", value=US),
     {**definition_body(value=US), "name": 5}),
    ("PATCH", f"{DEFINITIONS}/{{definition}}", definition_body(name="Renamed", value=US),
     definition_body(description=["x"], value=US)),
    ("POST", f"{DEFINITIONS}/bulk-get", {"ids": [{"id": "{definition}"}]}, {"ids": "all"}),
    ("POST", f"{UPS}/segment/conversion", definition_body(), definition_body(ttlInDays="30")),
    ("POST", MERGE_POLICIES, POLICY_BODY, {**POLICY_BODY, "name": []}),
    ("POST", f"{UPS}/preview", {"predicateExpression": 'homeAddress.countryCode = "US"'},
     {"predicateExpression": 5}),
    ("POST", f"{UPS}/segment/jobs", [{"segmentId": "{definition}"}], [{"segmentId": 5}]),
    ("POST", f"{UPS}/segment/jobs/bulk-get", {"ids": [{"id": "x"}]}, {"ids": {"id": "x"}}),
    ("POST", f"{UPS}/export/jobs", EXPORT_BODY, {**EXPORT_BODY, "fields": 5}),
    ("POST", f"{CATALOG}/dataSets", DATASET_BODY, {**DATASET_BODY, "name": 5}),
]
WRITE_IDS = [f"{method} {path}" for method, path, _, _ in WRITES]


def row_counts() -> dict[str, int]:
    return {model.__name__: model._default_manager.count()
            for model in apps.get_app_config("engine").get_models()}


def fill(value: Any, seeded: Seeded) -> Any:
    text = json.dumps(value).replace("{definition}", seeded.definition_id)
    return json.loads(text.replace("{dataset}", seeded.dataset_id))


def send(api: Api, method: str, path: str, content: str | bytes) -> Any:
    call = getattr(api.client, method.lower())
    return call(path, content, content_type="application/json", headers=api.headers())


def assert_aep_error(response: Any, status: int) -> dict[str, Any]:
    """One of AEP's error bodies (engine/api/errors.py): gateway, UPS or problem details."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    if "error_code" in body:
        assert set(body) == {"error_code", "message"} and body["message"]
    elif "requestId" in body:
        assert body["status"] == status and body["title"]
        assert body["errors"][str(status)][0]["message"]
    else:
        assert set(body) == {"type", "status", "title", "detail"} and body["status"] == status
    return dict(body)


@pytest.fixture
def seeded(api: Api, tmp_path: Path) -> Seeded:
    return seed(api, tmp_path / "input")


@pytest.mark.parametrize(("method", "path", "good", "bad"), WRITES, ids=WRITE_IDS)
def test_each_write_route_refuses_bad_bodies_and_stores_nothing(
    api: Api, seeded: Seeded, settings: Any, method: str, path: str, good: Any, bad: Any
) -> None:
    path = fill(path, seeded)
    before = row_counts()
    # malformed JSON
    assert_aep_error(send(api, method, path, '{"name": "x", '), 400)
    # a body of the wrong type, and a field of the wrong type
    for body in ('"just a string"', json.dumps(fill(bad, seeded))):
        assert_aep_error(send(api, method, path, body), 400)
    # over the size limit: 413 before anything is read
    good_body = json.dumps(fill(good, seeded))
    settings.ENGINE_MAX_BODY_BYTES = len(good_body) - 1
    assert_aep_error(send(api, method, path, good_body), 413)
    assert row_counts() == before
    # ...and the same body under the limit is fine (the refusals were about the input)
    settings.ENGINE_MAX_BODY_BYTES = len(good_body)
    assert send(api, method, path, good_body).status_code in (200, 201, 207)


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", DEFINITIONS, definition_body(value="homeAddress.countryCode = ")),
    ("PATCH", f"{DEFINITIONS}/{{definition}}", definition_body(value="a and and b")),
    ("POST", f"{UPS}/segment/conversion", definition_body(value='a = "unclosed')),
    ("POST", f"{UPS}/preview", {"predicateExpression": "a = (1"}),
], ids=["create", "patch", "conversion", "preview"])
def test_invalid_pql_is_400_with_its_position_and_stores_nothing(
    api: Api, seeded: Seeded, method: str, path: str, body: Any
) -> None:
    before = row_counts()
    definition = api.get(f"{DEFINITIONS}/{seeded.definition_id}").json()
    response = send(api, method, fill(path, seeded), json.dumps(body))
    error = assert_aep_error(response, 400)
    item = error["errors"]["400"][0]
    assert isinstance(item["line"], int) and isinstance(item["column"], int)
    assert f"(line {item['line']}, column {item['column']})" in error["title"]
    assert row_counts() == before
    assert api.get(f"{DEFINITIONS}/{seeded.definition_id}").json() == definition


# Every route that reads one resource by id, with an id no row has.
UNKNOWN = "0123456789abcdef0123456789abcdef"
READS_BY_ID = [
    ("GET", f"{DEFINITIONS}/{UNKNOWN}"), ("DELETE", f"{DEFINITIONS}/{UNKNOWN}"),
    ("GET", f"{MERGE_POLICIES}/{UNKNOWN}"),
    ("GET", f"{UPS}/preview/{UNKNOWN}"), ("DELETE", f"{UPS}/preview/{UNKNOWN}"),
    ("GET", f"{UPS}/estimate/{UNKNOWN}"),
    ("GET", f"{UPS}/segment/jobs/{UNKNOWN}"), ("DELETE", f"{UPS}/segment/jobs/{UNKNOWN}"),
    ("GET", f"{UPS}/export/jobs/987654"), ("DELETE", f"{UPS}/export/jobs/987654"),
    ("GET", f"{CATALOG}/dataSets/{UNKNOWN[:24]}"), ("GET", f"{CATALOG}/batches/{UNKNOWN}"),
    ("GET", f"{EXPORT}/batches/{UNKNOWN}/files"), ("GET", f"{EXPORT}/files/{UNKNOWN}-1"),
    ("GET", f"{SANDBOXES}/no-such-sandbox"),
]


def test_unknown_ids_are_404_and_change_nothing(api: Api, seeded: Seeded) -> None:
    before = row_counts()
    for method, path in READS_BY_ID:  # one store for all of them: seeding takes a while
        response = getattr(api, method.lower())(path)
        assert response.status_code == 404, (method, path, response.content)
        assert_aep_error(response, 404)
    assert_aep_error(api.patch(f"{DEFINITIONS}/{UNKNOWN}", definition_body(name="Ghost")), 404)
    assert row_counts() == before


def test_another_sandboxs_ids_are_404_leak_nothing_and_change_nothing(api: Api, seeded: Seeded,
                                                                     tmp_path: Path) -> None:
    dev = api.in_sandbox("dev")  # the client may use both; its prod store is seeded too
    other = seed(dev, tmp_path / "dev")
    secret = dev.get(f"{DEFINITIONS}/{other.definition_id}").json()
    before = row_counts()
    reads = [f"{DEFINITIONS}/{other.definition_id}", f"{MERGE_POLICIES}/{other.merge_policy_id}",
             f"{UPS}/preview/{other.preview_id}", f"{UPS}/estimate/{other.preview_id}",
             f"{UPS}/segment/jobs/{other.segment_job_id}",
             f"{UPS}/export/jobs/{other.export_job_id}", f"{CATALOG}/dataSets/{other.dataset_id}",
             f"{CATALOG}/batches/{other.batch_id}", f"{EXPORT}/batches/{other.batch_id}/files",
             f"{EXPORT}/files/{other.file_id}",
             f"{EXPORT}/files/{other.file_id}?path={other.file_name}"]
    answers = [api.get(path) for path in reads]
    answers += [api.delete(f"{DEFINITIONS}/{other.definition_id}"),
                api.delete(f"{UPS}/preview/{other.preview_id}"),
                api.delete(f"{UPS}/segment/jobs/{other.segment_job_id}"),
                api.delete(f"{UPS}/export/jobs/{other.export_job_id}"),
                api.patch(f"{DEFINITIONS}/{other.definition_id}", definition_body(name="Mine")),
                api.post(f"{UPS}/segment/jobs", [{"segmentId": other.definition_id}]),
                api.post(f"{UPS}/export/jobs", {**EXPORT_BODY, "filter": {"segments": [
                    {"segmentId": other.definition_id}]}, "destination": {
                    "datasetId": other.dataset_id}})]
    for response in answers:
        assert_aep_error(response, 404)
        text = response.content.decode()
        assert secret["name"] not in text and secret["expression"]["value"] not in text
    # bulk gets answer 207 with a 404 entry for the other sandbox's ids
    for path, wanted in ((f"{DEFINITIONS}/bulk-get", other.definition_id),
                         (f"{UPS}/segment/jobs/bulk-get", other.segment_job_id)):
        results = api.post(path, {"ids": [{"id": wanted}]}).json()["results"]
        assert list(results[wanted]["errors"]) == ["404"]
    # the other sandbox's merge policy cannot be named either
    response = api.post(DEFINITIONS, definition_body(name="New",
                                                     mergePolicyId=other.merge_policy_id))
    assert_aep_error(response, 400)
    assert row_counts() == before
    assert dev.get(f"{DEFINITIONS}/{other.definition_id}").json() == secret
    assert dev.get(f"{UPS}/preview/{other.preview_id}").status_code == 200


def assert_ups_error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["status"] == status and body["requestId"] and body["title"]
    assert body["errors"][str(status)][0]["message"]
    return dict(body)


@pytest.mark.parametrize("field", ["predicateType", "predicateModel", "graphType"])
@pytest.mark.parametrize("value", [["pdg"], {"type": "pdg"}, 3])
def test_preview_choices_of_the_wrong_type_are_400(api: Api, field: str, value: Any) -> None:
    before = row_counts()
    response = api.post(f"{UPS}/preview", {"predicateExpression": "a = 1", field: value})
    assert_ups_error(response, 400)
    assert row_counts() == before


@pytest.mark.parametrize(("field", "value"), [
    ("name", 7), ("description", ["x"]), ("schema", {"name": True}), ("ttlInDays", "30"),
    ("evaluationInfo", {"batch": {"enabled": "yes"}}), ("payloadSchema", {}),
    ("mergePolicyId", 5),
])
def test_conversion_echoes_only_fields_of_the_documented_types(api: Api, field: str,
                                                               value: Any) -> None:
    response = api.post(f"{UPS}/segment/conversion", definition_body(**{field: value}))
    body = assert_ups_error(response, 400)
    assert field in body["errors"]["400"][0]["message"]


def test_unknown_paths_with_control_characters_are_json_404(api: Api) -> None:
    response = api.get(f"{UPS}/preview/x/execution/%0Anot-a-number")
    assert response["Content-Type"] == "application/json"
    assert_ups_error(response, 404)


LISTS = [f"{UPS}/segment/definitions", f"{UPS}/config/mergePolicies", f"{UPS}/segment/jobs",
         f"{UPS}/export/jobs", "/data/foundation/catalog/dataSets",
         "/data/foundation/catalog/batches", "/data/foundation/sandbox-management/sandboxes"]


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("value", ["36893488147419103233", "²", "٣", "-1", "1e3"])
def test_paging_numbers_out_of_range_or_not_ascii_are_400(api: Api, path: str,
                                                          value: str) -> None:
    names = {"sandbox-management": ("offset", "limit"),
             "export/jobs": ("limit",)}  # its offset is a cursor, tested below
    for name in next((v for k, v in names.items() if k in path), ("start", "limit")):
        response = api.get(path, {name: value})
        assert response.status_code == 400, (path, name, value, response.content)
        body = response.json()
        assert body.get("detail") or body["errors"]["400"][0]["message"]


@pytest.mark.parametrize("path", ["/data/foundation/catalog/dataSets",
                                  "/data/foundation/catalog/batches"])
@pytest.mark.parametrize("value", ["68469983644732948480", "253402300800000", "٣"])
def test_catalog_times_beyond_year_9999_are_400(api: Api, path: str, value: str) -> None:
    response = api.get(path, {"createdAfter": value})
    assert response.status_code == 400
    assert "epoch milliseconds" in response.json()["detail"]


@pytest.mark.parametrize("job_id", ["²", "99999999999999999999999", "9223372036854775807"])
def test_export_job_ids_that_are_no_row_are_404(api: Api, job_id: str) -> None:
    assert_ups_error(api.get(f"{UPS}/export/jobs/{job_id}"), 404)
    assert_ups_error(api.delete(f"{UPS}/export/jobs/{job_id}"), 404)


def test_an_export_list_offset_past_int64_is_400(api: Api) -> None:
    response = api.get(f"{UPS}/export/jobs", {"offset": "99999999999999999999_1"})
    assert_ups_error(response, 400)


def test_a_schema_id_with_a_newline_is_the_registrys_404(api: Api) -> None:
    response = api.get("/data/foundation/schemaregistry/tenant/schemas/a%0Ab",
                       Accept="application/vnd.adobe.xed-full+json;version=1")
    assert response.status_code == 404
    assert response.json()["title"] == "NotFoundError"
