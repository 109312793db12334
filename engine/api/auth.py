"""The gateway in front of every API view: body size, headers, bearer token, sandbox, rate limit.

``api_view`` wraps a view the way Adobe's gateway and services wrap theirs: the view only runs
for a valid token whose client id is the ``x-api-key``, whose org is the ``x-gw-ims-org-id`` and
whose client may use the ``x-sandbox-name``; it finds ``request.api_client`` and
``request.sandbox`` set. Any ``ApiError`` raised below becomes its JSON answer, and so does
anything unexpected (500), so every answer of the API is JSON. The API authenticates with
tokens, not sessions: its views need no login and no CSRF token.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from engine.api import errors, inputs
from engine.api.errors import ApiError
from engine.models import AccessToken, ApiClient

logger = logging.getLogger(__name__)

NUL = inputs.NUL
SANDBOX_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
JSON_TYPES = ("application/json",)
FILE_TYPES = ("application/octet-stream",)
BODY_METHODS = ("POST", "PUT", "PATCH")
# What a view's POST/PUT/PATCH carries (api_view's ``body``).
JSON_BODY = "json"
NO_BODY = "none"
FILE_BODY = "file"

View = Callable[..., HttpResponse]
MAX_BULK_IDS = 100  # "Cannot be 0 or exceed 100" (Adobe's bulk-get error message)
# The largest offset or page size a query parameter may name: beyond it SQLite's integers
# overflow (an OFFSET past 2**63 is an error, not an empty page).
MAX_PARAM = 2**31 - 1
MAX_EPOCH_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, datetime's last millisecond


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def client_for_token(token: str) -> ApiClient | None:
    """The active client of an unexpired token, or None."""
    row = (AccessToken.objects.select_related("client")
           .filter(digest=token_digest(token), expires_at__gt=timezone.now(),
                   client__active=True).first())
    return row.client if row else None


def api_view(*methods: str, platform: bool = True, sandboxed: bool = True,
             body: str = JSON_BODY,
             refuse: Callable[[str], ApiError] = errors.bad_input) -> Callable[[View], View]:
    """An API view answering ``methods``; ``platform`` views check AEP's headers (§1.1), and
    ``sandboxed`` ones also the x-sandbox-name (the Sandbox API is the one that does not).

    ``body`` is what its POST/PUT/PATCH requests carry: JSON (Content-Type checked, at most
    ENGINE_MAX_BODY_BYTES, read whole); nothing (the path and query say it all, as AEP's
    ``?action=COMPLETE``, sent without a Content-Type); or a file (application/octet-stream of
    at most ENGINE_MAX_UPLOAD_BYTES by its Content-Length, left unread for the view to stream).

    A NUL character in the path, a query parameter, a header or a form field is refused before
    anything reads it, with ``refuse(message)`` (the gateway's error; IMS's for the token
    endpoint): see engine/api/inputs.py.
    """

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                if request.method not in methods:
                    raise errors.ups_error(
                        errors.METHOD_NOT_ALLOWED, errors.VALIDATION_TYPE,
                        errors.METHOD_INVALID.format(method=request.method,
                                                     allowed=", ".join(methods)))
                if body == FILE_BODY:
                    check_upload_size(request)
                else:
                    check_body_size(request)
                check_characters(request, refuse, form=body != FILE_BODY)
                if platform:
                    authenticate(request, sandboxed=sandboxed)
                    check_rate(request.api_client.client_id)  # type: ignore[attr-defined]
                    if request.method in BODY_METHODS and body != NO_BODY:
                        check_content_type(request,
                                           FILE_TYPES if body == FILE_BODY else JSON_TYPES)
                return view(request, *args, **kwargs)
            except ApiError as error:
                return error.response()
            except Exception:
                logger.exception("engine API error on %s %s", request.method, request.path)
                return errors.ups_error(errors.SERVER_ERROR, errors.SERVER_ERROR_TYPE,
                                        errors.INTERNAL_ERROR).response()

        return login_not_required(csrf_exempt(wrapper))

    return decorate


def check_body_size(request: HttpRequest) -> None:
    limit = settings.ENGINE_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    try:
        too_large = declared > limit or len(request.body) > limit
    except RequestDataTooBig:  # over Django's DATA_UPLOAD_MAX_MEMORY_SIZE, if that is lower
        too_large = True
    if too_large:
        raise errors.gateway_error(errors.PAYLOAD_TOO_LARGE, errors.BODY_TOO_LARGE)


FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def check_characters(request: HttpRequest, refuse: Callable[[str], ApiError], *,
                     form: bool = True) -> None:
    """No NUL in what the request says outside its JSON body (which json_body checks): the path,
    query parameters, headers and (``form``) form fields. They arrive decoded with
    replacement characters, so a NUL is the one character to look for."""
    def refused(place: str) -> ApiError:
        return refuse(errors.CHARACTER_INVALID.format(place=place,
                                                      character=errors.CHARACTER_NUL))

    if NUL in request.path:
        raise refused(errors.PLACE_PATH)
    fields = [(errors.PLACE_QUERY, request.GET)]
    if form and request.method == "POST" and (request.content_type or "") in FORM_TYPES:
        try:
            fields.append((errors.PLACE_FORM, request.POST))
        except MultiPartParserError as error:
            raise refuse(errors.FORM_INVALID.format(reason=error)) from None
    for place, values in fields:
        for name, items in values.lists():
            if NUL in name or any(NUL in item for item in items):
                raise refused(place.format(name=shown(name)))
    for key, value in request.META.items():
        if (key.startswith("HTTP_") or key in ("CONTENT_TYPE", "CONTENT_LENGTH")) \
                and isinstance(value, str) and NUL in value:
            raise refused(errors.PLACE_HEADER.format(
                name=key.removeprefix("HTTP_").replace("_", "-").lower()))


def check_upload_size(request: HttpRequest) -> None:
    """By the declared Content-Length, before a byte is read (the view counts what it reads).
    Without one, Django's request stream is empty (a chunked upload would be stored as an
    empty file without a word), so the length is required."""
    raw = request.META.get("CONTENT_LENGTH") or ""
    if not raw.isascii() or not raw.isdigit():
        raise errors.gateway_error(errors.LENGTH_REQUIRED, errors.LENGTH_MISSING)
    if int(raw) > settings.ENGINE_MAX_UPLOAD_BYTES:
        raise upload_too_large()


def upload_too_large() -> ApiError:
    return errors.gateway_error(errors.PAYLOAD_TOO_LARGE, (
        errors.FILE_TOO_LARGE[0],
        errors.FILE_TOO_LARGE[1].format(limit=settings.ENGINE_MAX_UPLOAD_BYTES)))


def authenticate(request: HttpRequest, *, sandboxed: bool = True) -> None:
    """Gateway order: token present, API key present, token valid, key = token's client,
    org present and the client's, sandbox present and allowed to the client (``sandboxed``)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise errors.gateway_error(errors.FORBIDDEN, errors.TOKEN_MISSING)
    api_key = request.headers.get("x-api-key", "")
    if not api_key:
        raise errors.gateway_error(errors.FORBIDDEN, errors.API_KEY_MISSING)
    client = client_for_token(token.strip()) if scheme.lower() == "bearer" else None
    if client is None:
        raise errors.gateway_error(errors.UNAUTHORIZED, errors.TOKEN_INVALID)
    if api_key != client.client_id:
        raise errors.gateway_error(errors.FORBIDDEN, errors.API_KEY_INVALID)
    org = request.headers.get("x-gw-ims-org-id", "")
    if not org:
        raise errors.gateway_error(errors.BAD_REQUEST, errors.ORG_MISSING)
    if org != client.org_id:
        raise errors.gateway_error(errors.FORBIDDEN, errors.ORG_INVALID)
    request.api_client = client  # type: ignore[attr-defined]
    if not sandboxed:
        return
    sandbox = request.headers.get("x-sandbox-name", "")
    if not sandbox:
        raise errors.gateway_error(errors.BAD_REQUEST, errors.SANDBOX_MISSING)
    if not SANDBOX_NAME_RE.match(sandbox):
        raise errors.invalid(errors.SANDBOX_NAME_INVALID.format(sandbox=sandbox))
    if sandbox not in client.sandboxes:
        raise errors.ups_error(errors.FORBIDDEN, errors.FORBIDDEN_TYPE,
                               errors.SANDBOX_NOT_ALLOWED.format(sandbox=sandbox))
    request.sandbox = sandbox  # type: ignore[attr-defined]


