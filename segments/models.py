from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower

if TYPE_CHECKING:
    from connections.models import Connection


class EvaluationMethod(models.TextChoices):
    BATCH = "batch", "Batch"
    STREAMING = "streaming", "Streaming"
    EDGE = "edge", "Edge"


class SegmentQuerySet(models.QuerySet["Segment"]):
    def in_sandbox(self, connection: Connection, sandbox: str) -> SegmentQuerySet:
        return self.filter(connection=connection, sandbox=sandbox)

    def search(self, text: str) -> SegmentQuerySet:
        if not text:
            return self
        return self.filter(models.Q(name__icontains=text) | models.Q(description__icontains=text))


class Segment(models.Model):
    """Our record of one segment definition on a connection's sandbox.

    The definition itself lives remotely (`remote_id` on AEP or the built-in engine); this row
    keeps what the dashboard shows without an API call: the latest text, who changed it, the last
    estimate and the last job's count. Every save is also a SegmentVersion.
    """

    connection = models.ForeignKey("connections.Connection", on_delete=models.PROTECT,
                                   related_name="segments")
    sandbox = models.CharField(max_length=100)
    remote_id = models.CharField(max_length=100, blank=True, db_index=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    pql = models.TextField("PQL")
    merge_policy_id = models.CharField(max_length=100, blank=True)
    evaluation_method = models.CharField(max_length=16, choices=EvaluationMethod.choices,
                                         default=EvaluationMethod.BATCH)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # the newest version's estimate that there is, with that version's number (see
    # SegmentVersion.estimate): {"size", "standard_error", "sample", "total", "exact", "at",
    # "job", "version"}
    last_estimate = models.JSONField(null=True, blank=True)
    last_count = models.BigIntegerField(null=True, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_run_version = models.PositiveIntegerField(null=True, blank=True)
    jobs = models.ManyToManyField("jobs.Job", blank=True, related_name="segments")

    objects = SegmentQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(Lower("name"), "connection", "sandbox",
                                    name="segment_name_unique_per_sandbox"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def version_number(self) -> int | None:
        """The current version's number (annotated by the list as ``current_version``)."""
        annotated = getattr(self, "current_version", None)
        if annotated is not None:
            return int(annotated)
        latest = self.versions.order_by("-number").values_list("number", flat=True).first()
        return latest

    @property
    def estimate_is_current(self) -> bool:
        version = (self.last_estimate or {}).get("version")
        return version is not None and version == self.version_number


class SegmentVersion(models.Model):
    """What a save wrote: the definition as it was, who saved it and when."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    pql = models.TextField("PQL")
    merge_policy_id = models.CharField(max_length=100, blank=True)
    evaluation_method = models.CharField(max_length=16, choices=EvaluationMethod.choices,
                                         default=EvaluationMethod.BATCH)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    note = models.CharField(max_length=200, blank=True)  # e.g. "restored from version 2"
    # the estimate of exactly this text (a preview job of the same definition), as in
    # Segment.last_estimate; an estimate never moves to another version's text
    estimate = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-number"]
        constraints = [models.UniqueConstraint("segment", "number",
                                               name="segment_version_number_unique")]

    def __str__(self) -> str:
        return f"{self.segment_id} v{self.number}"
