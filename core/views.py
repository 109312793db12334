from __future__ import annotations

from datetime import date
from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.utils.dateparse import parse_date
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from core.health import run_checks
from core.htmx import htmx_template
from core.models import AuditEntry
from core.navigation import SECTIONS_BY_SLUG, sections_for
from core.roles import ADMINS, EVERYONE, NO_ROLE_MESSAGE, has_role, role_required, user_role


@require_GET
@role_required(EVERYONE)
def home(request: HttpRequest) -> HttpResponse:
    role = user_role(request.user)
    sections = [s for s in sections_for(role) if s.slug not in {"users", "audit"}]
    return TemplateResponse(request, "core/home.html", {"sections": sections})


@require_GET
def section(request: HttpRequest, slug: str) -> HttpResponse:
    """A section whose app is not built yet: it says so, for the roles that may open it."""
    found = SECTIONS_BY_SLUG.get(slug)
    if found is None or found.url_name != "core:section":
        raise Http404("No such section.")
    if not has_role(request.user, found.roles):
        raise PermissionDenied(NO_ROLE_MESSAGE)
    return TemplateResponse(request, "core/section.html", {"section": found})


def _date_or_none(text: str) -> date | None:
    try:
        return parse_date(text.strip()) if text.strip() else None
    except ValueError:  # well-formed but impossible, such as 2026-02-30
        return None


@require_GET
@role_required(ADMINS)
def audit_list(request: HttpRequest) -> HttpResponse:
    params = request.GET
    filters: dict[str, Any] = {
        "actor": params.get("actor", "").strip(),
        "action": params.get("action", "").strip(),
        "object_type": params.get("object_type", "").strip(),
        "date_from": _date_or_none(params.get("date_from", "")),
        "date_to": _date_or_none(params.get("date_to", "")),
    }
    entries = AuditEntry.objects.filtered(
        actor=filters["actor"], action=filters["action"], object_type=filters["object_type"],
        date_from=filters["date_from"], date_to=filters["date_to"],
    ).select_related("actor")
    page = Paginator(entries, 50).get_page(params.get("page"))
    query = params.copy()
    query.pop("page", None)
    context = {
        "page": page,
        "filters": filters,
        "query": query.urlencode(),
        "actions": (
            AuditEntry.objects.order_by("action").values_list("action", flat=True).distinct()
        ),
        "object_types": (
            AuditEntry.objects.exclude(object_type="").order_by("object_type")
            .values_list("object_type", flat=True).distinct()
        ),
        "filtered": any(filters.values()),
    }
    template = htmx_template(request, "core/audit_list.html", partial="audit-table")
    return TemplateResponse(request, template, context)


@never_cache
@require_GET
@login_not_required
def healthz(request: HttpRequest) -> HttpResponse:
    checks = run_checks()
    healthy = all(check.ok for check in checks)
    body = {
        "status": "ok" if healthy else "unavailable",
        "checks": {check.name: {"ok": check.ok, "detail": check.detail} for check in checks},
    }
    return JsonResponse(body, status=200 if healthy else 503)
