from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from croniter import croniter  # type: ignore[import-untyped]
from django.conf import settings
from django.db import models


class ScheduleQuerySet(models.QuerySet["Schedule"]):
    def active(self) -> ScheduleQuerySet:
        return self.filter(paused=False)

    def due(self, now: datetime) -> ScheduleQuerySet:
        return self.active().filter(next_run_at__lte=now)


class Schedule(models.Model):
    """Run these segment definitions at the times `cron` names (in `timezone`), and, when
    `export_dataset_id` is set, export their members to that dataset once the run succeeded.
    Every run is a ScheduleRun row linked to the segment job it started."""

    name = models.CharField(max_length=200)
    connection = models.ForeignKey("connections.Connection", on_delete=models.PROTECT,
                                   related_name="schedules")
    sandbox = models.CharField(max_length=100)
    segments = models.ManyToManyField("segments.Segment", related_name="schedules")
    cron = models.CharField(max_length=100, default="0 6 * * *",
                            help_text="minute hour day-of-month month day-of-week")
    timezone = models.CharField(max_length=64, default="UTC")
    export_dataset_id = models.CharField(max_length=100, blank=True)
    export_dataset_name = models.CharField(max_length=200, blank=True)
    email_owner = models.BooleanField(default=True,
                                      help_text="e-mail the owner when a run fails")
    paused = models.BooleanField(default=False, db_index=True)
    next_run_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ScheduleQuerySet.as_manager()

    class Meta:
        ordering = ["name", "pk"]

    def __str__(self) -> str:
        return self.name

    def next_after(self, moment: datetime) -> datetime:
        """The first time the cron expression names after `moment`, in the schedule's zone."""
        local = moment.astimezone(ZoneInfo(self.timezone))
        return croniter(self.cron, local).get_next(datetime)


class RunState(models.TextChoices):
    STARTED = "started", "Started"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class ScheduleRun(models.Model):
    """One firing of a schedule: the slot it was due for (unique, so two beats, or a tick
    that runs twice, start one run) and the segment job it started — or why it could not."""

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="runs")
    due_at = models.DateTimeField()
    started_at = models.DateTimeField(auto_now_add=True)
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL,
                            related_name="schedule_runs")
    state = models.CharField(max_length=16, choices=RunState.choices,
                             default=RunState.STARTED)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-due_at", "-pk"]
        constraints = [models.UniqueConstraint("schedule", "due_at",
                                               name="schedule_run_once_per_slot")]

    def __str__(self) -> str:
        return f"{self.schedule_id} @ {self.due_at:%Y-%m-%d %H:%M}"

    @property
    def tone(self) -> str:
        """The badge colour: running blue until the segment job (and its export) finished."""
        return {RunState.STARTED: "running", RunState.SUCCEEDED: "succeeded",
                RunState.FAILED: "failed"}[RunState(self.state)]

    @property
    def state_text(self) -> str:
        if self.state == RunState.STARTED:
            return "Running"
        if self.state == RunState.FAILED and self.job is None:
            return "Not started"
        return self.get_state_display()
