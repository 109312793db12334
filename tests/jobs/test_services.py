"""The job services against a fake AEP on a clock the test owns: submit (and its redelivery),
refresh (never backwards), deadlines, group refresh and the polling budget, cancel."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from aep import AEPTransientError
from core.models import AuditEntry
from jobs import services
from jobs.models import Job, JobEvent, JobKind, JobStatus
from tests.jobs.conftest import Clock
from tests.jobs.fake_aep import FakeAEP

pytestmark = pytest.mark.django_db


class ResponseLost(httpx.BaseTransport):
    """Delivers each request, then loses the first API POST's answer (a read timeout): the remote
    job exists, but the submitting worker never hears of it."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.lost = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method == "POST" and "/data/" in request.url.path and not self.lost:
            self.lost = True
            raise httpx.ReadTimeout("the answer never came", request=request)
        return response


def kinds_of(job: Job) -> list[tuple[str, str]]:
    return [(e.kind, e.status) for e in JobEvent.objects.filter(job=job)]


# --- create and submit ---------------------------------------------------------------------------

def test_create_makes_a_pending_row_and_sends_the_submit_after_commit(
        connection: Any, marketer: Any, django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        job = services.job_create(kind=JobKind.SEGMENT, connection=connection, sandbox="prod",
                                  request={"segments": [{"segmentId": "a"}]}, label="US",
                                  created_by=marketer)
    assert job.status == JobStatus.PENDING
    assert job.poll_deadline is not None and job.poll_deadline > job.created_at
    assert kinds_of(job) == [("created", JobStatus.PENDING)]
    assert len(callbacks) == 1  # job_submit.delay, once the row is committed


def test_submit_records_the_submission_then_the_remote_job(
        make_job: Any, fake: FakeAEP, clock: Clock) -> None:
    job = make_job(status=JobStatus.PENDING)
    step = services.job_submit(job=job, now=clock.now, transport=fake.transport())

    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED and job.remote_status == "NEW"
    assert job.remote_id in fake.jobs and job.submitted_at == clock.now
    assert kinds_of(job) == [("submitting", JobStatus.SUBMITTING),
                             ("submitted", JobStatus.QUEUED)]
    assert step.poll_due == clock.now + timedelta(seconds=1) == job.next_poll_at


def test_redelivered_submit_adopts_the_remote_job_instead_of_creating_a_second(
        make_job: Any, fake: FakeAEP, clock: Clock) -> None:
    job = make_job(status=JobStatus.PENDING)
    with pytest.raises(AEPTransientError):
        services.job_submit(job=job, now=clock.now, transport=ResponseLost(fake.transport()))
    job.refresh_from_db()
    assert job.status == JobStatus.SUBMITTING and not job.remote_id
    assert len(fake.jobs) == 1  # the API did create it

    clock.advance(5)
    step = services.job_submit(job=job, now=clock.now, transport=fake.transport())

    job.refresh_from_db()
    assert len(fake.jobs) == 1
    assert job.remote_id == next(iter(fake.jobs)) and job.status == JobStatus.RUNNING
    assert ("reconciled", JobStatus.RUNNING) in kinds_of(job)
    assert step.poll_due is not None


def test_redelivered_submit_matches_by_payload_when_the_api_echoes_no_request_id(
        make_job: Any, fake: FakeAEP, clock: Clock) -> None:
    fake.echo_request_id = False
    other = fake.add("segment", created=clock.epoch() - 30,
                     request=[{"segmentId": "seg-def-1"}])  # someone's older, identical job
    fake.add("segment", request=[{"segmentId": "another-definition"}])
    job = make_job(status=JobStatus.PENDING)
    with pytest.raises(AEPTransientError):
        services.job_submit(job=job, now=clock.now, transport=ResponseLost(fake.transport()))
    mine = max(fake.jobs.values(), key=lambda j: int(j.id.split("-")[1]))

    services.job_submit(job=job, now=clock.advance(3), transport=fake.transport())

    job.refresh_from_db()
    assert len(fake.jobs) == 3
    assert job.remote_id == mine.id != other.id


def test_a_redelivered_preview_is_created_again_as_previews_cannot_be_listed(
        make_job: Any, fake: FakeAEP, clock: Clock) -> None:
    job = make_job(JobKind.PREVIEW, JobStatus.PENDING)
    with pytest.raises(AEPTransientError):
        services.job_submit(job=job, now=clock.now, transport=ResponseLost(fake.transport()))
    services.job_submit(job=job, now=clock.advance(3), transport=fake.transport())
    job.refresh_from_db()
    assert len(fake.jobs) == 2 and job.remote_id in fake.jobs
    assert job.status == JobStatus.QUEUED


def test_a_submitted_job_is_not_sent_again(make_job: Any, fake: FakeAEP, clock: Clock) -> None:
    job = make_job(status=JobStatus.PENDING)
    services.job_submit(job=job, now=clock.now, transport=fake.transport())
    again = services.job_submit(job=job, now=clock.advance(1), transport=fake.transport())
    assert len(fake.jobs) == 1 and again.poll_due is None


# --- refresh -----------------------------------------------------------------------------------

def test_refresh_never_moves_backwards(make_job: Any, fake: FakeAEP, clock: Clock) -> None:
    remote = fake.add("segment", request=[{"segmentId": "seg-def-1"}])
    fake.script[remote.id] = ["SUCCEEDED", "PROCESSING"]  # then a stale, older answer
    job = make_job(status=JobStatus.RUNNING, remote_id=remote.id)
    stale = Job.objects.get(pk=job.pk)  # a second worker read the row while it was RUNNING

    services.job_refresh(job=job, now=clock.advance(1), transport=fake.transport())
    services.job_refresh(job=stale, now=clock.advance(1), transport=fake.transport())

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and job.remote_status == "SUCCEEDED"
    assert job.last_response is not None and job.last_response["status"] == "SUCCEEDED"
    assert job.metrics["segmentedProfileCounter"] == {"seg-def-1": 40}
    assert job.poll_count == 2  # both polls counted; only the first changed anything
    assert [k for k in kinds_of(job) if k[0] == "status"] == [("status", JobStatus.SUCCEEDED)]


def test_a_late_processing_does_not_undo_cancelling(make_job: Any, fake: FakeAEP,
                                                   clock: Clock) -> None:
    remote = fake.add("segment", request=[{"segmentId": "seg-def-1"}])
    fake.script[remote.id] = ["PROCESSING"]
    job = make_job(status=JobStatus.CANCELLING, remote_id=remote.id)
    services.job_refresh(job=job, now=clock.advance(1), transport=fake.transport())
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLING


def test_a_segment_job_stores_its_metrics_and_finish(make_job: Any, fake: FakeAEP,
                                                     clock: Clock) -> None:
    remote = fake.add("segment", runs_for=10, request=[{"segmentId": "seg-def-1"}])
    job = make_job(status=JobStatus.QUEUED, remote_id=remote.id)
    services.job_refresh(job=job, now=clock.advance(2), transport=fake.transport())
    assert job.status == JobStatus.RUNNING and job.progress is None and job.finished_at is None
    clock.advance(20)
    services.job_refresh(job=job, now=clock.now, transport=fake.transport())
    assert job.status == JobStatus.SUCCEEDED and job.finished_at == clock.now
    assert job.progress == 1.0
    assert job.metrics["totalTime"]["totalTimeInMs"] == 10_000
    assert [k for k in kinds_of(job) if k[0] == "status"] == [
        ("status", JobStatus.RUNNING), ("status", JobStatus.SUCCEEDED)]


def test_a_failed_segment_job_keeps_aeps_error(make_job: Any, fake: FakeAEP,
                                               clock: Clock) -> None:
    remote = fake.add("segment", request=[{"segmentId": "seg-def-1"}])
    fake.script[remote.id] = ["FAILED"]
    job = make_job(status=JobStatus.RUNNING, remote_id=remote.id)
    services.job_refresh(job=job, now=clock.advance(1), transport=fake.transport())
    assert job.status == JobStatus.FAILED
    assert (job.error_code, job.error_message) == ("0080000018", "Segment evaluation failed")


def test_a_preview_reports_its_estimate_and_progress(make_job: Any, fake: FakeAEP,
                                                     clock: Clock) -> None:
    remote = fake.add("preview", runs_for=10)
    job = make_job(JobKind.PREVIEW, JobStatus.QUEUED, remote_id=remote.id)
    services.job_refresh(job=job, now=clock.advance(5), transport=fake.transport())
    assert job.status == JobStatus.RUNNING and job.progress == pytest.approx(0.5)
    assert job.metrics["profilesReadSoFar"] == 500 and job.metrics["totalRows"] == 1000
    services.job_refresh(job=job, now=clock.advance(10), transport=fake.transport())
    assert job.status == JobStatus.SUCCEEDED and job.progress == 1.0
    assert job.metrics["estimatedSize"] == 400 and job.metrics["standardError"] == 12
    assert job.metrics["confidenceInterval"] == "95%"


def test_a_preview_is_polled_every_half_second_while_its_estimate_converges(
        make_job: Any, fake: FakeAEP, clock: Clock) -> None:
    remote = fake.add("preview", runs_for=2)
    job = make_job(JobKind.PREVIEW, JobStatus.QUEUED, remote_id=remote.id)
    seen = []
    step = services.job_poll_step(job=job, now=clock.advance(0.5), transport=fake.transport())
    while step.poll_due is not None:
        seen.append(step.job.progress)
        assert (step.poll_due - clock.now).total_seconds() == 0.5
        step = services.job_poll_step(job=step.job, due=step.poll_due,
                                      now=clock.advance(0.5), transport=fake.transport())
    assert step.job.status == JobStatus.SUCCEEDED
    assert None not in seen and seen == sorted(p or 0.0 for p in seen) and len(seen) >= 3
    # every poll asked, and saw progress grow
    assert len(fake.requests) == len(seen) + 1


def test_an_export_job_stores_its_batch(make_job: Any, fake: FakeAEP, clock: Clock) -> None:
    remote = fake.add("export", runs_for=1, request={"destination": {"datasetId": "ds-1"}})
    job = make_job(JobKind.EXPORT, JobStatus.RUNNING, remote_id=remote.id)
    services.job_refresh(job=job, now=clock.advance(5), transport=fake.transport())
    assert job.status == JobStatus.SUCCEEDED
    assert job.metrics["batchId"] == f"batch-{remote.id}"
    assert job.metrics["totalExportedProfileCounter"] == 40


def test_a_job_the_api_forgot_fails(make_job: Any, fake: FakeAEP, clock: Clock) -> None:
    job = make_job(status=JobStatus.RUNNING, remote_id="seg-unknown")
    services.job_refresh(job=job, now=clock.advance(1), transport=fake.transport())
    assert job.status == JobStatus.FAILED
    assert job.error_message.startswith("Acme prod no longer knows this job")


# --- polling: deadlines, superseded polls, groups, budget -----------------------------------------

def test_a_poll_past_the_deadline_times_out_without_calling_the_api(
        make_job: Any, fake: FakeAEP, clock: Clock) -> None:
    job = make_job(status=JobStatus.RUNNING, remote_id="seg-1",
                   poll_deadline=clock.now + timedelta(minutes=1))
    step = services.job_poll_step(job=job, now=clock.advance(61), transport=fake.transport())
    job.refresh_from_db()
    assert step.poll_due is None and fake.requests == []
    assert job.status == JobStatus.TIMED_OUT and job.finished_at == clock.now
    assert job.error_message == services.TIMED_OUT_MESSAGE.format(
        connection="Acme prod", deadline="6 hours")
    assert kinds_of(job)[-1] == ("timeout", JobStatus.TIMED_OUT)


def test_the_sweep_times_out_jobs_past_their_deadline_only(make_job: Any,
                                                          clock: Clock) -> None:
    late = make_job(status=JobStatus.QUEUED, remote_id="a",
                    poll_deadline=clock.now - timedelta(seconds=1))
    pending = make_job(status=JobStatus.PENDING, poll_deadline=clock.now - timedelta(seconds=1))
    fresh = make_job(status=JobStatus.RUNNING, remote_id="b")
    done = make_job(status=JobStatus.SUCCEEDED, remote_id="c",
                    poll_deadline=clock.now - timedelta(hours=1))

    result = services.jobs_sweep(now=clock.now)

    statuses = {j.pk: j.status for j in Job.objects.all()}
    assert result.timed_out == 2
    assert statuses == {late.pk: JobStatus.TIMED_OUT, pending.pk: JobStatus.TIMED_OUT,
                        fresh.pk: JobStatus.RUNNING, done.pk: JobStatus.SUCCEEDED}


def test_a_superseded_poll_stops(make_job: Any, fake: FakeAEP, clock: Clock) -> None:
    job = make_job(status=JobStatus.RUNNING, remote_id="seg-1",
                   next_poll_at=clock.now + timedelta(seconds=30))
    step = services.job_poll_step(job=job, due=clock.now, now=clock.now,
                                  transport=fake.transport())
    assert step.poll_due is None and fake.requests == []


def test_one_poll_refreshes_its_whole_group_in_bulk(make_job: Any, fake: FakeAEP,
                                                    clock: Clock) -> None:
    jobs = [make_job(status=JobStatus.QUEUED, remote_id=fake.add(
        "segment", request=[{"segmentId": f"s{n}"}]).id) for n in range(150)]
    clock.advance(2)

    first = services.job_poll_step(job=jobs[0], now=clock.now, transport=fake.transport())
    assert len(fake.api_calls("POST", "bulk-get")) == 2 and len(fake.requests) == 2
    assert Job.objects.filter(status=JobStatus.RUNNING, last_polled_at=clock.now).count() == 150
    assert first.poll_due == clock.now + timedelta(seconds=2)  # its second poll

    services.job_poll_step(job=Job.objects.get(pk=jobs[99].pk), now=clock.advance(1),
                           transport=fake.transport())
    assert len(fake.requests) == 2  # refreshed a second ago by the group: no call


def test_export_jobs_are_refreshed_by_reading_the_list(make_job: Any, fake: FakeAEP,
                                                      clock: Clock) -> None:
    for _ in range(3):
        fake.add("export", created=clock.epoch() - 3600)  # older, someone else's
    jobs = [make_job(JobKind.EXPORT, JobStatus.RUNNING, remote_id=fake.add(
        "export", runs_for=1, request={"destination": {"datasetId": "ds"}}).id)
        for _ in range(3)]
    services.job_poll_step(job=jobs[0], now=clock.advance(5), transport=fake.transport())
    assert len(fake.requests) == 1 and fake.requests[0].method == "GET"
    assert set(Job.objects.values_list("status", flat=True)) == {JobStatus.SUCCEEDED}


def test_the_budget_bounds_polling_calls_per_minute(settings: Any, make_job: Any,
                                                    fake: FakeAEP, clock: Clock) -> None:
    settings.JOBS_POLL_BUDGET_PER_MINUTE = 3
    jobs = [make_job(JobKind.PREVIEW, JobStatus.RUNNING, remote_id=fake.add("preview").id)
            for _ in range(5)]
    steps = [services.job_poll_step(job=job, now=clock.now, transport=fake.transport())
             for job in jobs]
    assert len(fake.requests) == 3
    next_minute = clock.now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    assert [s.poll_due is not None and s.poll_due >= next_minute for s in steps] == [
        False, False, False, True, True]

    assert steps[-1].poll_due is not None
    clock.now = steps[-1].poll_due
    services.job_poll_step(job=jobs[-1], due=steps[-1].poll_due, now=clock.now,
                           transport=fake.transport())
    assert len(fake.requests) == 4


# --- cancel ---------------------------------------------------------------------------------------

def test_cancelling_a_pending_job_needs_no_call(make_job: Any, fake: FakeAEP,
                                                marketer: Any) -> None:
    job = make_job(status=JobStatus.PENDING, created_by=marketer)
    services.job_cancel(job=job, actor=marketer, transport=fake.transport())
    assert job.status == JobStatus.CANCELLED and fake.requests == []
    assert AuditEntry.objects.filter(action="job.cancel", object_id=str(job.pk)).exists()
    # its submit, when it comes, sends nothing
    assert services.job_submit(job=job, transport=fake.transport()).poll_due is None
    assert fake.jobs == {}


def test_cancelling_a_running_segment_job_asks_the_api(make_job: Any, fake: FakeAEP,
                                                       clock: Clock, marketer: Any) -> None:
    remote = fake.add("segment", request=[{"segmentId": "seg-def-1"}])
    job = make_job(status=JobStatus.RUNNING, remote_id=remote.id)
    services.job_cancel(job=job, actor=marketer, transport=fake.transport())
    assert job.status == JobStatus.CANCELLING
    assert [r.method for r in fake.requests] == ["DELETE"]
    services.job_refresh(job=job, now=clock.advance(5), transport=fake.transport())
    assert job.status == JobStatus.CANCELLED and job.finished_at is not None


def test_a_finished_job_cannot_be_cancelled(make_job: Any, marketer: Any) -> None:
    job = make_job(status=JobStatus.SUCCEEDED, remote_id="x")
    with pytest.raises(services.JobActionError, match=services.CANCEL_FINISHED):
        services.job_cancel(job=job, actor=marketer)


def test_a_job_missing_from_the_bulk_answer_is_asked_alone(make_job: Any, fake: FakeAEP,
                                                          clock: Clock) -> None:
    known = make_job(status=JobStatus.QUEUED, remote_id=fake.add(
        "segment", request=[{"segmentId": "a"}]).id)
    forgotten = make_job(status=JobStatus.QUEUED, remote_id="seg-gone")
    services.job_poll_step(job=known, now=clock.advance(2), transport=fake.transport())
    assert [(r.method, r.url.path.rsplit("/", 1)[1]) for r in fake.requests] == [
        ("POST", "bulk-get"), ("GET", "seg-gone")]
    forgotten.refresh_from_db()
    assert forgotten.status == JobStatus.FAILED
