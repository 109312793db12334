"""Celery tasks of the schedules app, on the `default` queue."""

from __future__ import annotations

from datetime import datetime

from celery import shared_task


@shared_task(acks_late=True)
def schedules_tick(now: str | None = None) -> int:
    """Every minute (CELERY_BEAT_SCHEDULE): start the runs that are due. Idempotent — a slot
    is claimed by a unique row — so a redelivered tick starts nothing twice. `now` (ISO
    8601) ticks as of another time: a test's clock, or an operator replaying a missed slot."""
    from schedules.services import schedules_tick as tick

    return tick(now=datetime.fromisoformat(now) if now else None)
