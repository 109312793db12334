"""Every write of the REST API's jobs part: segment jobs, export jobs, Catalog datasets.

A job is created NEW and its Celery task (engine.tasks_jobs) is enqueued after the commit;
a bad body is a 400 before anything is stored.
"""

from __future__ import annotations

import logging
import shutil
import uuid
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from engine import xdm
from engine.api import caps, errors
from engine.api.auth import json_value, natural
from engine.models import (
    FINISHED_STATUSES,
    ApiClient,
    Batch,
    BatchStatus,
    Dataset,
    ExportJob,
    JobStatus,
    MergePolicy,
    SegmentDefinition,
    SegmentJob,
    XdmClass,
    epoch_ms,
)
from engine.queue import send_on_commit
from engine.snapshot import union_tree
from engine.storage import FolderBusy, dataset_dir, folder_lock, upload_dir

logger = logging.getLogger(__name__)

MAX_ID = 2**63 - 1  # SQLite's largest integer key

MAX_SEGMENTS_PER_JOB = 100  # ours; AEP's flexible evaluation allows 20, scheduled jobs more
SEGMENT_NAMESPACE = "ups"
MEMBERSHIP_STATUSES = ("realized", "existing", "exited")
DEFAULT_STATUSES = ["realized", "existing"]
PROFILE_SCHEMA_NAMES = ("_xdm.context.profile", "https://ns.adobe.com/xdm/context/profile")
UNION_SCHEMA_IDS = ("https://ns.adobe.com/xdm/context/profile__union",
                    "_xdm.context.profile__union")
# A dataset of one of these classes holds ingested records (Batch Ingestion API); with
# tags.unifiedProfile ["enabled:true"] they feed the profile store.
CLASS_SCHEMA_IDS = {
    "https://ns.adobe.com/xdm/context/profile": XdmClass.PROFILE,
    "_xdm.context.profile": XdmClass.PROFILE,
    "https://ns.adobe.com/xdm/context/experienceevent": XdmClass.EVENT,
    "_xdm.context.experienceevent": XdmClass.EVENT,
}

SEGMENT_JOB_BODY = ('The body must be a JSON array of {"segmentId": "<id>"} '
                    f"(1 to {MAX_SEGMENTS_PER_JOB} items).")
SEGMENT_ALL_IN_OBJECT = ('To evaluate every definition send {"schema": {"name": '
                         '"_xdm.context.profile"}, "segments": [{"segmentId": "*"}]}.')
SEGMENT_ALL_NONE = "The sandbox has no segment definitions with batch evaluation enabled."
SEGMENT_JOB_NOT_FOUND = "The segment job {id} is not found. Use a valid entity and try again."
EXPORT_JOB_NOT_FOUND = "The export job {id} is not found. Use a valid entity and try again."
JOB_FINISHED = "The job {id} is already {status}; it cannot be cancelled."
DATASET_NOT_FOUND = "DataSet not found."
DATASET_EXISTS = "A dataset named {name!r} already exists in this sandbox."
DATASET_BUSY = ("DataSet {id} has a batch being written into it (an ingestion processing, or "
                "an export): try again once the batch has finished.")
DELETED_WITH_DATASET = "deleted with its dataset"
SCHEMA_REF_INVALID = ("schemaRef.id must be the XDM Individual Profile union schema "
                      "(https://ns.adobe.com/xdm/context/profile__union) for an export "
                      "dataset, or a class for ingested records: "
                      "https://ns.adobe.com/xdm/context/profile or "
                      "https://ns.adobe.com/xdm/context/experienceevent.")
TAGS_INVALID = "an object of string arrays is needed"
TIMESTAMP_INVALID = "an RFC 3339 timestamp is needed, such as 2018-01-01T00:00:00Z"
FIELD_UNKNOWN = "{path} is not a field of the profile union schema"


def request_id_of(request: HttpRequest) -> str:
    return request.headers.get("x-request-id") or errors.request_id()


def json_any(request: HttpRequest) -> Any:
    """Any JSON value (a segment job's body is a list), read as json_body reads an object."""
    return json_value(request)


def _enqueue(task: Any, job_id: Any) -> None:
    # after the commit, so the worker finds the row (STYLE.md habit 4)
    send_on_commit(lambda: task.delay(job_id), f"{task.name} {job_id}")


# --- segment jobs --------------------------------------------------------------------------

