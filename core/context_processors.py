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
    role = user_role(user)
    sections = sections_for(role)
    current = request.path
    return {
        "user_role": role,
        "nav_groups": [
            (group, list(items)) for group, items in groupby(sections, key=lambda s: s.group)
        ],
        "nav_current": current,
    }
