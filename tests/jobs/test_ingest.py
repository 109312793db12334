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
