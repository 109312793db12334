"""Handing work to the workers through the Celery broker (Redis, or the embedded SQLite queue).

A send that fails after the commit (the broker went away) leaves the row to the sweep
(engine.tasks.jobs_sweep sends waiting jobs again), so the request that made the job still
succeeds; the API asks first whether the broker answers (engine.api.broker) and says 503 before
it writes anything. With ``task_always_eager`` (tests) Celery runs tasks in the calling process
and no broker is asked.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery import current_app
from django.db import transaction

logger = logging.getLogger(__name__)

CHECK_TIMEOUT_SECONDS = 2.0


def broker_reachable() -> bool:
    """Whether a connection to the broker opens now (one try, a short timeout)."""
    app = current_app
    if app.conf.task_always_eager:
        return True
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0,
                                         timeout=CHECK_TIMEOUT_SECONDS)
    except Exception as error:  # noqa: BLE001 - any failure to connect means "not now"
        logger.warning("the job queue cannot be reached: %s", type(error).__name__)
        return False
    return True


def send_on_commit(send: Callable[[], Any], what: str) -> None:
    """Send a task once the transaction commits; a broker that fails then leaves the row to
    the sweep instead of turning a created job into an error."""

    def attempt() -> None:
        try:
            send()
        except Exception:  # noqa: BLE001 - the row is saved; the sweep sends it again
            logger.warning("could not send %s to a worker now; the sweep will", what,
                           exc_info=True)

    transaction.on_commit(attempt)
