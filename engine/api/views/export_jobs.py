"""Export jobs — /data/core/ups/export/jobs (spec/aep-api.md §5)."""

from __future__ import annotations

import re

from django.db.models import Q
from django.http import HttpRequest, JsonResponse

from engine.api import broker, errors, services_jobs
from engine.api.auth import api_view, int_param, json_body
from engine.api.paging import links, next_query
from engine.api.shapes_jobs import EXPORT_JOBS_PATH, export_job_json
from engine.models import ExportJob, JobStatus

DEFAULT_LIMIT = 100
OFFSET_RE = re.compile(r"^([0-9]{1,18})_([0-9]{1,18})$")  # creationTime_id, both within int64
OFFSET_INVALID = "The offset must be a cursor from link.next: <creationTimeMs>_<jobId>."
STATUS_INVALID = "The status must be one of " + ", ".join(JobStatus.values) + "."
CANCEL_MESSAGE = "Export job has been marked for cancelling"


def _list(request: HttpRequest) -> JsonResponse:
    limit = int_param(request, "limit", DEFAULT_LIMIT) or DEFAULT_LIMIT
    jobs = ExportJob.objects.filter(sandbox=request.sandbox)  # type: ignore[attr-defined]
    status = request.GET.get("status")
    if status:
        if status.upper() not in JobStatus.values:
            raise errors.invalid(STATUS_INVALID)
        jobs = jobs.filter(status=status.upper())
    offset = request.GET.get("offset")
    if offset:
        match = OFFSET_RE.match(offset)
        if not match:
            raise errors.invalid(OFFSET_INVALID)
        created, last_id = int(match[1]), int(match[2])
        jobs = jobs.filter(Q(creation_time__lt=created)
                           | Q(creation_time=created, id__lt=last_id))
    rows = list(jobs.order_by("-creation_time", "-id")[:limit + 1])
    more, rows = len(rows) > limit, rows[:limit]
    cursor = f"{rows[-1].creation_time}_{rows[-1].pk}" if rows else ""
    href = f"{EXPORT_JOBS_PATH}/?" + next_query(request, limit=limit, offset=cursor) if more else ""
    org = request.api_client.org_id  # type: ignore[attr-defined]
    # link.next as documented ("If there are no more records, this value is empty"), and
    # _links.next.href as AEP's other lists: either kind of client pages through
    return JsonResponse({
        "records": [export_job_json(job, org) for job in rows],
        "page": {"sortField": "createdTime", "sort": "desc", "pageOffset": cursor,
                 "pageSize": len(rows)},
        "link": {"next": href},
        "_links": links(href),
    })


@api_view("GET", "POST")
def export_jobs(request: HttpRequest) -> JsonResponse:
    if request.method == "GET":
        return _list(request)
    broker.require_broker()  # 503 before anything is written
    job = services_jobs.export_job_create(
        sandbox=request.sandbox,  # type: ignore[attr-defined]
        client=request.api_client,  # type: ignore[attr-defined]
        body=json_body(request), request_id=services_jobs.request_id_of(request))
    response = JsonResponse(export_job_json(job, request.api_client.org_id))  # type: ignore[attr-defined]
    response["X-Location"] = f"{EXPORT_JOBS_PATH}/{job.pk}"
    return response


@api_view("GET", "DELETE")
def export_job_detail(request: HttpRequest, job_id: str) -> JsonResponse:
    job = services_jobs.export_job_get(sandbox=request.sandbox,  # type: ignore[attr-defined]
                                       job_id=job_id)
    if request.method == "DELETE":
        services_jobs.export_job_cancel(job=job)
        return JsonResponse({"status": True, "message": CANCEL_MESSAGE})
    return JsonResponse(export_job_json(job, request.api_client.org_id))  # type: ignore[attr-defined]
