"""Template helpers of the exports pages: epoch milliseconds (as the APIs send times and
durations) as relative times and seconds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django import template
from django.utils.safestring import SafeString

from core.templatetags.studio import reltime

register = template.Library()


@register.filter
def ms_reltime(value: Any) -> SafeString | str:
    """'3 minutes ago' (exact time on hover) for epoch milliseconds."""
    try:
        moment = datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    except (TypeError, ValueError, OverflowError):
        return "—"
    return reltime(moment)


@register.filter
def ms_seconds(value: Any) -> str:
    """'1.3 s' for a duration in milliseconds."""
    try:
        return f"{int(value) / 1000:,.1f} s"
    except (TypeError, ValueError):
        return "—"
