"""`make run`'s defaults under concurrent writers: web (runserver's threads), Celery workers and
beat all write one SQLite file, and none of them ever sees "database is locked".

The processes below load the real settings with the same empty environment `make run` gives
them (VAR_DIR aside), so the database is var/db.sqlite3's twin, opened with whatever OPTIONS
config/settings.py sets. They write jobs.Job rows the way the app does: the web creates a row
and its first event in one transaction; workers read a row and move it forward with its event
in one transaction (a read, then a write: the pattern that SQLite's default DEFERRED
transactions answer with an immediate "database is locked"), and bump poll counters outside
any transaction; beat's sweep reads the unfinished rows and reschedules them in one
transaction; every process also reads, as the history and status fragments do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent

SETUP = """
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0, interactive=False)
from connections.models import Connection, ConnectionKind
row = Connection(name="Concurrency", kind=ConnectionKind.ADOBE,
                 base_url="https://platform.adobe.io", ims_url="https://ims-na1.adobelogin.com",
                 org_id="ACME@AdobeOrg", client_id="0123456789abcdef", default_sandbox="prod")
row.set_client_secret("p8e-not-a-secret")
row.save()
"""

# argv: role, threads, start (epoch seconds), seconds to run
WRITER = """
import json, sys, threading, time
from collections import Counter
from datetime import timedelta
import django
django.setup()
from django.db import OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone
from connections.models import Connection
from jobs.models import FINISHED, Job, JobEvent, JobKind, JobStatus

role, threads = sys.argv[1], int(sys.argv[2])
start, seconds = float(sys.argv[3]), float(sys.argv[4])
STEPS = [JobStatus.SUBMITTING, JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.SUCCEEDED]
counts = Counter()
lock = threading.Lock()

def web(conn):
    # job_create: the row and its first event commit together
    with transaction.atomic():
        now = timezone.now()
        job = Job.objects.create(kind=JobKind.PREVIEW, connection=conn, sandbox="prod",
                                 label="quick preview", request={"predicateExpression": "x"},
                                 poll_deadline=now + timedelta(minutes=10), next_poll_at=now)
        JobEvent.objects.create(job=job, kind="created", status=JobStatus.PENDING, at=now)
    # the history page and a status fragment read
    list(Job.objects.order_by("-created_at")[:25])
    Job.objects.unfinished().count()
    return "created"

def worker(conn):
    pk = (Job.objects.unfinished().order_by("?").values_list("pk", flat=True).first())
    if pk is None:
        return "idle"
    # a poll's bookkeeping, outside any transaction
    Job.objects.filter(pk=pk).update(last_polled_at=timezone.now(),
                                     poll_count=F("poll_count") + 1)
    # a status move and its event commit together (read the row, then write it)
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=pk)
        if job.status in FINISHED:
            return "stale"
        target = STEPS[min(STEPS.index(job.status) + 1 if job.status in STEPS else 0, 3)]
        job.status = target
        if target in FINISHED:
            job.finished_at = timezone.now()
        job.save()
        JobEvent.objects.create(job=job, kind="status", status=target)
    list(JobEvent.objects.filter(job_id=pk))
    return "moved"

def beat(conn):
    # jobs_sweep: find the unfinished rows whose poll is due and reschedule them together
    with transaction.atomic():
        now = timezone.now()
        due = list(Job.objects.unfinished().filter(next_poll_at__lte=now)
                   .values_list("pk", flat=True)[:50])
        Job.objects.filter(pk__in=due).update(next_poll_at=now + timedelta(seconds=1))
    time.sleep(0.02)
    return "swept"

def run():
    action = {"web": web, "worker": worker, "beat": beat}[role]
    conn = Connection.objects.get()
    while time.time() < start + seconds:
        try:
            outcome = action(conn)
        except OperationalError as error:
            outcome = "locked" if "locked" in str(error) else f"error: {error}"
        except Exception as error:
            outcome = f"error: {type(error).__name__}: {error}"
        with lock:
            counts[outcome] += 1
    connection.close()

time.sleep(max(0.0, start - time.time()))
pool = [threading.Thread(target=run) for _ in range(threads)]
for thread in pool:
    thread.start()
for thread in pool:
    thread.join()
