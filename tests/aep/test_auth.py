"""The IMS token manager: caching, expiry in seconds or legacy milliseconds, refresh, threads."""

from __future__ import annotations

import threading

import httpx
import pytest

from aep import Credentials, TokenManager, expires_in_seconds, shared_token_manager
from tests.aep.conftest import CREDS, SECRET, FakeAEP, FakeTime


@pytest.mark.parametrize(("value", "seconds"), [
    (86399, 86399), (3600, 3600), ("86399", 86399),  # /ims/token/v3: seconds
    (86399992, 86399.992), (3_600_000 * 24, 86400),  # the JWT exchange: milliseconds
    (10_000_000, 10_000_000), (10_000_001, 10_000.001),  # the rule's edge
])
def test_expires_in_units(value: object, seconds: float) -> None:
    assert expires_in_seconds(value) == pytest.approx(seconds)


def test_a_token_is_cached_until_shortly_before_it_expires(fake: FakeAEP,
                                                           fake_time: FakeTime) -> None:
    tokens = TokenManager(CREDS, transport=fake.transport(), clock=fake_time.clock)
    first = tokens.token()
    fake_time.now += 86399 - 301
    assert tokens.token() == first
    fake_time.now += 2  # inside the 300 s margin
    assert tokens.token() != first
    assert tokens.fetch_count == 2


def test_a_short_lived_token_keeps_a_tenth_of_its_life_as_margin(fake: FakeAEP,
                                                                 fake_time: FakeTime) -> None:
    fake.expires_in = 60
    tokens = TokenManager(CREDS, transport=fake.transport(), clock=fake_time.clock)
    first = tokens.token()
    fake_time.now += 53
    assert tokens.token() == first
    fake_time.now += 2
    assert tokens.token() != first


def test_invalidate_forgets_only_the_refused_token(fake: FakeAEP) -> None:
    tokens = TokenManager(CREDS, transport=fake.transport())
    stale = tokens.token()
    tokens.invalidate(stale)
    fresh = tokens.token()
    tokens.invalidate(stale)  # a second thread's late 401 for the old token
    assert tokens.token() == fresh and tokens.fetch_count == 2
    tokens.invalidate()
    assert tokens.token() not in (stale, fresh)


def test_concurrent_callers_share_one_ims_request() -> None:
    release = threading.Event()
    calls: list[int] = []

    def ims(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        assert release.wait(5), "the test never released IMS"
        return httpx.Response(200, json={"access_token": "tok-shared", "expires_in": 86399})

    tokens = TokenManager(CREDS, transport=httpx.MockTransport(ims))
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(tokens.token()))
               for _ in range(16)]
    for thread in threads:
        thread.start()
    release.set()
    for thread in threads:
        thread.join(5)
    assert results == ["tok-shared"] * 16 and len(calls) == 1


def test_shared_managers_are_per_credential() -> None:
    other = Credentials(ims_url=CREDS.ims_url, client_id=CREDS.client_id,
                        client_secret="rotated", org_id=CREDS.org_id)
    assert shared_token_manager(CREDS) is shared_token_manager(CREDS)
    assert shared_token_manager(other) is not shared_token_manager(CREDS)
    assert SECRET not in CREDS.fingerprint()


def test_a_token_answer_without_a_token_is_permanent(fake: FakeAEP) -> None:
    from aep import AEPPermanentError

    fake.ims_script = [httpx.Response(200, json={"token_type": "bearer"})]
    with pytest.raises(AEPPermanentError):
        TokenManager(CREDS, transport=fake.transport()).token()


def test_an_ims_url_with_the_token_path_and_empty_scopes(fake: FakeAEP) -> None:
    creds = Credentials(ims_url="https://ims-na1.adobelogin.com/ims/token/v3/",
                        client_id="id", client_secret="s", org_id="o", scopes="")
    TokenManager(creds, transport=fake.transport()).token()
    request = fake.ims_requests[0]
    assert request.url.path == "/ims/token/v3"
    assert dict(httpx.QueryParams(request.read().decode()))["scope"].startswith("openid,")
