"""A job kind has one home (jobs.kinds): a new kind is one class that the services drive from
submit to finish, and finish hooks run after the final status commits, in order, each on its
own (a failing one is logged, undoes only itself, and never the status)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from aep import AEPClient
from jobs import kinds, services
from jobs.kinds import Kind, Metrics, Reading, Remote
from jobs.models import Job, JobKind, JobStatus
from tests.conftest import PASSWORD
from tests.jobs.conftest import Clock
from tests.jobs.fake_aep import FakeAEP

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class EchoAnswer:
    id: str
    status: str
    raw: dict[str, Any] = field(default_factory=dict)


class EchoKind(Kind[Metrics]):
    """A kind only this test knows: its remote answers WORKING, then DONE on the second read."""

    value = "echo"
    label = "Echo"
    deadline = timedelta(minutes=5)
    statuses = {"WORKING": JobStatus.RUNNING, "DONE": JobStatus.SUCCEEDED}

    def __init__(self) -> None:
        self.reads = 0

    def create(self, client: AEPClient, job: Job) -> EchoAnswer:
        return EchoAnswer("echo-1", "WORKING", {"said": job.request["say"]})

    def get(self, client: AEPClient, job: Job) -> EchoAnswer:
        self.reads += 1
        return EchoAnswer(job.remote_id, "DONE" if self.reads >= 2 else "WORKING",
                          {"heard": self.reads})

    def read(self, job: Job, remote: Remote) -> Reading:
        return replace(super().read(job, remote), metrics=dict(remote.raw))

    def figures(self, job: Job) -> list[tuple[str, Any]]:
        return [("Echoes heard", job.metrics.get("heard"))]


@pytest.fixture
def echo() -> Iterator[EchoKind]:
    kind = EchoKind()
    kinds.register(kind)
    try:
        yield kind
    finally:
        kinds.unregister(kind.value)


@pytest.fixture
def finished() -> Iterator[list[tuple[str, int, str]]]:
    """Hooks of this test: each notes (its name, the job, the job's committed status)."""
    seen: list[tuple[str, int, str]] = []

    def note(name: str) -> Any:
        def hook(job: Job) -> None:
            seen.append((name, job.pk, Job.objects.get(pk=job.pk).status))
        return hook

    def fails(job: Job) -> None:
        Job.objects.filter(pk=job.pk).update(label="written by a failing hook")
        raise RuntimeError("this hook is broken")

    kinds.on_finish(note("third"), order=3, name="test-third")
    kinds.on_finish(note("first"), kinds=["echo", JobKind.SEGMENT], order=1, name="test-first")
    kinds.on_finish(fails, order=2, name="test-fails")
    kinds.on_finish(note("never"), kinds=[JobKind.EXPORT], name="test-exports-only")
    try:
        yield seen
    finally:
        for name in ("test-third", "test-first", "test-fails", "test-exports-only"):
            kinds.remove_finish_hook(name)


def test_a_new_kind_is_one_class_that_goes_through_submit_poll_and_finish(
        echo: EchoKind, finished: list[tuple[str, int, str]], connection: Any,
        marketer: Any, fake: FakeAEP, clock: Clock,
        django_capture_on_commit_callbacks: Any) -> None:
    job = services.job_create(kind="echo", connection=connection, sandbox="prod",
                              request={"say": "hello"}, label="Hello", created_by=marketer)
    assert job.poll_deadline is not None
    assert abs(job.poll_deadline - job.created_at - echo.deadline) < timedelta(seconds=1)
    step = services.job_submit(job=job, now=clock.now, transport=fake.transport())
    assert (step.job.status, step.job.remote_id) == (JobStatus.RUNNING, "echo-1")
    assert step.poll_due == clock.now + timedelta(seconds=1)

    with django_capture_on_commit_callbacks(execute=True):
        step = services.job_poll_step(job=step.job, due=step.poll_due, now=clock.advance(1),
                                      transport=fake.transport())
        assert step.job.status == JobStatus.RUNNING and step.poll_due is not None
        assert finished == []
        step = services.job_poll_step(job=step.job, due=step.poll_due, now=clock.advance(2),
                                      transport=fake.transport())

    job = step.job
    assert job.status == JobStatus.SUCCEEDED and step.poll_due is None
    assert job.metrics == {"heard": 2} and echo.reads == 2
    assert [name for name, *_ in finished] == ["first", "third"]
    assert fake.api_calls("POST", "/data/") == []  # the kind made its own calls, none to AEP
    client = Client()
    assert client.login(username=marketer.username, password=PASSWORD)
    page = client.get(reverse("jobs:detail", args=[job.pk])).text
    assert "Echo on Acme prod" in page and "Echoes heard" in page


def test_finish_hooks_run_after_the_commit_in_order_and_a_failing_one_only_undoes_itself(
        finished: list[tuple[str, int, str]], make_job: Any, clock: Clock,
        django_capture_on_commit_callbacks: Any, caplog: pytest.LogCaptureFixture) -> None:
    job = make_job(status=JobStatus.RUNNING, remote_id="seg-1")
    with caplog.at_level(logging.ERROR, logger="jobs.services"), \
            django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.job_time_out(job=job, now=clock.now)
        assert finished == []  # not before the commit

    assert len(callbacks) == 1
    assert finished == [("first", job.pk, JobStatus.TIMED_OUT),
                        ("third", job.pk, JobStatus.TIMED_OUT)]
    job.refresh_from_db()
    assert job.status == JobStatus.TIMED_OUT and job.label == "US workers"
    assert job.finish_hooks_at is not None
    assert "the finish hook test-fails failed" in caplog.text


def test_the_sweep_runs_the_hooks_a_dead_process_never_ran(
        finished: list[tuple[str, int, str]], make_job: Any, clock: Clock) -> None:
    lost = make_job(status=JobStatus.SUCCEEDED, finished_at=clock.now, finish_hooks_at=None)
    recent = make_job(status=JobStatus.SUCCEEDED, finished_at=clock.now + timedelta(minutes=5),
                      finish_hooks_at=None)

    swept = services.jobs_sweep(now=clock.now + services.SWEEP_GRACE + timedelta(seconds=1))

    assert swept.hooks == 1
    assert [(name, pk) for name, pk, _ in finished] == [("first", lost.pk), ("third", lost.pk)]
    assert services.jobs_sweep(now=clock.now + services.SWEEP_GRACE * 2).hooks == 0
    recent.refresh_from_db()
    assert recent.finish_hooks_at is None  # finished a moment ago: its hooks are on their way


def test_a_finished_row_polls_until_its_finish_hooks_ran(make_job: Any, marketer: Any) -> None:
    """The row's last answer (HX-Trigger jobFinished) makes pages reload what the job changed,
    which the finish hooks write after the commit: it waits for them."""
    job = make_job(status=JobStatus.SUCCEEDED, created_by=marketer,
                   finished_at=timezone.now(), finish_hooks_at=None)
    client = Client()
    assert client.login(username=marketer.username, password=PASSWORD)
    url = reverse("jobs:row", args=[job.pk])

    before = client.get(url, headers={"HX-Request": "true"})
    assert 'hx-trigger="every 2s"' in before.text and "HX-Trigger" not in before
    services.job_finish_hooks(job_id=job.pk)
    after = client.get(url, headers={"HX-Request": "true"})
    assert "hx-trigger" not in after.text and "jobFinished" in after["HX-Trigger"]
