"""AEP's job statuses, per kind of job, in our words (jobs.models.JobStatus).

Segment and export jobs say NEW, QUEUED, PROCESSING, CANCELLING, CANCELLED, FAILED, SUCCEEDED
(spec/aep-api.md §4.2, §5.2); a preview's estimate says NEW, RUNNING, RESULT_READY, FAILED (§3.1,
§3.3), and a deleted preview answers KILLED. Anything else is unknown: the caller keeps its
current status and records what AEP said.
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
STATUS_MAPS: dict[str, dict[str, JobStatus]] = {
    JobKind.SEGMENT: _BATCH_JOB,
    JobKind.EXPORT: _BATCH_JOB,
    JobKind.PREVIEW: _PREVIEW,
}


def normalise(kind: str, remote_status: str | None) -> JobStatus | None:
    """Our status for AEP's `remote_status` of a job of `kind`, or None when AEP's word is
    unknown (case and surrounding blanks do not matter)."""
    return STATUS_MAPS[kind].get((remote_status or "").strip().upper())
