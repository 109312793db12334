"""Jobs tests: a connection to a fake AEP (tests/jobs/fake_aep.py) on a clock the test owns,
and jobs in any state, made the way the services make them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.jobs.fake_aep import FakeAEP

START = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def private_cache(settings: Any) -> None:
    """A cache per test: the polling budget and group slots never leak between tests.
    (And cheap password hashing: the view tests sign in a lot.)"""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": "jobs-tests"}}
    from django.core.cache import cache

    cache.clear()


@dataclass
class Clock:
    """The time of the test: the fake API and the services read the same one."""

    now: datetime = START

    def epoch(self) -> float:
        return self.now.timestamp()

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(clock: Clock) -> FakeAEP:
    return FakeAEP(clock=clock.epoch)


@pytest.fixture
def connection(db: Any) -> Any:
    from connections.models import Connection, ConnectionKind

    row = Connection(name="Acme prod", kind=ConnectionKind.ADOBE,
                     base_url="https://platform.adobe.io",
                     ims_url="https://ims-na1.adobelogin.com", org_id="ACME@AdobeOrg",
                     client_id="0123456789abcdef", default_sandbox="prod")
    row.set_client_secret("p8e-fake-secret")
    row.save()
    return row


@pytest.fixture
def make_job(connection: Any, clock: Clock) -> Any:
    from jobs.models import FINISHED, Job, JobKind, JobStatus

    def make(kind: str = JobKind.SEGMENT, status: str = JobStatus.RUNNING, *,
             remote_id: str = "", created_by: Any = None, label: str = "US workers",
             **fields: Any) -> Job:
        request = {
            JobKind.SEGMENT: {"segments": [{"segmentId": "seg-def-1"}]},
            JobKind.EXPORT: {"destination": {"datasetId": "ds-1"},
                             "filter": {"segments": [{"segmentId": "seg-def-1"}]},
                             "schema": {"name": "_xdm.context.profile"}},
            JobKind.PREVIEW: {"predicateExpression": 'homeAddress.countryCode = "US"',
                              "predicateType": "pql/text",
                              "predicateModel": "_xdm.context.profile"},
        }[JobKind(kind)]
        fields.setdefault("poll_deadline", clock.now + timedelta(hours=1))
        fields.setdefault("next_poll_at", clock.now)
        if status not in (JobStatus.PENDING,):
            fields.setdefault("submitted_at", clock.now)
        if status in FINISHED:  # as the services leave it: its finish hooks ran
            fields.setdefault("finish_hooks_at", fields.get("finished_at"))
        job = Job.objects.create(kind=kind, connection=connection, sandbox="prod",
                                 label=label, status=status, remote_id=remote_id,
                                 request=request, created_by=created_by, **fields)
        Job.objects.filter(pk=job.pk).update(created_at=fields.get("created_at", clock.now))
        job.refresh_from_db()
        return job

    return make
