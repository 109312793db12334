"""Sandbox management (spec/aep-api.md §1.1): the API client's sandboxes in Adobe's shape,
with the token, API key and org headers and without x-sandbox-name."""

from __future__ import annotations

from typing import Any

import pytest

from tests.engine.api.conftest import DEFINITIONS, Api

pytestmark = pytest.mark.django_db

BASE = "/data/foundation/sandbox-management"
LISTS = [f"{BASE}/sandboxes", f"{BASE}/sandboxes/", f"{BASE}/", BASE]
SANDBOX_KEYS = {"name", "title", "state", "type", "isDefault", "region", "createdDate",
                "lastModifiedDate", "createdBy", "lastModifiedBy"}


@pytest.mark.parametrize("path", LISTS)
def test_lists_the_clients_sandboxes_without_a_sandbox_header(make_api: Any,
                                                              path: str) -> None:
    api: Api = make_api(sandboxes=("prod", "dev-team"))
    response = api.get(path, x_sandbox_name=None)
    assert response.status_code == 200, response.content
    body = response.json()
    assert [sandbox["name"] for sandbox in body["sandboxes"]] == ["prod", "dev-team"]
    prod, dev = body["sandboxes"]
    assert set(prod) == SANDBOX_KEYS
    assert (prod["type"], prod["isDefault"], prod["state"], prod["title"]) == (
        "production", True, "active", "Production")
    assert (dev["type"], dev["isDefault"], dev["title"]) == ("development", False, "Dev Team")
    assert prod["createdBy"] == api.client_id
    assert len(prod["createdDate"]) == len("2019-09-04 04:57:24")
    assert body["_page"] == {"limit": 50, "count": 2}
    assert body["_links"]["page"]["templated"] is True
    assert body["_links"]["page"]["href"].endswith(
        "/data/foundation/sandbox-management/sandboxes/?limit={limit}&offset={offset}")


def test_another_clients_sandboxes_are_not_listed(make_api: Any) -> None:
    make_api(sandboxes=("secret-team",))
    api: Api = make_api(sandboxes=("prod",))
    body = api.get(f"{BASE}/sandboxes", x_sandbox_name=None).json()
    assert [sandbox["name"] for sandbox in body["sandboxes"]] == ["prod"]


def test_a_sandbox_header_is_accepted_and_ignored(make_api: Any) -> None:
    api: Api = make_api(sandboxes=("prod",))
    response = api.get(f"{BASE}/sandboxes", x_sandbox_name="not-mine")
    assert response.status_code == 200
    assert [sandbox["name"] for sandbox in response.json()["sandboxes"]] == ["prod"]


def test_limit_and_offset_page_the_list(make_api: Any) -> None:
    api: Api = make_api(sandboxes=("prod", "dev", "qa"))
    body = api.get(f"{BASE}/sandboxes", {"limit": 1, "offset": 1}, x_sandbox_name=None).json()
    assert [sandbox["name"] for sandbox in body["sandboxes"]] == ["dev"]
    assert body["_page"] == {"limit": 1, "count": 1}
    assert body["_links"]["next"]["href"].endswith("/sandboxes/?limit=1&offset=2")
    last = api.get(body["_links"]["next"]["href"], x_sandbox_name=None).json()
    assert [sandbox["name"] for sandbox in last["sandboxes"]] == ["qa"]
    assert last["_links"]["next"] == {"href": ""}
    response = api.get(f"{BASE}/sandboxes", {"limit": "-1"}, x_sandbox_name=None)
    assert response.status_code == 400
    assert response.json()["errors"]["400"][0]["message"].startswith("The parameter limit")


@pytest.mark.parametrize("suffix", ["", "/"])
def test_one_sandbox_by_name(make_api: Any, suffix: str) -> None:
    api: Api = make_api(sandboxes=("prod", "dev"))
    response = api.get(f"{BASE}/sandboxes/dev{suffix}", x_sandbox_name=None)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == SANDBOX_KEYS
    assert (body["name"], body["type"], body["isDefault"]) == ("dev", "development", False)


def test_a_sandbox_not_the_clients_is_404(make_api: Any) -> None:
    make_api(sandboxes=("secret-team",))
    api: Api = make_api(sandboxes=("prod",))
    response = api.get(f"{BASE}/sandboxes/secret-team", x_sandbox_name=None)
    assert response.status_code == 404
    body = response.json()
    assert body["status"] == 404 and "secret-team" in body["errors"]["404"][0]["message"]


@pytest.mark.parametrize(("header", "value", "status", "code"), [
    ("Authorization", None, 403, "403010"),
    ("Authorization", "Bearer nope", 401, "401013"),
    ("x_api_key", None, 403, "403000"),
    ("x_gw_ims_org_id", None, 400, "400003"),
    ("x_gw_ims_org_id", "OTHER@AdobeOrg", 403, "403025"),
])
def test_the_gateway_headers_are_still_required(api: Api, header: str, value: str | None,
                                                status: int, code: str) -> None:
    response = api.get(f"{BASE}/sandboxes", x_sandbox_name=None, **{header: value})
    assert response.status_code == status
    assert response.json()["error_code"] == code


def test_other_routes_still_require_the_sandbox_header(api: Api) -> None:
    response = api.get(DEFINITIONS, x_sandbox_name=None)
    assert response.status_code == 400
    assert response.json() == {"error_code": "400003", "message": "Missing header"}


def test_only_get_is_allowed(api: Api) -> None:
    response = api.post(f"{BASE}/sandboxes", {"name": "new"}, x_sandbox_name=None)
    assert response.status_code == 405


def test_the_openapi_document_describes_the_routes(client: Any) -> None:
    paths = client.get("/data/openapi.json").json()["paths"]
    operation = paths[f"{BASE}/sandboxes"]["get"]
    headers = {param.get("$ref", "").rsplit("/", 1)[-1] for param in operation["parameters"]}
    assert "x-api-key" in headers and "x-sandbox-name" not in headers
    assert f"{BASE}/" in paths and f"{BASE}/sandboxes/{{sandboxName}}" in paths
