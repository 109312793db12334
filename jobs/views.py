"""Job pages. They read our database only, never the API: a thousand open tabs polling their
rows cost database reads, not API calls (ARCHITECTURE.md, rule 2)."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import trigger_client_event

from connections.models import Connection
from core.htmx import htmx_template
from core.roles import EVERYONE, LEADS, has_role, role_required
from jobs import alerts, charts, history, kinds, services
from jobs.models import Alert, Job, JobStatus

CANCEL_ASKED = "Cancelling “{label}”."
JOB_FINISHED_EVENT = "jobFinished"  # the HX-Trigger of a row's last answer (job_row)


def _visible_job(request: HttpRequest, pk: int) -> Job:
    """The job if this user may see it (marketers: their own; leads and admins: all), else
    404 — a job someone may not see does not exist for them."""
    jobs = Job.objects.visible_to(request.user).select_related("connection", "created_by")
    return get_object_or_404(jobs, pk=pk)


def _choices(request: HttpRequest, sees_all: bool) -> dict[str, Any]:
    """The filter bar's options, from the jobs this user may see."""
    visible = Job.objects.visible_to(request.user)
    users = get_user_model().objects.filter(
        pk__in=visible.exclude(created_by=None).values("created_by")).order_by("username")
    # looked up by label: the segments and schedules apps import jobs, not the reverse
    segment_model: Any = apps.get_model("segments", "Segment")
    schedule_model: Any = apps.get_model("schedules", "Schedule")
    return {
        "kinds": kinds.choices(), "statuses": JobStatus.choices,
        "users": users if sees_all else [],
        "connections": Connection.objects.filter(
            pk__in=visible.values("connection")).order_by("name"),
        "sandboxes": visible.order_by("sandbox").values_list("sandbox", flat=True).distinct(),
        "segments": segment_model.objects.filter(
            jobs__in=visible).distinct().order_by("name").only("pk", "name"),
        "schedules": schedule_model.objects.order_by("name").only("pk", "name")
        if sees_all else [],
        "sorts": history.SORT_LABELS,
    }


def _sort_links(filters: history.HistoryFilters) -> dict[str, tuple[str, str]]:
    """Column → (query string that sorts by it, or reverses it; "asc"/"desc"/"" now)."""
    links = {}
    for column in ("status", "label", "user", "created", "duration"):
        if filters.sort == column:
            links[column] = (filters.query_string(sort=f"-{column}"), "asc")
        elif filters.sort == f"-{column}":
            links[column] = (filters.query_string(sort=column), "desc")
        else:
            first = f"-{column}" if column in ("created", "duration") else column
            links[column] = (filters.query_string(sort=first), "")
    return links


@require_GET
@role_required(EVERYONE)
def job_list(request: HttpRequest) -> HttpResponse:
    """The job history: every job this user may see (leads and admins: all; marketers: their
    own), filtered, sorted, paginated, with totals and charts of what the filters select."""
    filters = history.HistoryFilters.from_query(request.GET)
    jobs = history.jobs_filtered(user=request.user, filters=filters)
    page = Paginator(jobs, history.PAGE_SIZE).get_page(request.GET.get("page"))
    history.schedule_names(page.object_list)
    sees_all = has_role(request.user, LEADS)
    context: dict[str, Any] = {
        "page": page, "user_sees_all": sees_all, "filters": filters,
        "totals": history.history_totals(jobs),
        "charts": charts.history_charts(jobs, date_from=filters.date_from,
                                        date_to=filters.date_to),
        "query": filters.query_string(), "sort_links": _sort_links(filters),
        "open_alerts": Alert.objects.open().count()
        if sees_all else 0,
    }
    if not request.htmx:  # type: ignore[attr-defined]
        context.update(_choices(request, sees_all))
    template = htmx_template(request, "jobs/job_list.html", partial="job-table")
    return TemplateResponse(request, template, context)


