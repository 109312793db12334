"""The engine's catalog: datasets, batches, merge policies and query snapshots, per sandbox."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from django.db import models

DEFAULT_SANDBOX = "prod"


def catalog_id() -> str:
    """Catalog ids are 24 hex characters, as Adobe's (spec/aep-api.md §11)."""
    return secrets.token_hex(12)


def batch_id() -> str:
    """Batch ids are 32 hex characters."""
    return secrets.token_hex(16)


class XdmClass(models.TextChoices):
    PROFILE = "profile", "XDM Individual Profile"
    EVENT = "event", "XDM ExperienceEvent"


# The schema names AEP uses for the two classes.
CLASS_SCHEMA_NAMES = {
    XdmClass.PROFILE: "_xdm.context.profile",
    XdmClass.EVENT: "_xdm.context.experienceevent",
}


class DatasetQuerySet(models.QuerySet["Dataset"]):
    def in_sandbox(self, sandbox: str) -> DatasetQuerySet:
        return self.filter(sandbox=sandbox)

    def profile_enabled(self) -> DatasetQuerySet:
        return self.filter(profile_enabled=True)


class Dataset(models.Model):
    id = models.CharField(primary_key=True, max_length=24, default=catalog_id, editable=False)
    sandbox = models.CharField(max_length=64, default=DEFAULT_SANDBOX, db_index=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    xdm_class = models.CharField(max_length=16, choices=XdmClass.choices)
    profile_enabled = models.BooleanField(default=True)
    # Export destinations: union-persisting profile datasets receive audience members.
    union_persisting = models.BooleanField(default=False)
    # The inferred type tree of everything ingested so far (engine.xdm.TypeTree as JSON).
    schema = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = DatasetQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["sandbox", "name"],
                                    name="dataset_name_unique_in_sandbox"),
        ]
        ordering = ["sandbox", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.sandbox})"


class WorkerRun(models.Model):
    """What tells a job a worker is running from one whose worker stopped (engine.runs): a
    worker claims the row (``attempts`` + 1, ``heartbeat_at`` set) and beats ``heartbeat_at``
    while it runs; empty, the row waits for a worker."""

    attempts = models.PositiveSmallIntegerField(default=0)  # runs a worker started
    heartbeat_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        abstract = True


class BatchStatus(models.TextChoices):
    LOADING = "loading", "Loading"
    # Batch Ingestion API: COMPLETE was called, a worker of the engine queue is ingesting it.
    PROCESSING = "processing", "Processing"
    SUCCESS = "success", "Success"
    FAILED = "failed", "Failed"


class Batch(WorkerRun):
    id = models.CharField(primary_key=True, max_length=32, default=batch_id, editable=False)
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="batches")
    status = models.CharField(max_length=16, choices=BatchStatus.choices,
                              default=BatchStatus.LOADING, db_index=True)
    record_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    # The first errors, each {"file", "line", "reason"}; error_count has the full number.
    errors = models.JSONField(default=list, blank=True)
    # Files written, each {"name", "size", "records"}, relative to the batch folder.
    files = models.JSONField(default=list, blank=True)
    source_files = models.JSONField(default=list, blank=True)
    # Bytes of the source files (Catalog's batch "size").
    size = models.PositiveBigIntegerField(default=0)
    # Batch Ingestion API: the inputFormat it was created with ({"format": "json", ...}), and
    # the API client that created it (Catalog's createdUser).
    input_format = models.JSONField(default=dict, blank=True)
    client = models.ForeignKey("ApiClient", null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="batches")
    failure_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "batches"

    def __str__(self) -> str:
        return f"batch {self.id} ({self.status})"


class IdentityGraph(models.TextChoices):
    NONE = "none", "None (no stitching)"
    PDG = "pdg", "Private identity graph"


class AttributeMerge(models.TextChoices):
    TIMESTAMP_ORDERED = "timestampOrdered", "Timestamp ordered"
    DATASET_PRECEDENCE = "dataSetPrecedence", "Dataset precedence"


