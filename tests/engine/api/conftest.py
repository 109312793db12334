"""API tests: an API client with a token, and a helper that sends AEP's headers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.test import Client

ORG = "1BD6382559DF0C130A49422D@AdobeOrg"
UPS = "/data/core/ups"
DEFINITIONS = f"{UPS}/segment/definitions"


@pytest.fixture(autouse=True)
def api_settings(settings: Any) -> None:
    # A private cache per test, so request counts never leak between tests.
    # Hashing secrets the production way costs ~0.3 s per client; tests need no such cost.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": "engine-api-tests"}}
    from django.core.cache import cache

    cache.clear()


@dataclass
class Api:
    """Calls the API through Django's test client with a token's headers."""

    client: Client
    client_id: str
    secret: str
    token: str
    sandbox: str = "prod"
    org: str = ORG
    extra: dict[str, str] = field(default_factory=dict)

    def headers(self, **override: str | None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}", "x-api-key": self.client_id,
                   "x-gw-ims-org-id": self.org, "x-sandbox-name": self.sandbox, **self.extra}
        for name, value in override.items():
            name = name.replace("_", "-")
            if value is None:
                headers.pop(name, None)
            else:
                headers[name] = value
        return headers

    def get(self, path: str, data: Any = None, **headers: str | None) -> Any:
        return self.client.get(path, data, headers=self.headers(**headers))

    def post(self, path: str, body: Any, **headers: str | None) -> Any:
        return self.client.post(path, json.dumps(body), content_type="application/json",
                                headers=self.headers(**headers))

    def patch(self, path: str, body: Any, **headers: str | None) -> Any:
        return self.client.patch(path, json.dumps(body), content_type="application/json",
                                 headers=self.headers(**headers))

    def delete(self, path: str, **headers: str | None) -> Any:
        return self.client.delete(path, headers=self.headers(**headers))

    def in_sandbox(self, sandbox: str) -> Api:
        return Api(self.client, self.client_id, self.secret, self.token, sandbox, self.org)


def get_token(client: Client, client_id: str, secret: str) -> Any:
    return client.post("/ims/token/v3", {
        "grant_type": "client_credentials", "client_id": client_id, "client_secret": secret,
        "scope": "openid,AdobeID,read_organizations,additional_info.projectedProductContext"})


@pytest.fixture
def make_api(db: Any, client: Client) -> Any:
    from engine.api.services import api_client_create

    def make(sandboxes: tuple[str, ...] = ("prod", "dev"), org: str = ORG) -> Api:
        row, secret = api_client_create(name="tests", org_id=org, sandboxes=list(sandboxes))
        response = get_token(client, row.client_id, secret)
        assert response.status_code == 200, response.content
        return Api(client, row.client_id, secret, response.json()["access_token"], org=org)

    return make


@pytest.fixture
def api(make_api: Any) -> Api:
    return make_api()


def definition_body(name: str = "US workers", value: str = 'workAddress.country = "US"',
                    fmt: str = "pql/text", **extra: Any) -> dict[str, Any]:
    return {"name": name, "description": "Works in the US",
            "expression": {"type": "PQL", "format": fmt, "value": value},
            "schema": {"name": "_xdm.context.profile"}, **extra}
