from __future__ import annotations

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def htmx_template(request: HttpRequest, template: str, *, partial: str) -> str:
    """The whole page, or only its named partial when htmx asks for a fragment."""
    if getattr(request, "htmx", False):
        return f"{template}#{partial}"
    return template
