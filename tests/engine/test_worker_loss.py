"""Engine jobs survive their worker (issue 15), with real processes: a Celery worker (prefork,
its own process group) over a real Redis, the engine's API over the live server, and
`celery beat` running engine.tasks.jobs_sweep.

The worker is SIGKILLed while it runs, each held at a progress point (ENGINE_JOB_PAUSES), a
preview, a segment job, an export with evaluationInfo.segmentation (in its segment job), an
export without (writing) and a Batch Ingestion batch (loading). A worker comes back, beat
sweeps every second: each job is final seconds later, with its counts, run once more and no
more; an export has one batch and one segment job; Catalog lists no batch loading. And a
`manage.py ingest` killed mid-batch leaves nothing listed; its next run ingests once.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from aep.auth import Credentials
from aep.client import AEPClient
from tests.engine.api.store import build_store, person
from tests.jobs.test_worker import (  # noqa: F401 — the fixtures below use them
    broker,
    redis_server,
    shared_database,
    wait_until,
    workers,
)

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
ORG = "LOSS@AdobeOrg"
US = 'homeAddress.countryCode = "US"'  # ann, bo, di, flo
LOYAL = "loyalty.points > 100"  # ann, cy, di
PAUSES = "preview-step=120,segment-evaluate=120,export-write=120,ingest-write=120"
STALE_SECONDS = 5.0  # the sweep's threshold in this test; heartbeats come every 0.3 s
SWEEP_SECONDS = 1.0


class Processes:
    """Celery processes each in a process group of its own, so that one SIGKILL takes a
    prefork worker with its children, as an out-of-memory kill or a container stop does."""

    def __init__(self, env: dict[str, str], folder: Path) -> None:
        self.env = env
        self.folder = folder
        self.started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(self, name: str, args: list[str], ready: str, **env: str) -> subprocess.Popen[bytes]:
        log = self.folder / f"{name}.log"
        with log.open("w") as out:
            process = subprocess.Popen([sys.executable, "-m", "celery", "-A", "config", *args],
                                       cwd=ROOT, env={**self.env, **env}, stdout=out,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        self.started.append((process, log))
        wait_until(lambda: ready in log.read_text(), 40, f"{name} to start", self.logs)
        return process

    def worker(self, name: str, concurrency: int, **env: str) -> subprocess.Popen[bytes]:
        return self.start(name, [
            "worker", "--queues", "engine", "--pool", "prefork", "--concurrency",
            str(concurrency), "--loglevel", "INFO", "--hostname",
            f"loss-{uuid.uuid4().hex[:8]}@%h", "--without-gossip", "--without-mingle",
            "--without-heartbeat"], " ready.", **env)

    def beat(self) -> subprocess.Popen[bytes]:
        return self.start("beat", ["beat", "--loglevel", "INFO", "--schedule",
                                   str(self.folder / "beat-schedule")],
                          "beat: Starting")

    def logs(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text()[-4000:]}"
                         for _, log in self.started)

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop_all(self) -> None:
        for process, _ in self.started:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process, _ in self.started:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def celery(workers: Any, tmp_path: Path) -> Iterator[Processes]:  # noqa: F811
    from config.celery import app

    # the broker fixture's Redis, whatever transport the settings name for the embedded broker
    transport, app.conf.broker_transport = app.conf.broker_transport, None
    env = {**workers.env, "ENGINE_JOB_HEARTBEAT_SECONDS": "0.3",
           "ENGINE_JOB_STALE_SECONDS": str(STALE_SECONDS),
           "ENGINE_JOBS_SWEEP_SECONDS": str(SWEEP_SECONDS)}
    running = Processes(env, tmp_path)
    try:
        yield running
    finally:
        running.stop_all()
        app.conf.broker_transport = transport


@pytest.fixture
def engine(shared_database: str, live_server: Any, tmp_path: Path) -> AEPClient:  # noqa: F811
    """An API client of the engine on the live server, in sandboxes prod (a small store with
    a snapshot) and dev (empty: ingestion there leaves prod's snapshot as it is)."""
    from engine.api.services import api_client_create

    build_store(tmp_path / "input")
    row, secret = api_client_create(name="worker loss", org_id=ORG, sandboxes=["prod", "dev"])
    return AEPClient(live_server.url, Credentials(ims_url=live_server.url,
                                                  client_id=row.client_id,
                                                  client_secret=secret, org_id=ORG))


def export_body(dataset_id: str, segment_id: str | None, *, segmentation: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"fields": "person.name.firstName",
                            "schema": {"name": "_xdm.context.profile"},
                            "destination": {"datasetId": dataset_id},
                            "evaluationInfo": {"segmentation": segmentation}}
    if segment_id is not None:
        body["filter"] = {"segments": [{"segmentId": segment_id, "segmentNs": "ups",
                                        "status": ["realized", "existing"]}]}
    return body


def paused(log: Path) -> int:
    return log.read_text().count("engine job paused at")


def test_a_worker_killed_mid_five_jobs_leaves_each_final_once_with_its_count(
        engine: AEPClient, celery: Processes, tmp_path: Path) -> None:
    from engine.models import Batch, ExportJob, Preview, SegmentJob

    us = engine.create_definition(name="US", pql_text=US).id
    loyal = engine.create_definition(name="Loyal", pql_text=LOYAL).id
    exports = engine.create_dataset(name="Audiences")
    dev = engine.with_sandbox("dev")
    late = dev.create_dataset(name="Late CRM", schema_ref="https://ns.adobe.com/xdm/context/profile",
                              profile_enabled=True)
    people = tmp_path / "late.json"
    people.write_text("".join(json.dumps(person(*p)) + "\n"
                              for p in (("gus", "NL", 5), ("hal", "NL", None))))

    doomed = celery.worker("doomed", 5, ENGINE_JOB_PAUSES=PAUSES)
    log = celery.started[-1][1]
    preview = engine.create_preview(pql_text=US).id
    segment_job = engine.create_segment_job([us]).id
    fresh = engine.create_export_job(export_body(exports, loyal, segmentation=True)).id
    everyone = engine.create_export_job(export_body(exports, None, segmentation=False)).id
    batch = dev.create_batch(late).id
    dev.upload_batch_file(batch, late, "late.json", people)
    dev.complete_batch(batch)
    wait_until(lambda: paused(log) == 5, 40, "the five jobs to be mid-run", celery.logs)

    celery.kill(doomed)
    assert SegmentJob.objects.get(pk=segment_job).status == "PROCESSING"
    assert ExportJob.objects.get(pk=fresh).batch is not None
    assert {b.status for b in engine.batches(dataset_id=exports)} == {"loading"}
    back = time.monotonic()
    celery.worker("revived", 2)
    celery.beat()

    def final() -> bool:
        return (Preview.objects.get(pk=preview).state == "RESULT_READY"
                and Batch.objects.get(pk=batch).status == "success"
                and SegmentJob.objects.get(pk=segment_job).status == "SUCCEEDED"
                and {j.status for j in ExportJob.objects.filter(pk__in=[fresh, everyone])}
                == {"SUCCEEDED"})

    wait_until(final, STALE_SECONDS + 40, "every job to be final", celery.logs)
    recovered = time.monotonic() - back
    print(f"kill → every job final: {recovered:.1f} s (stale after {STALE_SECONDS} s, "
          f"sweep every {SWEEP_SECONDS} s)")
    assert recovered < STALE_SECONDS + 30

    # each ran twice: once killed, once to the end (no third run, no second batch)
    assert Preview.objects.get(pk=preview).attempts == 2
    assert engine.get_estimate(preview).estimated_size == 4
    job = SegmentJob.objects.get(pk=segment_job)
    assert job.attempts == 2
    assert job.metrics["segmentedProfileCounter"] == {us: 4}
    assert job.metrics["segmentedProfileByStatusCounter"][us]["realized"] == 4
    own = SegmentJob.objects.filter(export_job_id=int(fresh))
    assert [(j.status, j.attempts, j.metrics["segmentedProfileCounter"]) for j in own] == [
        ("SUCCEEDED", 2, {loyal: 3})]
    catalog = {b.id: b for b in engine.batches(dataset_id=exports)}
    assert len(catalog) == 2 and {b.status for b in catalog.values()} == {"success"}
    for export_id, count in ((fresh, 3), (everyone, 6)):
        row = ExportJob.objects.get(pk=export_id)
        assert row.attempts == 2 and row.batch_id in catalog
        assert engine.get_export_job(export_id).metrics["totalExportedProfileCounter"] == count
        assert catalog[row.batch_id].records_written == count
        [(file_id, entry)] = engine.batch_downloads(row.batch_id)
        assert entry.name is not None
        parquet = pq.read_table(io.BytesIO(engine.download(file_id, entry.name)))
        assert parquet.num_rows == count
    ingested = Batch.objects.get(pk=batch)
    assert ingested.attempts == 2 and ingested.record_count == 2
    assert [b.status for b in dev.batches()] == ["success"]
    assert not [b for b in engine.batches() if b.status in ("loading", "processing")]


# --- manage.py ingest ---------------------------------------------------------------------------

def ingest(env: dict[str, str], log: Path, dataset: str, path: Path,
           **extra: str) -> subprocess.Popen[bytes]:
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "manage.py", "ingest", "--dataset", dataset, "--class", "profile",
             "--no-snapshot", str(path)],
            cwd=ROOT, env={**env, **extra}, stdout=out, stderr=subprocess.STDOUT)


