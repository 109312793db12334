"""Every write of the Batch Ingestion API (/data/foundation/import): create a batch, receive its
files, COMPLETE or ABORT it.

A batch is ``loading`` while files arrive (into engine.storage.upload_dir, never the dataset's
folders); COMPLETE makes it ``processing`` and enqueues engine.tasks_jobs.batch_process after
the commit, which ingests the files into the same row (engine.batches). Refusals are Catalog's
problem details, before anything is stored. Status changes are conditional updates
(``status = loading``), so an upload finishing as the batch is completed or aborted either lands
before it or is refused, never half in.
"""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from engine.api import errors
from engine.api.auth import upload_too_large
from engine.models import ApiClient, Batch, BatchStatus, Dataset
from engine.queue import send_on_commit
from engine.storage import partial_dir, upload_dir

INPUT_FORMATS = ("json", "parquet", "csv")
# CSV options of AEP's inputFormat the engine's reader has fixed: comma, double quote, header.
CSV_DEFAULTS = {"delimiter": ",", "quote": '"', "header": "true", "charset": "UTF-8"}
ACTIONS = ("COMPLETE", "ABORT")
ABORTED = "aborted"
ABANDONED = "abandoned: neither completed nor aborted in time"
CHUNK = 1024 * 1024
MAX_NAME_BYTES = 255  # a file name on every filesystem we run on

DATASET_UNKNOWN = "Dataset {id} is not found in this sandbox."
DATASET_NOT_PROFILE = ("Dataset {id} is not enabled for Profile: batches are ingested into "
                       "datasets of the XDM Individual Profile or ExperienceEvent class created "
                       'with tags.unifiedProfile ["enabled:true"].')
FORMAT_INVALID = "The field inputFormat.format is not valid: one of json, parquet, csv is needed."
FORMAT_OPTION_UNSUPPORTED = ("The field inputFormat.{name} is not supported: the engine reads "
                             'CSV separated by "," and quoted by \'"\', in UTF-8, with a header.')
BATCH_NOT_FOUND = "Batch {id} is not found."
BATCH_NOT_LOADING = ("Batch {id} is {status}: files are added to, and COMPLETE or ABORT sent "
                     "for, a batch that is loading.")
BATCH_OTHER_DATASET = "Batch {id} is a batch of another dataset, not of {dataset}."
BATCH_NO_FILES = "Batch {id} has no files: upload at least one before COMPLETE."
FILE_NAME_INVALID = ("The file name {name!r} is not valid: a name without path separators "
                     "or '..' is needed.")
ACTION_INVALID = "The action must be COMPLETE or ABORT."


class Readable(Protocol):
    """An HttpRequest, read as a stream."""

    def read(self, size: int, /) -> bytes: ...


def _bad(detail: str) -> errors.ApiError:
    return errors.problem_error(errors.BAD_REQUEST, "BadRequestError", detail)


