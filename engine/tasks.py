"""Celery tasks of the built-in engine; every engine.tasks.* task runs on the `engine` queue
(CELERY_TASK_ROUTES in config/settings.py)."""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True)
def preview_run(preview_id: str) -> None:
    """Estimate a preview step by step into its row. Safe to run twice: a finished, cancelled
    or deleted preview is left alone."""
    from engine.previews import preview_run as run  # previews import tasks to enqueue

    run(preview_id)


@shared_task
def previews_expire() -> int:
    """Delete previews past their ENGINE_PREVIEW_TTL_SECONDS (for a beat schedule)."""
    from engine.previews import previews_expire as expire

    return expire()


@shared_task
def batches_sweep() -> None:
    """Fail batches left loading, send stalled processing ones to a worker again (for a beat
    schedule)."""
    from engine.api.services_ingestion import batches_sweep as sweep

    sweep()


@shared_task
def jobs_sweep() -> dict[str, int]:
    """Send engine jobs whose worker stopped to a worker again, or fail them saying why
    (engine.runs; for a beat schedule, every minute)."""
    import dataclasses

    from engine.runs import jobs_sweep as sweep

    return dataclasses.asdict(sweep())
