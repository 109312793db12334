"""POST /ims/token/v3: client credentials in, a bearer token out; IMS's error bodies."""

from __future__ import annotations

import hashlib
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from engine.api import errors
from engine.models import AccessToken, ApiClient
from tests.engine.api.conftest import DEFINITIONS, ORG, Api, get_token

pytestmark = pytest.mark.django_db


def test_token_round_trip_opens_the_platform_routes(client: Client, api: Api) -> None:
    response = get_token(client, api.client_id, api.secret)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 86400
    fresh = Api(client, api.client_id, api.secret, body["access_token"])
    assert fresh.get(DEFINITIONS).status_code == 200


def test_tokens_are_stored_as_digests_only(client: Client, api: Api) -> None:
    token = get_token(client, api.client_id, api.secret).json()["access_token"]
    digests = set(AccessToken.objects.values_list("digest", flat=True))
    assert hashlib.sha256(token.encode()).hexdigest() in digests
    assert token not in digests


def test_secret_is_stored_hashed(api: Api) -> None:
    row = ApiClient.objects.get(client_id=api.client_id)
    assert api.secret not in row.secret_hash
    assert row.secret_hash.startswith(("pbkdf2_", "argon2", "bcrypt", "scrypt", "md5"))


def test_expired_token_is_refused_with_401(client: Client, api: Api, settings: Any) -> None:
    settings.ENGINE_TOKEN_SECONDS = 0
    body = get_token(client, api.client_id, api.secret).json()
    assert body["expires_in"] == 0
    expired = Api(client, api.client_id, api.secret, body["access_token"])
    response = expired.get(DEFINITIONS)
    assert response.status_code == 401
    assert response.json() == {"error_code": "401013", "message": "Oauth token is not valid"}


def test_token_expiry_follows_the_setting(client: Client, api: Api, settings: Any) -> None:
    settings.ENGINE_TOKEN_SECONDS = 3600
    assert get_token(client, api.client_id, api.secret).json()["expires_in"] == 3600


def test_unknown_client_id_is_invalid_client(client: Client, api: Api) -> None:
    response = get_token(client, "nobody", api.secret)
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_client",
                               "error_description": errors.IMS_CLIENT_ID_INVALID}


def test_wrong_secret_is_invalid_client(client: Client, api: Api) -> None:
    response = get_token(client, api.client_id, "p8e-wrong")
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_client",
                               "error_description": errors.IMS_CLIENT_SECRET_INVALID}


def test_inactive_client_gets_no_token_and_its_tokens_stop_working(client: Client,
                                                                   api: Api) -> None:
    ApiClient.objects.filter(client_id=api.client_id).update(active=False)
    assert get_token(client, api.client_id, api.secret).json()["error"] == "invalid_client"
    assert api.get(DEFINITIONS).status_code == 401


def test_other_grant_types_are_refused(client: Client, api: Api) -> None:
    response = client.post("/ims/token/v3", {"grant_type": "password",
                                             "client_id": api.client_id,
                                             "client_secret": api.secret})
    assert response.status_code == 400
    assert response.json() == {"error": "unsupported_grant_type",
                               "error_description": errors.IMS_GRANT_UNSUPPORTED}


def test_token_endpoint_answers_with_a_trailing_slash_and_query_parameters(
    client: Client, api: Api
) -> None:
    response = client.post(f"/ims/token/v3/?grant_type=client_credentials"
                           f"&client_id={api.client_id}&client_secret={api.secret}")
    assert response.status_code == 200
    assert response.json()["token_type"] == "bearer"


def test_token_endpoint_only_accepts_post(client: Client) -> None:
    response = client.get("/ims/token/v3")
    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"


def test_create_api_client_command_prints_a_working_secret(client: Client) -> None:
    out = StringIO()
    call_command("create_api_client", "--name", "CLI", "--org", ORG, "--sandbox", "prod",
                 "--sandbox", "dev", stdout=out)
    lines = dict(line.split(": ", 1) for line in out.getvalue().splitlines() if ": " in line)
    row = ApiClient.objects.get(client_id=lines["client_id"])
    assert row.sandboxes == ["prod", "dev"]
    assert row.org_id == ORG
    assert get_token(client, lines["client_id"], lines["client_secret"]).status_code == 200
