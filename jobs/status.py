"""AEP's job statuses, per kind of job, in our words (jobs.models.JobStatus).

Segment and export jobs say NEW, QUEUED, PROCESSING, CANCELLING, CANCELLED, FAILED, SUCCEEDED
(spec/aep-api.md §4.2, §5.2); a preview's estimate says NEW, RUNNING, RESULT_READY, FAILED (§3.1,
§3.3), and a deleted preview answers KILLED; an ingestion follows its Catalog batch. Anything
else is unknown: the caller keeps its current status and records what AEP said.
"""

from __future__ import annotations

from jobs.models import JobKind, JobStatus

_BATCH_JOB = {
    "NEW": JobStatus.QUEUED,
    "QUEUED": JobStatus.QUEUED,
    "PROCESSING": JobStatus.RUNNING,
    "RUNNING": JobStatus.RUNNING,
    "CANCELLING": JobStatus.CANCELLING,
    "CANCELLED": JobStatus.CANCELLED,
    "FAILED": JobStatus.FAILED,
    "SUCCEEDED": JobStatus.SUCCEEDED,
}
_PREVIEW = {
    "NEW": JobStatus.QUEUED,
    "QUEUED": JobStatus.QUEUED,
    "RUNNING": JobStatus.RUNNING,
    "RESULT_READY": JobStatus.SUCCEEDED,
    "FAILED": JobStatus.FAILED,
    "KILLED": JobStatus.CANCELLED,
    "CANCELLED": JobStatus.CANCELLED,
}
# A Catalog batch (spec §6): loading while files arrive, then queued/processing on the
# platform's side, success or failed (older answers: failure); aborted when given up.
_INGEST_BATCH = {
    "LOADING": JobStatus.QUEUED,
    "LOADED": JobStatus.QUEUED,
    "QUEUED": JobStatus.QUEUED,
    "STAGING": JobStatus.RUNNING,
    "PROCESSING": JobStatus.RUNNING,
    "RETRYING": JobStatus.RUNNING,
    "SUCCESS": JobStatus.SUCCEEDED,
    "FAILED": JobStatus.FAILED,
    "FAILURE": JobStatus.FAILED,
    "ABORTED": JobStatus.CANCELLED,
}
STATUS_MAPS: dict[str, dict[str, JobStatus]] = {
    JobKind.SEGMENT: _BATCH_JOB,
    JobKind.EXPORT: _BATCH_JOB,
    JobKind.PREVIEW: _PREVIEW,
    JobKind.INGEST: _INGEST_BATCH,
}


def normalise(kind: str, remote_status: str | None) -> JobStatus | None:
    """Our status for AEP's `remote_status` of a job of `kind`, or None when AEP's word is
    unknown (case and surrounding blanks do not matter)."""
    return STATUS_MAPS[kind].get((remote_status or "").strip().upper())
