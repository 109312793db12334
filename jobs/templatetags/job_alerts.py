"""The alerts banner in base.html: open alerts, for team leads and admins only. The Alerts
page checks the role itself; this only decides whether to draw a banner."""

from __future__ import annotations

from typing import Any

from django import template
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

from core.roles import LEADS, has_role
from jobs.models import Alert

register = template.Library()


@register.simple_tag(takes_context=True)
def alerts_banner(context: template.Context) -> SafeString:
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not has_role(user, LEADS) or request.path.startswith("/jobs/alerts/"):  # type: ignore[union-attr]
        return mark_safe("")
    open_alerts = Alert.objects.open()
    count = open_alerts.count()
    if not count:
        return mark_safe("")
    latest: Any = open_alerts.first()
    return render_to_string("jobs/alert_list.html#alerts-banner",
                            {"count": count, "latest": latest}, request=request)