def test_manage_py_ingest_killed_mid_batch_leaves_nothing_listed_and_runs_again_once(
        engine: AEPClient, workers: Any, settings: Any, tmp_path: Path) -> None:  # noqa: F811
    from engine.models import Batch, Dataset
    from engine.storage import sandbox_dir

    people = tmp_path / "people.json"
    people.write_text("".join(json.dumps(person(*p)) + "\n"
                              for p in (("gus", "NL", 5), ("hal", "NL", None), ("ida", "US", 7))))
    before = {b.id for b in engine.batches()}
    datasets = sandbox_dir("prod") / "datasets"
    crm = Dataset.objects.get(sandbox="prod", name="CRM")
    logs = [tmp_path / f"ingest-{name}.log" for name in ("Fresh", "CRM")]
    processes = [ingest(workers.env, log, name, people, ENGINE_JOB_PAUSES="ingest-write=120")
                 for log, name in zip(logs, ("Fresh", "CRM"), strict=True)]  # new, and not
    wait_until(lambda: all("paused at ingest-write" in log.read_text() for log in logs), 40,
               "both ingestions to be mid-batch", lambda: "".join(x.read_text() for x in logs))
    for process in processes:
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=10) == -signal.SIGKILL

    # nothing listed: no new dataset, no new batch, none loading
    assert sorted(d.name for d in engine.datasets()) == ["CRM", "Web"]
    assert {b.id for b in engine.batches()} == before
    assert list(Batch.objects.filter(dataset__sandbox="prod").exclude(status="success")) == []
    # only files nobody lists: the staging folders of the two batches
    left = sorted(p.name for p in datasets.glob("*/.*.staging"))
    assert len(left) == 2

    for name in ("Fresh", "CRM"):  # the next runs (leftovers older than ENGINE_JOB_STALE_SECONDS)
        log = tmp_path / f"again-{name}.log"
        process = ingest(workers.env, log, name, people, ENGINE_JOB_STALE_SECONDS="0")
        assert process.wait(timeout=60) == 0, log.read_text()

    fresh = Dataset.objects.get(sandbox="prod", name="Fresh")
    assert [(b.status, b.record_count) for b in fresh.batches.all()] == [("success", 3)]
    assert [b.record_count for b in crm.batches.order_by("created_at")] == [6, 3]
    assert sorted(d.name for d in engine.datasets()) == ["CRM", "Fresh", "Web"]
    assert len({b.id for b in engine.batches()} - before) == 2
    assert list(datasets.glob("*/.*.staging")) == []
    assert sorted(p.name for p in datasets.iterdir()) == sorted(
        Dataset.objects.filter(sandbox="prod").values_list("id", flat=True))
