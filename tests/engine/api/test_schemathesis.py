"""Schemathesis against our own OpenAPI document (/data/openapi.json), through the WSGI app.

Every operation gets a small, deterministic set of generated requests (valid and invalid ones)
with a real API client's headers; no answer may be a 5xx, and every answer must have a status,
content type and body that the document declares for the operation. The ids in paths are
mostly unknown ones (404), so a store with one of each resource is seeded too, and its ids are
offered to the generator as explicit examples.

Each generated request is also sent with a NUL character (\u0000) in every string of its body
(and keys), and with one in a query parameter: text PostgreSQL cannot store, refused with a 400
(run with DATABASE_URL on PostgreSQL to be sure nothing reaches the database).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.engine.api.conftest import Api
from tests.engine.api.seeded import seed

pytestmark = pytest.mark.django_db

schema = schemathesis.openapi.from_wsgi("/data/openapi.json", get_wsgi_application())
# A few per operation keeps the suite fast; SCHEMATHESIS_EXAMPLES=250 for a longer hunt.
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "10"))
NUL = "\x00"
REFUSED_FIRST = (405, 411, 413)  # before the gateway reads a parameter (engine/api/auth.py)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


def with_nul(value: Any) -> Any:
    """``value`` with a NUL added to every string in it, keys too."""
    if isinstance(value, str):
        return value + NUL
    if isinstance(value, dict):
        return {with_nul(key): with_nul(item) for key, item in value.items()}
    if isinstance(value, list):
        return [with_nul(item) for item in value]
    return value


@contextmanager
def keep_the_test_connection() -> Iterator[None]:
    """The WSGI handler closes the database connection after each request when it finds it in a
    transaction — the test's (on PostgreSQL that ends the test; SQLite's in-memory database
    ignores close()). Django's test Client stops that the same way, around each of its requests
    (ClientHandler) — and reconnects the handler afterwards, so this wraps each call, not the
    test: the fixtures' test Client requests would undo a test-wide disconnect."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def api_client(make_api: Any, settings: Any) -> Api:
    settings.ENGINE_RATE_LIMIT = 100_000  # generated requests are many; 429 is tested elsewhere
    api: Api = make_api(sandboxes=("prod",))
    return api


@pytest.fixture
def gateway_headers(api_client: Api) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_client.token}", "x-api-key": api_client.client_id,
            "x-gw-ims-org-id": api_client.org, "x-sandbox-name": "prod"}


@pytest.fixture
def seeded_ids(api_client: Api, tmp_path: Path) -> dict[str, Any]:
    return seed(api_client, tmp_path / "input").path_parameters()


@schema.parametrize()
@settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
def test_api_answers_as_documented(case: Any, gateway_headers: dict[str, str],
                                   request: Any) -> None:
    # The gateway's headers are a valid client's (their checks are tests/engine/api/
    # test_headers.py), so that generated requests reach the views.
    if case.operation.path.startswith(("/data/core/", "/data/foundation/")):
        case.headers = {**(case.headers or {}), **gateway_headers}
    with keep_the_test_connection():
        first = case.call_and_validate(checks=CHECKS)
        # the same with NULs in the body's strings: refused (or not found), never a 5xx
        if isinstance(case.body, dict | list) and case.body:
            nul_body = case.derive()
            nul_body.body = with_nul(case.body)
            nul_body.call_and_validate(checks=CHECKS)
        # and with a NUL in a query parameter: the gateway's 400, whatever else it says (a
        # method the route does not serve, or a body of the wrong size, is refused first)
        nul_query = case.derive(query={**case.query, "nul": "a" + NUL})
        nul_query.headers = case.headers
        response = nul_query.call_and_validate(checks=CHECKS)
        if first.status_code not in REFUSED_FIRST:
            assert response.status_code == 400, (case.path, response.text)
    if case.path_parameters:  # the same request once more, for resources that exist
        seeded = request.getfixturevalue("seeded_ids")
        case.path_parameters = {name: seeded[name] for name in case.path_parameters}
        with keep_the_test_connection():
            response = case.call_and_validate(checks=CHECKS)
        if case.method == "GET" and "path" not in (case.query or {}):  # ?path= names a file
            assert response.status_code != 404, (case.path, response.text)
