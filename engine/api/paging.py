"""Next-page links of the API's lists, as AEP sends them.

Every list with a page envelope carries ``_links.next.href``: the next page's address while
items follow, ``""`` on the last page (Adobe's entities example, spec §9.2: "empty string
values of ``_page.next`` and ``_links.next.href``"), so a client written against Adobe's API
follows links until an empty href. Lists whose documented envelope is ``link`` (definitions
§2.2, export jobs §5.3) carry that too. Catalog lists (objects keyed by id) have no envelope
and page by ``start``/``limit`` (docs/adobe-schema-deviations.md, ``catalog-lists-keyed``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest

LAST_PAGE = ""  # the href of the last page's next link

# The OpenAPI shape of ``_links`` with a next link (other links may stand beside it).
LINKS_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["next"],
    "properties": {"next": {"type": "object", "required": ["href"], "properties": {
        "href": {"type": "string", "description": "The next page; empty on the last page."}}}}}


def next_query(request: HttpRequest, *, replace: tuple[str, ...] = (), **updates: Any) -> str:
    """The request's query string for the next page: the same parameters (filters, sort,
    limit), without ``replace`` and with ``updates``."""
    query: dict[str, Any] = {key: value for key, value in request.GET.items()
                             if key not in replace and key not in updates}
    query.update(updates)
    return urlencode(query)


def links(href: str | None, **more: Any) -> dict[str, Any]:
    """``_links`` with ``next.href`` (empty when there is no next page) and ``more`` links."""
    return {"next": {"href": href or LAST_PAGE}, **more}
