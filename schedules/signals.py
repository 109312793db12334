"""A job a schedule started that finishes records its outcome on the run (and raises an alert
when it failed). The jobs app records every status change as a JobEvent: a finishing event is
our cue, as for exports/signals.py."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver

from jobs.models import FINISHED, JobEvent


@receiver(post_save, sender=JobEvent, dispatch_uid="schedules-run-finished")
def run_finished(sender: Any, instance: JobEvent, created: bool, **kwargs: Any) -> None:
    if not created or instance.status not in FINISHED:
        return
    from schedules.models import ScheduleRun
    from schedules.services import schedule_run_finished

    job = instance.job
    if not ScheduleRun.objects.filter(job_id__in=[job.pk, job.parent_id or 0]).exists():
        return
    job.refresh_from_db()
    schedule_run_finished(job=job)