def _input_format(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or not isinstance(value.get("format"), str):
        raise _bad(FORMAT_INVALID)
    fmt = value["format"].lower()
    if fmt not in INPUT_FORMATS:
        raise _bad(FORMAT_INVALID)
    clean: dict[str, Any] = {"format": fmt}
    if fmt == "json":
        multi_line = value.get("isMultiLineJson", False)
        if not isinstance(multi_line, bool):
            raise _bad(errors.FIELD_INVALID.format(field="inputFormat.isMultiLineJson",
                                                   reason="true or false is needed"))
        clean["isMultiLineJson"] = multi_line
    for name, default in CSV_DEFAULTS.items():
        if name in value:
            if str(value[name]).lower() != default.lower():
                raise _bad(FORMAT_OPTION_UNSUPPORTED.format(name=name))
            clean[name] = default  # as Catalog types it: header is the string "true"
    return clean


@transaction.atomic
def batch_create(*, sandbox: str, client: ApiClient, body: dict[str, Any]) -> Batch:
    """A ``loading`` batch of a profile-enabled dataset of the sandbox. Another sandbox's
    dataset is as unknown as one that does not exist."""
    dataset_id = body.get("datasetId")
    if not isinstance(dataset_id, str) or not dataset_id:
        raise _bad(errors.FIELD_REQUIRED.format(field="datasetId"))
    dataset = Dataset.objects.in_sandbox(sandbox).filter(id=dataset_id).first()
    if dataset is None:
        raise _bad(DATASET_UNKNOWN.format(id=dataset_id))
    if not dataset.profile_enabled or dataset.union_persisting:
        raise _bad(DATASET_NOT_PROFILE.format(id=dataset_id))
    return Batch.objects.create(dataset=dataset, client=client,
                                input_format=_input_format(body.get("inputFormat")))


def batch_get(*, sandbox: str, batch_id: str) -> Batch:
    batch = (Batch.objects.select_related("dataset")
             .filter(dataset__sandbox=sandbox, id=batch_id).first())
    if batch is None:
        raise errors.problem_error(errors.NOT_FOUND, "NotFoundError",
                                   BATCH_NOT_FOUND.format(id=batch_id))
    return batch


def _not_loading(batch: Batch) -> errors.ApiError:
    status = Batch.objects.filter(pk=batch.pk).values_list("status", flat=True).first()
    if status is None:  # deleted with its dataset meanwhile
        return errors.problem_error(errors.NOT_FOUND, "NotFoundError",
                                    BATCH_NOT_FOUND.format(id=batch.id))
    return _bad(BATCH_NOT_LOADING.format(id=batch.id, status=status))


def _to_loading(batch: Batch, **values: Any) -> None:
    """The conditional update every change of a loading batch goes through (see the module)."""
    if not Batch.objects.filter(pk=batch.pk, status=BatchStatus.LOADING).update(
            updated_at=timezone.now(), **values):
        raise _not_loading(batch)


def _file_name_check(name: str) -> None:
    if (not name or name == "." or ".." in name or any(c in name for c in "/\\")
            or any(ord(c) < 32 for c in name) or len(name.encode()) > MAX_NAME_BYTES):
        raise _bad(FILE_NAME_INVALID.format(name=name))


def batch_file_upload(*, sandbox: str, batch_id: str, dataset_id: str, name: str,
                      stream: Readable) -> None:
    """Stream one file into a loading batch, a chunk at a time, into a partial file that is
    renamed into the batch's folder once whole (the same name again replaces it)."""
    _file_name_check(name)
    batch = batch_get(sandbox=sandbox, batch_id=batch_id)
    if batch.dataset_id != dataset_id:
        raise _bad(BATCH_OTHER_DATASET.format(id=batch.id, dataset=dataset_id))
    if batch.status != BatchStatus.LOADING:
        raise _not_loading(batch)
    partial = partial_dir(sandbox) / secrets.token_hex(16)
    partial.parent.mkdir(parents=True, exist_ok=True)
    try:
        written = 0
        with partial.open("wb") as handle:
            while chunk := stream.read(CHUNK):
                written += len(chunk)
                if written > settings.ENGINE_MAX_UPLOAD_BYTES:
                    raise upload_too_large()
                handle.write(chunk)
        folder = upload_dir(sandbox, batch.id)
        with transaction.atomic():
            _to_loading(batch)  # still loading: COMPLETE waits for this commit, or came first
            # made here, not before: a batch deleted meanwhile gets no folder back
            folder.mkdir(parents=True, exist_ok=True)
            os.replace(partial, folder / name)
    finally:
        partial.unlink(missing_ok=True)


@transaction.atomic
def batch_complete(*, sandbox: str, batch_id: str) -> Batch:
    """``processing``, with the uploaded files listed on the row, and its task enqueued after
    the commit. A batch without files stays loading."""
    from engine.tasks_jobs import batch_process

    batch = batch_get(sandbox=sandbox, batch_id=batch_id)
    _to_loading(batch, status=BatchStatus.PROCESSING)
    folder = upload_dir(sandbox, batch.id)
    files = sorted(folder.iterdir()) if folder.is_dir() else []
    if not files:
        raise _bad(BATCH_NO_FILES.format(id=batch.id))  # rolls the status back
    batch.refresh_from_db()
    batch.source_files = [path.name for path in files]
    batch.size = sum(path.stat().st_size for path in files)
    batch.save(update_fields=["source_files", "size", "updated_at"])
    send_on_commit(lambda: batch_process.delay(batch.id), f"batch {batch.id}")
    return batch


def batch_abort(*, sandbox: str, batch_id: str) -> Batch:
    """``failed`` for "aborted", and its files gone (an upload still arriving is refused)."""
    batch = batch_get(sandbox=sandbox, batch_id=batch_id)
    with transaction.atomic():
        _to_loading(batch, status=BatchStatus.FAILED, failure_reason=ABORTED,
                    completed_at=timezone.now())
    shutil.rmtree(upload_dir(sandbox, batch.id), ignore_errors=True)
    batch.refresh_from_db()
    return batch


def batch_action(*, sandbox: str, batch_id: str, action: str | None) -> Batch:
    if action == "COMPLETE":
        return batch_complete(sandbox=sandbox, batch_id=batch_id)
    if action == "ABORT":
        return batch_abort(sandbox=sandbox, batch_id=batch_id)
    raise _bad(ACTION_INVALID)


@dataclass(frozen=True)
class Sweep:
    abandoned: int  # loading batches failed
    resent: int  # processing batches sent to a worker again


def batches_sweep(*, now: datetime | None = None) -> Sweep:
    """Batches nobody will finish: one left loading for longer than ENGINE_BATCH_LOADING_HOURS
    (a client that never sent COMPLETE or ABORT) is failed and its uploads dropped; one
    processing for longer than ENGINE_BATCH_PROCESSING_MINUTES without a change (its worker
    died) is sent to a worker again, at most once per such period — a second run waits for
    the dataset's lock and leaves a batch the first run finished as it is (engine.ingest)."""
    from engine.tasks_jobs import batch_process

    now = now or timezone.now()
    cutoff = now - timedelta(hours=settings.ENGINE_BATCH_LOADING_HOURS)
    abandoned = 0
    for batch in Batch.objects.select_related("dataset").filter(
            status=BatchStatus.LOADING, updated_at__lt=cutoff):
        if Batch.objects.filter(pk=batch.pk, status=BatchStatus.LOADING,
                                updated_at__lt=cutoff).update(
                status=BatchStatus.FAILED, failure_reason=ABANDONED, completed_at=now,
                updated_at=now):
            shutil.rmtree(upload_dir(batch.dataset.sandbox, batch.id), ignore_errors=True)
            abandoned += 1
    stalled = now - timedelta(minutes=settings.ENGINE_BATCH_PROCESSING_MINUTES)
    resent = 0
    for batch_id in Batch.objects.filter(status=BatchStatus.PROCESSING,
                                         updated_at__lt=stalled).values_list("id", flat=True):
        if Batch.objects.filter(pk=batch_id, status=BatchStatus.PROCESSING,
                                updated_at__lt=stalled).update(updated_at=now):
            batch_process.delay(batch_id)
            resent += 1
    return Sweep(abandoned, resent)