class MergePolicy(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    sandbox = models.CharField(max_length=64, default=DEFAULT_SANDBOX, db_index=True)
    name = models.CharField(max_length=200)
    identity_graph = models.CharField(max_length=8, choices=IdentityGraph.choices,
                                      default=IdentityGraph.PDG)
    attribute_merge = models.CharField(max_length=24, choices=AttributeMerge.choices,
                                       default=AttributeMerge.TIMESTAMP_ORDERED)
    # dataSetPrecedence: dataset ids, highest priority first; datasets not listed are not merged.
    dataset_order = models.JSONField(default=list, blank=True)
    default = models.BooleanField(default=False)
    is_active_on_edge = models.BooleanField(default=False)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["sandbox", "name"],
                                    name="merge_policy_name_unique_in_sandbox"),
            models.UniqueConstraint(fields=["sandbox"], condition=models.Q(default=True),
                                    name="one_default_merge_policy_per_sandbox"),
        ]
        ordering = ["sandbox", "name"]
        verbose_name_plural = "merge policies"

    def __str__(self) -> str:
        return self.name

    @property
    def table_suffix(self) -> str:
        return self.id.hex

    def merge_spec(self) -> dict[str, Any]:
        return {"id": str(self.id), "identity_graph": self.identity_graph,
                "attribute_merge": self.attribute_merge, "order": list(self.dataset_order)}


class SnapshotStatus(models.TextChoices):
    BUILDING = "building", "Building"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"
    RETIRED = "retired", "Retired"


