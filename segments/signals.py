"""Finished jobs write their figures back to their segments: finish hooks (jobs.kinds), which
SegmentsConfig.ready registers, one per kind; the jobs app knows nothing of segments."""

from __future__ import annotations

from jobs.models import Job


def record_count(job: Job) -> None:
    from segments.services import segments_record_count

    segments_record_count(job=job)


def record_estimate(job: Job) -> None:
    from segments.services import segments_record_estimate

    segments_record_estimate(job=job)
