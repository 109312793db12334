from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from core.roles import LEADS, has_role

if TYPE_CHECKING:
    from jobs.kinds import Kind


class JobKind(models.TextChoices):
    """The built-in kinds' values, for queries (`kind=JobKind.EXPORT`); what a kind does is
    its class in jobs.kinds, which also registers kinds beyond these."""

    PREVIEW = "preview", "Preview"
    SEGMENT = "segment", "Segment job"
    EXPORT = "export", "Export job"
    INGEST = "ingest", "Ingestion"  # a file sent into a dataset through Batch Ingestion


# User-facing texts (tests assert them)
WAITING_LABEL = "Queued — waiting for a worker"


class JobStatus(models.TextChoices):
    """Our status, normalised from AEP's by the job's kind (jobs.kinds). Order matters: a job's
    status only moves forward (RANK), so a late poll never undoes a newer state."""

    PENDING = "pending", "Pending"          # row exists, not yet sent
    # the submit task could not be sent (the broker was unreachable): the sweeper sends it once
    # the broker is back
    WAITING = "waiting", WAITING_LABEL
    SUBMITTING = "submitting", "Submitting"  # the submit call is (or was) in flight
    QUEUED = "queued", "Queued"              # remote NEW / QUEUED
    RUNNING = "running", "Running"           # remote PROCESSING / RUNNING
    CANCELLING = "cancelling", "Cancelling"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    TIMED_OUT = "timed_out", "Timed out"


FINISHED = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED,
                      JobStatus.TIMED_OUT})
RANK = {
    JobStatus.PENDING: 0, JobStatus.WAITING: 0, JobStatus.SUBMITTING: 1, JobStatus.QUEUED: 2,
    JobStatus.RUNNING: 3, JobStatus.CANCELLING: 4, JobStatus.SUCCEEDED: 5, JobStatus.FAILED: 5,
    JobStatus.CANCELLED: 5, JobStatus.TIMED_OUT: 5,
}

STATUS_TONES = {
    JobStatus.PENDING: "queued", JobStatus.WAITING: "queued", JobStatus.SUBMITTING: "queued",
    JobStatus.QUEUED: "queued",
    JobStatus.RUNNING: "running", JobStatus.CANCELLING: "running",
    JobStatus.SUCCEEDED: "succeeded", JobStatus.FAILED: "failed",
    JobStatus.CANCELLED: "cancelled", JobStatus.TIMED_OUT: "warning",
}

# how long a finished row waits for its finish hooks before it stops polling regardless
HOOKS_SETTLE = timedelta(seconds=30)
# not sent to the API yet, nor picked up by a worker: cancelled here, reused by a retry
UNSENT = (JobStatus.PENDING, JobStatus.WAITING)


def kind_choices() -> list[tuple[str, str]]:
    """Job.kind's choices: the registered kinds (jobs.kinds), so a new kind is one class."""
    from jobs.kinds import choices

    return choices()