def _segment_ids(body: Any) -> list[str]:
    """The ids of an array body, or ``["*"]`` for the evaluate-everything object (spec §4.1)."""
    if isinstance(body, dict) and isinstance(body.get("segments"), list):
        body = body["segments"]
        if any(isinstance(i, dict) and i.get("segmentId") == "*" for i in body):
            return ["*"]
    if not isinstance(body, list) or not 0 < len(body) <= MAX_SEGMENTS_PER_JOB:
        raise errors.invalid(SEGMENT_JOB_BODY)
    ids: list[str] = []
    for item in body:
        value = item.get("segmentId") if isinstance(item, dict) else None
        if not isinstance(value, str) or not value:
            raise errors.invalid(SEGMENT_JOB_BODY)
        if value == "*":
            raise errors.invalid(SEGMENT_ALL_IN_OBJECT)
        if value not in ids:
            ids.append(value)
    return ids


def _definitions(sandbox: str, ids: list[str]) -> dict[str, SegmentDefinition]:
    keys = []
    for value in ids:
        try:
            keys.append(uuid.UUID(value))
        except ValueError:
            raise errors.not_found(errors.DEFINITION_NOT_FOUND.format(id=value)) from None
    found = {str(d.id): d for d in SegmentDefinition.objects.in_sandbox(sandbox)
             .filter(id__in=keys)}
    for value in ids:
        if str(uuid.UUID(value)) not in found:
            raise errors.not_found(errors.DEFINITION_NOT_FOUND.format(id=value))
    return found


@transaction.atomic
def segment_job_create(*, sandbox: str, client: ApiClient, body: Any,
                       request_id: str) -> SegmentJob:
    """A NEW job for definitions of the sandbox: unknown ids are a 404, as a GET of them."""
    from engine.tasks_jobs import segment_job_run

    wanted = _segment_ids(body)
    if wanted == ["*"]:
        ids = [str(key) for key in SegmentDefinition.objects.in_sandbox(sandbox)
               .filter(evaluation_info__batch__enabled=True)
               .order_by("creation_time", "id").values_list("id", flat=True)]
        if not ids:
            raise errors.invalid(SEGMENT_ALL_NONE)
    else:
        ids = [str(uuid.UUID(key)) for key in _definitions(sandbox, wanted)]
    caps.jobs_admit(client)
    job = SegmentJob.objects.create(sandbox=sandbox, client=client, segment_ids=ids,
                                    request={"requestId": request_id})
    _enqueue(segment_job_run, str(job.id))
    return job


def segment_job_get(*, sandbox: str, job_id: str) -> SegmentJob:
    try:
        key = uuid.UUID(job_id)
    except ValueError:
        key = None
    job = SegmentJob.objects.filter(sandbox=sandbox, id=key).first() if key else None
    if job is None:
        raise errors.not_found(SEGMENT_JOB_NOT_FOUND.format(id=job_id))
    return job


def _cancel(job: SegmentJob | ExportJob) -> None:
    if job.status in FINISHED_STATUSES:
        raise errors.invalid(JOB_FINISHED.format(id=job.pk, status=job.status))
    # a conditional update: a worker finishing meanwhile keeps its outcome
    rows = (SegmentJob.objects.filter(pk=job.pk) if isinstance(job, SegmentJob)
            else ExportJob.objects.filter(pk=job.pk))
    rows.exclude(status__in=FINISHED_STATUSES).update(status=JobStatus.CANCELLING,
                                                      update_time=epoch_ms())
    job.refresh_from_db()


def segment_job_cancel(*, job: SegmentJob) -> None:
    _cancel(job)


# --- Catalog datasets ----------------------------------------------------------------------

def _problem(detail: str) -> errors.ApiError:
    return errors.problem_error(errors.BAD_REQUEST, "BadRequestError", detail)


def dataset_not_found() -> errors.ApiError:
    return errors.problem_error(errors.NOT_FOUND, "NotFoundError", DATASET_NOT_FOUND)


def _profile_enabled(tags: Any) -> bool:
    """tags.unifiedProfile holds "enabled:true" (AEP's docs also print "enabled: true")."""
    if tags is None:
        return False
    if not isinstance(tags, dict) or not all(
            isinstance(items, list) and all(isinstance(item, str) for item in items)
            for items in tags.values()):
        raise _problem(errors.FIELD_INVALID.format(field="tags", reason=TAGS_INVALID))
    return any(item.replace(" ", "").lower() == "enabled:true"
               for item in tags.get("unifiedProfile", []))


