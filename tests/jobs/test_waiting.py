"""Pressing Estimate, Run or Export again while the same request still waits for a worker
(the broker was down, or no worker took it yet) returns that job instead of a second one.
tests/jobs/test_worker.py stops a real Redis to see the whole story through the views."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from jobs import services
from jobs.models import WAITING_LABEL, Job, JobKind, JobStatus

pytestmark = pytest.mark.django_db
BODY = {"segments": [{"segmentId": "seg-def-1"}]}


def test_a_request_made_again_while_its_job_waits_reuses_that_job(
        connection: Any, marketer: Any, make_user: Any) -> None:
    from core.roles import Role

    def press(body: Any = BODY, user: Any = marketer, reuse: bool = True) -> Job:
        return services.job_create(kind=JobKind.SEGMENT, connection=connection, sandbox="prod",
                                   request=body, label="US", created_by=user,
                                   reuse_queued=reuse)

    first = press()
    Job.objects.filter(pk=first.pk).update(status=JobStatus.WAITING)
    assert press().pk == first.pk
    assert first.events.filter(kind="retried").count() == 1
    others = [press(body={"segments": [{"segmentId": "seg-def-2"}]}),
              press(user=make_user("otto", Role.MARKETER)), press(reuse=False)]
    assert len({first.pk, *(job.pk for job in others)}) == 4

    Job.objects.filter(pk=first.pk).update(status=JobStatus.SUBMITTING)  # a worker has it
    second = press()
    assert second.pk != first.pk
    Job.objects.filter(pk=second.pk).update(created_at=timezone.now() - timedelta(minutes=6))
    assert press().pk not in (first.pk, second.pk)  # pressed long after: a new request


def test_a_job_waiting_for_the_broker_can_be_cancelled_before_it_is_sent(
        make_job: Any, marketer: Any) -> None:
    job = make_job(status=JobStatus.WAITING)
    assert job.can_cancel and job.get_status_display() == WAITING_LABEL
    job = services.job_cancel(job=job, actor=marketer)
    assert job.status == JobStatus.CANCELLED
    assert job.events.get(kind="cancel").data == {"from": JobStatus.WAITING.value}
