"""The worker's half of the Batch Ingestion API: a completed batch's uploaded files become its
Parquet, then the sandbox's snapshot is rebuilt so estimates and previews see them.

The API (engine/api/services_ingestion.py) receives the files into the batch's upload folder
while it is ``loading``; COMPLETE lists them on the row (``source_files``), makes it
``processing`` and enqueues engine.tasks_jobs.batch_process, which calls batch_process here.
A worker claims the batch and beats its heartbeat while it loads (engine.runs); one whose
worker stopped is loaded again by another, or failed after ENGINE_JOB_MAX_REQUEUES tries.
"""

from __future__ import annotations

import logging
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

from django.db import models

from engine.ingest import CANNOT_READ, DatasetDeleted, batch_fail, batch_load
from engine.models import Batch, BatchStatus
from engine.readers import json_format
from engine.runs import Run, RunKind, Superseded, claim
from engine.snapshot import snapshot_refresh
from engine.storage import upload_dir

logger = logging.getLogger(__name__)

ENGINE_FAILED = "The engine could not ingest the batch ({error}); see its worker's log."
GIVEN_UP = "The engine could not ingest the batch: {reason}."


class BatchRuns(RunKind):
    """Batches of the Batch Ingestion API as engine.runs sees them: ``processing`` waits for a
    worker while no heartbeat is written, and is being loaded while one is."""

    model = Batch
    name = "batch"
    waiting = (BatchStatus.PROCESSING,)
    requeued = BatchStatus.PROCESSING
    running = BatchStatus.PROCESSING
    unfinished = (BatchStatus.PROCESSING,)

    def rows(self) -> models.QuerySet[Any]:
        return Batch.objects.select_related("dataset")

    def send(self, pk: Any) -> None:
        from engine.tasks_jobs import batch_process as task

        task.delay(pk)

    def give_up(self, row: Any, reason: str, now: datetime) -> bool:
        if not self.as_read(row).update(status=BatchStatus.FAILED, heartbeat_at=None,
                                        failure_reason=GIVEN_UP.format(reason=reason),
                                        completed_at=now, updated_at=now):
            return False
        shutil.rmtree(upload_dir(row.dataset.sandbox, row.pk), ignore_errors=True)
        return True


RUNS = BatchRuns()


def reader_formats(batch: Batch, paths: list[Path]) -> list[str]:
    """The reader of each file, from the batch's inputFormat (not the files' names, which the
    client chose)."""
    declared = batch.input_format.get("format", "json")
    if declared != "json":
        return [declared] * len(paths)
    multi_line = bool(batch.input_format.get("isMultiLineJson"))
    return [json_format(path, multi_line=multi_line) for path in paths]


def batch_process(*, batch: Batch) -> Batch:
    """Ingest a ``processing`` batch's uploaded files into it (success or failed, with its
    counts and errors), drop the uploads, and rebuild the snapshot when it succeeded.

    Safe to run again (the task is acks_late): a batch another worker holds, or that is
    finished, is not ingested twice, and the snapshot is only rebuilt if no ready snapshot
    was started after the batch finished.
    """
    run = claim(RUNS, batch) if batch.status == BatchStatus.PROCESSING else None
    if run is not None:
        folder = upload_dir(batch.dataset.sandbox, batch.id)
        paths = [folder / name for name in batch.source_files]
        with run:
            try:
                batch = _load(batch, paths, run)
            except Superseded:
                logger.warning("batch %s was given to another worker; this run stops", batch.id)
                return batch
        shutil.rmtree(folder, ignore_errors=True)
    else:  # another worker holds it, or it ended
        current = Batch.objects.select_related("dataset").filter(pk=batch.pk).first()
        if current is None:  # deleted with its dataset: its uploads are nobody's
            shutil.rmtree(upload_dir(batch.dataset.sandbox, batch.id), ignore_errors=True)
            return batch
        batch = current
    if batch.status == BatchStatus.SUCCESS and batch.completed_at is not None:
        snapshot_refresh(sandbox=batch.dataset.sandbox, since=batch.completed_at)
    return batch


def _load(batch: Batch, paths: list[Path], run: Run) -> Batch:
    try:
        formats = reader_formats(batch, paths)
    except (OSError, ValueError) as error:
        return batch_fail(batch=batch, reason=CANNOT_READ.format(error=error), run=run)
    try:
        return batch_load(batch=batch, paths=paths, formats=formats, run=run)
    except DatasetDeleted:  # deleted with its dataset: nothing to record it on
        logger.info("batch %s: its dataset was deleted before it was loaded", batch.id)
        return batch
    except Superseded:
        raise
    except Exception as error:  # the row must not stay processing: nobody would end it
        logger.exception("batch %s could not be ingested", batch.id)
        return batch_fail(batch=batch, reason=ENGINE_FAILED.format(error=type(error).__name__),
                          run=run)