@require_GET
@role_required(EVERYONE)
def job_list_csv(request: HttpRequest) -> HttpResponse:
    """The filtered history as CSV, streamed: the same filters and order as the page."""
    filters = history.HistoryFilters.from_query(request.GET)
    jobs = history.jobs_filtered(user=request.user, filters=filters)
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(history.history_csv(jobs),
                                     content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="jobs-{stamp}.csv"'
    return response  # type: ignore[return-value]  # role_required types views as HttpResponse


@require_GET
@role_required(EVERYONE)
def job_row(request: HttpRequest, pk: int) -> HttpResponse:
    """The row of one job, which polls this view while the job is unfinished; a plain
    browser request (no HX-Request) is sent to the job's page instead."""
    job = _visible_job(request, pk)
    if not request.htmx:  # type: ignore[attr-defined]
        return redirect("jobs:detail", pk=job.pk)
    history.schedule_names([job])
    response = TemplateResponse(request, "jobs/job_row.html#job-row", {"job": job})
    if job.is_settled:
        # only an unsettled row polls: this answer is its last; a page that shows what the
        # job changed (Profile data's figures, the segments' counts, written by the finish
        # hooks) listens for it and reloads that part once
        trigger_client_event(response, JOB_FINISHED_EVENT, {"job": job.pk, "kind": job.kind,
                                                            "status": job.status})
    return response


def _remote_errors(job: Job) -> list[tuple[str, str]]:
    """Every error the API's last answer carries, with AEP's codes (segment and export jobs
    list them under `errors`; a refused request answers one error body)."""
    found: list[tuple[str, str]] = []
    response = job.last_response if isinstance(job.last_response, dict) else {}
    for item in response.get("errors") or []:
        if isinstance(item, dict):
            code = str(item.get("code") or item.get("error_code") or "")
            message = str(item.get("msg") or item.get("message") or item.get("detail")
                          or item.get("description") or "")
            if code or message:
                found.append((code, message))
    if not found and (response.get("error_code") or response.get("title")):
        found.append((str(response.get("error_code") or response.get("status") or ""),
                      str(response.get("detail") or response.get("title") or "")))
    if job.error_message and (job.error_code, job.error_message) not in found:
        found.insert(0, (job.error_code, job.error_message))
    return found


def _definitions(job: Job) -> list[tuple[Any, Any]]:
    """(segment, the version that was current when the job started) for the definitions the
    job ran — for an export, those of the segment job it followed."""
    segments: list[Any] = list(job.segments.all())  # type: ignore[misc]
    if not segments and job.parent is not None:
        segments = list(job.parent.segments.all())  # type: ignore[misc]
    if not segments:  # an export started on its own names its segments in its request
        request = job.request if isinstance(job.request, dict) else {}
        items = (request.get("filter") or {}).get("segments") or request.get("segments") or []
        ids = [str(item.get("segmentId")) for item in items if isinstance(item, dict)]
        model: Any = apps.get_model("segments", "Segment")
        segments = list(model.objects.filter(
            connection_id=job.connection_id, sandbox=job.sandbox, remote_id__in=ids))
    return [(segment, segment.versions.filter(created_at__lte=job.created_at).order_by(
        "-number").first() or segment.versions.order_by("number").first())
        for segment in segments]


@require_GET
@role_required(EVERYONE)
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = _visible_job(request, pk)
    counts = job.kind_spec.counts(job)
    template = htmx_template(request, "jobs/job_detail.html", partial="job-timeline")
    context: dict[str, Any] = {"job": job, "events": job.events.all()}
    if request.htmx:  # type: ignore[attr-defined]
        return TemplateResponse(request, template, context)
    history.schedule_names([job])
    names = {segment.remote_id: segment.name for segment, _ in _definitions(job)}
    context.update({
        "figures": job.kind_spec.figures(job), "links": job.kind_spec.links(job),
        "errors": _remote_errors(job),
        "segment_counts": [(key, names.get(key, ""), value) for key, value in
                           sorted(counts.items())],
        "definitions": _definitions(job), "children": job.children.all(),
        "alerts": job.alerts.all(),  # type: ignore[attr-defined]
    })
    return TemplateResponse(request, template, context)


@require_POST
@role_required(EVERYONE)
def job_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    job = _visible_job(request, pk)
    error = ""
    try:
        job = services.job_cancel(job=job, actor=request.user)
    except services.JobActionError as refused:
        error = str(refused)
    if request.htmx:  # type: ignore[attr-defined]
        return TemplateResponse(request, "jobs/job_row.html#job-row",
                                {"job": job, "row_error": error})
    if error:
        messages.error(request, error)
    else:
        messages.success(request, CANCEL_ASKED.format(label=job.label or job))
    return redirect("jobs:detail", pk=job.pk)


# --- alerts -------------------------------------------------------------------------------------

ACKNOWLEDGED = "Acknowledged “{title}”."
ACKNOWLEDGED_ALL = "Acknowledged {count} alert{plural}."


@require_GET
@role_required(LEADS)
def alert_list(request: HttpRequest) -> HttpResponse:
    """Open alerts first (until someone acknowledges them), then the recent acknowledged."""
    show = request.GET.get("show", "open")
    alerts_shown = Alert.objects.select_related("job", "acknowledged_by")
    if show != "all":
        alerts_shown = alerts_shown.open()
    page = Paginator(alerts_shown, 50).get_page(request.GET.get("page"))
    template = htmx_template(request, "jobs/alert_list.html", partial="alert-table")
    return TemplateResponse(request, template, {
        "page": page, "show": show, "open_count": Alert.objects.open().count()})


@require_POST
@role_required(LEADS)
def alert_acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    alert = alerts.alert_acknowledge(alert=get_object_or_404(Alert, pk=pk), actor=request.user)
    if request.htmx:  # type: ignore[attr-defined]
        return TemplateResponse(request, "jobs/alert_list.html#alert-row", {"alert": alert})
    messages.success(request, ACKNOWLEDGED.format(title=alert.title))
    return redirect("jobs:alerts")


@require_POST
@role_required(LEADS)
def alerts_acknowledge_all(request: HttpRequest) -> HttpResponse:
    count = alerts.alerts_acknowledge_all(alerts=Alert.objects.all(), actor=request.user)
    messages.success(request, ACKNOWLEDGED_ALL.format(count=count,
                                                      plural="" if count == 1 else "s"))
    return redirect("jobs:alerts")