print(json.dumps(counts))
"""

# (role, threads): runserver answers each request in a thread; `make run` has one worker
# process (prefork, a few children) and beat. Two worker processes stand in for the children.
PROCESSES = [("web", 4), ("worker", 2), ("worker", 2), ("beat", 1)]
SECONDS = 3.0


def studio_env(var: Path) -> dict[str, str]:
    """The environment `make run` gives web, worker and beat: nothing but where var/ is."""
    return {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT),
            "DJANGO_SETTINGS_MODULE": "config.settings", "VAR_DIR": str(var)}


def run_writers(var: Path) -> dict[str, Any]:
    env = studio_env(var)
    start = time.time() + 3  # every process has imported Django and waits for this moment
    children = [
        subprocess.Popen([sys.executable, "-c", WRITER, role, str(threads), str(start),
                          str(SECONDS)], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for role, threads in PROCESSES
    ]
    outcomes: dict[str, Any] = {}
    for (role, _), child in zip(PROCESSES, children, strict=True):
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err[-4000:]
        for outcome, count in json.loads(out.strip().splitlines()[-1]).items():
            key = f"{role}:{outcome}"
            outcomes[key] = outcomes.get(key, 0) + count
    return outcomes


@pytest.fixture
def studio_var(tmp_path: Path) -> Path:
    """A fresh var/ with a migrated SQLite database and one connection, as `make setup` leaves."""
    var = tmp_path / "var"
    subprocess.run([sys.executable, "-c", SETUP], env=studio_env(var), cwd=ROOT, check=True,
                   timeout=120, capture_output=True)
    return var


def test_concurrent_writers_on_the_default_sqlite_never_see_database_is_locked(
    studio_var: Path,
) -> None:
    outcomes = run_writers(studio_var)

    failures = {key: count for key, count in outcomes.items()
                if key.endswith(":locked") or ":error" in key}
    assert failures == {}, f"{failures} in {outcomes}"
    # every process did real work meanwhile: the test measured contention, not idleness
    assert outcomes.get("web:created", 0) >= 50, outcomes
    assert outcomes.get("worker:moved", 0) >= 50, outcomes
    assert outcomes.get("beat:swept", 0) >= 20, outcomes

    import sqlite3

    with sqlite3.connect(studio_var / "db.sqlite3") as db:
        jobs, created, moved = db.execute(
            "SELECT (SELECT count(*) FROM jobs_job),"
            " (SELECT count(*) FROM jobs_jobevent WHERE kind = 'created'),"
            " (SELECT count(*) FROM jobs_jobevent WHERE kind = 'status')").fetchone()
    db.close()
    # nothing half-written: each row with its first event, each move with its event
    assert jobs == created == outcomes["web:created"]
    assert moved == outcomes["worker:moved"]


SETTINGS_PROBE = """
import json
import django
django.setup()
from django.conf import settings
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from jobs.models import Job

with connection.cursor() as cursor:
    pragmas = {name: cursor.execute(f"PRAGMA {name}").fetchone()[0]
               for name in ("journal_mode", "synchronous", "busy_timeout")}
with CaptureQueriesContext(connection) as queries, transaction.atomic():
    Job.objects.exists()
print(json.dumps({"options": settings.DATABASES["default"].get("OPTIONS", {}), **pragmas,
                  "first": queries.captured_queries[0]["sql"]}))
"""


def test_the_default_sqlite_is_wal_with_immediate_transactions(studio_var: Path) -> None:
    result = subprocess.run([sys.executable, "-c", SETTINGS_PROBE], env=studio_env(studio_var),
                            cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    probe = json.loads(result.stdout.strip().splitlines()[-1])

    assert probe["options"]["transaction_mode"] == "IMMEDIATE"
    assert probe["journal_mode"] == "wal"
    assert probe["synchronous"] == 1  # NORMAL
    assert probe["busy_timeout"] >= 10_000  # milliseconds a writer waits for the lock
    # a transaction takes the write lock first, before it reads
    assert probe["first"] == "BEGIN IMMEDIATE"


def test_postgresql_gets_none_of_the_sqlite_options(tmp_path: Path) -> None:
    probe = ("import django, json; django.setup(); from django.conf import settings; "
             "db = settings.DATABASES['default']; "
             "print(json.dumps([db['ENGINE'], db.get('OPTIONS', {})]))")
    env = {**studio_env(tmp_path), "DATABASE_URL": "postgres://u@127.0.0.1:5432/studio"}
    result = subprocess.run([sys.executable, "-c", probe], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=60, check=True)
    engine, options = json.loads(result.stdout.strip().splitlines()[-1])
    assert engine == "django.db.backends.postgresql"
    assert options == {}
