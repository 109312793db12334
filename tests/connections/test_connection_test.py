"""connection_test names each failure plainly. Fault cases run against httpx.MockTransport with
the bodies IMS and AEP really send (spec/aep-api.md §1.1, §1.2, §8.1); the happy path runs
against the built-in engine over real HTTP (pytest-django's live_server)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from connections import services
from connections.models import Connection
from core.models import AuditEntry
from tests.connections.conftest import ORG

IMS = "https://ims-na1.adobelogin.com"
PLATFORM = "https://platform.adobe.io"
TOKEN = {"access_token": "eyJhbGciOiJSUzI1NiJ9.test", "token_type": "bearer",
         "expires_in": 86399}


def sandbox(name: str, *, default: bool = False) -> dict[str, Any]:
    return {"name": name, "title": name.title(), "state": "active",
            "type": "production" if default else "development", "isDefault": default,
            "region": "VA7", "createdDate": "2019-09-04 04:57:24",
            "lastModifiedDate": "2019-09-04 04:57:24", "createdBy": "x", "lastModifiedBy": "x"}


SANDBOXES = {"sandboxes": [sandbox("prod", default=True), sandbox("dev")],
             "_page": {"limit": 100, "count": 2}, "_links": {}}
DEFINITIONS = {
    "segments": [{"id": "4afe34ae-8c98-4513-8a1d-67ccaa54bc05", "name": "US workers",
                  "description": "", "expression": {"type": "PQL", "format": "pql/text",
                                                    "value": 'workAddress.country = "US"'},
                  "schema": {"name": "_xdm.context.profile"}, "imsOrgId": ORG,
                  "sandbox": {"sandboxName": "prod"}, "creationTime": 1_700_000_000_000,
                  "updateTime": 1_700_000_000_000, "updateEpoch": 1_700_000_000}],
    "page": {"totalCount": 42, "totalPages": 9, "sortField": "creationTime", "sort": "desc",
             "pageSize": 5, "limit": 5},
    "link": {"next": "?start=5&limit=5"},
}


def aep(*, token: Callable[[httpx.Request], httpx.Response] | None = None,
        sandboxes: Callable[[httpx.Request], httpx.Response] | None = None,
        definitions: Callable[[httpx.Request], httpx.Response] | None = None,
        seen: list[httpx.Request] | None = None) -> httpx.MockTransport:
    """IMS and Platform as one mock; each route answers 200 with a real body unless replaced."""

    def handle(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        path = request.url.path
        if path == "/ims/token/v3":
            return token(request) if token else httpx.Response(200, json=TOKEN)
        if path.startswith("/data/foundation/sandbox-management/sandboxes"):
            return sandboxes(request) if sandboxes else httpx.Response(200, json=SANDBOXES)
        if path == "/data/core/ups/segment/definitions":
            return definitions(request) if definitions else httpx.Response(200, json=DEFINITIONS)
        return httpx.Response(404, json={"error_code": "404", "message": "no route"})

    return httpx.MockTransport(handle)


def answer(status: int, body: Any) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(status, json=body)


def run(connection: Connection, transport: httpx.MockTransport
        ) -> services.ConnectionTestResult:
    result = services.connection_test(connection=connection, transport=transport)
    connection.refresh_from_db()
    return result


pytestmark = pytest.mark.django_db


def test_a_working_connection_passes_every_step_and_remembers_its_sandboxes(
        make_connection: Any, admin_user: Any) -> None:
    connection = make_connection()
    seen: list[httpx.Request] = []
    result = services.connection_test(connection=connection, transport=aep(seen=seen),
                                      actor=admin_user)
    assert result.ok, result.message
    assert [step.ok for step in result.steps] == [True, True, True, True]
    assert result.message == "Connected: token, 2 sandboxes, definitions in prod."
    assert result.steps[3].detail == "Read 1 segment definition in prod (of 42)."
    connection.refresh_from_db()
    assert connection.sandboxes == ["prod", "dev"]
    assert connection.last_test_ok is True and connection.last_tested_at is not None
    assert [step["name"] for step in connection.last_test_steps] == [
        services.STEP_TOKEN, services.STEP_SANDBOXES, services.STEP_SANDBOX,
        services.STEP_DEFINITIONS]
    token_request, *api_requests = seen
    assert "client_secret=p8e-TOPSECRET" in token_request.content.decode()
    for request in api_requests:
        assert request.headers["x-gw-ims-org-id"] == ORG
        assert request.headers["x-api-key"] == connection.client_id
        assert request.headers["Authorization"] == f"Bearer {TOKEN['access_token']}"
    assert api_requests[-1].headers["x-sandbox-name"] == "prod"
    entry = AuditEntry.objects.get(action="connection.test")
    assert entry.actor == admin_user and (entry.after or {})["ok"] is True


def test_bad_secret(make_connection: Any) -> None:
    connection = make_connection()
    result = run(connection, aep(token=answer(400, {
        "error": "invalid_client", "error_description": "invalid client_secret parameter"})))
    assert not result.ok
    assert result.message == services.BAD_SECRET.format(client_id=connection.client_id)
    assert result.failure == services.Failure.BAD_SECRET
    assert [step.ok for step in result.steps] == [False, None, None, None]
    assert result.steps[1].detail == services.SKIPPED
    assert connection.last_test_ok is False
    assert connection.last_test_message.startswith("Bad secret:")
    assert connection.sandboxes == []


def test_unknown_client_id(make_connection: Any) -> None:
    connection = make_connection()
    result = run(connection, aep(token=answer(400, {
        "error": "invalid_client", "error_description": "invalid client_id parameter"})))
    assert result.message == services.BAD_CLIENT_ID.format(client_id=connection.client_id)


@pytest.mark.parametrize("body", [
    {"error_code": "403025", "message": "Profile is not valid"},
    {"error_code": "403027", "message": "User region is missing"},
], ids=["profile-not-valid", "user-region-missing"])
def test_wrong_org(make_connection: Any, body: dict[str, str]) -> None:
    connection = make_connection()
    result = run(connection, aep(sandboxes=answer(403, body)))
    detail = f"403 {body['error_code']}"  # the code only: never the remote message
    assert result.message == services.WRONG_ORG.format(org_id=ORG, detail=detail)
    assert result.failure == services.Failure.WRONG_ORG
    assert [step.ok for step in result.steps] == [True, False, None, None]


def test_unreachable_ims_host(make_connection: Any) -> None:
    connection = make_connection(ims_url="https://ims.unreachable.example")

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    result = run(connection, aep(token=refuse))
    assert result.message == services.UNREACHABLE.format(host="ims.unreachable.example")
    assert result.message.startswith("Unreachable host:")
    assert result.failure == services.Failure.UNREACHABLE
    assert [step.ok for step in result.steps] == [False, None, None, None]


def test_unreachable_platform_host(make_connection: Any) -> None:
    connection = make_connection(base_url="https://platform.unreachable.example:8443")

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Name or service not known", request=request)

    result = run(connection, aep(sandboxes=refuse))
    assert result.message == services.UNREACHABLE.format(
        host="platform.unreachable.example:8443")
    assert [step.ok for step in result.steps] == [True, False, None, None]


def test_missing_sandbox_not_among_the_listed_ones(make_connection: Any) -> None:
    connection = make_connection(default_sandbox="staging")
    result = run(connection, aep())
    assert result.message == services.MISSING_SANDBOX.format(sandbox="staging",
                                                             available="prod, dev")
    assert result.failure == services.Failure.MISSING_SANDBOX
    assert [step.ok for step in result.steps] == [True, True, False, None]
    # what the sandbox list said is still remembered, for the switcher and the form
    assert connection.sandboxes == ["prod", "dev"]


def test_missing_sandbox_the_api_refuses(make_connection: Any) -> None:
    """Listed (an admin's view of the org), but the technical account may not use it."""
    connection = make_connection(default_sandbox="dev")
    message = "The sandbox dev is not available to this API client."
    body = {"requestId": "YrgXiqvCobA9neOmrzCP7kQLi4yIizoP",
            "errors": {"403": [{"code": "UPAPI-113752-403", "message": message}]},
            "type": "https://ns.adobe.com/aep/errors/UPAPI-113752-403", "title": message,
            "status": 403}
    result = run(connection, aep(definitions=answer(403, body)))
    assert result.message == services.MISSING_SANDBOX_API.format(
        sandbox="dev", detail="403 UPAPI-113752-403")
    assert result.failure == services.Failure.MISSING_SANDBOX
    assert [step.ok for step in result.steps] == [True, True, True, False]


ABAC_DENIED = {"requestId": "q8K1jzQm0pTtYcYxKXqKx1", "type":
               "https://ns.adobe.com/aep/errors/UPAPI-113752-403",
               "errors": {"403": [{"code": "UPAPI-113752-403",
                                   "message": "Access denied: missing permission View Sandboxes"}]},
               "title": "Access denied: missing permission View Sandboxes", "status": 403}


def test_credentials_that_may_not_list_sandboxes_are_checked_by_reading_the_sandbox(
        make_connection: Any) -> None:
    connection = make_connection(default_sandbox="dev", sandboxes=["dev"])
    result = run(connection, aep(sandboxes=answer(403, ABAC_DENIED)))
    assert result.ok, result.message
    assert result.message == services.TEST_OK_UNLISTED.format(sandbox="dev")
    assert [step.ok for step in result.steps] == [True, None, True, True]
    assert result.steps[1].detail.startswith("Could not list the sandboxes (403 UPAPI-113752")
    assert result.steps[1].warning
    assert connection.sandboxes == ["dev"]  # what was known stays


def test_an_api_without_sandbox_listing_is_checked_the_same_way(make_connection: Any) -> None:
    connection = make_connection()
    body = {"requestId": "x", "errors": {"404": [{"code": 404, "message": "No resource"}]},
            "type": "https://ns.adobe.com/aep/errors/UPAPI-113430-404", "title": "No resource",
            "status": 404}
    result = run(connection, aep(sandboxes=answer(404, body)))
    assert result.ok and [step.ok for step in result.steps] == [True, None, True, True]


def test_unlisted_sandboxes_and_a_refused_sandbox_is_a_missing_sandbox(
        make_connection: Any) -> None:
    connection = make_connection(default_sandbox="qa")
    message = "The sandbox qa is not available to this API client."
    refused = {"requestId": "x", "errors": {"403": [{"code": "UPAPI-113752-403",
                                                    "message": message}]},
               "type": "https://ns.adobe.com/aep/errors/UPAPI-113752-403", "title": message,
               "status": 403}
    result = run(connection, aep(sandboxes=answer(403, ABAC_DENIED),
                                 definitions=answer(403, refused)))
    assert result.failure == services.Failure.MISSING_SANDBOX
    assert [step.ok for step in result.steps] == [True, None, False, None]


def test_no_stored_secret_is_said_before_any_call(make_connection: Any) -> None:
    connection = make_connection(client_secret="")
    seen: list[httpx.Request] = []
    result = run(connection, aep(seen=seen))
    assert result.message == services.NO_SECRET and seen == []


def test_other_api_errors_name_the_status_and_code_not_the_remote_text(
        make_connection: Any) -> None:
    connection = make_connection()
    body = {"type": "/placeholder/type/uri", "status": 400, "title": "BadRequestError",
            "detail": "limit must be positive"}
    result = run(connection, aep(definitions=answer(400, body)))
    assert result.message == services.API_ERROR.format(detail="400 BadRequestError")


def test_a_hostile_answer_is_never_shown(make_connection: Any) -> None:
    """Whatever a remote body says (HTML, a phishing text, a very long code), the test panel
    carries our diagnosis and the status only."""
    connection = make_connection()
    body = {"error_code": "<script>alert(1)</script>", "message": "Call +1-555 to fix this",
            "title": "x" * 5000}
    result = run(connection, aep(sandboxes=answer(500, body)))
    stored = json.dumps([result.message, [step.detail for step in result.steps]])
    assert "script" not in stored and "555" not in stored and "xxxx" not in stored
    assert result.message == services.API_ERROR.format(detail="500")


def test_the_secret_never_reaches_the_stored_result_or_the_audit_log(
        make_connection: Any) -> None:
    connection = make_connection()
    for transport in (aep(), aep(token=answer(400, {
            "error": "invalid_client", "error_description": "invalid client_secret parameter"}))):
        run(connection, transport)
        stored = json.dumps([connection.last_test_message, connection.last_test_steps])
        assert "TOPSECRET" not in stored
    assert "TOPSECRET" not in json.dumps(list(AuditEntry.objects.values("before", "after")))


def test_changing_the_settings_marks_the_last_result_as_stale(make_connection: Any) -> None:
    connection = make_connection()
    run(connection, aep())
    services.connection_update(actor=None, connection=connection, name="Renamed")
    connection.refresh_from_db()
    assert connection.last_test_ok is True  # a new name changes nothing that was tested
    services.connection_update(actor=None, connection=connection, client_secret="new-one")
    connection.refresh_from_db()
    assert connection.last_test_ok is None and connection.last_test_steps
