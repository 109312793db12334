"""bootstrap makes the "Built-in engine" connection, and it works: connection_test against the
engine's REST API served over real HTTP by pytest-django's live_server."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from connections.models import Connection, ConnectionKind
from connections.services import connection_client, connection_test
from core.models import AuditEntry

BUILTIN_ORG = "SEGMENTSTUDIO@AdobeOrg"


@pytest.fixture(autouse=True)
def fast_hashes(settings: Any) -> None:
    # the engine hashes API client secrets the production way (~0.3 s); tests need no such cost
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def bootstrap() -> str:
    out = StringIO()
    call_command("bootstrap", "--no-demo-users", stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_bootstrap_creates_the_builtin_connection_once(settings: Any) -> None:
    from engine.models import ApiClient

    settings.BUILTIN_ENGINE_URL = "http://127.0.0.1:8123"
    assert "Built-in engine connection created at http://127.0.0.1:8123" in bootstrap()
    connection = Connection.objects.get()
    assert (connection.name, connection.kind, connection.org_id) == (
        "Built-in engine", ConnectionKind.BUILTIN, BUILTIN_ORG)
    assert connection.base_url == connection.ims_url == "http://127.0.0.1:8123"
    assert (connection.default_sandbox, connection.sandboxes) == ("prod", ["prod", "dev"])
    client = ApiClient.objects.get()
    assert (client.client_id, client.org_id, client.sandboxes) == (
        connection.client_id, BUILTIN_ORG, ["prod", "dev"])
    assert connection.client_secret().startswith("p8e-")
    entry = AuditEntry.objects.get(action="connection.create")
    assert entry.actor_repr == "system" and (entry.after or {})["client_secret"] == "••••••"
    secret, audits = connection.client_secret_encrypted, AuditEntry.objects.count()

    assert "Built-in engine connection ready" in bootstrap()
    assert (Connection.objects.count(), ApiClient.objects.count()) == (1, 1)
    assert Connection.objects.get().client_secret_encrypted == secret
    assert AuditEntry.objects.count() == audits


@pytest.mark.django_db
def test_the_builtin_connection_follows_builtin_engine_url(settings: Any) -> None:
    settings.BUILTIN_ENGINE_URL = "http://127.0.0.1:8000"
    bootstrap()
    secret = Connection.objects.get().client_secret()
    settings.BUILTIN_ENGINE_URL = "http://web:8000"
    bootstrap()
    connection = Connection.objects.get()
    assert connection.base_url == connection.ims_url == "http://web:8000"
    assert connection.client_secret() == secret
    assert AuditEntry.objects.filter(action="connection.update").count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_bootstrapped_connection_passes_its_test_against_the_live_engine(
        settings: Any, live_server: Any, tmp_path: Any) -> None:
    from tests.engine.api.store import build_store

    settings.BUILTIN_ENGINE_URL = live_server.url
    settings.ENGINE_DATA_DIR = tmp_path / "engine"
    bootstrap()
    connection = Connection.objects.get()

    result = connection_test(connection=connection)
    assert result.ok, result.message
    assert [step.ok for step in result.steps] == [True, True, True, True]
    assert result.sandboxes == ["prod", "dev"]
    assert result.steps[3].detail == "Read 0 segment definitions in prod."

    build_store(tmp_path / "input")  # a definition names fields the sandbox has
    with connection_client(connection) as client:
        client.create_definition(name="US people", pql_text='homeAddress.countryCode = "US"')
    result = connection_test(connection=connection)
    assert result.steps[3].detail == "Read 1 segment definition in prod."
    connection.refresh_from_db()
    assert connection.last_test_ok is True
    assert connection.sandboxes == ["prod", "dev"]


@pytest.mark.django_db(transaction=True)
def test_the_live_engine_names_a_bad_secret_wrong_org_and_missing_sandbox(
        settings: Any, live_server: Any) -> None:
    settings.BUILTIN_ENGINE_URL = live_server.url
    bootstrap()
    connection = Connection.objects.get()
    good = connection.client_secret()

    connection.set_client_secret("p8e-not-the-secret")
    assert connection_test(connection=connection).message.startswith("Bad secret:")

    connection.set_client_secret(good)
    connection.org_id = "SOMEONEELSE@AdobeOrg"
    assert connection_test(connection=connection).message.startswith("Wrong org:")

    connection.org_id = BUILTIN_ORG
    connection.default_sandbox = "qa"
    result = connection_test(connection=connection)
    assert result.message.startswith("Missing sandbox: qa is not among")
    assert "(prod, dev)" in result.message


@pytest.mark.django_db
def test_create_api_client_json_prints_the_credentials_as_one_json_line() -> None:
    import json

    from django.contrib.auth.hashers import check_password

    from engine.models import ApiClient

    out = StringIO()
    call_command("create_api_client", "--name", "script", "--org", BUILTIN_ORG,
                 "--sandbox", "prod", "--json", stdout=out)
    created = json.loads(out.getvalue())
    assert set(created) == {"client_id", "client_secret"}
    row = ApiClient.objects.get(client_id=created["client_id"])
    assert check_password(created["client_secret"], row.secret_hash)
