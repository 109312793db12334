"""With its job queue (the Celery broker) down, the engine's API says so — 503 with the
gateway's error body and Retry-After — before it writes anything, so a client that retries once
the queue is back makes exactly one job. A real redis-server of the test's own is stopped and
started (tests/jobs/test_worker.py's fixtures)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.api.broker import QUEUE_DOWN, RETRY_AFTER_SECONDS
from engine.models import ExportJob, Preview, SegmentJob
from tests.engine.api.conftest import DEFINITIONS, UPS, Api, definition_body
from tests.engine.api.store import build_store
from tests.jobs.test_worker import Redis, broker, redis_server  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db

US = 'homeAddress.countryCode = "US"'


def test_the_api_answers_503_while_the_queue_is_down_and_creates_nothing(
        api: Api, tmp_path: Path, broker: Redis) -> None:  # noqa: F811
    build_store(tmp_path / "input")
    definition = api.post(DEFINITIONS, definition_body(name="US", value=US)).json()["id"]
    dataset = api.post("/data/foundation/catalog/dataSets", {
        "name": "Audience", "schemaRef": {"id": "https://ns.adobe.com/xdm/context/profile__union",
                                          "contentType": "application/vnd.adobe.xed+json"}})
    dataset_id = dataset.json()[0].split("/")[-1]
    creates: list[tuple[str, Any]] = [
        (f"{UPS}/preview", {"predicateExpression": US, "predicateType": "pql/text",
                            "predicateModel": "_xdm.context.profile"}),
        (f"{UPS}/segment/jobs", [{"segmentId": definition}]),
        (f"{UPS}/export/jobs", {
            "filter": {"segments": [{"segmentId": definition, "segmentNs": "ups",
                                     "status": ["realized"]}]},
            "destination": {"datasetId": dataset_id, "segmentPerBatch": False},
            "schema": {"name": "_xdm.context.profile"}}),
    ]
    broker.stop()
    try:
        for path, body in creates:
            response = api.post(path, body)
            assert response.status_code == 503, (path, response.content)
            assert response["Retry-After"] == str(RETRY_AFTER_SECONDS)
            assert response.json() == {"error_code": QUEUE_DOWN[0], "message": QUEUE_DOWN[1]
                                       .format(seconds=RETRY_AFTER_SECONDS)}
        assert not Preview.objects.exists() and not SegmentJob.objects.exists()
        assert not ExportJob.objects.exists()
        assert api.get(DEFINITIONS).status_code == 200  # reading never needs the queue
    finally:
        broker.start()
    for path, body in creates:  # the retry, once it is back: one of each
        response = api.post(path, body)
        assert response.status_code in (200, 201), (path, response.content)
    assert (Preview.objects.count(), SegmentJob.objects.count(),
            ExportJob.objects.count()) == (1, 1, 1)


def test_a_send_that_fails_after_the_commit_leaves_the_job_to_the_sweep(
        broker: Redis, caplog: pytest.LogCaptureFixture,  # noqa: F811
        django_capture_on_commit_callbacks: Any) -> None:
    """The queue went away between the check and the commit: the request that made the job
    still succeeds (the row is there; engine.tasks.jobs_sweep sends waiting jobs again)."""
    from engine.queue import send_on_commit
    from engine.tasks import preview_run

    broker.stop()
    try:
        with django_capture_on_commit_callbacks(execute=True) as sent:
            send_on_commit(lambda: preview_run.delay("MDp0ZXN0"), "preview MDp0ZXN0")
    finally:
        broker.start()
    assert len(sent) == 1  # it ran, and failed quietly: no exception reached the caller
    assert "could not send preview MDp0ZXN0 to a worker now; the sweep will" in caplog.text
