"""Every write to a schedule: create, pause, resume, and the tick that starts due runs.

Why a beat tick of our own rather than django-celery-beat: a schedule here is a row the
dashboard owns (definitions, an optional export, who to tell), and a run must be claimed once
per slot and linked to its job. One `schedules_tick` task, every minute in
CELERY_BEAT_SCHEDULE, reads due rows and claims each slot with a unique ScheduleRun — so two
beats, or a tick delivered twice, start one run — and needs no second scheduler database,
no beat restart when a schedule changes, and no extra dependency beyond `croniter`, which
parses the cron expressions. A tick that was missed (beat down) runs the slot late, once.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter  # type: ignore[import-untyped]
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from connections.models import Connection
from core.errors import RefusedError
from core.services import audit_record
from exports.services import ExportError, export_body, export_plan_create
from jobs.alerts import alert_raise
from jobs.models import AlertKind, Job
from schedules.models import RunState, Schedule, ScheduleRun
from segments.models import Segment
from segments.services import SegmentError, segments_run

logger = logging.getLogger(__name__)

BAD_CRON = "“{cron}” is not a cron expression: five fields, minute hour day month weekday."
BAD_ZONE = "Unknown time zone “{zone}”."
NO_SEGMENTS = "Choose at least one saved definition."
RUN_FAILED_TITLE = "Scheduled run “{name}” failed"


class ScheduleError(RefusedError):
    """A schedule that was refused, with what to change."""


def _check(*, cron: str, zone: str, segments: list[Segment]) -> None:
    if not croniter.is_valid(cron) or len(cron.split()) != 5:
        raise ScheduleError(BAD_CRON.format(cron=cron), field="cron")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ScheduleError(BAD_ZONE.format(zone=zone), field="timezone") from error
    if not segments or any(not segment.remote_id for segment in segments):
        raise ScheduleError(NO_SEGMENTS, field="segments")


@transaction.atomic
def schedule_create(*, name: str, connection: Connection, sandbox: str,
                    segments: list[Segment], cron: str, zone: str = "UTC",
                    export_dataset_id: str = "", export_dataset_name: str = "",
                    email_owner: bool = True, actor: Any,
                    now: datetime | None = None) -> Schedule:
    cron = " ".join(cron.split())
    _check(cron=cron, zone=zone, segments=segments)
    schedule = Schedule(name=name.strip()[:200], connection=connection, sandbox=sandbox,
                        cron=cron, timezone=zone, export_dataset_id=export_dataset_id,
                        export_dataset_name=export_dataset_name, email_owner=email_owner,
                        created_by=actor)
    schedule.next_run_at = schedule.next_after(now or timezone.now())
    schedule.save()
    schedule.segments.set(segments)
    audit_record(actor=actor, action="schedule.create", obj=schedule,
                 after={"cron": cron, "segments": [s.remote_id for s in segments],
                        "export_dataset_id": export_dataset_id})
    return schedule


@transaction.atomic
def schedule_pause(*, schedule: Schedule, actor: Any) -> Schedule:
    schedule.paused = True
    schedule.save(update_fields=["paused", "updated_at"])
    audit_record(actor=actor, action="schedule.pause", obj=schedule)
    return schedule


@transaction.atomic
def schedule_resume(*, schedule: Schedule, actor: Any, now: datetime | None = None) -> Schedule:
    """Resume from now on: the slots missed while paused are skipped, not caught up."""
    schedule.paused = False
    schedule.next_run_at = schedule.next_after(now or timezone.now())
    schedule.save(update_fields=["paused", "next_run_at", "updated_at"])
    audit_record(actor=actor, action="schedule.resume", obj=schedule)
    return schedule


@transaction.atomic
def schedule_delete(*, schedule: Schedule, actor: Any) -> None:
    audit_record(actor=actor, action="schedule.delete", obj=schedule)
    schedule.delete()


def schedule_run(*, schedule: Schedule, due: datetime,
                 now: datetime | None = None) -> ScheduleRun | None:
    """Start the run of one slot, once: claim (schedule, due), then run the segments (and plan
    the export). None when the slot was claimed already. A run that cannot start is a FAILED
    run with its reason, and an alert."""
    now = now or timezone.now()
    try:
        with transaction.atomic():
            run = ScheduleRun.objects.create(schedule=schedule, due_at=due)
    except IntegrityError:
        return None
    segments = list(schedule.segments.select_related("connection"))
    actor = schedule.created_by
    try:
        with transaction.atomic():
            if not segments:
                raise ScheduleError(NO_SEGMENTS)
            if schedule.export_dataset_id:
                body = export_body(segment_ids=[s.remote_id for s in segments],
                                   dataset_id=schedule.export_dataset_id)
                label = (f"{schedule.name} → "
                         f"{schedule.export_dataset_name or schedule.export_dataset_id}")
                job = export_plan_create(segments=segments, body=body, label=label[:200],
                                         actor=actor).parent
            else:
                job = segments_run(segments=segments, actor=actor)[0]
            run.job = job
            run.save(update_fields=["job"])
    except (ScheduleError, SegmentError, ExportError) as error:
        run.state = RunState.FAILED
        run.error = error.message
        run.save(update_fields=["state", "error"])
        schedule_run_failed(run=run, message=error.message)
    Schedule.objects.filter(pk=schedule.pk).update(last_run_at=now)
    return run


def schedules_tick(*, now: datetime | None = None) -> int:
    """Start every due schedule's run and move it to its next slot. Returns runs started."""
    now = now or timezone.now()
    started = 0
    for schedule in Schedule.objects.due(now).select_related("created_by"):
        due = schedule.next_run_at
        assert due is not None
        # move on first: whatever the run does, the schedule's next slot is after now
        if not Schedule.objects.filter(pk=schedule.pk, next_run_at=due).update(
                next_run_at=schedule.next_after(now)):
            continue  # another tick moved it
        if schedule_run(schedule=schedule, due=due, now=now) is not None:
            started += 1
    if started:
        logger.info("schedules tick: %d runs started", started)
    return started


def schedule_run_failed(*, run: ScheduleRun, message: str) -> None:
    schedule = run.schedule
    owner = schedule.created_by
    recipients = [owner.email] if schedule.email_owner and owner and owner.email else []
    alert_raise(kind=AlertKind.SCHEDULE_FAILED, key=f"schedule-run:{run.pk}", job=run.job,
                title=RUN_FAILED_TITLE.format(name=schedule.name), message=message,
                url=reverse("schedules:detail", args=[schedule.pk]), recipients=recipients)


def schedule_run_finished(*, job: Job) -> None:
    """A job a schedule started (or the export after it) finished: record the outcome on the
    run and raise an alert if it did not succeed."""
    runs = ScheduleRun.objects.filter(job_id__in=[job.pk, job.parent_id or 0]).select_related(
        "schedule__created_by")
    for run in runs:
        exporting = bool(run.schedule.export_dataset_id)
        last_step = job.parent_id == run.job_id or not exporting
        if job.status != "succeeded":
            ScheduleRun.objects.filter(pk=run.pk).update(state=RunState.FAILED,
                                                         error=job.error_message)
            run.refresh_from_db()
            schedule_run_failed(run=run, message=(
                f"{job.get_kind_display()} “{job.label}” ended {job.get_status_display()}"
                + (f": {job.error_message}" if job.error_message else ".")))
        elif last_step and job.kind in ("segment", "export"):
            if exporting and job.kind == "segment":
                continue
            ScheduleRun.objects.filter(pk=run.pk).update(state=RunState.SUCCEEDED)
