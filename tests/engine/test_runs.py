"""How engine jobs hold their rows (engine.runs): one run at a time, a heartbeat, and the sweep
that sends a job whose worker stopped to a worker again, fails it saying why after
ENGINE_JOB_MAX_REQUEUES tries, ends a cancelled one and resends a lost message. The jobs are
made through the engine's API and run by the engine's own code, in this process; the sweep's
messages go to a real Redis (the worker tests, tests/engine/test_worker_loss.py, kill real
workers)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from django.utils import timezone

from engine import exports, previews, segment_jobs
from engine.models import Batch, Dataset, ExportJob, Preview, SegmentJob
from engine.runs import Superseded, claim, jobs_sweep
from engine.tasks import preview_run
from engine.tasks_jobs import export_job_run, segment_job_run
from tests.engine.api.conftest import UPS, Api, api_settings, make_api  # noqa: F401
from tests.engine.api.store import build_store
from tests.jobs.test_worker import broker, redis_server  # noqa: F401

pytestmark = pytest.mark.django_db

CATALOG = "/data/foundation/catalog"
UNION = {"id": "https://ns.adobe.com/xdm/context/profile__union",
         "contentType": "application/vnd.adobe.xed+json;version=1"}
STOPPED_THRICE = ("the worker running it stopped 3 times before it finished (killed, out of "
                  "memory, past its time limit or restarted), so it is not tried again; run it "
                  "again, and if it stops again the engine workers' logs say why")


@pytest.fixture
def api(make_api: Any) -> Api:  # noqa: F811
    return make_api()  # type: ignore[no-any-return]


@pytest.fixture
def store(tmp_path: Path) -> None:
    build_store(tmp_path / "input")


@pytest.fixture
def engine_queue(broker: Any) -> Iterator[Callable[[], int]]:  # noqa: F811
    """Messages the engine's queue holds in the test's own Redis."""
    from config.celery import app

    # that Redis, whatever transport the settings name for the embedded broker
    transport, app.conf.broker_transport = app.conf.broker_transport, None
    queue = redis.Redis.from_url(broker.url)
    queue.delete("engine")
    try:
        yield lambda: int(queue.llen("engine"))
    finally:
        app.conf.broker_transport = transport


def later(seconds: float) -> Any:
    """The sweep's clock, `seconds` after now."""
    return timezone.now() + timedelta(seconds=seconds)


def definition(api: Api, name: str, pql: str) -> str:
    response = api.post(f"{UPS}/segment/definitions", {
        "name": name, "expression": {"type": "PQL", "format": "pql/text", "value": pql},
        "schema": {"name": "_xdm.context.profile"}})
    assert response.status_code == 200, response.content
    return str(response.json()["id"])


def new_segment_job(api: Api) -> SegmentJob:
    us = definition(api, "US", 'homeAddress.countryCode = "US"')
    response = api.post(f"{UPS}/segment/jobs", [{"segmentId": us}])
    assert response.status_code == 200, response.content
    return SegmentJob.objects.get(pk=response.json()["id"])


def new_export(api: Api, *, segmentation: bool = True) -> ExportJob:
    loyal = definition(api, "Loyal", "loyalty.points > 100")
    created = api.post(f"{CATALOG}/dataSets", {"name": "Audiences", "schemaRef": UNION})
    dataset = created.json()[0].rsplit("/", 1)[1]
    response = api.post(f"{UPS}/export/jobs", {
        "schema": {"name": "_xdm.context.profile"}, "destination": {"datasetId": dataset},
        "filter": {"segments": [{"segmentId": loyal, "segmentNs": "ups"}]},
        "evaluationInfo": {"segmentation": segmentation}})
    assert response.status_code == 200, response.content
    job = ExportJob.objects.select_related("destination").get(pk=response.json()["id"])
    assert job.destination is not None
    return job


def destination(job: ExportJob) -> Dataset:
    assert job.destination is not None
    return job.destination


def catalog_statuses(api: Api) -> list[str]:
    return sorted(body["status"] for body in api.get(f"{CATALOG}/batches").json().values())


def test_a_job_a_worker_holds_is_not_run_again_by_a_second_delivery(
        api: Api, store: None) -> None:
    job = new_segment_job(api)
    assert claim(segment_jobs.RUNS, job) is not None  # a worker runs it

    segment_job_run(str(job.pk))  # the same task, delivered again

    job.refresh_from_db()
    assert (job.status, job.attempts, job.metrics.get("segmentedProfileCounter")) == (
        "PROCESSING", 1, None)
    assert claim(segment_jobs.RUNS, job) is None


