"""Finished jobs write their figures back to their segments. The jobs app records every status
change as a JobEvent; a finishing event is our cue (jobs knows nothing of segments)."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver

from jobs.models import FINISHED, JobEvent


@receiver(post_save, sender=JobEvent, dispatch_uid="segments-record-finished-job")
def record_finished_job(sender: Any, instance: JobEvent, created: bool, **kwargs: Any) -> None:
    if not created or instance.status not in FINISHED:
        return
    from segments.services import segments_record_job

    segments_record_job(job=instance.job)
