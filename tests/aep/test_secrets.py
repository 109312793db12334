"""No client secret and no access token in any log line, exception message or repr."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from aep import AEPClient, AEPError, TokenManager
from tests.aep.conftest import CREDS, SECRET, Engine, FakeAEP, reply

BAD_TOKEN = {"error_code": "401013", "message": "Oauth token is not valid"}


def texts_of(error: BaseException) -> list[str]:
    texts = [str(error), repr(error), "".join(traceback.format_exception(error))]
    if isinstance(error, AEPError):
        texts.append(repr(error.body))
    return texts


def assert_clean(texts: list[str], secrets: list[str]) -> None:
    assert secrets and all(secrets)
    for text in texts:
        for secret in secrets:
            assert secret not in text, f"a secret leaked into: {text[:300]}"


def test_reprs_hide_the_secret_and_the_token(fake: FakeAEP, aep_client: AEPClient) -> None:
    aep_client.sandboxes()
    texts = [repr(CREDS), str(CREDS), repr(aep_client), str(aep_client), repr(aep_client.tokens),
             repr(aep_client.tokens.__dict__), repr(aep_client.retry)]
    assert_clean(texts, [SECRET, *fake.issued])
    assert "client_secret" not in repr(CREDS)


def test_logs_and_errors_of_every_path_hold_no_secret(
        fake: FakeAEP, make_client: Callable[..., AEPClient],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []

    def attempt(call: Callable[[], Any]) -> None:
        try:
            call()
        except AEPError as error:
            errors.append(error)

    client = make_client(max_attempts=2)
    attempt(client.sandboxes)  # a token, a success
    fake.script = [reply(401, BAD_TOKEN), reply(200, {})]
    attempt(client.preview_sample_status)  # a refresh
    fake.script = [reply(401, BAD_TOKEN), reply(401, BAD_TOKEN)]
    attempt(client.preview_sample_status)  # refused twice
    fake.script = [reply(500, {"detail": "x", "title": "E", "type": "t"})] * 2
    attempt(client.preview_sample_status)  # retries exhausted
    fake.script = [httpx.ConnectError("refused"), httpx.ReadTimeout("slow")]
    attempt(client.preview_sample_status)
    fake.script = [httpx.Response(200, content=b"not json")]
    attempt(client.preview_sample_status)
    fake.ims_script = [reply(401, {"error": "invalid_client",
                                   "error_description": "invalid client_secret parameter"})]
    attempt(make_client().sandboxes)  # a revoked secret
    fake.ims_script = [httpx.ConnectError("no IMS")] * 5
    attempt(TokenManager(CREDS, transport=fake.transport(),
                         retry=client.retry).token)  # IMS unreachable

    assert len(errors) == 6
    assert any(r.name == "aep" and "request_id=" in r.getMessage() for r in caplog.records)
    texts = [record.getMessage() for record in caplog.records] + [caplog.text]
    for error in errors:
        texts += texts_of(error)
    assert_clean(texts, [SECRET, *fake.issued])


@pytest.mark.django_db
def test_the_engine_path_logs_no_secret(engine: Engine, engine_tasks: Any,
                                        caplog: pytest.LogCaptureFixture) -> None:
    from engine.models import AccessToken

    caplog.set_level(logging.DEBUG)
    client = engine.client
    token = client.token()
    client.create_definition(name="US", pql_text='homeAddress.countryCode = "US"')
    AccessToken.objects.all().delete()
    list(client.definitions())
    refreshed = client.token()
    texts = [record.getMessage() for record in caplog.records] + [caplog.text, repr(client)]
    assert_clean(texts, [engine.secret, token, refreshed])
