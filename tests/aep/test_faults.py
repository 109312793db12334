"""Fault scenarios on a fake AEP (httpx.MockTransport) with real-shaped payloads (spec §8.1).

Retry policies use FakeTime: their sleeps are recorded and advance a fake clock, never the wall.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from aep import (
    AEPAuthError,
    AEPClient,
    AEPConnectionError,
    AEPNotFoundError,
    AEPPermanentError,
    AEPTransientError,
    Credentials,
    RetryPolicy,
)
from aep.client import API_MALFORMED, API_REFUSED_TOKEN
from tests.aep.conftest import BASE, CREDS, ORG, FakeAEP, FakeTime, reply, ups_error

JOB_ID = "2bb6d5c7-6d0f-4b43-8c2a-3b5a1c6f2e11"
JOB: dict[str, Any] = {"id": "2bb6d5c7-6d0f-4b43-8c2a-3b5a1c6f2e11", "status": "PROCESSING",
       "segments": [{"segmentId": "7863c010-e092-41c8-ae5e-9e533186752e"}],
       "metrics": {"totalTime": {}}, "errors": [], "creationTime": 1573203617195}
JOB_PATH = f"/data/core/ups/segment/jobs/{JOB_ID}"
TOO_MANY = ups_error(429, "UPAPI-113429-429", "Too many segmentation jobs in processing")
SERVER_ERROR = {"type": "/placeholder/type/uri", "status": 500, "title": "InternalServerError",
                "detail": "Something went wrong"}
BAD_TOKEN = {"error_code": "401013", "message": "Oauth token is not valid"}


def test_429_storm_stops_after_max_attempts_honouring_retry_after(
        fake: FakeAEP, fake_time: FakeTime, make_client: Callable[..., AEPClient]) -> None:
    fake.default = lambda request: reply(429, TOO_MANY, **{"Retry-After": "7"})
    client = make_client(max_attempts=4, base_delay=0.1, total_budget=600)
    with pytest.raises(AEPTransientError) as caught:
        client.get_segment_job(JOB_ID)
    assert len(fake.requests) == 4
    assert fake_time.sleeps == [7, 7, 7]  # the server's 7 s beat our 0.1–0.4 s backoff
    error = caught.value
    assert (error.status, error.code, error.retry_after) == (429, "UPAPI-113429-429", 7)
    assert "Too many segmentation jobs in processing" in error.message
    assert not isinstance(error, AEPConnectionError)


def test_429_storm_stops_when_the_time_budget_is_spent(
        fake: FakeAEP, fake_time: FakeTime, make_client: Callable[..., AEPClient]) -> None:
    fake.default = lambda request: reply(429, TOO_MANY, **{"Retry-After": "25"})
    client = make_client(max_attempts=100, total_budget=60)
    with pytest.raises(AEPTransientError):
        client.get_segment_job(JOB_ID)
    assert fake_time.sleeps == [25, 25]  # a third wait would end 75 s after the start
    assert len(fake.requests) == 3


def test_retry_after_as_an_http_date(fake: FakeAEP, fake_time: FakeTime,
                                     aep_client: AEPClient) -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    fake.script = [reply(503, SERVER_ERROR, **{"Retry-After": later}), reply(200, JOB)]
    assert aep_client.get_segment_job(JOB_ID).status == "PROCESSING"
    assert len(fake_time.sleeps) == 1 and 28 <= fake_time.sleeps[0] <= 30


def test_profile_access_429_body_says_retry_after_ms(fake: FakeAEP, fake_time: FakeTime,
                                                     aep_client: AEPClient) -> None:
    body = [{"message": "Too many requests", "cause": '{"Errors":["Request rate is large"]}',
             "retryAfterMs": "1500", "statusCode": "429"}]
    fake.script = [reply(429, body), reply(200, {"items": []})]
    aep_client.preview_sample_status()
    assert fake_time.sleeps == [1.5]


def test_500s_then_success(fake: FakeAEP, fake_time: FakeTime, aep_client: AEPClient) -> None:
    fake.script = [reply(500, SERVER_ERROR), reply(502, None), reply(503, SERVER_ERROR),
                   reply(200, JOB)]
    job = aep_client.get_segment_job(JOB_ID)
    assert job.id == JOB["id"] and job.raw == JOB
    assert fake_time.sleeps == [0.5, 1.0, 2.0]  # full jitter at its ceiling: 0.5 * 2^n
    request_ids = [r.headers["x-request-id"] for r in fake.requests]
    assert len(set(request_ids)) == 4  # every attempt is a request of its own


def test_500s_exhaust_into_a_transient_error_with_aeps_code(
        fake: FakeAEP, make_client: Callable[..., AEPClient]) -> None:
    fake.default = lambda request: reply(500, SERVER_ERROR)
    with pytest.raises(AEPTransientError) as caught:
        make_client(max_attempts=3).get_segment_job(JOB_ID)
    assert (caught.value.status, caught.value.code) == (500, "InternalServerError")
    assert caught.value.request_id == fake.requests[-1].headers["x-request-id"]
    assert len(fake.requests) == 3


def test_jitter_is_random_below_the_exponential_ceiling(fake: FakeAEP,
                                                        fake_time: FakeTime) -> None:
    fake.script = [reply(500, SERVER_ERROR), reply(500, SERVER_ERROR), reply(500, SERVER_ERROR),
                   reply(200, JOB)]
    client = AEPClient(BASE, CREDS, transport=fake.transport(),
                       retry=fake_time.policy(random=iter([0.5, 0.25, 0.0]).__next__))
    client.get_segment_job(JOB_ID)
    assert fake_time.sleeps == [0.25, 0.25, 0.0]


def test_a_create_is_not_retried_after_a_500(fake: FakeAEP, aep_client: AEPClient) -> None:
    """The job may exist already: a second POST could start a second job."""
    fake.script = [reply(500, SERVER_ERROR), reply(200, JOB)]
    with pytest.raises(AEPTransientError):
        aep_client.create_segment_job([JOB["segments"][0]["segmentId"]])
    assert len(fake.requests) == 1


def test_a_create_is_retried_after_a_429(fake: FakeAEP, fake_time: FakeTime,
                                         aep_client: AEPClient) -> None:
    fake.script = [reply(429, TOO_MANY, **{"Retry-After": "3"}), reply(200, JOB)]
    job = aep_client.create_segment_job(["7863c010-e092-41c8-ae5e-9e533186752e"],
                                        request_id="submission-42")
    assert job.id == JOB["id"] and fake_time.sleeps == [3]
    assert [r.headers["x-request-id"] for r in fake.requests] == ["submission-42"] * 2
    assert fake.requests[0].read() == b'[{"segmentId":"7863c010-e092-41c8-ae5e-9e533186752e"}]'


def test_read_timeouts_then_success(fake: FakeAEP, fake_time: FakeTime,
                                    aep_client: AEPClient) -> None:
    fake.script = [httpx.ReadTimeout("timed out"), httpx.ReadTimeout("timed out"),
                   reply(200, JOB)]
    assert aep_client.get_segment_job(JOB_ID).id == JOB["id"]
    assert len(fake_time.sleeps) == 2


def test_timeouts_exhaust_into_a_transient_error(fake: FakeAEP,
                                                 make_client: Callable[..., AEPClient]) -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    fake.default = timeout
    with pytest.raises(AEPTransientError) as caught:
        make_client(max_attempts=3).get_segment_job(JOB_ID)
    assert not isinstance(caught.value, AEPConnectionError)
    assert str(caught.value) == f"AEP did not answer within 30 s (GET {JOB_PATH})"
    assert len(fake.requests) == 3


def test_a_create_is_not_retried_after_a_read_timeout(fake: FakeAEP,
                                                      aep_client: AEPClient) -> None:
    fake.script = [httpx.ReadTimeout("timed out"), reply(200, JOB)]
    with pytest.raises(AEPTransientError):
        aep_client.create_export_job({"destination": {"datasetId": "5b7c86968f7b6501e21ba9df"}})
    assert len(fake.requests) == 1


def test_connection_refused_is_retried_then_a_connection_error(
        fake: FakeAEP, fake_time: FakeTime, make_client: Callable[..., AEPClient]) -> None:
    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    fake.default = refused
    with pytest.raises(AEPConnectionError) as caught:
        make_client(max_attempts=3).create_segment_job(["x"])  # a create: never reached AEP
    assert len(fake.requests) == 3 and len(fake_time.sleeps) == 2
    assert str(caught.value) == ("Could not reach platform.adobe.io: "
                                 "[Errno 111] Connection refused")
    assert isinstance(caught.value, AEPTransientError)


def test_a_real_refused_connection(fake_time: FakeTime) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    creds = Credentials(ims_url=url, client_id="id", client_secret="s", org_id=ORG)
    policy = fake_time.policy(max_attempts=2)
    from aep import TokenManager

    client = AEPClient(url, creds, token_manager=TokenManager(creds, retry=policy),
                       retry=policy, timeout=2)
    with pytest.raises(AEPConnectionError) as caught:
        client.sandboxes()
    assert "127.0.0.1" in str(caught.value)


def test_malformed_json_is_a_permanent_error(fake: FakeAEP, aep_client: AEPClient) -> None:
    fake.script = [httpx.Response(200, content=b"<html><body>Gateway says hi</body></html>",
                                  headers={"Content-Type": "text/html"})]
    with pytest.raises(AEPPermanentError) as caught:
        aep_client.get_segment_job(JOB_ID)
    assert str(caught.value) == API_MALFORMED.format(method="GET", path=JOB_PATH)
    assert caught.value.request_id == fake.requests[0].headers["x-request-id"]
    assert len(fake.requests) == 1


def test_an_expired_token_is_refreshed_once(fake: FakeAEP, fake_time: FakeTime,
                                            aep_client: AEPClient) -> None:
    fake.script = [reply(401, BAD_TOKEN), reply(200, JOB)]
    assert aep_client.get_segment_job(JOB_ID).id == JOB["id"]
    assert len(fake.issued) == 2 and fake_time.sleeps == []
    assert [r.headers["Authorization"] for r in fake.requests] == [
        f"Bearer {token}" for token in fake.issued]
    aep_client.get_segment_job(JOB_ID)
    assert len(fake.issued) == 2  # the fresh token is cached


def test_401_after_a_refresh_is_an_auth_error(fake: FakeAEP, aep_client: AEPClient) -> None:
    fake.default = lambda request: reply(401, BAD_TOKEN)
    with pytest.raises(AEPAuthError) as caught:
        aep_client.get_segment_job(JOB_ID)
    assert len(fake.issued) == 2 and len(fake.requests) == 2
    assert (caught.value.status, caught.value.code) == (401, "401013")
    assert str(caught.value) == API_REFUSED_TOKEN.format(
        detail="401013: Oauth token is not valid")


def test_403_is_an_auth_error_without_refresh(fake: FakeAEP, aep_client: AEPClient) -> None:
    fake.script = [reply(403, {"error_code": "403025", "message": "Profile is not valid"})]
    with pytest.raises(AEPAuthError) as caught:
        aep_client.sandboxes()
    assert caught.value.code == "403025" and len(fake.issued) == 1


def test_a_revoked_secret_is_an_auth_error_with_a_plain_message(
        fake: FakeAEP, aep_client: AEPClient) -> None:
    fake.ims_script = [reply(401, {"error": "invalid_client",
                                   "error_description": "invalid client_secret parameter"})]
    with pytest.raises(AEPAuthError) as caught:
        aep_client.sandboxes()
    assert str(caught.value) == ("IMS refused the client credentials (invalid_client): "
                                 "invalid client_secret parameter")
    assert caught.value.code == "invalid_client" and caught.value.status == 401
    assert fake.requests == [] and len(fake.ims_requests) == 1


def test_ims_form_is_client_credentials(fake: FakeAEP, aep_client: AEPClient) -> None:
    aep_client.token()
    request = fake.ims_requests[0]
    assert str(request.url) == "https://ims-na1.adobelogin.com/ims/token/v3"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    form = dict(httpx.QueryParams(request.read().decode()))
    assert form == {"grant_type": "client_credentials", "client_id": CREDS.client_id,
                    "client_secret": CREDS.client_secret, "scope": CREDS.scopes}


def test_ims_unavailable_is_retried(fake: FakeAEP, fake_time: FakeTime,
                                    aep_client: AEPClient) -> None:
    fake.ims_script = [reply(503, None), reply(429, {"error": "too_many_requests"},
                                               **{"Retry-After": "2"})]
    aep_client.sandboxes()
    assert len(fake.ims_requests) == 3 and fake_time.sleeps == [0.5, 2]


def test_legacy_millisecond_expires_in(fake: FakeAEP, fake_time: FakeTime) -> None:
    from aep import TokenManager

    fake.expires_in = 86399992  # the JWT exchange's milliseconds: ~24 h, not ~1000 days
    tokens = TokenManager(CREDS, transport=fake.transport(), clock=fake_time.clock)
    first = tokens.token()
    fake_time.now += 23 * 3600
    assert tokens.token() == first
    fake_time.now += 3600
    assert tokens.token() != first and len(fake.issued) == 2


def test_headers_on_every_request(fake: FakeAEP, make_client: Callable[..., AEPClient]) -> None:
    client = make_client(sandbox="dev-1")
    client.sandboxes()
    client.preview_sample_status()
    ids = set()
    for request in fake.requests:
        headers = request.headers
        assert headers["Authorization"] == f"Bearer {fake.issued[0]}"
        assert headers["x-api-key"] == CREDS.client_id
        assert headers["x-gw-ims-org-id"] == ORG
        assert headers["x-sandbox-name"] == "dev-1"
        assert uuid.UUID(headers["x-request-id"]).version == 4
        ids.add(headers["x-request-id"])
    assert len(ids) == 2


def test_404_carries_the_ups_error(fake: FakeAEP, aep_client: AEPClient) -> None:
    message = "The segment job 2bb6d5c7 is not found. Use a valid entity and try again."
    fake.script = [reply(404, ups_error(404, "UPAPI-113430-404", message))]
    with pytest.raises(AEPNotFoundError) as caught:
        aep_client.get_segment_job(JOB_ID)
    assert (str(caught.value), caught.value.code) == (message, "UPAPI-113430-404")


def test_400_problem_detail_is_permanent_and_not_retried(fake: FakeAEP,
                                                         aep_client: AEPClient) -> None:
    fake.script = [reply(400, {"type": "/placeholder/type/uri", "status": 400,
                               "title": "BadRequestError",
                               "detail": "A valid content-type must be specified"})]
    with pytest.raises(AEPPermanentError) as caught:
        aep_client.get_segment_job(JOB_ID)
    assert not isinstance(caught.value, AEPNotFoundError | AEPAuthError)
    assert (caught.value.code, str(caught.value)) == (
        "BadRequestError", "A valid content-type must be specified")
    assert len(fake.requests) == 1


def test_no_retry_policy(fake: FakeAEP) -> None:
    fake.default = lambda request: reply(503, SERVER_ERROR)
    client = AEPClient(BASE, CREDS, transport=fake.transport(),
                       retry=RetryPolicy(max_attempts=1))
    with pytest.raises(AEPTransientError):
        client.sandboxes()
    assert len(fake.requests) == 1


def test_concurrent_401s_fetch_one_new_token(fake: FakeAEP, aep_client: AEPClient) -> None:
    import threading

    aep_client.token()  # every thread starts with the same, soon refused, token
    fake.default = lambda request: (
        reply(401, BAD_TOKEN) if request.headers["Authorization"].endswith(fake.issued[0])
        else reply(200, JOB))
    errors: list[BaseException] = []

    def poll() -> None:
        try:
            aep_client.get_segment_job(JOB_ID)
        except BaseException as error:  # reported by the assert below
            errors.append(error)

    threads = [threading.Thread(target=poll) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == [] and len(fake.issued) == 2


def test_each_request_is_logged_without_its_query(fake: FakeAEP, aep_client: AEPClient,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    import logging

    caplog.set_level(logging.DEBUG, logger="aep")
    fake.script = [reply(200, {"ann@example.com": {"entity": {}}}), reply(404, None)]
    aep_client.entity("ann@example.com", "Email")
    with pytest.raises(AEPNotFoundError):
        aep_client.get_segment_job(JOB_ID)
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "aep"
             and r.getMessage().startswith("aep ")]
    first, second = (request.headers["x-request-id"] for request in fake.requests)
    assert lines[0][0] == "DEBUG" and lines[0][1].startswith(
        "aep GET /data/core/ups/access/entities -> 200 in ")
    assert lines[0][1].endswith(f"ms request_id={first} sandbox=prod")
    assert lines[1][0] == "INFO" and lines[1][1].startswith(f"aep GET {JOB_PATH} -> 404 in ")
    assert second in lines[1][1]
    assert "ann@example.com" not in caplog.text


def test_errors_survive_pickling() -> None:
    import pickle

    error = AEPAuthError("refused", status=401, code="401013", request_id="r-1",
                         body={"error_code": "401013"}, retry_after=None)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is AEPAuthError and str(copy) == "refused"
    assert (copy.status, copy.code, copy.request_id, copy.body) == (
        401, "401013", "r-1", {"error_code": "401013"})
