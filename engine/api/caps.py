"""How much one API client may have running at once, answered as Adobe's gateway throttles: 429
with a ``Retry-After`` header and the gateway's error body (spec/aep-api.md §8.1, §8.2).

A preview or a job takes an engine worker for as long as it runs; without a cap one client can
queue enough of them to stall every other client's (issue 15). The caps are settings — a Django
setting of the name below overrides the default:

- ENGINE_CLIENT_MAX_PREVIEWS: previews (estimates) NEW or RUNNING and not expired;
- ENGINE_CLIENT_MAX_JOBS: segment jobs and export jobs not finished (the segment job an export
  runs for ``evaluationInfo.segmentation`` is part of its export, not counted apart);
- ENGINE_CLIENT_RETRY_AFTER_SECONDS: the ``Retry-After`` of the answer.

The count and the creation run in one transaction holding the client's row (``SELECT … FOR
UPDATE`` on PostgreSQL; SQLite runs one writer at a time), so that requests sent together cannot
all slip under the cap. Call ``*_admit`` inside the transaction that creates the row.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.utils import timezone

from engine.api import errors
from engine.models import (
    FINISHED_STATUSES,
    ApiClient,
    ExportJob,
    Preview,
    PreviewState,
    SegmentJob,
)

MAX_PREVIEWS = "ENGINE_CLIENT_MAX_PREVIEWS"
MAX_JOBS = "ENGINE_CLIENT_MAX_JOBS"
RETRY_AFTER = "ENGINE_CLIENT_RETRY_AFTER_SECONDS"
# The dashboard reaches the engine as one API client for all its users (one connection): the
# caps leave room for a team estimating and running jobs at once, not for a flood.
DEFAULTS = {
    MAX_PREVIEWS: 20,  # an estimate takes seconds
    MAX_JOBS: 10,  # segment and export jobs take a worker for longer
    RETRY_AFTER: 10,
}
RUNNING_PREVIEWS = (PreviewState.NEW, PreviewState.RUNNING)


def cap(name: str) -> int:
    return int(getattr(settings, name, DEFAULTS[name]))


def previews_running(client: ApiClient) -> int:
    return Preview.objects.filter(client=client, state__in=RUNNING_PREVIEWS,
                                  expires_at__gt=timezone.now()).count()


def jobs_running(client: ApiClient) -> int:
    segment_jobs = (SegmentJob.objects.filter(client=client, export_job__isnull=True)
                    .exclude(status__in=FINISHED_STATUSES))
    export_jobs = ExportJob.objects.filter(client=client).exclude(status__in=FINISHED_STATUSES)
    return segment_jobs.count() + export_jobs.count()


def previews_admit(client: ApiClient) -> None:
    """A 429 when ``client`` already runs ENGINE_CLIENT_MAX_PREVIEWS previews."""
    _admit(client, previews_running, MAX_PREVIEWS, errors.CLIENT_PREVIEWS_BUSY)


def jobs_admit(client: ApiClient) -> None:
    """A 429 when ``client`` already runs ENGINE_CLIENT_MAX_JOBS segment and export jobs."""
    _admit(client, jobs_running, MAX_JOBS, errors.CLIENT_JOBS_BUSY)


def _admit(client: ApiClient, running: Callable[[ApiClient], int], name: str,
           code_message: tuple[str, str]) -> None:
    _lock(client)
    limit = cap(name)
    count = running(client)
    if count < limit:
        return
    seconds = cap(RETRY_AFTER)
    code, message = code_message
    error = errors.gateway_error(errors.TOO_MANY_REQUESTS, (code, message.format(
        count=count, limit=limit, seconds=seconds)))
    error.headers["Retry-After"] = str(seconds)
    raise error


def _lock(client: ApiClient) -> None:
    """Hold the client's row until the transaction ends: one admission at a time."""
    list(ApiClient.objects.select_for_update().filter(pk=client.pk).values_list("pk", flat=True))
