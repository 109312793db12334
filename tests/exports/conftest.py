"""Exports tests run the dashboard against the built-in engine over real HTTP, like the
segments tests (whose `studio` fixture they share): live_server serves the engine's API,
bootstrap makes the built-in connection, generate_demo loads ~150 profiles, Celery is eager."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.segments.conftest import Studio, eager_celery, studio  # noqa: F401 — fixtures

US = 'homeAddress.countryCode = "US"'


@pytest.fixture
def segment(studio: Studio, marketer: Any) -> Any:  # noqa: F811
    """A saved segment (people in the US), defined on the engine too."""
    from segments.services import segment_save

    return segment_save(segment=None, connection=studio.connection, sandbox=studio.sandbox,
                        name="US customers", description="", pql_text=US, merge_policy_id="",
                        evaluation_method="batch", actor=marketer)


@pytest.fixture
def dataset_id(studio: Studio, marketer: Any) -> str:  # noqa: F811
    from exports.services import dataset_create

    return dataset_create(connection=studio.connection, sandbox=studio.sandbox,
                          name="Spring audience", description="for the spring campaign",
                          actor=marketer)


@pytest.fixture(autouse=True)
def unhurried_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Eager Celery does not wait for a poll's eta: a job's polls call each other at once. A
    poll that is put off to the same moment again (its group, the export jobs listed together,
    was refreshed less than 5 s ago by another export) would call itself until Python's
    recursion limit; for such a poll, waiting for its eta stands in for the worker's
    countdown. Other polls still run at once."""
    from django.utils import timezone

    from jobs import tasks

    original = tasks.job_poll.apply_async
    last_eta: dict[Any, Any] = {}

    def apply_async(args: Any, **kwargs: Any) -> Any:
        eta = kwargs.get("eta")
        if eta is not None and last_eta.get(args[0]) == eta:
            time.sleep(min(max((eta - timezone.now()).total_seconds(), 0.0), 6.0))
        last_eta[args[0]] = eta
        return original(args, **kwargs)

    monkeypatch.setattr(tasks.job_poll, "apply_async", apply_async)
