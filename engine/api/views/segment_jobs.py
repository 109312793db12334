"""Segment jobs — /data/core/ups/segment/jobs (spec/aep-api.md §4)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse

from engine.api import broker, errors, services_jobs
from engine.api.auth import api_view, bulk_get, int_param
from engine.api.paging import links, next_query
from engine.api.shapes_jobs import SEGMENT_JOBS_PATH, segment_job_json
from engine.models import JobStatus, SegmentDefinition, SegmentJob

DEFAULT_LIMIT = 100
SORT_FIELDS = {"creationTime": "creation_time", "updateTime": "update_time"}
SORT_INVALID = "The sort must be creationTime or updateTime, with :asc or :desc."
STATUS_INVALID = "The status must be one of " + ", ".join(JobStatus.values) + "."
PROPERTY_INVALID = "The property filter must be segments~segmentId==<id>."


def _json(request: HttpRequest, jobs: list[SegmentJob]) -> list[dict[str, Any]]:
    ids = {key for job in jobs for key in job.segment_ids}
    definitions = {str(d.id): d for d in SegmentDefinition.objects.filter(
        sandbox=request.sandbox, id__in=ids)}  # type: ignore[attr-defined]
    org = request.api_client.org_id  # type: ignore[attr-defined]
    return [segment_job_json(job, org, definitions) for job in jobs]


def _list(request: HttpRequest) -> JsonResponse:
    limit = int_param(request, "limit", DEFAULT_LIMIT) or DEFAULT_LIMIT
    start = int_param(request, "start", 0)
    jobs = SegmentJob.objects.filter(sandbox=request.sandbox)  # type: ignore[attr-defined]
    status = request.GET.get("status")
    if status:
        if status.upper() not in JobStatus.values:
            raise errors.invalid(STATUS_INVALID)
        jobs = jobs.filter(status=status.upper())
    field, _, direction = (request.GET.get("sort") or "creationTime:desc").partition(":")
    if field not in SORT_FIELDS or (direction or "asc") not in ("asc", "desc"):
        raise errors.invalid(SORT_INVALID)
    order = ("-" if direction == "desc" else "") + SORT_FIELDS[field]
    rows = list(jobs.order_by(order, "id"))
    wanted = request.GET.get("property")
    if wanted:
        name, _, value = wanted.partition("==")
        if name != "segments~segmentId" or not value:
            raise errors.invalid(PROPERTY_INVALID)
        rows = [job for job in rows if value in job.segment_ids]
    total = len(rows)
    page = rows[start:start + limit]
    href = ""
    if start + len(page) < total:
        href = SEGMENT_JOBS_PATH + "?" + next_query(request, start=start + len(page),
                                                    limit=limit)
    return JsonResponse({"_page": {"totalCount": total, "pageSize": len(page)},
                         "children": _json(request, page), "_links": links(href)})


@api_view("GET", "POST")
def segment_jobs(request: HttpRequest) -> JsonResponse:
    if request.method == "GET":
        return _list(request)
    broker.require_broker()  # 503 before anything is written
    job = services_jobs.segment_job_create(
        sandbox=request.sandbox,  # type: ignore[attr-defined]
        client=request.api_client,  # type: ignore[attr-defined]
        body=services_jobs.json_any(request),
        request_id=services_jobs.request_id_of(request))
    return JsonResponse(_json(request, [job])[0])


@api_view("GET", "DELETE")
def segment_job_detail(request: HttpRequest, job_id: str) -> HttpResponse:
    job = services_jobs.segment_job_get(sandbox=request.sandbox,  # type: ignore[attr-defined]
                                        job_id=job_id)
    if request.method == "DELETE":
        # 204, as the status table has it; cancelling is asynchronous (CANCELLING → CANCELLED)
        services_jobs.segment_job_cancel(job=job)
        return HttpResponse(status=204)
    return JsonResponse(_json(request, [job])[0])


@api_view("POST")
def segment_jobs_bulk_get(request: HttpRequest) -> HttpResponse:
    """207 with every id under ``results``: the job, or a 404 entry (spec §4.4)."""
    def fetch(wanted: str) -> SegmentJob:
        return services_jobs.segment_job_get(sandbox=request.sandbox,  # type: ignore[attr-defined]
                                             job_id=wanted)

    return bulk_get(request, fetch, lambda job: _json(request, [job])[0])
