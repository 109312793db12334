"""Job pages. They read our database only, never the API: a thousand open tabs polling their
rows cost database reads, not API calls (ARCHITECTURE.md, rule 2)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET, require_POST

from core.htmx import htmx_template
from core.roles import EVERYONE, LEADS, has_role, role_required
from jobs import services
from jobs.models import Job, JobKind

CANCEL_ASKED = "Cancelling “{label}”."


def _visible_job(request: HttpRequest, pk: int) -> Job:
    """The job if this user may see it (marketers: their own; leads and admins: all), else
    404 — a job someone may not see does not exist for them."""
    jobs = Job.objects.visible_to(request.user).select_related("connection", "created_by")
    return get_object_or_404(jobs, pk=pk)


@require_GET
@role_required(EVERYONE)
def job_list(request: HttpRequest) -> HttpResponse:
    jobs = Job.objects.visible_to(request.user).select_related("connection", "created_by")
    page = Paginator(jobs, 50).get_page(request.GET.get("page"))
    template = htmx_template(request, "jobs/job_list.html", partial="job-table")
    return TemplateResponse(request, template, {
        "page": page, "user_sees_all": has_role(request.user, LEADS)})


@require_GET
@role_required(EVERYONE)
def job_row(request: HttpRequest, pk: int) -> HttpResponse:
    """The row of one job, which polls this view while the job is unfinished; a plain
    browser request (no HX-Request) is sent to the job's page instead."""
    job = _visible_job(request, pk)
    if not request.htmx:  # type: ignore[attr-defined]
        return redirect("jobs:detail", pk=job.pk)
    return TemplateResponse(request, "jobs/job_row.html#job-row", {"job": job})


def _figures(job: Job) -> list[tuple[str, Any]]:
    """The few numbers a person looks for, by kind of job, from the stored metrics."""
    metrics = job.metrics or {}
    figures: list[tuple[str, Any]] = []
    if job.kind == JobKind.PREVIEW:
        size = metrics.get("estimatedSize")
        if size is not None:
            error = metrics.get("standardError")
            figures.append(("Estimated size", f"≈ {size:,}" + (f" ± {error:,}" if error else "")))
        if metrics.get("confidenceInterval"):
            figures.append(("Confidence", metrics["confidenceInterval"]))
        if metrics.get("totalRows"):
            figures.append(("Profiles read", f"{metrics.get('profilesReadSoFar') or 0:,} of "
                                              f"{metrics['totalRows']:,}"))
    elif job.kind == JobKind.SEGMENT:
        if metrics.get("totalProfiles") is not None:
            figures.append(("Profiles evaluated", f"{metrics['totalProfiles']:,}"))
    else:
        if metrics.get("totalExportedProfileCounter") is not None:
            figures.append(("Profiles exported", f"{metrics['totalExportedProfileCounter']:,}"))
        if metrics.get("datasetId"):
            figures.append(("Dataset", metrics["datasetId"]))
        if metrics.get("batchId"):
            figures.append(("Batch", metrics["batchId"]))
    total = (metrics.get("totalTime") or {}).get("totalTimeInMs")
    if total:
        figures.append(("Time on the platform", f"{total / 1000:,.1f} s"))
    return figures


@require_GET
@role_required(EVERYONE)
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = _visible_job(request, pk)
    counts = (job.metrics or {}).get("segmentedProfileCounter") or {}
    template = htmx_template(request, "jobs/job_detail.html", partial="job-timeline")
    return TemplateResponse(request, template, {
        "job": job, "events": job.events.all(), "figures": _figures(job),
        "segment_counts": sorted(counts.items()) if isinstance(counts, dict) else [],
    })


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
