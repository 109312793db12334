"""The gateway's header checks (spec/aep-api.md §1.1) on every Platform route, and sandboxes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.api import errors
from tests.engine.api.conftest import DEFINITIONS, UPS, Api, definition_body
from tests.engine.api.store import schema_store

pytestmark = pytest.mark.django_db

PLATFORM_ROUTES = [
    DEFINITIONS,
    f"{UPS}/config/mergePolicies",
    "/data/foundation/schemaregistry/tenant/unions",
]


@pytest.mark.parametrize("path", PLATFORM_ROUTES)
def test_missing_token_is_403010(api: Api, path: str) -> None:
    response = api.get(path, Authorization=None)
    assert response.status_code == 403
    assert response.json() == {"error_code": "403010", "message": "Oauth token is missing."}


@pytest.mark.parametrize("path", PLATFORM_ROUTES)
def test_invalid_token_is_401013(api: Api, path: str) -> None:
    response = api.get(path, Authorization="Bearer not-a-token")
    assert response.status_code == 401
    assert response.json() == {"error_code": "401013", "message": "Oauth token is not valid"}


def test_token_without_bearer_scheme_is_invalid(api: Api) -> None:
    response = api.get(DEFINITIONS, Authorization=api.token)
    assert response.status_code == 401


def test_missing_api_key_is_403000(api: Api) -> None:
    response = api.get(DEFINITIONS, x_api_key=None)
    assert response.status_code == 403
    assert response.json() == {"error_code": "403000", "message": "Api Key is required"}


def test_api_key_of_another_client_is_403003(api: Api, make_api: Any) -> None:
    other = make_api()
    response = api.get(DEFINITIONS, x_api_key=other.client_id)
    assert response.status_code == 403
    assert response.json() == {"error_code": "403003", "message": "Api Key is invalid"}


def test_missing_org_is_400003(api: Api) -> None:
    response = api.get(DEFINITIONS, x_gw_ims_org_id=None)
    assert response.status_code == 400
    assert response.json() == {"error_code": "400003", "message": "Missing header"}


def test_wrong_org_is_403025(api: Api) -> None:
    response = api.get(DEFINITIONS, x_gw_ims_org_id="OTHER@AdobeOrg")
    assert response.status_code == 403
    assert response.json() == {"error_code": "403025", "message": "Profile is not valid"}


def test_missing_sandbox_is_400003(api: Api) -> None:
    response = api.get(DEFINITIONS, x_sandbox_name=None)
    assert response.status_code == 400
    assert response.json() == {"error_code": "400003", "message": "Missing header"}


@pytest.mark.parametrize("sandbox", ["stage", "unknown-sandbox"])
def test_sandbox_the_client_may_not_use_is_403(api: Api, sandbox: str) -> None:
    response = api.get(DEFINITIONS, x_sandbox_name=sandbox)
    assert response.status_code == 403
    body = response.json()
    assert body["status"] == 403
    assert body["type"] == errors.ERROR_TYPE_BASE + errors.FORBIDDEN_TYPE
    assert body["title"] == errors.SANDBOX_NOT_ALLOWED.format(sandbox=sandbox)
    assert body["errors"]["403"][0]["message"] == body["title"]


def test_malformed_sandbox_name_is_400(api: Api) -> None:
    response = api.get(DEFINITIONS, x_sandbox_name="Prod Sandbox")
    assert response.status_code == 400
    assert response.json()["title"] == errors.SANDBOX_NAME_INVALID.format(
        sandbox="Prod Sandbox")


def test_body_without_json_content_type_is_400(api: Api) -> None:
    response = api.client.post(DEFINITIONS, "name=x", content_type="text/plain",
                               headers=api.headers())
    assert response.status_code == 400
    assert response.json() == {"type": "/placeholder/type/uri", "status": 400,
                               "title": "BadRequestError",
                               "detail": "A valid content-type must be specified"}


def test_definitions_are_isolated_by_sandbox(api: Api, tmp_path: Path) -> None:
    for sandbox in ("prod", "dev"):  # the fields the definitions name
        schema_store(tmp_path, sandbox)
    created = api.post(DEFINITIONS, definition_body()).json()
    dev = api.in_sandbox("dev")
    assert dev.get(f"{DEFINITIONS}/{created['id']}").status_code == 404
    assert dev.patch(f"{DEFINITIONS}/{created['id']}", definition_body()).status_code == 404
    assert dev.delete(f"{DEFINITIONS}/{created['id']}").status_code == 404
    assert dev.get(DEFINITIONS).json()["segments"] == []
    # The same name is free in another sandbox.
    again = dev.post(DEFINITIONS, definition_body())
    assert again.status_code == 200
    assert again.json()["sandbox"]["sandboxName"] == "dev"
    assert again.json()["sandbox"]["type"] == "development"
    assert api.get(f"{DEFINITIONS}/{created['id']}").status_code == 200


def test_merge_policies_are_isolated_by_sandbox(api: Api) -> None:
    policy = api.get(f"{UPS}/config/mergePolicies").json()["children"][0]
    response = api.in_sandbox("dev").get(f"{UPS}/config/mergePolicies/{policy['id']}")
    assert response.status_code == 404
