"""A job a schedule started that finishes records its outcome on the run (and raises an alert
when it failed): a finish hook (jobs.kinds), which SchedulesConfig.ready registers, as for
exports/signals.py."""

from __future__ import annotations

from jobs.models import Job


def run_finished(job: Job) -> None:
    """Idempotent: the run's state is set, and its alert raised once per run."""
    from schedules.models import ScheduleRun
    from schedules.services import schedule_run_finished

    if not ScheduleRun.objects.filter(job_id__in=[job.pk, job.parent_id or 0]).exists():
        return
    schedule_run_finished(job=job)
