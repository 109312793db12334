"""Ingestion jobs on a fake AEP (httpx.MockTransport, Batch Ingestion and Catalog shapes): the
submit creates a batch, streams the kept file into it and completes it, then the polls follow
the Catalog batch to success or failure; the kept file goes once the platform has it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings

from jobs import services
from jobs.models import Job, JobKind, JobStatus
from tests.jobs.conftest import Clock

pytestmark = pytest.mark.django_db

DATASET = "5c8c3c555033b814b69f947f"
BATCH = "5d01230fc78a4e4f8c0c6b387b4b8d1c"


@dataclass
class FakeIngestion:
    """IMS, POST /import/batches, PUT of a file, COMPLETE, and GET /catalog/batches/{id}
    answering the statuses of `statuses` in order (the last one repeated)."""

    statuses: list[str] = field(default_factory=lambda: ["processing", "success"])
    errors: list[dict[str, Any]] = field(default_factory=list)
    uploaded: bytes = b""
    calls: list[str] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/ims/token/v3":
            return httpx.Response(200, json={"access_token": "fake-token",
                                             "token_type": "bearer", "expires_in": 86399})
        query = request.url.query.decode()
        self.calls.append(f"{request.method} {path}" + (f"?{query}" if query else ""))
        if request.method == "POST" and path == "/data/foundation/import/batches":
            return httpx.Response(201, json={"id": BATCH, "status": "loading",
                                             "relatedObjects": [{"type": "dataSet",
                                                                 "id": DATASET}]})
        if request.method == "PUT":
            self.uploaded = request.read()
            return httpx.Response(200)
        if request.method == "POST":
            return httpx.Response(200)
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        body: dict[str, Any] = {"status": status, "created": 1764417600000,
                                "relatedObjects": [{"type": "dataSet", "id": DATASET}]}
        if status == "success":
            body["metrics"] = {"recordsRead": 3, "recordsWritten": 3, "failedRecordCount": 0}
        if status == "failed":
            body["metrics"] = {"recordsRead": 3, "recordsWritten": 0, "failedRecordCount": 3}
            body["errors"] = self.errors
        return httpx.Response(200, json={BATCH: body})

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)


def kept_file(job: Job) -> Path:
    return Path(settings.VAR_DIR) / "uploads" / job.request["upload"]


@pytest.fixture
def ingest_job(make_job: Any, tmp_path: Path, settings: Any) -> Job:
    settings.VAR_DIR = tmp_path
    job = make_job(JobKind.SEGMENT, JobStatus.PENDING, label="crm.jsonl into CRM")
    job.kind = JobKind.INGEST
    job.request = {"datasetId": DATASET, "datasetName": "CRM", "format": "json",
                   "fileName": "crm.jsonl", "upload": "f00/crm.jsonl", "size": 27}
    job.save()
    kept_file(job).parent.mkdir(parents=True)
    kept_file(job).write_bytes(b'{"a": 1}\n{"a": 2}\n{"a": 3}\n')
    return job


def test_the_submit_sends_the_file_into_a_new_batch_and_the_polls_follow_it(
        ingest_job: Job, clock: Clock) -> None:
    fake = FakeIngestion()
    step = services.job_submit(job=ingest_job, now=clock.now, transport=fake.transport())
    job = step.job
    assert fake.calls == ["POST /data/foundation/import/batches",
                          f"PUT /data/foundation/import/batches/{BATCH}/datasets/{DATASET}"
                          "/files/crm.jsonl",
                          f"POST /data/foundation/import/batches/{BATCH}?action=COMPLETE",
                          f"GET /data/foundation/catalog/batches/{BATCH}"]
    assert fake.uploaded == b'{"a": 1}\n{"a": 2}\n{"a": 3}\n'
    assert not kept_file(job).exists()  # the platform has it now
    assert (job.status, job.remote_id, job.remote_status) == (JobStatus.RUNNING, BATCH,
                                                              "processing")
    job = services.job_refresh(job=job, now=clock.advance(2), transport=fake.transport())
    assert job.status == JobStatus.SUCCEEDED
    assert job.metrics == {"recordsRead": 3, "recordsWritten": 3, "failedRecordCount": 0,
                           "batchId": BATCH, "datasetId": DATASET}


def test_a_failed_batch_fails_the_job_with_the_platforms_reason(
        ingest_job: Job, clock: Clock) -> None:
    fake = FakeIngestion(statuses=["processing", "failed"], errors=[
        {"code": "INGEST-1212-400", "description": "3 of 3 records have no identity",
         "rows": 3}])
    job = services.job_submit(job=ingest_job, now=clock.now, transport=fake.transport()).job
    job = services.job_refresh(job=job, now=clock.advance(2), transport=fake.transport())
    assert job.status == JobStatus.FAILED
    assert (job.error_code, job.error_message) == ("INGEST-1212-400",
                                                   "3 of 3 records have no identity")
    assert job.metrics["failedRecordCount"] == 3


def test_a_running_ingestion_cannot_be_cancelled(ingest_job: Job, clock: Clock) -> None:
    job = services.job_submit(job=ingest_job, now=clock.now,
                              transport=FakeIngestion().transport()).job
    with pytest.raises(services.JobActionError) as refused:
        services.job_cancel(job=job, actor=None)
    assert str(refused.value) == services.CANCEL_INGEST
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING


def test_a_kept_file_that_vanished_fails_the_job_and_says_to_upload_again(
        ingest_job: Job, clock: Clock) -> None:
    kept_file(ingest_job).unlink()
    fake = FakeIngestion()
    job = services.job_submit(job=ingest_job, now=clock.now, transport=fake.transport()).job
    assert job.status == JobStatus.FAILED
    assert services.UPLOAD_MISSING.format(name="crm.jsonl") in job.error_message
    assert fake.calls == []  # nothing was sent


class CompleteAnswerLost(httpx.BaseTransport):
    """Delivers every request, but loses the answer of the first COMPLETE (a read timeout):
    the platform ingests the batch while the submitting worker never hears of it."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.lost = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if "action=COMPLETE" in str(request.url) and not self.lost:
            self.lost = True
            raise httpx.ReadTimeout("the answer never came", request=request)
        return response


