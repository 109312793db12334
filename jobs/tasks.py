"""Celery tasks of the jobs app, on the `default` queue: ids in, load the row, call one
service, schedule what it says is next. The row is the truth; Celery results are ignored.

acks_late: a message is acknowledged after the task ran, so a worker killed mid-task leaves it
to be redelivered; the services are idempotent for that (a submit reconciles, a stale poll
changes nothing). Countdowns stay ≤ 30 s, far below Redis's visibility timeout (1 h); the
sweeper, every minute, restarts whatever was lost in between.
"""

from __future__ import annotations

from datetime import datetime

from celery import shared_task

from aep import AEPTransientError
from jobs import services
from jobs.models import Job

RETRY = {
    "acks_late": True,
    "autoretry_for": (AEPTransientError,),
    "retry_backoff": 1,  # 1, 2, 4 … s, with jitter
    "retry_backoff_max": 30,
    "max_retries": 8,
}


def _schedule(step: services.Step) -> None:
    if step.poll_due is not None:
        job_poll.apply_async((step.job.pk, step.poll_due.isoformat()), eta=step.poll_due)


@shared_task(**RETRY)
def job_submit(job_id: int) -> None:
    job = Job.objects.select_related("connection").filter(pk=job_id).first()
    if job is None:
        return  # deleted meanwhile
    _schedule(services.job_submit(job=job))


@shared_task(**RETRY)
def job_poll(job_id: int, due: str | None = None) -> None:
    """One poll step; `due` is when this poll was due — the row's next_poll_at at the time it
    was scheduled — so a poll that a newer one superseded stops."""
    job = Job.objects.select_related("connection").filter(pk=job_id).first()
    if job is None:
        return
    _schedule(services.job_poll_step(job=job, due=datetime.fromisoformat(due) if due else None))


@shared_task(acks_late=True)
def jobs_sweep() -> None:
    """Every minute (CELERY_BEAT_SCHEDULE): time out and resume."""
    services.jobs_sweep()