def test_a_job_whose_worker_stopped_is_sent_again_and_the_old_run_writes_nothing(
        api: Api, store: None, engine_queue: Callable[[], int], settings: Any) -> None:
    job = new_segment_job(api)
    stopped = claim(segment_jobs.RUNS, job)
    assert stopped is not None
    assert jobs_sweep(now=later(settings.ENGINE_JOB_STALE_SECONDS - 5)).requeued == 0

    swept = jobs_sweep(now=later(settings.ENGINE_JOB_STALE_SECONDS + 1))

    assert swept.requeued == 1 and engine_queue() == 1
    job.refresh_from_db()
    assert (job.status, job.heartbeat_at) == ("QUEUED", None)
    with pytest.raises(Superseded):  # the worker thought dead wakes up: it may write nothing
        stopped.save(status="SUCCEEDED")
    segment_job_run(str(job.pk))  # the message the sweep sent
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("SUCCEEDED", 2)
    assert list(job.metrics["segmentedProfileCounter"].values()) == [4]
    assert jobs_sweep(now=later(settings.ENGINE_JOB_STALE_SECONDS + 1)).requeued == 0


def test_an_export_whose_worker_keeps_stopping_fails_saying_so_with_its_batch_and_segment_job(
        api: Api, store: None, settings: Any) -> None:
    job = new_export(api)
    # as its third run left it when its worker was killed mid-segmentation
    run = claim(exports.RUNS, job)
    assert run is not None
    batch = Batch.objects.create(dataset=destination(job), source_files=[f"export job {job.pk}"])
    own = SegmentJob.objects.create(sandbox="prod", segment_ids=[], export_job=job,
                                    status="PROCESSING", attempts=3, heartbeat_at=timezone.now())
    ExportJob.objects.filter(pk=job.pk).update(batch=batch, attempts=3)
    assert catalog_statuses(api) == ["loading", "success", "success"]

    swept = jobs_sweep(now=later(settings.ENGINE_JOB_STALE_SECONDS + 1))

    assert (swept.failed, swept.requeued) == (1, 0)
    body = api.get(f"{UPS}/export/jobs/{job.pk}").json()
    assert body["status"] == "FAILED"
    assert body["errors"][0]["msg"] == f"Error in Export Job: {STOPPED_THRICE}"
    shown = api.get(f"{CATALOG}/batches/{batch.pk}").json()[batch.pk]
    assert shown["status"] == "failed"
    assert catalog_statuses(api) == ["failed", "success", "success"]
    body = api.get(f"{UPS}/segment/jobs/{own.pk}").json()
    assert body["status"] == "FAILED"
    assert body["errors"][0]["msg"] == exports.SEGMENTATION_ENDED.format(
        id=job.pk, reason=f"Error in Export Job: {STOPPED_THRICE}")
    export_job_run(job.pk)  # the broker's own redelivery, an hour later: nothing to do
    assert ExportJob.objects.get(pk=job.pk).status == "FAILED"


def test_a_preview_and_a_batch_whose_workers_keep_stopping_fail_saying_so(
        api: Api, store: None, settings: Any) -> None:
    settings.ENGINE_JOB_MAX_REQUEUES = 0  # the first stop is the last
    response = api.post(f"{UPS}/preview", {"predicateExpression": 'homeAddress.countryCode = "US"',
                                           "predicateType": "pql/text",
                                           "predicateModel": "_xdm.context.profile"})
    preview = Preview.objects.get(pk=response.json()["previewId"])
    assert claim(previews.RUNS, preview) is not None
    batch = Batch.objects.filter(dataset__sandbox="prod", status="success").first()
    assert batch is not None
    Batch.objects.filter(pk=batch.pk).update(status="processing", attempts=1,
                                             heartbeat_at=timezone.now())

    assert jobs_sweep(now=later(settings.ENGINE_JOB_STALE_SECONDS + 1)).failed == 2

    body = api.get(f"{UPS}/estimate/{preview.pk}").json()
    assert body["state"] == "FAILED"
    assert body["error"]["description"] == ("The estimate failed: the worker running it "
                                            "stopped once before it finished (killed, out of "
                                            "memory, past its time limit or restarted), so it "
                                            "is not tried again; run it again, and if it stops "
                                            "again the engine workers' logs say why")
    shown = api.get(f"{CATALOG}/batches/{batch.pk}").json()[batch.pk]
    assert shown["status"] == "failed"
    assert shown["errors"][0]["description"].startswith(
        "The engine could not ingest the batch: the worker running it stopped once")


def test_a_cancel_asked_of_a_job_no_worker_runs_ends_it(api: Api, store: None,
                                                        settings: Any) -> None:
    waiting = new_segment_job(api)  # never taken by a worker
    job = new_export(api, segmentation=False)
    assert claim(exports.RUNS, job) is not None  # taken by one that then died
    batch = Batch.objects.create(dataset=destination(job), source_files=[f"export job {job.pk}"])
    ExportJob.objects.filter(pk=job.pk).update(batch=batch)
    for path in (f"segment/jobs/{waiting.pk}", f"export/jobs/{job.pk}"):
        assert api.delete(f"{UPS}/{path}").status_code in (200, 204)

    assert jobs_sweep().cancelled == 1  # the one no worker ever held: now
    assert jobs_sweep(now=later(settings.ENGINE_JOB_STALE_SECONDS + 1)).cancelled == 1

    assert api.get(f"{UPS}/segment/jobs/{waiting.pk}").json()["status"] == "CANCELLED"
    assert api.get(f"{UPS}/export/jobs/{job.pk}").json()["status"] == "CANCELLED"
    assert api.get(f"{CATALOG}/batches/{batch.pk}").json()[batch.pk]["status"] == "failed"


