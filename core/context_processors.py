from __future__ import annotations

from itertools import groupby
from typing import Any

from django.http import HttpRequest

from core.navigation import sections_for
from core.roles import user_role


def navigation(request: HttpRequest) -> dict[str, Any]:
    """The sidebar for the signed-in user's role (what they may open, grouped)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    htmx = getattr(request, "htmx", None)
    if htmx and not htmx.boosted:
        return {}  # a fragment has no sidebar: skip its queries (fragments poll every second)
    role = user_role(user)
    sections = sections_for(role)
    # the section whose address is the longest start of this one (/jobs/alerts/ is Alerts,
    # not Jobs); the home page is active on itself only
    under = [s for s in sections if request.path.startswith(s.url) and s.url != "/"]
    active = max(under, key=lambda s: len(s.url)).slug if under else ""
    return {
        **switcher(request),
        "user_role": role,
        "nav_groups": [
            (group, list(items)) for group, items in groupby(sections, key=lambda s: s.group)
        ],
        "nav_active": active,
    }


def switcher(request: HttpRequest) -> dict[str, Any]:
    """The connection and sandbox switcher: enabled connections and their known sandboxes,
    and this session's choice. Read from our database only, never from an API."""
    from connections.services import current_connection, switcher_choices

    connection, sandbox = current_connection(request)
    htmx = getattr(request, "htmx", None)
    # after an htmx request the switcher must send people back to the page, not the fragment
    here = (htmx.current_url_abs_path if htmx else None) or request.get_full_path()
    return {
        "switcher_choices": switcher_choices(),
        "current_connection": connection,
        "current_sandbox": sandbox,
        "switcher_next": here,
    }