class Snapshot(models.Model):
    """One immutable DuckDB file; the sandbox's CURRENT pointer names the one readers open."""

    sandbox = models.CharField(max_length=64, default=DEFAULT_SANDBOX, db_index=True)
    file_name = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=SnapshotStatus.choices,
                              default=SnapshotStatus.BUILDING)
    # counts: profiles per policy, events, identities, excluded graphs and why, seconds taken
    stats = models.JSONField(default=dict, blank=True)
    failure_reason = models.TextField(blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"{self.sandbox}/{self.file_name} ({self.status})"


# =============================================================================================
# The REST API (engine/api/): API clients, access tokens, segment definitions.
# =============================================================================================

def api_client_id() -> str:
    """Client ids look like a Developer Console client id (32 hex characters)."""
    return secrets.token_hex(16)


def epoch_ms() -> int:
    """Now, in epoch milliseconds (AEP's creationTime/updateTime)."""
    import time

    return int(time.time() * 1000)


class ApiClient(models.Model):
    """An OAuth server-to-server credential: client id (= x-api-key) and a hashed secret."""

    client_id = models.CharField(max_length=64, unique=True, default=api_client_id)
    # Django's password hashers (make_password / check_password); the secret itself is shown once.
    secret_hash = models.CharField(max_length=256)
    name = models.CharField(max_length=200)
    org_id = models.CharField(max_length=100)
    # Sandbox names this client may use, e.g. ["prod", "dev"].
    sandboxes = models.JSONField(default=list)
    active = models.BooleanField(default=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "client_id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.client_id})"


class AccessToken(models.Model):
    """A bearer token, stored as the sha256 hex digest of the token (never the token)."""

    digest = models.CharField(max_length=64, unique=True)
    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="tokens")
    expires_at = models.DateTimeField(db_index=True)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"token of {self.client_id} until {self.expires_at:%Y-%m-%d %H:%M}"


class ExpressionFormat(models.TextChoices):
    TEXT = "pql/text", "pql/text"
    JSON = "pql/json", "pql/json"


class SegmentDefinitionQuerySet(models.QuerySet["SegmentDefinition"]):
    def in_sandbox(self, sandbox: str) -> SegmentDefinitionQuerySet:
        return self.filter(sandbox=sandbox)


class SegmentDefinition(models.Model):
    """A segment definition of the Segmentation API (spec/aep-api.md §2.1)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    sandbox = models.CharField(max_length=64, default=DEFAULT_SANDBOX, db_index=True)
    name = models.CharField(max_length=1024)
    description = models.TextField(blank=True)
    schema_name = models.CharField(max_length=200, default="_xdm.context.profile")
    expression_type = models.CharField(max_length=8, default="PQL")
    # What the client sent, as it sent it (pql/json values are JSON serialized into a string).
    expression_format = models.CharField(max_length=16, choices=ExpressionFormat.choices,
                                         default=ExpressionFormat.TEXT)
    expression_value = models.TextField()
    # The canonical text (pql.to_text): what the engine evaluates and searches for inSegment.
    pql_text = models.TextField()
    merge_policy_id = models.CharField(max_length=64)
    evaluation_info = models.JSONField(default=dict, blank=True)
    ttl_in_days = models.PositiveIntegerField(null=True, blank=True)
    payload_schema = models.CharField(max_length=200, blank=True)
    ims_org_id = models.CharField(max_length=100, blank=True)
    creation_time = models.BigIntegerField(default=epoch_ms)  # epoch ms
    update_time = models.BigIntegerField(default=epoch_ms)  # epoch ms

    objects = SegmentDefinitionQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["sandbox", "name"],
                                    name="segment_definition_name_unique_in_sandbox"),
        ]
        ordering = ["-creation_time", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.sandbox})"


# =============================================================================================
# Asynchronous work of the REST API: previews (estimates), segment jobs, export jobs.
# The API only reads and writes these rows; Celery workers of the `engine` queue do the work.
# =============================================================================================

def preview_id() -> str:
    """Opaque, URL-safe, like Adobe's base64-ish previewIds (spec §3.1)."""
    return "MDpwcmV2aWV3" + secrets.token_urlsafe(18)


class PreviewState(models.TextChoices):
    NEW = "NEW", "New"
    RUNNING = "RUNNING", "Running"
    RESULT_READY = "RESULT_READY", "Result ready"
    FAILED = "FAILED", "Failed"
    CANCELLED = "CANCELLED", "Cancelled"


class Preview(WorkerRun):
    """A preview/estimate (spec §3): the estimate refines step by step while RUNNING."""

    id = models.CharField(primary_key=True, max_length=64, default=preview_id, editable=False)
    query_id = models.UUIDField(default=uuid.uuid4, editable=False)  # previewQueryId
    sandbox = models.CharField(max_length=64, default=DEFAULT_SANDBOX, db_index=True)
    client = models.ForeignKey("ApiClient", null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="previews")
    predicate_expression = models.TextField()  # as sent
    predicate_type = models.CharField(max_length=16, default="pql/text")
    predicate_model = models.CharField(max_length=100, default="_xdm.context.profile")
    graph_type = models.CharField(max_length=8, default="pdg")
    merge_policy_id = models.CharField(max_length=64, blank=True)
    state = models.CharField(max_length=16, choices=PreviewState.choices,
                             default=PreviewState.NEW, db_index=True)
    # The execution time the definition is evaluated at, fixed so pages stay consistent.
    evaluated_at = models.DateTimeField(null=True, blank=True)
    # The snapshot file read, so every page and estimate comes from one consistent store.
    snapshot_file = models.CharField(max_length=200, blank=True)
    # The latest progressive estimate (engine.estimate.Estimate fields, JSON).
    estimate = models.JSONField(default=dict, blank=True)
    error = models.JSONField(default=dict, blank=True)  # {"description", "traceback"}
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"preview {self.id} ({self.state})"


class JobStatus(models.TextChoices):
    NEW = "NEW", "New"
    QUEUED = "QUEUED", "Queued"
    PROCESSING = "PROCESSING", "Processing"
    SUCCEEDED = "SUCCEEDED", "Succeeded"
    FAILED = "FAILED", "Failed"
    CANCELLING = "CANCELLING", "Cancelling"
    CANCELLED = "CANCELLED", "Cancelled"


FINISHED_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class SegmentJob(WorkerRun):
    """A segment job (spec §4): evaluates definitions and writes their memberships."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    sandbox = models.CharField(max_length=64, default=DEFAULT_SANDBOX, db_index=True)
    client = models.ForeignKey("ApiClient", null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="segment_jobs")
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.NEW,
                              db_index=True)
    segment_ids = models.JSONField(default=list)  # the definitions, in the order sent
    request = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    errors = models.JSONField(default=list, blank=True)
    snapshot_file = models.CharField(max_length=200, blank=True)
    # The export job (evaluationInfo.segmentation) that runs this one inside its own run: it
    # ends with that export, and is never sent to a worker on its own.
    export_job = models.ForeignKey("ExportJob", null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="segment_jobs")
    creation_time = models.BigIntegerField(default=epoch_ms)
    update_time = models.BigIntegerField(default=epoch_ms)

    class Meta:
        ordering = ["-creation_time"]

    def __str__(self) -> str:
        return f"segment job {self.id} ({self.status})"


class ExportJob(WorkerRun):
    """An export job (spec §5): writes an audience into a new batch of a dataset. Integer ids,
    as Adobe's."""

    sandbox = models.CharField(max_length=64, default=DEFAULT_SANDBOX, db_index=True)
    client = models.ForeignKey("ApiClient", null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="export_jobs")
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.NEW,
                              db_index=True)
    request = models.JSONField(default=dict, blank=True)
    destination = models.ForeignKey(Dataset, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="export_jobs")
    batch = models.ForeignKey(Batch, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="export_jobs")
    metrics = models.JSONField(default=dict, blank=True)
    errors = models.JSONField(default=list, blank=True)
    creation_time = models.BigIntegerField(default=epoch_ms)
    update_time = models.BigIntegerField(default=epoch_ms)

    class Meta:
        ordering = ["-creation_time"]

    def __str__(self) -> str:
        return f"export job {self.pk} ({self.status})"
