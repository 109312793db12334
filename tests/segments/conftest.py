"""Segments tests run the dashboard against the built-in engine over real HTTP: pytest-django's
live_server serves the engine's API, bootstrap makes the built-in connection, generate_demo
loads a small store, and Celery runs tasks eagerly in-process (the worker path has its own
tests in tests/jobs)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

DEMO_PROFILES = 150


@dataclass
class Studio:
    connection: Any
    sandbox: str
    url: str


@pytest.fixture
def eager_celery() -> Iterator[None]:
    from config.celery import app

    before = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = before


@pytest.fixture
def studio(transactional_db: Any, live_server: Any, settings: Any, tmp_path: Path,
           eager_celery: None) -> Studio:
    from connections.models import Connection

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": "segments-tests"}}
    settings.ENGINE_DATA_DIR = tmp_path / "engine"
    settings.BUILTIN_ENGINE_URL = live_server.url
    from django.core.cache import cache

    cache.clear()
    call_command("bootstrap", "--no-demo-users", stdout=StringIO())
    call_command("generate_demo", "--profiles", str(DEMO_PROFILES), "--seed", "7",
                 stdout=StringIO())
    connection = Connection.objects.get()
    return Studio(connection, connection.default_sandbox, live_server.url)
