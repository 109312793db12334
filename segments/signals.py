"""Finished jobs write their figures back to their segments: a finish hook (jobs.kinds), which
SegmentsConfig.ready registers; the jobs app knows nothing of segments."""

from __future__ import annotations

from jobs.models import Job


def record_finished_job(job: Job) -> None:
    """A succeeded segment job's counts and a succeeded preview's estimate go back to the
    segments it ran (idempotent: it writes the same figures again)."""
    from segments.services import segments_record_job

    segments_record_job(job=job)
