"""Project configuration: settings, URLs, the Celery app, WSGI and ASGI entry points."""

from __future__ import annotations

# Load the Celery app whenever Django starts, so that @shared_task binds to it
# (Celery's "First steps with Django" guide).
from config.celery import app as celery_app

__all__ = ("celery_app",)
