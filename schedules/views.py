"""Schedules: team leads and admins only. Pages read our database; the form also lists the
sandbox's datasets (one API call, as the export form does)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from connections.services import current_connection
from core.htmx import htmx_template
from core.roles import LEADS, role_required
from exports.services import ExportError, export_datasets
from schedules import services
from schedules.forms import ScheduleForm
from schedules.models import Schedule
from segments.models import Segment

NO_CONNECTION = ("There is no connection yet. An admin adds one under Connections; then "
                 "schedules can run its segments.")
CREATED = "Scheduled “{name}”: next run {when}."
PAUSED = "Paused “{name}”: it runs no more until resumed."
RESUMED = "Resumed “{name}”: next run {when}."
DELETED = "Deleted “{name}”; its past runs stay in the job history."


def _when(schedule: Schedule) -> str:
    from django.utils import timezone

    moment = schedule.next_run_at
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M %Z") if moment else "—"


@require_GET
@role_required(LEADS)
def schedule_list(request: HttpRequest) -> HttpResponse:
    schedules = (Schedule.objects.select_related("connection", "created_by")
                 .prefetch_related("segments"))
    page = Paginator(schedules, 50).get_page(request.GET.get("page"))
    for schedule in page.object_list:
        schedule.last_run = schedule.runs.select_related("job").first()  # type: ignore[attr-defined]
    template = htmx_template(request, "schedules/schedule_list.html", partial="schedule-table")
    return TemplateResponse(request, template, {"page": page})


def _form_kwargs(connection: Any, sandbox: str, context: dict[str, Any]) -> dict[str, Any]:
    segments = list(Segment.objects.in_sandbox(connection, sandbox).exclude(remote_id=""))
    try:
        datasets = [(d.id, d.name) for d in export_datasets(connection=connection,
                                                            sandbox=sandbox)]
    except ExportError as error:
        datasets = []
        context["datasets_error"] = error.message
    return {"segments": segments, "datasets": datasets}


@require_http_methods(["GET", "POST"])
@role_required(LEADS)
def schedule_create(request: HttpRequest) -> HttpResponse:
    connection, sandbox = current_connection(request)
    if connection is None:
        messages.error(request, NO_CONNECTION)
        return redirect("schedules:list")
    context: dict[str, Any] = {"connection": connection, "sandbox": sandbox}
    kwargs = _form_kwargs(connection, sandbox, context)
    if request.method != "POST":
        context["form"] = ScheduleForm(initial={"segments": request.GET.getlist("segment")},
                                       **kwargs)
        return TemplateResponse(request, "schedules/schedule_form.html", context)
    form = ScheduleForm(request.POST, **kwargs)
    context["form"] = form
    if form.is_valid():
        data = form.cleaned_data
        try:
            schedule = services.schedule_create(
                name=data["name"], connection=connection, sandbox=sandbox,
                segments=form.chosen_segments, cron=data["cron_expression"],
                zone=data["timezone"].strip(), export_dataset_id=data["export_dataset"],
                export_dataset_name=form.dataset_names.get(data["export_dataset"], ""),
                email_owner=data["email_owner"], actor=request.user)
        except services.ScheduleError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
        else:
            messages.success(request, CREATED.format(name=schedule.name, when=_when(schedule)))
            if request.htmx:  # type: ignore[attr-defined]
                # the whole page changes: htmx navigates instead of swapping the form
                return HttpResponseClientRedirect(reverse("schedules:detail",
                                                          args=[schedule.pk]))
            return redirect("schedules:detail", schedule.pk)
    template = htmx_template(request, "schedules/schedule_form.html", partial="schedule-form")
    return TemplateResponse(request, template, context, status=200 if request.htmx else 400)  # type: ignore[attr-defined]


@require_GET
@role_required(LEADS)
def schedule_detail(request: HttpRequest, pk: int) -> HttpResponse:
    schedule = get_object_or_404(Schedule.objects.select_related("connection", "created_by"),
                                 pk=pk)
    runs = schedule.runs.select_related("job", "job__connection", "job__created_by"
                                        ).prefetch_related("job__children__connection",
                                                           "job__children__created_by")
    page = Paginator(runs, 25).get_page(request.GET.get("page"))
    template = htmx_template(request, "schedules/schedule_detail.html", partial="schedule-runs")
    return TemplateResponse(request, template, {
        "schedule": schedule, "page": page, "segments": schedule.segments.all()})


def _toggle(request: HttpRequest, pk: int, *, pause: bool) -> HttpResponse:
    schedule = get_object_or_404(Schedule, pk=pk)
    if pause:
        schedule = services.schedule_pause(schedule=schedule, actor=request.user)
        message = PAUSED.format(name=schedule.name)
    else:
        schedule = services.schedule_resume(schedule=schedule, actor=request.user)
        message = RESUMED.format(name=schedule.name, when=_when(schedule))
    if request.htmx:  # type: ignore[attr-defined]
        schedule.last_run = schedule.runs.select_related("job").first()  # type: ignore[attr-defined]
        return TemplateResponse(request, "schedules/schedule_list.html#schedule-row",
                                {"schedule": schedule})
    messages.success(request, message)
    return redirect("schedules:detail", schedule.pk)


@require_POST
@role_required(LEADS)
def schedule_pause(request: HttpRequest, pk: int) -> HttpResponse:
    return _toggle(request, pk, pause=True)


@require_POST
@role_required(LEADS)
def schedule_resume(request: HttpRequest, pk: int) -> HttpResponse:
    return _toggle(request, pk, pause=False)


@require_POST
@role_required(LEADS)
def schedule_delete(request: HttpRequest, pk: int) -> HttpResponse:
    schedule = get_object_or_404(Schedule, pk=pk)
    name = schedule.name
    services.schedule_delete(schedule=schedule, actor=request.user)
    messages.success(request, DELETED.format(name=name))
    return redirect("schedules:list")
