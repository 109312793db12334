from __future__ import annotations

from django.conf import settings
from django.db import models


class PlanState(models.TextChoices):
    WAITING = "waiting", "Waiting for the segment job"
    STARTED = "started", "Export started"
    ABANDONED = "abandoned", "Not started: the segment job did not succeed"


class ExportPlan(models.Model):
    """“Run the segments, then export them”: the export to start once `parent` (the segment
    job) succeeds. Kept as a row, not in a Celery message, so a worker restart loses
    nothing; `export_job` is set exactly once (see services.export_plan_advance)."""

    parent = models.OneToOneField("jobs.Job", on_delete=models.CASCADE,
                                  related_name="export_plan")
    body = models.JSONField(help_text="the POST /export/jobs body to send")
    label = models.CharField(max_length=200)
    state = models.CharField(max_length=16, choices=PlanState.choices,
                             default=PlanState.WAITING, db_index=True)
    export_job = models.OneToOneField("jobs.Job", null=True, blank=True,
                                      on_delete=models.SET_NULL, related_name="planned_by")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"Export plan {self.label}"


class KnownDataset(models.Model):
    """A dataset's name as the platform last gave it, kept whenever the datasets are read or
    one is created, so that lists of exports name their destination from our database (an
    export job only carries the dataset's id)."""

    connection = models.ForeignKey("connections.Connection", on_delete=models.CASCADE,
                                   related_name="+")
    sandbox = models.CharField(max_length=100)
    dataset_id = models.CharField(max_length=100)
    name = models.CharField(max_length=200)
    seen_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["connection", "sandbox", "dataset_id"],
                                               name="known_dataset_unique")]

    def __str__(self) -> str:
        return self.name