def test_a_retried_submit_resumes_its_batch_and_never_sends_the_file_twice(
        ingest_job: Job, clock: Clock) -> None:
    from aep import AEPTransientError

    fake = FakeIngestion(statuses=["processing", "success"])
    with pytest.raises(AEPTransientError):
        services.job_submit(job=ingest_job, now=clock.now,
                            transport=CompleteAnswerLost(fake.transport()))
    ingest_job.refresh_from_db()
    assert ingest_job.status == JobStatus.SUBMITTING and ingest_job.remote_id == BATCH
    job = services.job_submit(job=ingest_job, now=clock.advance(5),
                              transport=fake.transport()).job
    assert [call.split(" ")[0] for call in fake.calls] == ["POST", "PUT", "POST", "GET"]
    assert (job.status, job.remote_id) == (JobStatus.RUNNING, BATCH)
    assert not kept_file(job).exists()


def test_a_retried_submit_of_a_batch_still_loading_sends_the_file_again_and_completes_it(
        ingest_job: Job, clock: Clock) -> None:
    from aep import AEPTransientError

    fake = FakeIngestion(statuses=["loading", "processing"])
    with pytest.raises(AEPTransientError):  # COMPLETE never reached the platform
        services.job_submit(job=ingest_job, now=clock.now,
                            transport=CompleteNeverArrives(fake.transport()))
    job = services.job_submit(job=ingest_job, now=clock.advance(5),
                              transport=fake.transport()).job
    methods = [call.split(" ")[0] for call in fake.calls]
    assert methods == ["POST", "PUT", "GET", "PUT", "POST", "GET"]  # one batch, resumed
    assert fake.calls.count("POST /data/foundation/import/batches") == 1
    assert job.status == JobStatus.RUNNING and not kept_file(job).exists()


class CompleteNeverArrives(httpx.BaseTransport):
    """Times out every COMPLETE before the platform sees it (a POST: not retried)."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if "action=COMPLETE" in str(request.url):
            raise httpx.ReadTimeout("no answer", request=request)
        return self.inner.handle_request(request)