def check_rate(client_id: str, bucket: str = "api") -> None:
    """At most ENGINE_RATE_LIMIT requests per client id and bucket per clock minute, counted in
    the cache (the token endpoint counts, in its own bucket, the client_id it is sent, so
    secrets cannot be guessed fast)."""
    now = time.time()
    window = int(now // 60)
    digest = hashlib.sha256(client_id.encode()).hexdigest()[:32]  # any text is a safe cache key
    key = f"engine-api-rate:{bucket}:{digest}:{window}"
    cache.add(key, 0, timeout=120)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=120)
        count = 1
    if count > settings.ENGINE_RATE_LIMIT:
        retry_after = max(1, int((window + 1) * 60 - now) + 1)
        error = errors.gateway_error(errors.TOO_MANY_REQUESTS, errors.TOO_MANY)
        error.headers["Retry-After"] = str(retry_after)
        raise error


def check_content_type(request: HttpRequest, allowed: tuple[str, ...] = JSON_TYPES) -> None:
    content_type = (request.content_type or "").lower()
    if content_type not in allowed:
        raise errors.problem_error(errors.BAD_REQUEST, "BadRequestError",
                                   errors.CONTENT_TYPE_INVALID)


def json_value(request: HttpRequest) -> Any:
    """The request's JSON, or a 400 in AEP's shape: malformed, nested deeper than
    MAX_JSON_DEPTH (refused before it is parsed), or with a string (key or value) holding a NUL
    or an unpaired surrogate."""
    try:
        body = inputs.loads(request.body or b"null")
    except inputs.DepthError as error:
        raise errors.body_invalid(errors.JSON_TOO_DEEP.format(
            place=errors.PLACE_BODY, limit=error.limit)) from None
    except (ValueError, UnicodeDecodeError) as error:
        raise errors.body_invalid(errors.BODY_NOT_JSON.format(reason=error)) from None
    check_strings(body, errors.body_invalid)
    return body


