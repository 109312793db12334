"""The profile store of a connection, for admins (the "Profile data" page): its datasets and
their batches, the store's figures, its merge policies — read through the Catalog, Profile
and Segmentation APIs — and new data sent in through Batch Ingestion as an ingestion job.

Everything goes through the `aep` client, so the page works the same on the built-in engine
and on Adobe Experience Platform (rule 1 of ARCHITECTURE.md: no dashboard module imports the
engine). A file is kept in jobs.services.uploads_dir() until the job's submit has sent it.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils.dateparse import parse_datetime

from aep import AEPError, Batch, Dataset, MergePolicy
from aep.client import EVENT_CLASS, PROFILE_CLASS, PROFILE_UNION
from connections.models import Connection
from connections.services import connection_client
from core.errors import RefusedError
from core.services import audit_record
from jobs.models import Job, JobKind
from jobs.services import job_create, uploads_dir

CLASSES = {"profile": PROFILE_CLASS, "event": EVENT_CLASS}
CLASS_LABELS = {PROFILE_CLASS: "Profile records", EVENT_CLASS: "Experience events",
                PROFILE_UNION: "Exported audiences"}
FORMATS = {".json": "json", ".jsonl": "json", ".ndjson": "json", ".parquet": "parquet",
           ".csv": "csv"}
RECENT_BATCHES = 200  # the Catalog's newest batches read for the page (two pages)

STORE_UNAVAILABLE = "{connection} did not answer: {message}"
DATASET_REFUSED = "{connection} refused the dataset: {message}"
DELETE_REFUSED = "{connection} did not delete “{name}”: {message}"
FORMAT_UNKNOWN = ("{name} is not a file this page can send: use JSON Lines (.jsonl), a JSON "
                  "array (.json), Parquet (.parquet) or CSV (.csv); JSON and CSV may be "
                  "gzip-compressed (.jsonl.gz).")
FILE_EMPTY = "{name} is empty."
NAME_UNSAFE = "Give the file a name with letters or digits in it."


class DataError(RefusedError):
    """A refused action or an unreachable store, with the message for the person who asked."""


@dataclass(frozen=True)
class DatasetRow:
    dataset: Dataset
    batches: list[Batch] = field(default_factory=list)  # newest first

    @property
    def kind(self) -> str:
        """What its records are, in words."""
        return CLASS_LABELS.get(self.dataset.schema_ref or "", "Other data")

    @property
    def profile_enabled(self) -> bool:
        return self.dataset.profile_enabled

    @property
    def records(self) -> int:
        return sum(batch.records_written or 0 for batch in self.batches
                   if batch.status == "success")

    @property
    def last_batch(self) -> Batch | None:
        return self.batches[0] if self.batches else None

    @property
    def ingestable(self) -> bool:
        return self.dataset.profile_enabled and self.dataset.schema_ref in (PROFILE_CLASS,
                                                                            EVENT_CLASS)


@dataclass(frozen=True)
class Store:
    datasets: list[DatasetRow]
    figures: dict[str, Any]  # GET /previewsamplestatus: counts as numbers, "built" a datetime
    policies: list[MergePolicy]


def _number(value: Any) -> int | None:
    """Adobe sends the sample status counts as strings; both are read."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def store_read(*, connection: Connection, sandbox: str) -> Store:
    """The datasets (with their recent batches), the store's figures and merge policies."""
    try:
        with connection_client(connection, sandbox=sandbox) as client:
            datasets = list(client.datasets())
            batches: dict[str, list[Batch]] = {}
            for batch in client.batches(limit=100):
                batches.setdefault(batch.dataset_id or "", []).append(batch)
                if sum(map(len, batches.values())) >= RECENT_BATCHES:
                    break
            status = client.preview_sample_status()
            policies = client.merge_policies()
    except AEPError as error:
        raise DataError(STORE_UNAVAILABLE.format(connection=connection.name,
                                                 message=error.message)) from error
    rows = [DatasetRow(dataset, batches.get(dataset.id, [])) for dataset in datasets]
    # what feeds the profiles first, then the rest; newest first within each
    rows.sort(key=lambda row: (not row.ingestable, -(row.dataset.created or 0)))
    figures: dict[str, Any] = {key: _number(status.get(key)) for key in (
        "totalRows", "totalFragmentCount", "numRowsToRead")}
    built = status.get("lastSampledTimestamp")
    figures["built"] = parse_datetime(built) if isinstance(built, str) else None
    return Store(rows, figures, policies)


