from __future__ import annotations

import socket

from celery import shared_task
from django.core.cache import cache

PING_TTL_SECONDS = 300


@shared_task(ignore_result=True)
def ping(nonce: str) -> None:
    """Answer a liveness probe through the cache: proves a worker took a task off the broker."""
    cache.set(f"celery-ping:{nonce}", socket.gethostname(), PING_TTL_SECONDS)
