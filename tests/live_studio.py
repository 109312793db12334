"""The built-in engine as a browser test meets it: bootstrap's connection pointing at the live
server, a small demo store, and a real Celery worker on both queues (fixtures of
tests/jobs/test_worker.py). Import `studio_worker` (and the fixtures below it) into a test
module to use it."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from tests.jobs.test_worker import (  # noqa: F401 — fixtures the one below needs
    broker,
    redis_server,
    shared_database,
    workers,
)

DEMO_PROFILES = 300


@pytest.fixture
def studio_worker(live_server: Any, settings: Any, workers: Any) -> Any:  # noqa: F811
    settings.BUILTIN_ENGINE_URL = live_server.url
    call_command("bootstrap", "--no-demo-users", stdout=StringIO())
    call_command("generate_demo", "--profiles", str(DEMO_PROFILES), "--seed", "7",
                 stdout=StringIO())
    workers.start("default,engine")
    return workers
