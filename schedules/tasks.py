"""Celery tasks of the schedules app, on the `default` queue."""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True)
def schedules_tick() -> int:
    """Every minute (CELERY_BEAT_SCHEDULE): start the runs that are due. Idempotent — a slot
    is claimed by a unique row — so a redelivered tick starts nothing twice."""
    from schedules.services import schedules_tick as tick

    return tick()
