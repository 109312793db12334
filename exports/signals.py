"""A segment job that finishes starts the export planned after it. The jobs app records every
status change as a JobEvent; a finishing event is our cue (jobs knows nothing of exports)."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver

from jobs.models import FINISHED, JobEvent, JobKind


@receiver(post_save, sender=JobEvent, dispatch_uid="exports-start-planned-export")
def start_planned_export(sender: Any, instance: JobEvent, created: bool, **kwargs: Any) -> None:
    if not created or instance.status not in FINISHED:
        return
    job = instance.job
    if job.kind != JobKind.SEGMENT:
        return
    from exports.services import export_plan_advance

    job.refresh_from_db()  # the event is saved right after the row's change: read it whole
    export_plan_advance(parent=job)