def dataset_create(*, connection: Connection, sandbox: str, name: str, kind: str,
                   actor: Any) -> str:
    """A new profile-enabled dataset of the class `kind` ("profile" or "event"); its id."""
    try:
        with connection_client(connection, sandbox=sandbox) as client:
            dataset_id = client.create_dataset(name=name, schema_ref=CLASSES[kind],
                                               profile_enabled=True)
    except AEPError as error:
        raise DataError(DATASET_REFUSED.format(connection=connection.name,
                                               message=error.message), field="name") from error
    audit_record(actor=actor, action="dataset.create", obj=connection,
                 after={"dataset_id": dataset_id, "name": name, "class": CLASSES[kind],
                        "sandbox": sandbox, "profile_enabled": True})
    return dataset_id


def dataset_delete(*, connection: Connection, sandbox: str, dataset_id: str, name: str,
                   actor: Any) -> None:
    """Delete a dataset with its batches; the platform rebuilds the profiles without them."""
    try:
        with connection_client(connection, sandbox=sandbox) as client:
            client.delete_dataset(dataset_id)
    except AEPError as error:
        raise DataError(DELETE_REFUSED.format(connection=connection.name, name=name,
                                              message=error.message)) from error
    audit_record(actor=actor, action="dataset.delete", obj=connection,
                 before={"dataset_id": dataset_id, "name": name, "sandbox": sandbox})


def file_format(name: str) -> str:
    """The Batch Ingestion inputFormat of a file, from its name (gzip-compressed JSON or CSV
    counts as its content); DataError if unknown."""
    suffixes = [suffix.lower() for suffix in Path(name).suffixes]
    if suffixes[-1:] == [".gz"]:
        suffixes = [s for s in suffixes[:-1] if s != ".parquet"]  # Parquet compresses itself
    found = FORMATS.get(suffixes[-1]) if suffixes else None
    if found is None:
        raise DataError(FORMAT_UNKNOWN.format(name=name), field="file")
    return found


def stored_name(name: str) -> str:
    """The file's name as kept and sent: letters, digits, dots, dashes and underscores (Adobe's
    own samples are called like "Profile test data.json.gz")."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).name).lstrip("._")[:150]
    if not safe:
        raise DataError(NAME_UNSAFE, field="file")
    return safe


def ingestion_start(*, connection: Connection, sandbox: str, dataset_id: str,
                    dataset_name: str, upload: UploadedFile, actor: Any) -> Job:
    """Keep the file and create the ingestion job that sends it (jobs.services submits it:
    a batch, the file, COMPLETE; then polls the batch until the platform has ingested it)."""
    fmt = file_format(upload.name or "")
    name = stored_name(upload.name or "")
    if not upload.size:
        raise DataError(FILE_EMPTY.format(name=name), field="file")
    folder = uuid.uuid4().hex
    path = uploads_dir() / folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        for chunk in upload.chunks():
            handle.write(chunk)
    with transaction.atomic():
        job = job_create(kind=JobKind.INGEST, connection=connection, sandbox=sandbox,
                         request={"datasetId": dataset_id, "datasetName": dataset_name,
                                  "format": fmt, "fileName": name, "size": upload.size,
                                  "upload": f"{folder}/{name}"},
                         label=f"{name} into {dataset_name}", created_by=actor)
        audit_record(actor=actor, action="dataset.ingest", obj=job,
                     after={"dataset_id": dataset_id, "file": name, "size": upload.size,
                            "sandbox": sandbox})
    return job


def recent_ingestions(*, connection: Connection, sandbox: str, limit: int = 10) -> list[Job]:
    return list(Job.objects.filter(connection=connection, sandbox=sandbox, kind=JobKind.INGEST)
                .select_related("connection", "created_by").order_by("-created_at")[:limit])
