"""Celery tasks of the REST API's jobs part (segment jobs, export jobs, ingestion batches, the
snapshot after a dataset's deletion), on the `engine` queue (CELERY_TASK_ROUTES routes
``engine.tasks_jobs.*`` there). Each loads its row by id and calls one function; the row is
the job's truth, so a redelivered task finds a finished row and does nothing."""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True)
def segment_job_run(job_id: str) -> None:
    from engine.models import SegmentJob
    from engine.segment_jobs import segment_job_run as run

    job = SegmentJob.objects.filter(pk=job_id).first()
    if job is not None:
        run(job=job)


@shared_task(acks_late=True)
def export_job_run(job_id: int) -> None:
    from engine.exports import export_job_run as run
    from engine.models import ExportJob

    job = ExportJob.objects.filter(pk=job_id).first()
    if job is not None:
        run(job=job)


@shared_task(acks_late=True)
def batch_process(batch_id: str) -> None:
    """A completed batch of the Batch Ingestion API: ingest its files, rebuild the snapshot."""
    from engine.batches import batch_process as run
    from engine.models import Batch

    batch = Batch.objects.select_related("dataset").filter(pk=batch_id).first()
    if batch is not None:
        run(batch=batch)


@shared_task(acks_late=True)
def snapshot_rebuild(sandbox: str, since: str) -> None:
    """Rebuild the sandbox's query snapshot after its catalog changed at `since` (ISO 8601; a
    dataset deleted). Nothing is built if a ready snapshot was started since, so a redelivered
    task, or several deletions in a row, build once."""
    from datetime import datetime

    from engine.snapshot import snapshot_refresh

    snapshot_refresh(sandbox=sandbox, since=datetime.fromisoformat(since))