def check_strings(value: Any, refuse: Callable[[str], ApiError], prefix: str = "") -> None:
    """A 400 (``refuse(message)``) naming the first key or string of parsed JSON ``value``
    that holds a NUL or an unpaired surrogate; ``prefix`` is the place ``value`` came from."""
    found = inputs.first_bad_string(value)
    if found is None:
        return
    path, kind = found
    name = ".".join(part for part in (prefix, path) if part) or "(the whole value)"
    character = errors.CHARACTER_NUL if kind == "NUL" else errors.CHARACTER_SURROGATE
    raise refuse(errors.CHARACTER_INVALID.format(place=errors.PLACE_FIELD.format(
        name=shown(name)), character=character))


def shown(text: str) -> str:
    """``text`` with the characters no text may hold written as escapes, for messages."""
    return inputs.escaped(text)


def json_body(request: HttpRequest) -> dict[str, Any]:
    """The request's JSON object, or a 400 in AEP's shape (see json_value)."""
    body = json_value(request)
    if not isinstance(body, dict):
        raise errors.body_invalid(errors.BODY_NOT_OBJECT)
    return body


def bulk_get(request: HttpRequest, fetch: Callable[[str], Any],
             render: Callable[[Any], dict[str, Any]]) -> HttpResponse:
    """A bulk-get answer (spec §2.5, §4.4): 207 with every requested id under ``results`` —
    the object, or a 404 entry for an id ``fetch`` cannot find (it raises ApiError)."""
    ids = json_body(request).get("ids")
    if not isinstance(ids, list) or not 0 < len(ids) <= MAX_BULK_IDS:
        raise errors.invalid(errors.BULK_IDS_INVALID)
    results: dict[str, Any] = {}
    for item in ids:
        wanted = str(item.get("id", "")) if isinstance(item, dict) else str(item)
        try:
            found = fetch(wanted)
        except ApiError:
            results[wanted] = {"requestId": errors.request_id(),
                               "errors": {"404": [{"code": 404, "message": "Not found."}]}}
        else:
            results[wanted] = render(found)
    return JsonResponse({"results": results}, status=errors.MULTI_STATUS)


def natural(raw: str, maximum: int = MAX_PARAM) -> int | None:
    """``raw`` as a non-negative integer of ASCII digits up to ``maximum``, or None (``str.isdigit``
    also accepts '²' and other digits ``int`` refuses or reads)."""
    if not raw or not raw.isascii() or not raw.isdigit() or len(raw) > len(str(maximum)):
        return None
    value = int(raw)
    return value if value <= maximum else None


def int_param(request: HttpRequest, name: str, default: int, maximum: int = MAX_PARAM) -> int:
    """A non-negative integer query parameter (at most ``maximum``), or a 400."""
    raw = request.GET.get(name) or ""
    if not raw:
        return default
    value = natural(raw, maximum)
    if value is None:
        raise errors.invalid(errors.NUMBER_INVALID.format(name=name, maximum=maximum))
    return value
