"""Small template helpers shared by every page: icons and times."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.contrib.humanize.templatetags.humanize import naturaltime
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

# 20×20 stroke icons (drawn for this project), keyed by name.
ICONS = {
    "segments": '<circle cx="8" cy="8" r="5"/><circle cx="12" cy="12" r="5"/>',
    "exports": '<path d="M10 3v10M6 9l4 4 4-4M4 16h12"/>',
    "jobs": '<rect x="3" y="4" width="14" height="12" rx="2"/><path d="M6 8h8M6 12h5"/>',
    "schedules": '<circle cx="10" cy="10" r="7"/><path d="M10 6v4l3 2"/>',
    "connections": (
        '<path d="M8 12l4-4M7 9l-2 2a2.8 2.8 0 004 4l2-2M13 11l2-2a2.8 2.8 0 00-4-4L9 7"/>'
    ),
    "data": (
        '<ellipse cx="10" cy="5" rx="6" ry="2.5"/>'
        '<path d="M4 5v10c0 1.4 2.7 2.5 6 2.5s6-1.1 6-2.5V5M4 10c0 1.4 2.7 2.5 6 2.5s6-1.1 6-2.5"/>'
    ),
    "users": '<circle cx="10" cy="7" r="3"/><path d="M4 17c.8-3 3.2-4.5 6-4.5s5.2 1.5 6 4.5"/>',
    "audit": '<path d="M6 3h6l4 4v10H6z"/><path d="M12 3v4h4M9 11h4M9 14h4"/>',
    "home": '<path d="M3 9l7-6 7 6v8H3z"/><path d="M8 17v-5h4v5"/>',
    "logout": '<path d="M12 4h4v12h-4M8 6l-4 4 4 4M4 10h9"/>',
    "dot": '<circle cx="10" cy="10" r="3"/>',
    "check": '<path d="M5 10l3 3 7-7"/>',
    "alert": '<path d="M10 3l8 14H2z"/><path d="M10 8v4M10 14.5v.5"/>',
    "plus": '<path d="M10 4v12M4 10h12"/>',
    "play": '<path d="M6 4l10 6-10 6z"/>',
}


@register.simple_tag
def icon(name: str, size: int = 18) -> SafeString:
    body = ICONS.get(name, ICONS["dot"])
    return mark_safe(  # noqa: S308 -- the markup is ours, from ICONS above
        f'<svg class="icon" width="{size}" height="{size}" viewBox="0 0 20 20" fill="none" '
        f'stroke="currentColor" stroke-width="1.6" stroke-linecap="round" '
        f'stroke-linejoin="round" aria-hidden="true">{body}</svg>'
    )


@register.simple_tag
def reltime(value: datetime | str | None) -> SafeString:
    """'3 minutes ago', with the exact time on hover (an ISO 8601 text, as JSON fields keep
    times, reads as its time)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            value = None
    if value is None:
        return mark_safe('<span class="muted">—</span>')
    exact = timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S %Z")
    return format_html('<time datetime="{}" title="{}">{}</time>',
                       value.isoformat(), exact, naturaltime(value))


@register.filter
def initials(user: object) -> str:
    full = getattr(user, "get_full_name", lambda: "")() or getattr(user, "username", "?")
    parts = [part for part in full.split() if part]
    return "".join(part[0] for part in parts[:2]).upper() or "?"
