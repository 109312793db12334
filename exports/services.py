"""Every write and API read of the exports app: export datasets (Catalog), export jobs (started
now, or once a segment job succeeds), and the audience data of a finished export (Data Access),
read through the connection's aep client only.

Downloads stream from the API through our server: the browser never sees a credential, a
token or a path of the engine's store, only our own URLs naming a job and a file of its batch.
"""

from __future__ import annotations

import copy
import csv
import io
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from typing import Any, TypeVar

import pyarrow.parquet as pq
from django.db import transaction
from django.utils import timezone

from aep import AEPClient, AEPError, Dataset
from aep.client import PROFILE_UNION
from connections.models import Connection
from connections.services import connection_client
from core.errors import RefusedError
from core.services import audit_record
from exports import flatten, reconcile
from exports.models import ExportPlan, KnownDataset, PlanState
from jobs.models import Job, JobKind, JobStatus
from jobs.services import job_create
from segments.models import Segment
from segments.services import SegmentError, segments_run

PROFILE_UNION_ID = PROFILE_UNION  # the union schema an export dataset is made on
PROFILE_SCHEMA = "_xdm.context.profile"
DATA_ACCESS = "/data/foundation/export"
PREVIEW_ROWS = 20
CHUNK = 1 << 16

# User-facing texts (tests assert them)
DATASETS_UNAVAILABLE = "Could not read the datasets of {connection}: {message}"
DATASET_REFUSED = "{connection} did not create the dataset: {message}"
NO_SEGMENTS = "Pick at least one saved segment to export."
NOT_FINISHED = "The export has not succeeded, so there is no audience data to read yet."
NO_BATCH = "The export finished without a batch to read."
FILE_UNKNOWN = "That file is not part of this export's batch."
READ_FAILED = "{connection} could not send the file: {message}"
PLAN_ABANDONED = "The export did not start: the segment job {status}."


class ExportError(RefusedError):
    """A refused action, with the message for the person who asked."""


# --- datasets -------------------------------------------------------------------------------

def is_export_dataset(dataset: Dataset) -> bool:
    """A dataset an export can write to: on the profile union schema, not enabled for Profile
    (spec §7.1)."""
    return dataset.schema_ref == PROFILE_UNION_ID and not dataset.profile_enabled


def export_datasets(*, connection: Connection, sandbox: str) -> list[Dataset]:
    """The connection's datasets that exports can write to, newest first (one Catalog walk);
    their names are kept for the lists of exports (KnownDataset)."""
    try:
        with connection_client(connection, sandbox=sandbox) as client:
            found = [dataset for dataset in client.datasets() if is_export_dataset(dataset)]
    except AEPError as error:
        raise ExportError(DATASETS_UNAVAILABLE.format(connection=connection.name,
                                                      message=error.message)) from error
    _remember_datasets(connection, sandbox, {dataset.id: dataset.name for dataset in found})
    return found


def _remember_datasets(connection: Connection, sandbox: str, names: dict[str, str]) -> None:
    now = timezone.now()
    KnownDataset.objects.bulk_create(
        [KnownDataset(connection=connection, sandbox=sandbox, dataset_id=dataset_id,
                      name=(name or dataset_id)[:200], seen_at=now)
         for dataset_id, name in names.items()],
        update_conflicts=True, unique_fields=["connection", "sandbox", "dataset_id"],
        update_fields=["name", "seen_at"])


def dataset_names(jobs: list[Job]) -> dict[int, str]:
    """Job id → the name of its destination dataset, as last read from the platform (our
    database only; a dataset never listed here has no name yet)."""
    wanted = {job.pk: (job.connection_id, job.sandbox, destination_id(job)) for job in jobs}
    known = KnownDataset.objects.filter(
        dataset_id__in={key[2] for key in wanted.values() if key[2]},
        connection_id__in={key[0] for key in wanted.values()})
    names = {(row.connection_id, row.sandbox, row.dataset_id): row.name for row in known}
    return {pk: names[key] for pk, key in wanted.items() if key in names}


def destination_id(job: Job) -> str:
    destination = (job.request or {}).get("destination") or {}
    return str(destination.get("datasetId") or destination.get("dataSetId") or "")


