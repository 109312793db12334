"""Bad input gets a 400 that says what was wrong, never a 500.

A NUL character (\\x00) is the one character no text column takes: PostgreSQL refuses it (and
the request would end in a 500), SQLite keeps it (and the row is corrupt on the way to
PostgreSQL or AEP). Django's form fields refuse it already, with an error beside the field —
the best answer, so requests with a NUL still reach their view. While such a request is
served, every query is checked before it is sent: one that would carry a NUL is refused, and
the person gets a 400 naming the field (a toast for htmx). Nothing with a NUL reaches the
database, however the view read its input.

The engine's REST API (/data/…, /ims/…) answers AEP's own error bodies and is left alone.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

from django.core.exceptions import ValidationError
from django.db import DataError, connections
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django_htmx.http import reswap, retarget

from core.errors import InvalidCharacter

logger = logging.getLogger(__name__)

NUL = "\x00"
JSON_NUL = "\\u0000"  # a NUL inside a JSON value, as json.dumps writes it
# The engine's AEP-compatible API: it answers AEP's JSON error bodies itself.
EXEMPT_PREFIXES = ("/data/", "/ims/")
PATH_FIELD = "the page address"
INVALID_CHARACTER = ("“{field}” contains an invalid character (a NUL, \\x00, often pasted "
                     "from another program). Remove it and try again.")
# Raised while a request with a NUL is served: what a NUL makes of int(), os.open(), a model
# field's to_python() or the database driver. Other exceptions stay 500s, and are logged.
NUL_FAULTS = (InvalidCharacter, ValueError, ValidationError, DataError)


def nul_fields(request: HttpRequest) -> list[str]:
    """The names of the request's fields (query string, form body, the path) holding a NUL."""
    if request.path_info.startswith(EXEMPT_PREFIXES):
        return []
    found = [PATH_FIELD] if NUL in request.path_info else []
    sources = [request.GET]
    if request.method == "POST":
        sources.append(request.POST)
    for source in sources:
        for name, values in source.lists():
            if NUL in name or any(NUL in value for value in values):
                found.append(name)
    return found


def _strings(value: Any) -> Iterator[str]:
    """Every string a query parameter carries: psycopg's Json/Jsonb wrappers keep theirs in
    `.obj`, a list or array parameter in its items."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, (list, tuple, set)):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif hasattr(value, "obj") and not isinstance(value, (bytes, memoryview)):
        yield from _strings(value.obj)


def holds_nul(text: str) -> bool:
    return NUL in text or JSON_NUL in text


def query_nul(sql: str, params: Any) -> str | None:
    """The text of a query (its SQL or a parameter) that holds a NUL, if one does."""
    return next((text for text in (sql, *_strings(params)) if holds_nul(text)), None)


class _RefuseNul:
    """A database execute wrapper: a query carrying a NUL is refused before it is sent."""

    def __init__(self, request: HttpRequest, fields: list[str]) -> None:
        self.request = request
        self.fields = fields

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool,
                 context: dict[str, Any]) -> Any:
        text = query_nul(sql, params)
        if text is not None:
            raise InvalidCharacter(self._field(text))
        return execute(sql, params, many, context)

    def _field(self, text: str) -> str:
        """The field whose value the query carries, else the first field with a NUL."""
        for source in (self.request.GET, self.request.POST):
            for name, values in source.lists():
                for value in values:
                    if NUL not in value:
                        continue
                    written = (value, value.strip(), json.dumps(value)[1:-1])
                    if any(form and form in text for form in written):
                        return name
        return self.fields[0]


class BadInputMiddleware:
    """Serves a request holding a NUL with every query checked; answers the refusal (and the
    errors a NUL causes on its way) with 400 and the field's name."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        fields = nul_fields(request)
        if not fields:
            return self.get_response(request)
        request.nul_fields = fields  # type: ignore[attr-defined]
        with ExitStack() as guards:
            for connection in connections.all():
                guards.enter_context(connection.execute_wrapper(_RefuseNul(request, fields)))
            response = self.get_response(request)
        if response.streaming and response.status_code < 400:
            # A download reads the database while it streams, after this guard, and cannot
            # be refused once it has started: refuse it now. (Not response.close(): that
            # signals request_finished, which closes the database connection mid-request; an
            # unread stream holds nothing that garbage collection does not release.)
            logger.warning("400 for %s %s: a NUL in %r (a streamed answer)", request.method,
                           request.path, fields[0])
            return bad_input_response(
                request, INVALID_CHARACTER.format(field=_shown(fields[0]))).render()
        return response

    def process_exception(self, request: HttpRequest,
                          exception: Exception) -> HttpResponse | None:
        fields: list[str] = getattr(request, "nul_fields", [])
        if not fields or not isinstance(exception, NUL_FAULTS):
            return None
        field = exception.field if isinstance(exception, InvalidCharacter) else fields[0]
        logger.warning("400 for %s %s: a NUL in %r (%s: %s)", request.method, request.path,
                       field, type(exception).__name__, exception)
        return bad_input_response(request, INVALID_CHARACTER.format(field=_shown(field)))


def _shown(field: str) -> str:
    return field.replace(NUL, "\\x00")


def bad_input_response(request: HttpRequest, reason: str) -> TemplateResponse:
    """The 400 page with its reason; for htmx, a toast for the page's toast stack."""
    if getattr(request, "htmx", False):
        response = TemplateResponse(request, "400.html#bad-input-toast", {"reason": reason},
                                    status=400)
        # htmx swaps no 4xx by default; a page that opts in gets a toast, not a broken panel
        retarget(response, ".toasts")
        reswap(response, "beforeend")
        return response
    return TemplateResponse(request, "400.html", {"reason": reason}, status=400)
