"""Body size and rate limits, trailing slashes, JSON everywhere, the OpenAPI document."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from engine.api import errors
from tests.engine.api.conftest import DEFINITIONS, UPS, Api, definition_body
from tests.engine.api.store import schema_store

pytestmark = pytest.mark.django_db


def test_body_over_the_limit_is_413(api: Api, settings: Any, tmp_path: Path) -> None:
    schema_store(tmp_path)  # the fields the definition names
    settings.ENGINE_MAX_BODY_BYTES = 2_000
    response = api.post(DEFINITIONS, definition_body(description="x" * 3_000))
    assert response.status_code == 413
    assert response.json() == {"error_code": "413000", "message": "Request body is too large"}
    assert api.post(DEFINITIONS, definition_body()).status_code == 200


def test_body_over_djangos_own_limit_is_413_too(api: Api, settings: Any) -> None:
    settings.ENGINE_MAX_BODY_BYTES = 10_000
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000
    response = api.post(DEFINITIONS, definition_body(description="x" * 2_000))
    assert response.status_code == 413


def test_token_endpoint_has_the_body_limit_too(client: Client, settings: Any) -> None:
    settings.ENGINE_MAX_BODY_BYTES = 100
    response = client.post("/ims/token/v3", {"grant_type": "client_credentials",
                                             "client_secret": "x" * 200})
    assert response.status_code == 413


def test_client_over_the_rate_limit_gets_429_with_retry_after(
    api: Api, make_api: Any, settings: Any
) -> None:
    settings.ENGINE_RATE_LIMIT = 3
    for _ in range(3):
        assert api.get(DEFINITIONS).status_code == 200
    response = api.get(DEFINITIONS)
    assert response.status_code == 429
    assert response.json() == {"error_code": "429050", "message": "Too many requests"}
    assert 1 <= int(response["Retry-After"]) <= 61
    # Counted per client: another client is not slowed down.
    assert make_api().get(DEFINITIONS).status_code == 200


@pytest.mark.parametrize("path", [
    DEFINITIONS, f"{DEFINITIONS}/", f"{UPS}/config/mergePolicies",
    f"{UPS}/config/mergePolicies/", "/data/foundation/schemaregistry/tenant/unions",
    "/data/foundation/schemaregistry/tenant/unions/",
])
def test_list_routes_answer_with_and_without_trailing_slash(api: Api, path: str) -> None:
    assert api.get(path).status_code == 200


def test_item_routes_answer_with_and_without_trailing_slash(api: Api, tmp_path: Path) -> None:
    schema_store(tmp_path)  # the fields the definition names
    created = api.post(f"{DEFINITIONS}/", definition_body()).json()
    assert api.get(f"{DEFINITIONS}/{created['id']}/").json() == created
    bulk = api.post(f"{DEFINITIONS}/bulk-get/", {"ids": [{"id": created["id"]}]})
    assert bulk.status_code == 207
    converted = api.post(f"{UPS}/segment/conversion/", definition_body())
    assert converted.json()["expression"]["format"] == "pql/json"
    policy = api.get(f"{UPS}/config/mergePolicies").json()["children"][0]
    assert api.get(f"{UPS}/config/mergePolicies/{policy['id']}/").status_code == 200
    assert api.patch(f"{DEFINITIONS}/{created['id']}/", definition_body()).status_code == 200
    assert api.delete(f"{DEFINITIONS}/{created['id']}/").status_code == 200


def test_api_needs_no_session_or_csrf_token(api: Api) -> None:
    strict = Client(enforce_csrf_checks=True)
    response = strict.post(DEFINITIONS, '{"name": "x"}', content_type="application/json",
                           headers=api.headers())
    assert response.status_code == 400  # reached the view: a validation error, not CSRF/login


def test_unknown_api_paths_and_methods_answer_json(api: Api, client: Client) -> None:
    response = client.get("/data/core/ups/nothing/here")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["title"] == errors.ROUTE_NOT_FOUND.format(
        path="/data/core/ups/nothing/here")
    wrong_method = api.client.put(DEFINITIONS, "{}", content_type="application/json",
                                  headers=api.headers())
    assert wrong_method.status_code == 405
    assert wrong_method.json()["status"] == 405


def test_openapi_document_is_public_and_lists_our_routes(client: Client) -> None:
    response = client.get("/data/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert {"/ims/token/v3", "/data/core/ups/segment/definitions",
            "/data/core/ups/segment/definitions/{SEGMENT_ID}",
            "/data/core/ups/segment/definitions/bulk-get", "/data/core/ups/segment/conversion",
            "/data/core/ups/config/mergePolicies",
            "/data/core/ups/config/mergePolicies/{mergePolicyId}",
            "/data/foundation/schemaregistry/tenant/unions",
            "/data/foundation/schemaregistry/tenant/schemas/{SCHEMA_ID}"} <= set(
        document["paths"])
    refs = set()

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            if "$ref" in node:
                refs.add(node["$ref"])
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    collect(document)
    for ref in refs:  # every internal reference resolves
        target: Any = document
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]


def test_token_requests_are_rate_limited_per_client_id(client: Client, api: Api,
                                                       settings: Any) -> None:
    from tests.engine.api.conftest import get_token

    settings.ENGINE_RATE_LIMIT = 3  # the api fixture already asked for one token
    for _ in range(2):
        assert get_token(client, api.client_id, "p8e-guess").status_code == 400
    response = get_token(client, api.client_id, api.secret)
    assert response.status_code == 429
    assert "Retry-After" in response
