"""What can go wrong talking to AEP, split by what the caller should do about it.

``AEPTransientError`` means "try again later" (Celery retries it); ``AEPPermanentError`` means
"this request will never succeed as is". Each error carries AEP's own error code and message,
read from whichever of the error body shapes of spec/aep-api.md §8.1 the service answered with,
and the ``x-request-id`` we sent, so a support ticket can quote it. Messages never contain a
credential: they are built from the response body and our own constant texts only.
"""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

import httpx

__all__ = [
    "AEPAuthError",
    "AEPConnectionError",
    "AEPError",
    "AEPNotFoundError",
    "AEPPermanentError",
    "AEPTransientError",
    "error_details",
]


class AEPError(Exception):
    """Base of every error the client raises."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 request_id: str = "", body: Any = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id
        self.body = body
        # seconds the server asked us to wait (Retry-After / retryAfterMs), if it said
        self.retry_after = retry_after

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # keyword-only fields survive pickling (Celery hands exceptions between processes)
        return (_rebuild, (type(self), self.message, dict(self.__dict__)))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.message!r}, status={self.status!r}, "
                f"code={self.code!r}, request_id={self.request_id!r})")


def _rebuild(cls: type[AEPError], message: str, state: dict[str, Any]) -> AEPError:
    error = cls(message)
    error.__dict__.update(state)
    return error


class AEPTransientError(AEPError):
    """429, 5xx, timeouts and connection errors, once the retries are spent: try again later."""


class AEPConnectionError(AEPTransientError):
    """The host could not be reached at all (DNS, refused, connect timeout)."""


class AEPPermanentError(AEPError):
    """Any other 4xx, or an answer we cannot read (malformed JSON): retrying will not help."""


class AEPAuthError(AEPPermanentError):
    """IMS refused the credentials, or the API answered 401 after one token refresh, or 403."""


class AEPNotFoundError(AEPPermanentError):
    """404: the resource does not exist (or no longer does)."""


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value) if value is not None else ""


def error_details(body: Any) -> tuple[str | None, str]:
    """(code, message) from any of the error body shapes of spec/aep-api.md §8.1.

    1. gateway ``{"error_code", "message"}``; 2. problem detail ``{"type", "title", "detail"}``;
    3. UPS ``{"errors": {"404": [...]}, "type": ".../UPAPI-113430-404", "title"}``;
    4. profile access ``{"message": "UPS-MRG-1000001: ...", "statusCode"}`` (429: a list of
    them); 5. IMS ``{"error", "error_description"}``; 6. ``{"errorMessage"}``.
    """
    if isinstance(body, list) and body and isinstance(body[0], dict):
        body = body[0]
    if not isinstance(body, dict):
        return None, _text(body)[:500] if body else ""
    if "error_code" in body:
        return str(body["error_code"]), _text(body.get("message"))
    if "error" in body and isinstance(body["error"], str):
        return body["error"], _text(body.get("error_description") or body["error"])
    if "type" in body and ("title" in body or "detail" in body or "errors" in body):
        kind = str(body["type"])
        code = kind.rsplit("/", 1)[-1] if "ns.adobe.com" in kind else str(body.get("title") or "")
        message = body.get("detail") or body.get("title") or ""
        errors = body.get("errors")
        if not message and isinstance(errors, dict):
            items = [item for group in errors.values() if isinstance(group, list)
                     for item in group if isinstance(item, dict) and item.get("message")]
            message = items[0]["message"] if items else ""
        return code or None, _text(message)
    if "message" in body:
        message = _text(body["message"])
        head, sep, _ = message.partition(":")
        found: str | None = head if sep and " " not in head and head else None
        if found is None and "statusCode" in body:
            found = str(body["statusCode"])
        return found, message
    if "errorMessage" in body:
        return None, _text(body["errorMessage"])
    return None, json.dumps(body)[:500]


def read_body(response: httpx.Response) -> Any:
    """The JSON of an error response, or its text when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return response.text[:2000] or None


def retry_after_seconds(response: httpx.Response, body: Any, *, now: float) -> float | None:
    """Retry-After (seconds or an HTTP date; ``now`` is epoch seconds) or a body's retryAfterMs."""
    from email.utils import parsedate_to_datetime

    header = response.headers.get("Retry-After")
    if header:
        header = header.strip()
        try:
            return max(0.0, float(header))
        except ValueError:
            pass
        try:
            moment = parsedate_to_datetime(header)
        except (TypeError, ValueError, IndexError):
            moment = None
        if moment is not None:
            if moment.tzinfo is None:  # "-0000": a UTC time of unknown origin (RFC 5322)
                moment = moment.replace(tzinfo=UTC)
            return max(0.0, moment.timestamp() - now)
    item = body[0] if isinstance(body, list) and body else body
    if isinstance(item, dict) and "retryAfterMs" in item:
        try:
            return max(0.0, float(item["retryAfterMs"]) / 1000)
        except (TypeError, ValueError):
            return None
    return None