def test_a_job_waiting_longer_than_the_resend_period_is_sent_again_once(
        api: Api, store: None, engine_queue: Callable[[], int], settings: Any) -> None:
    job = new_segment_job(api)  # its message lost: the broker restarted, say
    moment = later(settings.ENGINE_JOB_RESEND_SECONDS + 1)

    assert jobs_sweep(now=later(settings.ENGINE_JOB_RESEND_SECONDS - 5)).resent == 0
    assert jobs_sweep(now=moment).resent == 1
    assert jobs_sweep(now=moment).resent == 0  # not again within the period
    assert engine_queue() == 1
    segment_job_run(str(job.pk))
    segment_job_run(str(job.pk))  # the first message, found after all: nothing to do
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("SUCCEEDED", 1)


@pytest.mark.django_db(transaction=True)
def test_a_running_job_beats_while_one_long_step_holds_it(
        api: Api, store: None, settings: Any) -> None:
    settings.ENGINE_JOB_HEARTBEAT_SECONDS = 0.05
    settings.ENGINE_JOB_STALE_SECONDS = 0.5
    job = new_segment_job(api)
    run = claim(segment_jobs.RUNS, job)
    assert run is not None and job.heartbeat_at is not None
    claimed = job.heartbeat_at
    with run:
        time.sleep(1.0)  # one DuckDB query that takes long: no progress point meanwhile
        assert jobs_sweep().requeued == 0
        job.refresh_from_db()
        assert job.heartbeat_at is not None and job.heartbeat_at > claimed + timedelta(
            seconds=0.8)
    last = SegmentJob.objects.get(pk=job.pk).heartbeat_at
    time.sleep(0.2)
    assert SegmentJob.objects.get(pk=job.pk).heartbeat_at == last  # the run ended: no beats


def test_a_run_that_ends_unfinished_gives_its_job_back(api: Api, store: None) -> None:
    response = api.post(f"{UPS}/preview", {"predicateExpression": 'homeAddress.countryCode = "US"',
                                           "predicateType": "pql/text",
                                           "predicateModel": "_xdm.context.profile"})
    preview_id = response.json()["previewId"]
    steps = previews.preview_steps(preview_id, steps=4)
    next(steps)
    steps.close()  # a generator closed mid-run, as an interrupted task leaves it

    row = Preview.objects.get(pk=preview_id)
    assert (row.state, row.heartbeat_at, row.attempts) == ("NEW", None, 1)
    preview_run(preview_id)
    assert Preview.objects.get(pk=preview_id).state == "RESULT_READY"


def test_a_snapshot_whose_build_stopped_after_its_batch_succeeded_is_built_again(
        api: Api, store: None, engine_queue: Callable[[], int], settings: Any,
        tmp_path: Path) -> None:
    import json

    from engine.ingest import batch_ingest
    from engine.models import Dataset, Snapshot
    from engine.snapshot import BUILD_STOPPED, snapshot_build
    from engine.storage import snapshots_dir
    from engine.tasks_jobs import snapshot_rebuild
    from tests.engine.api.store import person

    def estimate() -> int:
        response = api.post(f"{UPS}/preview", {
            "predicateExpression": 'homeAddress.countryCode = "NL"',
            "predicateType": "pql/text", "predicateModel": "_xdm.context.profile"})
        preview_run(response.json()["previewId"])
        return int(api.get(f"{UPS}/estimate/{response.json()['previewId']}")
                   .json()["estimatedSize"])

    path = tmp_path / "late.json"
    path.write_text(json.dumps(person("gus", "NL", 5)) + "\n")
    batch = batch_ingest(dataset=Dataset.objects.get(sandbox="prod", name="CRM"), paths=[path])
    # the build that followed, as its worker left it when killed
    dead = Snapshot.objects.create(sandbox="prod", file_name="dead.duckdb")
    leftover = snapshots_dir("prod") / ".dead.duckdb.building"
    leftover.write_bytes(b"half")
    assert estimate() == 0

    assert jobs_sweep(now=later(settings.ENGINE_JOB_STALE_SECONDS - 5)).rebuilt == 0
    assert jobs_sweep(now=later(settings.ENGINE_JOB_STALE_SECONDS + 1)).rebuilt == 1

    dead.refresh_from_db()
    assert (dead.status, dead.failure_reason) == ("failed", BUILD_STOPPED)
    assert not leftover.exists() and engine_queue() == 1
    assert batch.completed_at is not None
    snapshot_rebuild("prod", batch.completed_at.isoformat())  # the message the sweep sent
    assert estimate() == 1
    assert jobs_sweep(now=later(settings.ENGINE_JOB_STALE_SECONDS + 1)).rebuilt == 0
    snapshot_build(sandbox="prod")  # (the store's own builds are not the sweep's business)