def dataset_create(*, connection: Connection, sandbox: str, name: str, description: str,
                   actor: Any) -> str:
    """A new export dataset on the profile union schema, through the Catalog API; its id."""
    try:
        with connection_client(connection, sandbox=sandbox) as client:
            dataset_id = client.create_dataset(name=name, description=description,
                                               schema_ref=PROFILE_UNION_ID)
    except AEPError as error:
        raise ExportError(DATASET_REFUSED.format(connection=connection.name,
                                                 message=error.message),
                          field="name") from error
    _remember_datasets(connection, sandbox, {dataset_id: name})
    audit_record(actor=actor, action="dataset.create", obj=connection,
                 after={"dataset_id": dataset_id, "name": name, "description": description,
                        "sandbox": sandbox})
    return dataset_id


# --- the export request ---------------------------------------------------------------------

def _rfc3339(moment: datetime) -> str:
    """RFC 3339 in UTC; a naive time is taken as UTC."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def export_body(*, segment_ids: list[str], dataset_id: str, fields: list[str] | None = None,
                merge_policy: tuple[str, int | None] | None = None,
                from_ingest: datetime | None = None, include_events: bool = False,
                event_fields: list[str] | None = None,
                events_from: datetime | None = None,
                empty_profiles: bool = True) -> dict[str, Any]:
    """The POST /export/jobs body (spec §5.1) for the form's choices. `empty_profiles` is
    on unless asked otherwise: the audience exported is the audience counted, members known
    only from their events included (AEP's own default, for API callers, is off); the body
    says it either way, so the job's row tells which it was."""
    body: dict[str, Any] = {
        "filter": {"segments": [{"segmentId": sid, "segmentNs": "ups",
                                 "status": ["realized", "existing"]} for sid in segment_ids],
                   "emptyProfiles": empty_profiles},
        "destination": {"datasetId": dataset_id, "segmentPerBatch": False},
        "schema": {"name": PROFILE_SCHEMA},
    }
    if fields:
        body["fields"] = ",".join(fields)
    if merge_policy:
        policy_id, version = merge_policy
        body["mergePolicy"] = {"id": policy_id, **({"version": version} if version else {})}
    if from_ingest is not None:
        body["filter"]["fromIngestTimestamp"] = _rfc3339(from_ingest)
    if include_events:
        event_list: dict[str, Any] = {}
        if event_fields:
            event_list["fields"] = ",".join(event_fields)
        if events_from is not None:
            event_list["filter"] = {"fromIngestTimestamp": _rfc3339(events_from)}
        body["additionalFields"] = {"eventList": event_list}
    return body


def export_label(segments: list[Segment], dataset_name: str) -> str:
    names = segments[0].name if len(segments) == 1 else (
        f"{segments[0].name} and {len(segments) - 1} more")
    return f"{names} → {dataset_name}"[:200]


def _check_segments(segments: list[Segment]) -> None:
    if not segments or any(not segment.remote_id for segment in segments):
        raise ExportError(NO_SEGMENTS, field="segments")


def export_start(*, connection: Connection, sandbox: str, segments: list[Segment],
                 body: dict[str, Any], label: str, actor: Any) -> Job:
    """An export job of the segments' current members, sent by the jobs app's worker."""
    _check_segments(segments)
    with transaction.atomic():
        job = job_create(kind=JobKind.EXPORT, connection=connection, sandbox=sandbox,
                         request=body, label=label, created_by=actor,
                         reuse_queued=True)  # pressed again: the same job, not a second
        audit_record(actor=actor, action="export.start", obj=job, after={"request": body})
    return job


def export_include_empty(*, job: Job, actor: Any) -> Job:
    """“Include them”: the same export again, members known only from their events included
    (filter.emptyProfiles), into the same dataset, under the same label."""
    ids = reconcile.segment_ids(job)
    segments = list(Segment.objects.in_sandbox(job.connection, job.sandbox)
                    .filter(remote_id__in=ids))
    body = copy.deepcopy(job.request or {})
    body.setdefault("filter", {})["emptyProfiles"] = True
    return export_start(connection=job.connection, sandbox=job.sandbox, segments=segments,
                        body=body, label=job.label, actor=actor)


@transaction.atomic
def export_plan_create(*, segments: list[Segment], body: dict[str, Any], label: str,
                       actor: Any) -> ExportPlan:
    """Segment → export in one click: a segment job for the segments now, and a plan that
    starts the export (linked to it as its parent) once that job succeeds."""
    _check_segments(segments)
    try:
        # a segment job of its own: the plan waits for it (a queued one may have plans)
        parent = segments_run(segments=segments, actor=actor, reuse_queued=False)[0]
    except SegmentError as error:
        raise ExportError(error.message, field="segments") from error
    plan = ExportPlan.objects.create(parent=parent, body=body, label=label, created_by=actor)
    audit_record(actor=actor, action="export.plan", obj=parent,
                 after={"request": body, "label": label})
    return plan


def export_plan_advance(*, parent: Job) -> Job | None:
    """Start the export a plan waits for, if its segment job has succeeded; give the plan up if
    that job failed, was cancelled or timed out. Idempotent: the plan is claimed with a
    conditional update inside the transaction that creates the job, so however many times
    this runs (signal, resume), one export job is created."""
    plan = ExportPlan.objects.filter(parent=parent, state=PlanState.WAITING).first()
    if plan is None or not parent.is_finished:
        return None
    with transaction.atomic():
        if parent.status != JobStatus.SUCCEEDED:
            ExportPlan.objects.filter(pk=plan.pk, state=PlanState.WAITING).update(
                state=PlanState.ABANDONED)
            return None
        if not ExportPlan.objects.filter(pk=plan.pk, state=PlanState.WAITING).update(
                state=PlanState.STARTED):
            return None  # someone else started it
        job = job_create(kind=JobKind.EXPORT, connection=parent.connection,
                         sandbox=parent.sandbox, request=plan.body, label=plan.label,
                         created_by=plan.created_by, parent=parent)
        ExportPlan.objects.filter(pk=plan.pk).update(export_job=job)
        audit_record(actor=plan.created_by, action="export.start", obj=job,
                     after={"request": plan.body, "parent": parent.pk})
    return job


def export_plans_resume() -> int:
    """Start the exports whose segment job finished while nobody was listening (a worker died
    between the job's last event and our receiver). Cheap: waiting plans are few."""
    started = 0
    for plan in ExportPlan.objects.filter(state=PlanState.WAITING).select_related("parent"):
        if plan.parent.is_finished and export_plan_advance(parent=plan.parent) is not None:
            started += 1
    return started


# --- audience data ----------------------------------------------------------------------------

@dataclass(frozen=True)
class ExportFile:
    """One downloadable file of an export's batch."""

    file_id: str  # the dataSetFileId
    name: str
    size: int | None
    records: int | None

    @property
    def key(self) -> str:
        """How our URLs name it: the dataSetFileId and the file name."""
        return f"{self.file_id}/{self.name}"


def _batch_id(job: Job) -> str:
    if job.kind != JobKind.EXPORT or job.status != JobStatus.SUCCEEDED:
        raise ExportError(NOT_FINISHED)
    batch_id = (job.metrics or {}).get("batchId")
    if not batch_id:
        raise ExportError(NO_BATCH)
    return str(batch_id)


def _files(client: AEPClient, batch_id: str) -> list[ExportFile]:
    """Every file of the batch: its dataSetFileIds (with their row counts), each listed for
    the file names it holds, following nested ids (directories, spec §7.3)."""
    found = []
    pending = [(item.id, item.records, item.size) for item in client.batch_files(batch_id)]
    seen: set[str] = set()
    while pending:
        file_id, records, size = pending.pop(0)
        if file_id in seen:
            continue
        seen.add(file_id)
        for entry in client.file_listing(file_id):
            if entry.name:
                found.append(ExportFile(file_id=file_id, name=entry.name,
                                        size=entry.length if entry.length is not None else size,
                                        records=records))
            elif entry.file_id:
                pending.append((entry.file_id, None, None))
    return found


def export_files(*, job: Job) -> list[ExportFile]:
    """The files of a succeeded export's batch: name, size and rows (Data Access)."""
    batch_id = _batch_id(job)
    try:
        with connection_client(job.connection, sandbox=job.sandbox) as client:
            return _files(client, batch_id)
    except AEPError as error:
        raise ExportError(READ_FAILED.format(connection=job.connection.name,
                                             message=error.message)) from error


def _export_file(client: AEPClient, job: Job, file_id: str, name: str) -> ExportFile:
    """The file if it belongs to the job's batch (never any other id or path we are sent)."""
    for item in _files(client, _batch_id(job)):
        if item.file_id == file_id and item.name == name:
            return item
    raise ExportError(FILE_UNKNOWN)


@dataclass(frozen=True)
class Preview:
    columns: list[str]
    rows: list[list[str]]
    total: int | None


def _spool(client: AEPClient, file_id: str, name: str) -> Any:
    """The file, downloaded into a temporary file (a Parquet reader needs to seek)."""
    spool = tempfile.SpooledTemporaryFile(max_size=32 << 20)  # noqa: SIM115 - caller closes
    client.stream_download(file_id, name, spool)
    spool.seek(0)
    return spool


def _flat_columns(parquet: pq.ParquetFile) -> list[flatten.Column]:
    return flatten.columns(parquet.schema_arrow, flatten.map_keys(parquet))


def export_preview(*, job: Job, file_id: str, name: str, limit: int = PREVIEW_ROWS) -> Preview:
    """The first rows of one exported Parquet file, read here with pyarrow, one column per leaf
    field as the CSV has them (exports.flatten)."""
    try:
        with connection_client(job.connection, sandbox=job.sandbox) as client:
            item = _export_file(client, job, file_id, name)
            with _spool(client, item.file_id, item.name) as spool:
                parquet = pq.ParquetFile(spool)
                flat = _flat_columns(parquet)
                rows = list(islice(flatten.rows(parquet.iter_batches(batch_size=limit), flat),
                                   limit))
                return Preview([column.header for column in flat], rows,
                               parquet.metadata.num_rows)
    except AEPError as error:
        raise ExportError(READ_FAILED.format(connection=job.connection.name,
                                             message=error.message)) from error


@dataclass
class Download:
    """An open download: its file name, size when known, and the byte chunks (the iterator
    closes the API response and the client when exhausted or closed)."""

    filename: str
    size: int | None
    chunks: Iterator[bytes]


def _close_after(chunks: Iterator[bytes], *closers: Any) -> Iterator[bytes]:
    try:
        yield from chunks
    finally:
        for thing in closers:
            thing.close()


T = TypeVar("T")


def _open(job: Job, file_id: str, name: str,
          read: Callable[[AEPClient, ExportFile], T]) -> tuple[AEPClient, ExportFile, T]:
    """A client, the job's file and what `read` opened of it; the client is closed again
    when any of it fails (otherwise the download's iterator closes it)."""
    client = connection_client(job.connection, sandbox=job.sandbox)
    try:
        item = _export_file(client, job, file_id, name)
        return client, item, read(client, item)
    except AEPError as error:
        client.close()
        raise ExportError(READ_FAILED.format(connection=job.connection.name,
                                             message=error.message)) from error
    except ExportError:
        client.close()
        raise


def export_download(*, job: Job, file_id: str, name: str, actor: Any) -> Download:
    """The file's bytes as they come from the API, for a StreamingHttpResponse."""
    client, item, response = _open(job, file_id, name, lambda client, item: client.request(
        "GET", f"{DATA_ACCESS}/files/{item.file_id}", params={"path": item.name}, stream=True))
    audit_record(actor=actor, action="export.download", obj=job,
                 after={"file": item.name, "file_id": item.file_id, "format": "parquet"})
    return Download(item.name, item.size,
                    _close_after(response.iter_bytes(CHUNK), response, client))


def _csv_rows(spool: Any, client: AEPClient) -> Iterator[bytes]:
    try:
        parquet = pq.ParquetFile(spool)
        flat = _flat_columns(parquet)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow([column.header for column in flat])
        for batch in parquet.iter_batches(batch_size=2000):
            writer.writerows(flatten.rows([batch], flat))
            yield out.getvalue().encode()
            out.seek(0)
            out.truncate()
        if out.getvalue():
            yield out.getvalue().encode()
    finally:
        spool.close()
        client.close()


def export_csv(*, job: Job, file_id: str, name: str, actor: Any) -> Download:
    """The same rows as CSV, converted here batch by batch, one column per leaf field
    (exports.flatten)."""
    client, item, spool = _open(job, file_id, name,
                                lambda client, item: _spool(client, item.file_id, item.name))
    audit_record(actor=actor, action="export.download", obj=job,
                 after={"file": item.name, "file_id": item.file_id, "format": "csv"})
    filename = item.name.rsplit(".", 1)[0] + ".csv"
    return Download(filename, None, _csv_rows(spool, client))