def seconds_text(seconds: float | None) -> str:
    """A duration as people read it: '2.4 s', '3 min 05 s', '1 h 02 min'."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class JobQuerySet(models.QuerySet["Job"]):
    def unfinished(self) -> JobQuerySet:
        return self.exclude(status__in=FINISHED)

    def finished(self) -> JobQuerySet:
        return self.filter(status__in=FINISHED)

    def visible_to(self, user: Any) -> JobQuerySet:
        if has_role(user, LEADS):
            return self
        return self.filter(created_by=user)


class Job(models.Model):
    """One job on a connection (a preview, segment job, export or ingestion: its kind, see
    jobs.kinds): the truth about it is this row."""

    kind = models.CharField(max_length=16, choices=kind_choices, db_index=True)
    connection = models.ForeignKey("connections.Connection", on_delete=models.PROTECT,
                                   related_name="jobs")
    sandbox = models.CharField(max_length=100)
    label = models.CharField(max_length=200, blank=True,
                             help_text="what a person reads: the segment or export name")
    remote_id = models.CharField(max_length=100, blank=True, db_index=True)
    status = models.CharField(max_length=16, choices=JobStatus.choices,
                              default=JobStatus.PENDING, db_index=True)
    remote_status = models.CharField(max_length=40, blank=True)
    request = models.JSONField(default=dict, blank=True)
    last_response = models.JSONField(null=True, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    progress = models.FloatField(null=True, blank=True, help_text="0..1 when known")
    error_code = models.CharField(max_length=100, blank=True)
    error_message = models.TextField(blank=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="children",
                               help_text="the job this one follows (segment job → export)")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="jobs")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    poll_count = models.PositiveIntegerField(default=0)
    poll_deadline = models.DateTimeField(null=True, blank=True)
    # When the job's next task (submit or poll) is due. Each scheduled poll carries this value;
    # a poll whose value is no longer the row's was superseded and stops, so a job has one poll
    # chain at a time, and the sweeper knows a chain is lost when this is long past.
    next_poll_at = models.DateTimeField(null=True, blank=True)
    # When the finish hooks (jobs.kinds.on_finish) ran after the job finished; the sweeper
    # runs them for a finished job whose process died before they could run.
    finish_hooks_at = models.DateTimeField(null=True, blank=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["status", "last_polled_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.label or self.pk}"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED

    @property
    def is_settled(self) -> bool:
        """Finished, and what its finish hooks write (a segment's count, the export after it)
        is written — or they are overdue, and the sweeper's to run. A row polls until then,
        so a page that reloads what a job changed, when its row says it finished, reads it."""
        return self.is_finished and (
            self.finish_hooks_at is not None or self.finished_at is None
            or self.finished_at < timezone.now() - HOOKS_SETTLE)

    @property
    def kind_spec(self) -> Kind[Any]:
        """What this kind of job does and shows (jobs.kinds)."""
        from jobs.kinds import kind_of

        return kind_of(self)

    @property
    def duration(self) -> timedelta | None:
        start = self.submitted_at or self.created_at
        if start is None:
            return None
        return (self.finished_at or timezone.now()) - start

    @property
    def duration_text(self) -> str:
        """'2.4 s', '3 min 05 s', '1 h 02 min'."""
        duration = self.duration
        return "" if duration is None else seconds_text(max(duration.total_seconds(), 0.0))

    @property
    def progress_percent(self) -> int | None:
        return None if self.progress is None else round(min(max(self.progress, 0.0), 1.0) * 100)

    @property
    def tone(self) -> str:
        """The status badge's colour (DESIGN.md): queued/running blue, succeeded green, failed
        red, timed out amber, cancelled grey."""
        return STATUS_TONES[JobStatus(self.status)]

    @property
    def can_cancel(self) -> bool:
        return self.status in UNSENT or (
            bool(self.remote_id) and self.status in (JobStatus.QUEUED, JobStatus.RUNNING))

    def next_poll_delay(self) -> float:
        """Seconds until the next poll, as the job's kind says (1, 2, 4, 8, 16, then every
        30 s; a preview every half second while its estimate converges)."""
        return self.kind_spec.next_poll_delay(self)


class JobEvent(models.Model):
    """One step of a job's timeline: submitted, a status change, a retry, an error, a timeout."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(default=timezone.now, db_index=True)
    kind = models.CharField(max_length=40)  # submitted, status, retry, error, cancel, timeout…
    status = models.CharField(max_length=16, choices=JobStatus.choices, blank=True)
    message = models.TextField(blank=True)
    data = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.job_id} {self.kind} {self.status}"

    @property
    def tone(self) -> str:
        return STATUS_TONES[JobStatus(self.status)] if self.status else "neutral"


class AlertKind(models.TextChoices):
    TIMED_OUT = "timed_out", "Job stuck past its deadline"
    SCHEDULE_FAILED = "schedule_failed", "Scheduled run failed"


class AlertQuerySet(models.QuerySet["Alert"]):
    def open(self) -> AlertQuerySet:
        return self.filter(acknowledged_at__isnull=True)


class Alert(models.Model):
    """Something a team lead must look at (issue 9): a job stuck past its deadline, or a
    scheduled run that failed. Listed on the Alerts page, and in a banner, until someone
    acknowledges it. One alert per kind and job (or per `key` when there is no job)."""

    kind = models.CharField(max_length=24, choices=AlertKind.choices)
    key = models.CharField(max_length=200, unique=True,
                           help_text="what makes it the same alert: kind and job or run")
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.CASCADE,
                            related_name="alerts")
    title = models.CharField(max_length=200)
    message = models.TextField(blank=True)
    url = models.CharField(max_length=300, blank=True, help_text="where to look")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    emailed_to = models.TextField(blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True, db_index=True)
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                        on_delete=models.SET_NULL, related_name="+")

    objects = AlertQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.title
