"""IMS OAuth server-to-server tokens (spec/aep-api.md §1.2).

``TokenManager.token()`` returns a cached access token, fetching a new one from
``<ims_url>/ims/token/v3`` (form-encoded ``client_credentials``) when there is none or when the
cached one is about to expire. ``invalidate(token)`` drops a token the API refused (401), so the
next ``token()`` fetches a fresh one; the client does that once per request.

Thread-safe: one lock guards the cache and the fetch, so concurrent callers that find no valid
token wait for the one IMS request instead of each sending their own.

``expires_in`` units: IMS ``/ims/token/v3`` answers seconds (86399 ≈ 24 h); the legacy JWT
exchange answered milliseconds (86399992). The rule: a value above ``MS_THRESHOLD`` (10 million,
i.e. more than 115 days if it were seconds — no IMS token lives that long) is milliseconds.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from aep.errors import (
    AEPAuthError,
    AEPConnectionError,
    AEPPermanentError,
    AEPTransientError,
    error_details,
    read_body,
    retry_after_seconds,
)
from aep.retry import RetryPolicy
from aep.tls import ssl_context

__all__ = ["DEFAULT_SCOPES", "MS_THRESHOLD", "Credentials", "TokenManager", "expires_in_seconds"]

logger = logging.getLogger("aep")

DEFAULT_SCOPES = "openid,AdobeID,read_organizations,additional_info.projectedProductContext,session"
TOKEN_PATH = "/ims/token/v3"
MS_THRESHOLD = 10_000_000
REFRESH_MARGIN = 300.0  # seconds before expiry a cached token is replaced
TOKEN_REFUSED = "IMS refused the client credentials ({code}): {description}"
TOKEN_UNREADABLE = "IMS answered {status} without a token"
IMS_UNREACHABLE = "IMS could not be reached at {host}: {reason}"
IMS_UNAVAILABLE = "IMS answered {status}, try again later"


def expires_in_seconds(value: Any) -> float:
    """``expires_in`` as seconds: values above MS_THRESHOLD are legacy milliseconds."""
    number = float(value)
    return number / 1000 if number > MS_THRESHOLD else number


@dataclass(frozen=True, kw_only=True)
class Credentials:
    """A Developer Console OAuth server-to-server credential; the secret is kept out of repr."""

    ims_url: str
    client_id: str
    client_secret: str = field(repr=False)
    org_id: str
    scopes: str = DEFAULT_SCOPES

    def fingerprint(self) -> str:
        """A stable key for caches that never reveals the secret."""
        digest = hashlib.sha256("\0".join((self.ims_url.rstrip("/"), self.client_id,
                                            self.client_secret, self.scopes)).encode())
        return digest.hexdigest()


@dataclass
class _Cached:
    token: str = field(repr=False)
    expires_at: float  # clock() time after which we no longer hand the token out


class TokenManager:
    """Fetches, caches and refreshes IMS access tokens for one credential."""

    def __init__(self, credentials: Credentials, *, transport: httpx.BaseTransport | None = None,
                 timeout: float = 30.0, retry: RetryPolicy | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 refresh_margin: float = REFRESH_MARGIN) -> None:
        self.credentials = credentials
        self._retry = retry or RetryPolicy()
        self._clock = clock
        self._margin = refresh_margin
        self._lock = threading.Lock()
        self._cached: _Cached | None = None
        self._http = httpx.Client(transport=transport, verify=ssl_context(),
                                  timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)))
        self.fetch_count = 0  # IMS requests that returned a token (tests and metrics read it)

    def __repr__(self) -> str:
        return (f"TokenManager(ims_url={self.credentials.ims_url!r}, "
                f"client_id={self.credentials.client_id!r})")

    def token(self) -> str:
        """A valid access token, from the cache when it has one that is not about to expire."""
        with self._lock:
            cached = self._cached
            if cached is not None and self._clock() < cached.expires_at:
                return cached.token
            self._cached = self._fetch()
            return self._cached.token

    def invalidate(self, token: str | None = None) -> None:
        """Forget the cached token (only if it is still ``token``, when given).

        Passing the refused token keeps concurrent 401s from discarding a token another thread
        has just fetched.
        """
        with self._lock:
            if self._cached is not None and (token is None or self._cached.token == token):
                self._cached = None

    def close(self) -> None:
        self._http.close()

    def _fetch(self) -> _Cached:
        credentials = self.credentials
        url = credentials.ims_url.rstrip("/")
        if not url.endswith(TOKEN_PATH):  # an IMS base URL, as the Developer Console shows it
            url += TOKEN_PATH
        form = {"grant_type": "client_credentials", "client_id": credentials.client_id,
                "client_secret": credentials.client_secret,
                "scope": credentials.scopes or DEFAULT_SCOPES}
        started = self._retry.clock()
        attempt = 0
        while True:
            attempt += 1
            began = time.perf_counter()
            try:
                response = self._http.post(url, data=form)
            except httpx.TransportError as exc:
                fault: AEPTransientError = AEPConnectionError(IMS_UNREACHABLE.format(
                    host=httpx.URL(url).host, reason=type(exc).__name__))
                retry_after = None
            else:
                logger.info("ims POST %s -> %s in %.0f ms client_id=%s", TOKEN_PATH,
                            response.status_code, (time.perf_counter() - began) * 1000,
                            credentials.client_id)
                if response.status_code == 200:
                    return self._cached_from(response)
                body = read_body(response)
                code, description = error_details(body)
                if response.status_code != 429 and response.status_code < 500:
                    raise AEPAuthError(TOKEN_REFUSED.format(code=code or response.status_code,
                                                            description=description),
                                       status=response.status_code, code=code, body=body)
                retry_after = retry_after_seconds(response, body, now=time.time())
                fault = AEPTransientError(IMS_UNAVAILABLE.format(status=response.status_code),
                                          status=response.status_code, code=code, body=body,
                                          retry_after=retry_after)
            delay = self._retry.next_delay(attempt, started=started, retry_after=retry_after)
            if delay is None:
                raise fault
            logger.warning("ims retry %d in %.2f s after %s", attempt, delay, fault.message)
            self._retry.sleep(delay)

    def _cached_from(self, response: httpx.Response) -> _Cached:
        try:
            body = response.json()
            token = str(body["access_token"])
            lifetime = expires_in_seconds(body.get("expires_in", 86399))
        except (ValueError, KeyError, TypeError) as exc:
            raise AEPPermanentError(TOKEN_UNREADABLE.format(status=response.status_code),
                                    status=response.status_code) from exc
        self.fetch_count += 1
        margin = min(self._margin, lifetime / 10)
        return _Cached(token=token, expires_at=self._clock() + lifetime - margin)


_shared: dict[str, TokenManager] = {}
_shared_lock = threading.Lock()


def shared_token_manager(credentials: Credentials) -> TokenManager:
    """One TokenManager per credential in this process, so short-lived clients (one per Celery
    task) reuse the token instead of asking IMS each time. Keyed by a hash of the credential."""
    key = credentials.fingerprint()
    with _shared_lock:
        manager = _shared.get(key)
        if manager is None:
            manager = _shared[key] = TokenManager(credentials)
        return manager


def clear_token_cache() -> None:
    """Forget every shared token manager (tests; after a secret rotation)."""
    with _shared_lock:
        for manager in _shared.values():
            manager.close()
        _shared.clear()
