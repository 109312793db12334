"""RetryPolicy arithmetic, Retry-After parsing and the error body shapes of spec §8.1."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from aep import RetryPolicy
from aep.errors import error_details, retry_after_seconds
from tests.aep.conftest import FakeTime


def test_backoff_ceiling_doubles_up_to_max_delay() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=5, random=lambda: 1.0)
    assert [policy.backoff(n) for n in range(1, 7)] == [0.5, 1, 2, 4, 5, 5]


def test_next_delay_stops_at_max_attempts_and_budget(fake_time: FakeTime) -> None:
    policy = fake_time.policy(max_attempts=3, total_budget=10)
    started = fake_time.clock()
    assert policy.next_delay(1, started=started) == 0.5
    assert policy.next_delay(2, started=started) == 1.0
    assert policy.next_delay(3, started=started) is None  # the 3rd attempt was the last
    assert policy.next_delay(1, started=started, retry_after=11) is None  # past the budget
    fake_time.now += 9.5
    assert policy.next_delay(1, started=started) == 0.5  # ends exactly at the budget
    assert policy.next_delay(2, started=started) is None


def test_retry_after_wins_over_a_shorter_backoff(fake_time: FakeTime) -> None:
    policy = fake_time.policy()
    assert policy.next_delay(1, started=fake_time.clock(), retry_after=4) == 4
    assert policy.next_delay(1, started=fake_time.clock(), retry_after=0.1) == 0.5


def response(headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(429, headers=headers or {})


@pytest.mark.parametrize(("headers", "body", "expected"), [
    ({"Retry-After": "120"}, None, 120.0),
    ({"Retry-After": " 2.5 "}, None, 2.5),
    ({"Retry-After": "Wed, 21 Oct 2015 07:28:30 GMT"}, None, 30.0),
    ({"Retry-After": "Wed, 21 Oct 2015 07:27:00 GMT"}, None, 0.0),  # in the past: now
    ({"Retry-After": "soon"}, None, None),
    ({}, [{"message": "Too many requests", "retryAfterMs": "500", "statusCode": "429"}], 0.5),
    ({}, {"retryAfterMs": 2000}, 2.0),
    ({}, {"retryAfterMs": "later"}, None),
    ({}, None, None),
])
def test_retry_after(headers: dict[str, str], body: Any, expected: float | None) -> None:
    now = 1445412480.0  # Wed, 21 Oct 2015 07:28:00 GMT
    assert retry_after_seconds(response(headers), body, now=now) == expected


@pytest.mark.parametrize(("body", "code", "message"), [
    ({"error_code": "401013", "message": "Oauth token is not valid"},
     "401013", "Oauth token is not valid"),
    ({"type": "/placeholder/type/uri", "status": 404, "title": "NotFoundError",
      "detail": "DataSet not found."}, "NotFoundError", "DataSet not found."),
    ({"requestId": "Yrg", "errors": {"400": [{"code": 400, "message": "Bad PQL at 1:5"}]},
      "type": "https://ns.adobe.com/aep/errors/UPAPI-113434-400", "title": "Bad PQL at 1:5",
      "status": 400}, "UPAPI-113434-400", "Bad PQL at 1:5"),
    ({"requestId": "Yrg", "errors": {"400": [{"code": 400, "message": "inner"}]},
      "type": "https://ns.adobe.com/aep/errors/UPLIB-101206-500", "status": 400},
     "UPLIB-101206-500", "inner"),
    ({"message": "UPS-MRG-1000001: merge policy not found", "cause": "x", "statusCode": "422"},
     "UPS-MRG-1000001", "UPS-MRG-1000001: merge policy not found"),
    ({"message": "UPS-ACC-1000004: IMS Org is not provisioned.", "statusCode": "403"},
     "UPS-ACC-1000004", "UPS-ACC-1000004: IMS Org is not provisioned."),
    ([{"message": "Too many requests", "retryAfterMs": "500", "statusCode": "429"}],
     "429", "Too many requests"),
    ({"error": "invalid_client", "error_description": "invalid client_secret parameter"},
     "invalid_client", "invalid client_secret parameter"),
    ({"errorMessage": "Supplied version=[1] does not match"}, None,
     "Supplied version=[1] does not match"),
    ("<html>Bad gateway</html>", None, "<html>Bad gateway</html>"),
    (None, None, ""),
])
def test_error_details_of_every_shape(body: Any, code: str | None, message: str) -> None:
    assert error_details(body) == (code, message)