@transaction.atomic
def dataset_create(*, sandbox: str, body: dict[str, Any]) -> Dataset:
    """An export destination on the profile union schema (spec §7.1), not enabled for Profile:
    exported members must not be read back into the profiles they came from. Or a dataset of
    the Individual Profile or ExperienceEvent class for the Batch Ingestion API, feeding the
    profile store when its tags enable it for Profile."""
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _problem(errors.FIELD_REQUIRED.format(field="name"))
    if len(name) > Dataset._meta.get_field("name").max_length:  # type: ignore[operator]
        raise _problem(errors.FIELD_INVALID.format(field="name", reason="at most 200 characters"))
    description = body.get("description", "")
    if not isinstance(description, str):
        raise _problem(errors.FIELD_INVALID.format(field="description",
                                                   reason="a string is needed"))
    schema_ref = body.get("schemaRef")
    schema_id = schema_ref.get("id") if isinstance(schema_ref, dict) else None
    if schema_id in UNION_SCHEMA_IDS:
        values: dict[str, Any] = {"xdm_class": XdmClass.PROFILE, "profile_enabled": False,
                                  "union_persisting": True}
    elif isinstance(schema_id, str) and schema_id in CLASS_SCHEMA_IDS:
        values = {"xdm_class": CLASS_SCHEMA_IDS[schema_id],
                  "profile_enabled": _profile_enabled(body.get("tags"))}
    else:
        raise _problem(SCHEMA_REF_INVALID)
    if Dataset.objects.in_sandbox(sandbox).filter(name=name).exists():
        raise _problem(DATASET_EXISTS.format(name=name))
    try:
        with transaction.atomic():
            return Dataset.objects.create(sandbox=sandbox, name=name, description=description,
                                          **values)
    except IntegrityError:
        raise _problem(DATASET_EXISTS.format(name=name)) from None


def dataset_get(*, sandbox: str, dataset_id: str) -> Dataset:
    dataset = Dataset.objects.in_sandbox(sandbox).filter(id=dataset_id).first()
    if dataset is None:
        raise dataset_not_found()
    return dataset


def dataset_delete(*, dataset: Dataset) -> None:
    """Delete a dataset, its batches and their files: the dataset's folder and the uploads of
    its loading batches. Refused (400) while one of its batches is being written: processing
    (COMPLETE was sent; a worker ingests it) or held by a worker under the dataset's lock (a
    batch loading into it, an export writing into it); the deletion never waits for one.

    Under that lock, with the rows gone first: a worker that gets the lock afterwards finds no
    dataset and writes nothing (engine.ingest.batch_load, engine.exports). Loading batches are
    failed by a conditional update before anything else, so a COMPLETE sent at the same moment
    either commits first (processing: refused here) or finds no loading batch after.

    Export jobs keep their rows (destination and batch set null). A profile-enabled dataset
    with a successful batch is in the query snapshot: engine.tasks_jobs.snapshot_rebuild builds
    it again after the commit, on the engine queue. A build running meanwhile may fail on the
    files removed under it; the rebuild that follows reads the catalog without them.
    """
    from engine.tasks_jobs import snapshot_rebuild

    sandbox, dataset_id = dataset.sandbox, dataset.id  # delete() sets the pk to None
    try:
        with folder_lock(dataset_dir(sandbox, dataset_id), wait=False) as folder:
            # durable: the files go after the commit, never under a transaction that could
            # still roll the rows back
            with transaction.atomic(durable=True):
                now = timezone.now()
                batches = Batch.objects.filter(dataset_id=dataset_id)
                batches.filter(status=BatchStatus.LOADING).update(
                    status=BatchStatus.FAILED, failure_reason=DELETED_WITH_DATASET,
                    completed_at=now, updated_at=now)
                if batches.filter(status=BatchStatus.PROCESSING).exists():
                    raise _problem(DATASET_BUSY.format(id=dataset_id))
                batch_ids = list(batches.values_list("id", flat=True))
                in_snapshot = (dataset.profile_enabled
                               and batches.filter(status=BatchStatus.SUCCESS).exists())
                dataset.delete()
                if in_snapshot:
                    # the time of the commit: a build started after it reads the catalog
                    # without the dataset, and makes this one unnecessary
                    transaction.on_commit(lambda: snapshot_rebuild.delay(
                        sandbox, timezone.now().isoformat()), robust=True)
            shutil.rmtree(folder, ignore_errors=True)
    except FolderBusy:
        raise _problem(DATASET_BUSY.format(id=dataset_id)) from None
    for batch_id in batch_ids:
        shutil.rmtree(upload_dir(sandbox, batch_id), ignore_errors=True)
    logger.info("dataset %s of %s deleted with %d batches", dataset_id, sandbox, len(batch_ids))


