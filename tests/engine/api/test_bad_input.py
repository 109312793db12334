"""Bad input, every write route: malformed JSON, wrong types, unknown ids, oversized bodies,
invalid PQL and another sandbox's ids each get their status and an AEP error body, and nothing
is stored (every engine table keeps its row count)."""

from __future__ import annotations

from typing import Any

import pytest
from django.apps import apps

from tests.engine.api.conftest import UPS, Api, definition_body

pytestmark = pytest.mark.django_db


def row_counts() -> dict[str, int]:
    return {model.__name__: model.objects.count()
            for model in apps.get_app_config("engine").get_models()}


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
