"""The Celery app, in the shape of Celery's "First steps with Django" guide.

Settings are the CELERY_* names in config/settings.py. Queues: `default` (dashboard jobs:
submit, poll, sweep) and `engine` (the built-in engine's preview, segment and export work).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from celery import Celery
from celery.signals import celeryd_after_setup

from config.broker import database_path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("segment_studio")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

logger = logging.getLogger(__name__)


def broker_description() -> str:
    """The broker in words, with any password masked (kombu's as_uri masks it)."""
    uri = app.connection_for_write().as_uri()
    if uri.startswith("sqlite:"):
        return (f"embedded SQLite broker in {database_path(uri)} "
                "(set REDIS_URL to use Redis)")
    return f"Redis at {uri}"


@celeryd_after_setup.connect
def _log_broker(sender: str, instance: Any, **kwargs: Any) -> None:
    logger.warning("Segment Studio worker %s uses the %s", sender, broker_description())
