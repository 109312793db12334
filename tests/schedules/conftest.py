"""Schedules tests run against the built-in engine served by live_server with eager Celery
(the segments tests' `studio` fixture), so a tick's segment job and export really run."""

from __future__ import annotations

from typing import Any

import pytest

from tests.exports.conftest import dataset_id, segment  # noqa: F401 — fixtures
from tests.segments.conftest import Studio, eager_celery, studio  # noqa: F401 — fixtures


@pytest.fixture
def email_backend(settings: Any) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
