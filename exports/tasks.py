"""Celery tasks of the exports app, on the `default` queue."""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True)
def export_plans_resume() -> int:
    """Start the exports whose segment job finished while no receiver ran (a worker died in
    between). Idempotent; meant for the beat schedule, next to the jobs sweeper."""
    from exports.services import export_plans_resume as resume

    return resume()
