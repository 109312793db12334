"""Real Celery workers over a real Redis drive jobs against the built-in engine served by
the live server; a worker killed with SIGKILL mid-poll, and a Redis restart, lose no job.

The workers are subprocesses sharing the test database (copied into a file for the test when
it is SQLite's in-memory one, see `shared_database`) and ENGINE_DATA_DIR. Redis is a
redis-server of our own on a free port when the binary exists (so it can be restarted, and no
other worker on the machine's Redis takes our messages), else the configured Redis on db 15.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis
from django.db import connection as db_connection
from django.db import connections
from django.utils import timezone

from tests.test_celery_worker import isolated_redis_url

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
US = 'homeAddress.countryCode = "US"'  # ann, bo, di and flo in tests/engine/api/store.py


@pytest.fixture
def shared_database(live_server: Any, tmp_path: Path) -> Iterator[str]:
    """The test database, as a DATABASE_URL the worker processes can open too.

    PostgreSQL's test database is shared as it is. SQLite's is in memory, which no other
    process can open: for this test it is copied into a file. The live server's threads share
    one connection (pytest-django's way with an in-memory database, so the server starts
    first); it is pointed at the file, and this thread gets a connection of its own to it,
    so that no sqlite3 connection is ever used by two threads at once. Afterwards the
    in-memory database, kept alive meanwhile, is back."""
    if not (db_connection.vendor == "sqlite"
            and db_connection.is_in_memory_db()):  # type: ignore[attr-defined]
        yield database_url()
        return
    # the connection the server's threads use (this thread's, unless it was replaced since)
    shared = live_server.thread.connections_override.get("default", connections["default"])
    mine = connections["default"]
    memory = shared.settings_dict["NAME"]
    keeper = sqlite3.connect(memory, uri=True)  # an in-memory database lives while one is open
    path = tmp_path / "test-database.sqlite3"
    shared.ensure_connection()
    with sqlite3.connect(path) as copy:
        shared.connection.backup(copy)
    copy.close()
    shared.settings_dict["NAME"] = str(path)
    # connect(), not close(): a server thread may be mid-query on the old connection
    shared.connect()
    own = connections.create_connection("default")
    connections["default"] = own
    # After each request the live server closes its connections — a no-op in memory, which
    # another request thread may be using meanwhile: so it stays a no-op on the file.
    shared.close = lambda: None  # type: ignore[method-assign]
    try:
        yield database_url()
    finally:
        own.close()
        connections["default"] = mine
        shared.settings_dict["NAME"] = memory  # from here on close() is a no-op again anyway
        shared.connect()
        del shared.close
        if mine is not shared:
            mine.connect()
        keeper.close()


def database_url() -> str:
    """The test database, as DATABASE_URL for a subprocess."""
    db = db_connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = quote(db.get("USER") or "")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"])
    return (f"postgres://{auth}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}"
            f"/{db['NAME']}")


def wait_until(check: Callable[[], Any], seconds: float, what: str,
               logs: Callable[[], str] = lambda: "") -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}\n{logs()[-4000:]}")


# --- Redis ---------------------------------------------------------------------------------------

@dataclass
class Redis:
    url: str
    port: int | None = None  # set when it is our own redis-server, which can be restarted
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self.port is not None
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self.answers, 10, "redis-server to answer")

    def answers(self) -> bool:
        try:
            return bool(redis.Redis.from_url(self.url, socket_connect_timeout=0.5).ping())
        except redis.ConnectionError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def restart(self) -> None:
        """Everything it held (queues, unacknowledged messages, the cache) is gone."""
        self.stop()
        self.start()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def redis_server() -> Iterator[Redis]:
    if shutil.which("redis-server"):
        port = free_port()
        server = Redis(f"redis://127.0.0.1:{port}/0", port)
        server.start()
        try:
            yield server
        finally:
            server.stop()
        return
    server = Redis(isolated_redis_url())
    if not server.answers():
        pytest.fail(f"No Redis answers at {server.url}: start redis-server or set REDIS_URL.")
    yield server


@pytest.fixture
def broker(redis_server: Redis) -> Iterator[Redis]:
    """This process sends its tasks (the engine's, ours, the sweep's) to that Redis too."""
    from kombu import pools

    from config.celery import app

    saved = (app.conf.broker_url, app.conf.broker_transport, app.conf.broker_transport_options)

    def reset() -> None:  # forget pooled connections to the previous broker
        pools.reset()
        app._pool = None
        app.amqp._producer_pool = None

    app.conf.broker_url = redis_server.url
    app.conf.broker_transport = None  # the URL's (without REDIS_URL settings name another)
    app.conf.broker_transport_options = {"visibility_timeout": 3600}
    reset()
    if redis_server.port is None:  # the shared Redis: start from empty queues
        redis.Redis.from_url(redis_server.url).flushdb()
    try:
        yield redis_server
    finally:
        app.conf.broker_url, app.conf.broker_transport, app.conf.broker_transport_options = saved
        reset()


# --- workers -------------------------------------------------------------------------------------

@dataclass
class Workers:
    redis_url: str
    folder: Path
    env: dict[str, str]
    started: list[tuple[subprocess.Popen[bytes], Path, str]] = field(default_factory=list)

    def start(self, queues: str) -> subprocess.Popen[bytes]:
        number = len(list(self.folder.glob("worker-*")))
        log = self.folder / f"worker-{number}-{queues.replace(',', '-')}.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "config", "worker", "--queues", queues,
                 "--pool", "solo", "--loglevel", "INFO",
                 "--hostname", f"jobs-test-{uuid.uuid4().hex[:8]}@%h",
                 "--without-gossip", "--without-mingle", "--without-heartbeat"],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        self.started.append((process, log, queues))
        wait_until(lambda: " ready." in log.read_text(), 30, f"a worker for {queues}",
                   self.logs)
        return process

    def logs(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}"
                         for _, log, _ in self.started)

    def revive(self) -> int:
        """What a process supervisor (compose's restart policy, systemd) does: start again the
        workers that exited. A worker may exit when its broker vanishes under it (kombu gives
        up with "Unrecoverable error" while restoring its unacknowledged messages)."""
        dead = [(p, q) for p, _, q in self.started if p.poll() is not None
                and p.returncode != -signal.SIGKILL]
        for process, queues in dead:
            self.started = [entry for entry in self.started if entry[0] is not process]
            self.start(queues)
        return len(dead)

    def stop_all(self) -> None:
        for process, _, _ in self.started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process, _, _ in self.started:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def workers(shared_database: str, broker: Redis, tmp_path: Path,
            settings: Any) -> Iterator[Workers]:
    settings.ENGINE_DATA_DIR = tmp_path / "engine"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings",
           "REDIS_URL": broker.url, "DATABASE_URL": shared_database,
           "ENGINE_DATA_DIR": str(settings.ENGINE_DATA_DIR),
           "FIELD_ENCRYPTION_KEYS": ",".join(settings.FIELD_ENCRYPTION_KEYS),
           "SECRET_KEY": settings.SECRET_KEY, "LOG_LEVEL": "INFO"}
    running = Workers(broker.url, tmp_path, env)
    try:
        yield running
    finally:
        running.stop_all()


# --- the built-in engine, and a connection to it ------------------------------------------------

@pytest.fixture
def engine_connection(shared_database: str, live_server: Any, settings: Any,
                      tmp_path: Path) -> Any:
    """A Connection to the built-in engine served by the live server, with a small store
    and one definition (people in the US)."""
    from connections.models import Connection, ConnectionKind
    from connections.services import connection_client
    from engine.api.services import api_client_create
    from tests.engine.api.store import build_store

    settings.ENGINE_DATA_DIR = tmp_path / "engine"
    build_store(tmp_path / "input")
    row, secret = api_client_create(name="jobs worker test", org_id="JOBS@AdobeOrg",
                                    sandboxes=["prod"])
    connection = Connection(name="Built-in engine", kind=ConnectionKind.BUILTIN,
                            base_url=live_server.url, ims_url=live_server.url,
                            org_id="JOBS@AdobeOrg", client_id=row.client_id)
    connection.set_client_secret(secret)
    connection.save()
    definition = connection_client(connection).create_definition(name="US", pql_text=US)
    connection.definition_id = definition.id  # type: ignore[attr-defined]
    return connection


def start_job(connection: Any, user: Any) -> Any:
    from jobs.models import JobKind
    from jobs.services import job_create

    return job_create(kind=JobKind.SEGMENT, connection=connection, sandbox="prod",
                      request={"segments": [{"segmentId": connection.definition_id}]},
                      label="US", created_by=user)


def fresh(job: Any) -> Any:
    job.refresh_from_db()
    return job


def engine_job_status(remote_id: str) -> str:
    from engine.models import SegmentJob

    return str(SegmentJob.objects.get(pk=remote_id).status)


# --- the tests -----------------------------------------------------------------------------------

def test_a_worker_drives_a_segment_job_from_submit_to_succeeded(
        workers: Workers, engine_connection: Any, marketer: Any) -> None:
    from jobs.models import JobStatus

    workers.start("default,engine")
    job = start_job(engine_connection, marketer)

    wait_until(lambda: fresh(job).is_finished, 30, "the job to finish", workers.logs)

    assert job.status == JobStatus.SUCCEEDED, (job.error_message, workers.logs())
    assert job.remote_status == "SUCCEEDED" and job.remote_id
    assert job.metrics["segmentedProfileCounter"] == {engine_connection.definition_id: 4}
    assert job.progress == 1.0 and job.finished_at is not None and job.poll_count >= 1
    kinds = [(e.kind, e.status) for e in job.events.all()]
    assert kinds[:3] == [("created", JobStatus.PENDING), ("submitting", JobStatus.SUBMITTING),
                         ("submitted", JobStatus.QUEUED)]
    assert kinds[-1] == ("status", JobStatus.SUCCEEDED)


def test_a_worker_killed_mid_poll_loses_no_job(workers: Workers, engine_connection: Any,
                                               marketer: Any) -> None:
    from jobs.models import JobStatus
    from jobs.services import SWEEP_GRACE, jobs_sweep

    workers.start("engine")  # the engine's own worker lives on
    dashboard = workers.start("default")
    log = workers.started[-1][1]
    job = start_job(engine_connection, marketer)
    # submitted, and the first poll (due a second later) taken by the worker, which holds it
    wait_until(lambda: "Task jobs.tasks.job_poll[" in log.read_text(), 20, "the first poll",
               workers.logs)
    dashboard.send_signal(signal.SIGKILL)
    dashboard.wait(timeout=10)
    assert not fresh(job).is_finished, "the poll ran before the kill; nothing was tested"

    wait_until(lambda: engine_job_status(job.remote_id) == "SUCCEEDED", 20,
               "the engine to finish the job", workers.logs)
    workers.start("default")
    time.sleep(2)  # the lost poll stays lost: its message is unacknowledged for an hour
    assert fresh(job).status in (JobStatus.QUEUED, JobStatus.RUNNING)

    swept = jobs_sweep(now=timezone.now() + SWEEP_GRACE + timedelta(seconds=1))

    assert swept.polls == 1
    wait_until(lambda: fresh(job).is_finished, 20, "the resumed job to finish", workers.logs)
    assert job.status == JobStatus.SUCCEEDED
    assert job.events.filter(kind="resumed").count() == 1


def test_a_redis_restart_loses_no_job(workers: Workers, broker: Redis,
                                      engine_connection: Any, marketer: Any) -> None:
    """No dashboard worker is up (a deploy, a crash) when Redis restarts: the job's submit
    message, waiting in Redis, is gone with it. The sweeper sends it again."""
    from jobs.models import JobStatus
    from jobs.services import SWEEP_GRACE, jobs_sweep

    if broker.port is None:
        pytest.skip("needs a redis-server binary to run a Redis of its own to restart")
    workers.start("engine")
    job = start_job(engine_connection, marketer)
    wait_until(lambda: redis.Redis.from_url(broker.url).llen("default"), 10,
               "the submit message to wait in Redis")
    broker.restart()
    workers.revive()  # the engine's worker, if it gave up on the vanished broker
    workers.start("default")
    time.sleep(2)  # nothing to run: the message is gone
    assert fresh(job).status == JobStatus.PENDING

    swept = jobs_sweep(now=timezone.now() + SWEEP_GRACE + timedelta(seconds=1))

    assert swept.submits == 1
    wait_until(lambda: fresh(job).is_finished, 30, "the resent job to finish", workers.logs)
    assert job.status == JobStatus.SUCCEEDED, job.error_message
    assert job.metrics["segmentedProfileCounter"] == {engine_connection.definition_id: 4}


def test_a_dead_broker_is_a_message_and_the_jobs_run_once_when_it_is_back(
        workers: Workers, broker: Redis, engine_connection: Any, marketer: Any) -> None:
    """Redis is down when a marketer presses Estimate and Run, twice each: the pages answer
    200 with rows saying the jobs wait for a worker, and there is one job per request. Redis
    comes back, a worker runs the sweep (as beat sends it), which sends them: each runs once."""
    from django.test import Client
    from django.urls import reverse

    from engine.models import Preview, SegmentJob
    from jobs.models import WAITING_LABEL, Job, JobStatus
    from jobs.services import BROKER_BACK, BROKER_UNREACHABLE, RETRY_REUSED
    from jobs.tasks import jobs_sweep
    from segments.models import EvaluationMethod
    from segments.services import segment_save
    from tests.conftest import PASSWORD

    if broker.port is None:
        pytest.skip("needs a redis-server binary to run a Redis of its own to stop")
    segment = segment_save(segment=None, connection=engine_connection, sandbox="prod",
                           name="People in the US", description="", pql_text=US,
                           merge_policy_id="", evaluation_method=EvaluationMethod.BATCH,
                           actor=marketer)
    client = Client()
    assert client.login(username=marketer.username, password=PASSWORD)
    hx = {"HX-Request": "true"}

    broker.stop()
    try:
        pages = [(client.post(reverse("segments:estimate"), {"pql": US}, headers=hx),
                  client.post(reverse("segments:run"), {"segment": [segment.pk]}, headers=hx))
                 for _ in range(2)]  # pressed, then pressed again
        jobs = list(Job.objects.order_by("pk"))
        assert [(job.kind, job.status) for job in jobs] == [
            ("preview", JobStatus.WAITING), ("segment", JobStatus.WAITING)]
        for estimate, run in pages:
            assert estimate.status_code == 200 and run.status_code == 200
            assert f'hx-get="{reverse("segments:estimate-panel", args=[jobs[0].pk])}"' \
                in estimate.text and WAITING_LABEL in estimate.text
            assert f'id="job-{jobs[1].pk}"' in run.text and WAITING_LABEL in run.text
            assert 'class="badge badge-queued"' in run.text
        for job in jobs:
            assert [e.message for e in job.events.filter(kind="waiting")] == [
                BROKER_UNREACHABLE]
            assert [e.message for e in job.events.filter(kind="retried")] == [
                RETRY_REUSED.format(who=marketer.username)]
    finally:
        broker.start()

    workers.start("default,engine")
    jobs_sweep.delay()  # what beat sends every minute

    wait_until(lambda: all(fresh(job).is_finished for job in jobs), 45, "the jobs to finish",
               workers.logs)
    for job in jobs:
        assert job.status == JobStatus.SUCCEEDED, (job.error_message, workers.logs())
        assert job.events.filter(kind="sent", message=BROKER_BACK).count() == 1
        assert job.events.filter(kind="submitting").count() == 1
    assert Job.objects.count() == 2
    assert Preview.objects.count() == 1 and SegmentJob.objects.count() == 1
    assert jobs[1].metrics["segmentedProfileCounter"] == {segment.remote_id: 4}
    assert jobs[0].metrics["estimatedSize"] == 4