# --- export jobs ---------------------------------------------------------------------------

def _timestamp(value: Any, field: str) -> str:
    if not isinstance(value, str) or xdm.parse_datetime(value) is None:
        raise errors.invalid(errors.FIELD_INVALID.format(field=field, reason=TIMESTAMP_INVALID))
    return value


def _fields(value: Any, field: str, tree: xdm.Tree | None) -> str:
    if not isinstance(value, str) or not value.strip():
        raise errors.invalid(errors.FIELD_INVALID.format(
            field=field, reason="comma-separated dot paths are needed"))
    paths = [part.strip() for part in value.split(",") if part.strip()]
    if tree is not None:
        for path in paths:
            sub: xdm.Tree | None = tree
            for part in path.split("."):
                sub = sub.get("fields", {}).get(part) if sub and sub["type"] == "object" else None
            if sub is None:
                raise errors.invalid(errors.FIELD_INVALID.format(
                    field=field, reason=FIELD_UNKNOWN.format(path=path)))
    return ",".join(paths)


def _object(body: dict[str, Any], name: str) -> dict[str, Any]:
    value = body.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise errors.invalid(errors.FIELD_INVALID.format(field=name,
                                                         reason="an object is needed"))
    return value


def export_request_read(*, sandbox: str, body: dict[str, Any]) -> tuple[dict[str, Any], Dataset]:
    """The normalized request (what the job echoes and the task reads) and the destination."""
    request: dict[str, Any] = {}
    if "fields" in body:
        request["fields"] = _fields(body["fields"], "fields",
                                    union_tree(sandbox, XdmClass.PROFILE))
    policy = _object(body, "mergePolicy")
    if policy:
        try:
            policy_id = uuid.UUID(str(policy.get("id")))
        except ValueError:
            policy_id = None
        if policy_id is None or not MergePolicy.objects.filter(sandbox=sandbox,
                                                               id=policy_id).exists():
            raise errors.invalid(errors.MERGE_POLICY_NOT_FOUND.format(id=policy.get("id")))
        request["mergePolicy"] = {"id": str(policy_id), "version": policy.get("version", 1)}
    filters = _object(body, "filter")
    clean: dict[str, Any] = {}
    if "segments" in filters:
        segments = filters["segments"]
        if not isinstance(segments, list) or not segments:
            raise errors.invalid(errors.FIELD_INVALID.format(
                field="filter.segments", reason="a non-empty array is needed"))
        clean["segments"] = []
        for item in segments:
            if not isinstance(item, dict) or not isinstance(item.get("segmentId"), str):
                raise errors.invalid(errors.FIELD_REQUIRED.format(
                    field="filter.segments[].segmentId"))
            namespace = item.get("segmentNs", SEGMENT_NAMESPACE)
            statuses = item.get("status", DEFAULT_STATUSES)
            if not isinstance(statuses, list) or not statuses or any(
                    s not in MEMBERSHIP_STATUSES for s in statuses):
                raise errors.invalid(errors.FIELD_INVALID.format(
                    field="filter.segments[].status",
                    reason="a list of " + ", ".join(MEMBERSHIP_STATUSES) + " is needed"))
            if namespace == SEGMENT_NAMESPACE:
                _definitions(sandbox, [item["segmentId"]])
            clean["segments"].append({"segmentId": item["segmentId"], "segmentNs": namespace,
                                      "status": list(statuses)})
    for name in ("fromIngestTimestamp", "fromTimestamp"):
        if name in filters:
            clean["fromIngestTimestamp"] = _timestamp(filters[name], f"filter.{name}")
    window = filters.get("segmentQualificationTime")
    if window is not None:
        if not isinstance(window, dict):
            raise errors.invalid(errors.FIELD_INVALID.format(
                field="filter.segmentQualificationTime", reason="an object is needed"))
        clean["segmentQualificationTime"] = {
            key: _timestamp(window[key], f"filter.segmentQualificationTime.{key}")
            for key in ("startTime", "endTime") if key in window}
    if "emptyProfiles" in filters:
        if not isinstance(filters["emptyProfiles"], bool):
            raise errors.invalid(errors.FIELD_INVALID.format(
                field="filter.emptyProfiles", reason="true or false is needed"))
        clean["emptyProfiles"] = filters["emptyProfiles"]
    if clean:
        request["filter"] = clean
    additional = _object(body, "additionalFields")
    if additional:
        events = additional.get("eventList")
        if not isinstance(events, dict):
            raise errors.invalid(errors.FIELD_INVALID.format(
                field="additionalFields.eventList", reason="an object is needed"))
        event_list: dict[str, Any] = {}
        if "fields" in events:
            event_tree = union_tree(sandbox, XdmClass.EVENT)
            event_tree["fields"].setdefault("timestamp", {"type": "date-time"})
            event_list["fields"] = _fields(events["fields"], "additionalFields.eventList.fields",
                                           event_tree)
        event_filter = events.get("filter") or {}
        if not isinstance(event_filter, dict):
            raise errors.invalid(errors.FIELD_INVALID.format(
                field="additionalFields.eventList.filter", reason="an object is needed"))
        window_events = {key: _timestamp(event_filter[key],
                                         f"additionalFields.eventList.filter.{key}")
                         for key in ("fromIngestTimestamp", "toIngestTimestamp")
                         if key in event_filter}
        if window_events:
            event_list["filter"] = window_events
        request["additionalFields"] = {"eventList": event_list}
    evaluation = _object(body, "evaluationInfo")
    if "segmentation" in evaluation:
        if not isinstance(evaluation["segmentation"], bool):
            raise errors.invalid(errors.FIELD_INVALID.format(
                field="evaluationInfo.segmentation", reason="true or false is needed"))
        request["evaluationInfo"] = {"segmentation": evaluation["segmentation"]}
    destination = _object(body, "destination")
    dataset_id = destination.get("datasetId", destination.get("dataSetId"))
    if not isinstance(dataset_id, str) or not dataset_id:
        raise errors.invalid(errors.FIELD_REQUIRED.format(field="destination.datasetId"))
    if destination.get("segmentPerBatch", False) not in (False, None):
        raise errors.invalid(errors.FIELD_INVALID.format(
            field="destination.segmentPerBatch", reason="only false is supported"))
    request["destination"] = {"datasetId": dataset_id, "segmentPerBatch": False}
    schema = _object(body, "schema")
    if schema.get("name") not in PROFILE_SCHEMA_NAMES:
        raise errors.invalid(errors.FIELD_INVALID.format(
            field="schema.name", reason="_xdm.context.profile is needed"))
    request["schema"] = {"name": PROFILE_SCHEMA_NAMES[0]}
    dataset = Dataset.objects.in_sandbox(sandbox).filter(id=dataset_id).first()
    return request, dataset  # type: ignore[return-value]


@transaction.atomic
def export_job_create(*, sandbox: str, client: ApiClient, body: dict[str, Any],
                      request_id: str) -> ExportJob:
    """A NEW export job. An unknown destination is accepted here and fails the job, as AEP's
    Catalog lookup happens in the job (its errors arrive on the job, spec §5.2)."""
    from engine.tasks_jobs import export_job_run

    request, dataset = export_request_read(sandbox=sandbox, body=body)
    request["requestId"] = request_id
    caps.jobs_admit(client)
    job = ExportJob.objects.create(sandbox=sandbox, client=client, request=request,
                                   destination=dataset)
    _enqueue(export_job_run, job.pk)
    return job


def export_job_get(*, sandbox: str, job_id: str) -> ExportJob:
    key = natural(job_id, MAX_ID)
    job = ExportJob.objects.filter(sandbox=sandbox, pk=key).first() if key is not None else None
    if job is None:
        raise errors.not_found(EXPORT_JOB_NOT_FOUND.format(id=job_id))
    return job


def export_job_cancel(*, job: ExportJob) -> None:
    _cancel(job)


def parse_rfc3339(value: str) -> datetime:
    parsed = xdm.parse_datetime(value)
    if parsed is None:
        raise ValueError(value)
    return parsed
