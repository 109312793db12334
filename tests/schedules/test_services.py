"""A schedule's tick, through the services and the real built-in engine: a due schedule starts
one segment job (and the export after it) per slot, linked to its run; a paused one starts
nothing; a run that cannot start is a failed run with an alert and an e-mail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core import mail

from jobs.models import Alert, AlertKind, Job, JobKind, JobStatus
from schedules.models import RunState, Schedule, ScheduleRun
from schedules.services import (
    BAD_CRON,
    ScheduleError,
    schedule_create,
    schedule_pause,
    schedule_resume,
    schedules_tick,
)

pytestmark = pytest.mark.django_db(transaction=True)

MORNING = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)


def _schedule(studio: Any, segment: Any, lead: Any, **extra: Any) -> Schedule:
    return schedule_create(name="Morning audiences", connection=studio.connection,
                           sandbox=studio.sandbox, segments=[segment], cron="30 5 * * *",
                           actor=lead, now=MORNING, **extra)


def test_the_next_run_follows_the_cron_expression_in_the_schedules_zone(
        studio: Any, segment: Any, lead: Any) -> None:
    utc = _schedule(studio, segment, lead)
    paris = schedule_create(name="Paris mornings", connection=studio.connection,
                            sandbox=studio.sandbox, segments=[segment], cron="30 5 * * *",
                            zone="Europe/Paris", actor=lead, now=MORNING)
    assert utc.next_run_at == datetime(2026, 11, 30, 5, 30, tzinfo=UTC)
    assert paris.next_run_at == datetime(2026, 12, 1, 4, 30, tzinfo=UTC)  # 05:30 CET


def test_a_bad_cron_expression_is_refused_with_what_to_type(
        studio: Any, segment: Any, lead: Any) -> None:
    with pytest.raises(ScheduleError) as refused:
        schedule_create(name="Never", connection=studio.connection, sandbox=studio.sandbox,
                        segments=[segment], cron="every morning", actor=lead)
    assert refused.value.message == BAD_CRON.format(cron="every morning")
    assert refused.value.field == "cron"


def test_a_due_schedule_runs_once_per_slot_and_its_export_follows(
        studio: Any, segment: Any, dataset_id: str, lead: Any) -> None:
    schedule = _schedule(studio, segment, lead, export_dataset_id=dataset_id,
                         export_dataset_name="Spring audience")
    assert schedules_tick(now=MORNING + timedelta(minutes=10)) == 0  # not due yet

    assert schedules_tick(now=MORNING + timedelta(minutes=31)) == 1
    assert schedules_tick(now=MORNING + timedelta(minutes=32)) == 0  # the slot is taken
    run = ScheduleRun.objects.get()
    assert run.due_at == datetime(2026, 11, 30, 5, 30, tzinfo=UTC)
    job = run.job
    assert job is not None
    assert job.kind == JobKind.SEGMENT and job.status == JobStatus.SUCCEEDED
    assert job.created_by == lead and list(job.segments.all()) == [segment]
    export = Job.objects.get(parent=job)
    assert export.kind == JobKind.EXPORT and export.status == JobStatus.SUCCEEDED
    run.refresh_from_db()
    assert run.state == RunState.SUCCEEDED
    schedule.refresh_from_db()
    assert schedule.next_run_at == datetime(2026, 12, 1, 5, 30, tzinfo=UTC)


def test_a_paused_schedule_starts_nothing_and_resumes_from_now_on(
        studio: Any, segment: Any, lead: Any) -> None:
    schedule = _schedule(studio, segment, lead)
    schedule_pause(schedule=schedule, actor=lead)
    assert schedules_tick(now=MORNING + timedelta(days=3)) == 0
    schedule = schedule_resume(schedule=schedule, actor=lead,
                               now=MORNING + timedelta(days=3))
    # the slots missed while paused are skipped, not caught up
    assert schedule.next_run_at == datetime(2026, 12, 3, 5, 30, tzinfo=UTC)
    assert not ScheduleRun.objects.exists()


def test_a_run_that_cannot_start_fails_with_an_alert_and_an_email(
        studio: Any, segment: Any, make_user: Any, email_backend: None) -> None:
    from core.roles import Role

    owner = make_user("lena", Role.TEAM_LEAD, email="lena@example.com")
    _schedule(studio, segment, owner)
    type(segment).objects.filter(pk=segment.pk).update(remote_id="")  # no longer on the engine

    assert schedules_tick(now=MORNING + timedelta(minutes=31)) == 1
    run = ScheduleRun.objects.get()
    assert run.state == RunState.FAILED and run.job is None and run.error
    alert = Alert.objects.get()
    assert alert.kind == AlertKind.SCHEDULE_FAILED
    assert alert.title == "Scheduled run “Morning audiences” failed"
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["lena@example.com"]
    assert "Morning audiences" in mail.outbox[0].subject
