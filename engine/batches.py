"""The worker's half of the Batch Ingestion API: a completed batch's uploaded files become its
Parquet, then the sandbox's snapshot is rebuilt so estimates and previews see them.

The API (engine/api/services_ingestion.py) receives the files into the batch's upload folder
while it is ``loading``; COMPLETE lists them on the row (``source_files``), makes it
``processing`` and enqueues engine.tasks_jobs.batch_process, which calls batch_process here.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from engine.ingest import CANNOT_READ, DatasetDeleted, batch_fail, batch_load
from engine.models import Batch, BatchStatus
from engine.readers import json_format
from engine.snapshot import snapshot_refresh
from engine.storage import upload_dir

logger = logging.getLogger(__name__)

ENGINE_FAILED = "The engine could not ingest the batch ({error}); see its worker's log."


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

    Safe to run again (the task is acks_late): a finished batch is not ingested twice, and the
    snapshot is only rebuilt if no ready snapshot was started after the batch finished.
    """
    if batch.status == BatchStatus.PROCESSING:
        folder = upload_dir(batch.dataset.sandbox, batch.id)
        paths = [folder / name for name in batch.source_files]
        try:
            formats = reader_formats(batch, paths)
        except (OSError, ValueError) as error:
            batch = batch_fail(batch=batch, reason=CANNOT_READ.format(error=error))
        else:
            try:
                batch = batch_load(batch=batch, paths=paths, formats=formats)
            except DatasetDeleted:  # deleted with its dataset: nothing to record it on
                logger.info("batch %s: its dataset was deleted before it was loaded", batch.id)
            except Exception as error:  # the row must not stay processing: nobody would end it
                logger.exception("batch %s could not be ingested", batch.id)
                batch = batch_fail(batch=batch,
                                   reason=ENGINE_FAILED.format(error=type(error).__name__))
        shutil.rmtree(folder, ignore_errors=True)
    if batch.status == BatchStatus.SUCCESS and batch.completed_at is not None:
        snapshot_refresh(sandbox=batch.dataset.sandbox, since=batch.completed_at)
    return batch
