"""The engine's API answers 503 while its job queue cannot be reached — before it writes
anything, so a client that retries never makes a second job (engine.queue sends the work)."""

from __future__ import annotations

from engine.api import errors
from engine.queue import broker_reachable

SERVICE_UNAVAILABLE = 503
RETRY_AFTER_SECONDS = 30
QUEUE_DOWN = ("503000", "The service is temporarily unavailable: its job queue cannot be "
              "reached, so nothing was created. Retry after {seconds} seconds.")


def require_broker() -> None:
    """503 with the gateway's error body and Retry-After unless the broker answers."""
    if broker_reachable():
        return
    code, message = QUEUE_DOWN
    error = errors.gateway_error(SERVICE_UNAVAILABLE,
                                 (code, message.format(seconds=RETRY_AFTER_SECONDS)))
    error.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    raise error
