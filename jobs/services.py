"""Every write to a job: create, submit, poll, cancel, time out, sweep (issue 6).

A job's truth is its row. Each state change is a compare-and-set on the status the caller
read (`_move`), allowed only towards a higher RANK, so a late or stale answer never undoes a
newer state, whichever worker delivers it; each change leaves a JobEvent.

API calls per connection are bounded two ways, so a thousand jobs in flight cost a few dozen
calls a minute rather than thousands (bench/bench_jobs.py measures it):
- batching: segment jobs are read 100 per call (POST /segment/jobs/bulk-get), export jobs 100
  per page of GET /export/jobs; a connection/sandbox/kind group is refreshed as a whole at
  most once per slot (5 to 30 s, following the group's youngest job), and a job its group
  refreshed a moment ago makes no call of its own;
- a budget: at most POLL_BUDGET_PER_MINUTE polling calls per connection per clock minute,
  counted in the cache (Redis in production); a poll beyond it waits for the next minute.
The built-in engine answers 429 beyond ENGINE_RATE_LIMIT (600/min per API client); the budget
keeps polling well under that, leaving room for what people do on the pages.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F, Min, Q
from django.utils import timezone
from kombu.exceptions import OperationalError

from aep import (
    AEPClient,
    AEPError,
    AEPNotFoundError,
    AEPPermanentError,
    AEPTransientError,
)
from connections.models import Connection
from connections.services import connection_client
from core.services import audit_record
from jobs.kinds import (
    BULK_SIZE,
    LIST_MAX_PAGES,
    Listed,
    Remote,
    finish_hooks,
    kind_of,
)

# Kept here for the callers that read them from the services (tests, profiledata): they
# belong to the ingestion kind.
from jobs.kinds import CANCEL_INGEST as CANCEL_INGEST
from jobs.kinds import UPLOAD_MISSING as UPLOAD_MISSING
from jobs.kinds import upload_path as upload_path
from jobs.kinds import uploads_dir as uploads_dir
from jobs.models import FINISHED, RANK, UNSENT, Job, JobEvent, JobStatus

logger = logging.getLogger(__name__)

# A task due this long ago and not run was lost (worker killed, broker restarted): the sweeper
# (every 60 s) starts a new one. Countdowns are ≤ 30 s and retries back off to ≤ 30 s.
SWEEP_GRACE = timedelta(minutes=2)
# A redelivered submit looks for the remote job among those created since the first attempt,
# allowing for this much clock difference between us and the API.
RECONCILE_SKEW = timedelta(minutes=2)
SUBMIT_LOCK_SECONDS = 120
POLL_BUDGET_PER_MINUTE = 240  # settings.JOBS_POLL_BUDGET_PER_MINUTE overrides it
GROUP_MIN_INTERVAL = 5.0
GROUP_MAX_INTERVAL = 30.0
POLLED = (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.CANCELLING)
HOOKS_PER_SWEEP = 200  # finished jobs whose hooks the sweeper runs, at most, per sweep
# A person's action pressed again within this long, while its job still waits for a worker,
# returns that job (job_create's reuse_queued).
REUSE_WINDOW = timedelta(minutes=5)

CANCEL_FINISHED = "This job has already finished."
CANCEL_SUBMITTING = "This job is being submitted; try cancelling it again in a moment."
CANCEL_FAILED = "{connection} refused to cancel the job: {message}"
TIMED_OUT_MESSAGE = "No final status from {connection} within {deadline}; polling stopped."
GONE_MESSAGE = "{connection} no longer knows this job: {message}"
SUBMIT_REFUSED = "{connection} refused the job: {message}"
BROKER_UNREACHABLE = ("The task queue could not be reached, so no worker has this job yet; it "
                      "waits here and is sent as soon as the queue is back.")
BROKER_BACK = "Sent to the workers: the task queue is reachable again."
RETRY_REUSED = ("Asked again by {who}: this same request is still waiting for a worker, so "
                "no second job was made.")


class JobActionError(Exception):
    """A person asked for something the job cannot do now; the message says why."""


@dataclass(frozen=True)
class Step:
    """What a submit or poll did: the job as it is now, and when its next poll is due (None:
    no poll to schedule — finished, superseded, or someone else's chain owns it)."""

    job: Job
    poll_due: datetime | None


# --- helpers ----------------------------------------------------------------------------------

def _event(job: Job, kind: str, *, status: str = "", message: str = "",
           data: dict[str, Any] | None = None, at: datetime | None = None) -> JobEvent:
    return JobEvent.objects.create(job=job, kind=kind, status=status, message=message[:2000],
                                   data=data, at=at or timezone.now())


def _client(job: Job, transport: httpx.BaseTransport | None) -> AEPClient:
    return connection_client(job.connection, sandbox=job.sandbox, transport=transport)


def _budget_take(connection_id: int, now: datetime, calls: int = 1) -> bool:
    """Take `calls` from the connection's polling budget for the clock minute of `now`."""
    key = f"jobs-budget:{connection_id}:{int(now.timestamp() // 60)}"
    cache.add(key, 0, timeout=120)
    try:
        used = cache.incr(key, calls)
    except ValueError:  # expired between add and incr
        cache.set(key, calls, timeout=120)
        used = calls
    return used <= getattr(settings, "JOBS_POLL_BUDGET_PER_MINUTE", POLL_BUDGET_PER_MINUTE)


def _next_minute(now: datetime) -> datetime:
    return datetime.fromtimestamp((now.timestamp() // 60 + 1) * 60, tz=now.tzinfo) + timedelta(
        milliseconds=50)


# --- state changes ------------------------------------------------------------------------------

def _move(job: Job, target: JobStatus, *, now: datetime, values: dict[str, Any] | None = None,
          event: str = "status", message: str = "", data: dict[str, Any] | None = None,
          polled: bool = False) -> Job:
    """Set `target` (and `values`) if it is not a step backwards from the row's status: a
    compare-and-set on the status we read, re-read and judged again if another worker moved
    the row meanwhile. A refused (stale) change stores nothing but the poll bookkeeping."""
    bookkeeping: dict[str, Any] = (
        {"last_polled_at": now, "poll_count": F("poll_count") + 1} if polled else {})
    for _ in range(5):
        current = JobStatus(job.status)
        forward = RANK[target] > RANK[current] or (target == current and current not in FINISHED)
        if not forward:
            if bookkeeping:
                Job.objects.filter(pk=job.pk).update(**bookkeeping)
            job.refresh_from_db()
            return job
        update = {**(values or {}), **bookkeeping, "status": target}
        if target in FINISHED:
            update["finished_at"] = now
        # the new status and its event commit together: nobody sees one without the other
        with transaction.atomic():
            moved = Job.objects.filter(pk=job.pk, status=current).update(**update)
            if moved:
                job.refresh_from_db()
                if target != current:
                    _event(job, event, status=target, message=message, at=now,
                           data={"from": current.value, **(data or {})})
                if target in FINISHED:
                    _finish_after_commit(job)
        if moved:
            if target in FINISHED:
                # committed, so its finish hooks ran (unless the caller's transaction is open)
                job.refresh_from_db(fields=["finish_hooks_at"])
            return job
        job.refresh_from_db()  # someone else moved it: judge again against the newer state
    return job


def _remote_values(job: Job, remote: Remote) -> tuple[JobStatus | None, dict[str, Any], str]:
    """(our status, the row's fields, a line for the timeline) from one API answer, read by
    the job's kind."""
    reading = kind_of(job).read(job, remote)
    status, remote_status = reading.status, reading.remote_status
    values: dict[str, Any] = {"remote_status": remote_status[:40],
                              "last_response": dict(remote.raw or {})}
    if reading.metrics is not None:
        values["metrics"] = reading.metrics
    if reading.progress is not None:
        values["progress"] = reading.progress
    error_code, error_message = reading.error_code, reading.error_message
    if status == JobStatus.SUCCEEDED:
        values["progress"] = 1.0
    if status == JobStatus.FAILED or error_code or error_message:
        values["error_code"] = error_code[:100]
        values["error_message"] = error_message or f"{job.connection.name} says {remote_status}."
    line = f"{job.connection.name} says {remote_status}"
    if error_message:
        line += f": {error_message}"
    return status, values, line


def _apply(job: Job, remote: Remote, *, now: datetime, event: str = "status",
           extra: dict[str, Any] | None = None, polled: bool = True) -> Job:
    status, values, line = _remote_values(job, remote)
    # AEP said something we do not know: keep our status, record what it said
    target = status or JobStatus(job.status)
    return _move(job, target, now=now, values={**values, **(extra or {})}, event=event,
                 message=line, data={"remote_status": values["remote_status"]}, polled=polled)


# --- finish hooks ---------------------------------------------------------------------------------

def _finish_after_commit(job: Job) -> None:
    """Run the job's finish hooks once its final status has committed: nothing a hook does
    can undo that status."""
    job_id = job.pk
    transaction.on_commit(lambda: job_finish_hooks(job_id=job_id))


def job_finish_hooks(*, job_id: int) -> int:
    """Run the finish hooks (jobs.kinds.on_finish) that want this finished job, in their
    order, each in a transaction of its own on a fresh copy of the row: a failing hook is
    logged and undone, and the others still run. Returns how many failed."""
    job = Job.objects.filter(pk=job_id).first()
    if job is None or not job.is_finished:
        return 0
    failed = 0
    for hook in finish_hooks(job):
        try:
            with transaction.atomic():
                hook.function(Job.objects.select_related("connection").get(pk=job_id))
        except Exception:  # one app's fault is not the others' problem, nor the job's
            failed += 1
            logger.exception("job %s: the finish hook %s failed", job_id, hook.name)
    Job.objects.filter(pk=job_id).update(finish_hooks_at=timezone.now())
    return failed


# --- create and submit ---------------------------------------------------------------------------

def _queued_twin(*, kind: str, connection: Connection, sandbox: str, request: Any,
                 user: Any, parent: Job | None, now: datetime) -> Job | None:
    """The job that is the same request as this one and still waits for a worker: the same
    person, kind, connection, sandbox, parent and request body, created within
    REUSE_WINDOW, not picked up by a worker yet (PENDING, or WAITING for the broker)."""
    # Taken in turn per connection (a row lock on PostgreSQL), so two presses at once do not
    # both miss each other's row.
    Connection.objects.select_for_update().filter(pk=connection.pk).first()
    candidates = Job.objects.filter(
        kind=kind, connection=connection, sandbox=sandbox, created_by=user, parent=parent,
        status__in=UNSENT, created_at__gte=now - REUSE_WINDOW).order_by("-created_at", "-pk")
    return next((job for job in candidates if job.request == request), None)


@transaction.atomic
def job_create(*, kind: str, connection: Connection, sandbox: str, request: Any, label: str,
               created_by: Any, parent: Job | None = None, reuse_queued: bool = False) -> Job:
    """A PENDING row and its first event; the submit task is sent once this commits (and if
    the broker cannot be reached then, the row says so and the sweeper sends it later:
    job_send).

    `request` is the API's request body: for a segment job ``{"segments": [{"segmentId"}]}``
    (or the bare list), for an export job the POST /export/jobs body, for a preview the
    POST /preview body (predicateExpression, predicateType, predicateModel, graphType).

    `reuse_queued` is for a person's action (Estimate, Run, Export): pressed again while the
    same request still waits for a worker (see _queued_twin), it returns that job rather than
    make a second one — and sends it again if the broker could not be reached before."""
    now = timezone.now()
    user = created_by if getattr(created_by, "is_authenticated", False) else None
    if reuse_queued and user is not None:
        twin = _queued_twin(kind=kind, connection=connection, sandbox=sandbox, request=request,
                            user=user, parent=parent, now=now)
        if twin is not None:
            _event(twin, "retried", at=now, message=RETRY_REUSED.format(
                who=user.get_username()))
            if twin.status == JobStatus.WAITING:
                _send_after_commit(twin)
            return twin
    job = Job.objects.create(
        kind=kind, connection=connection, sandbox=sandbox, request=request, label=label[:200],
        created_by=user, parent=parent, poll_deadline=now + kind_of(kind).deadline,
        next_poll_at=now)
    _event(job, "created", status=JobStatus.PENDING, at=now,
           message=f"Created by {user.get_username() if user else 'the system'}")
    _send_after_commit(job)
    return job


def _send_after_commit(job: Job) -> None:
    """Once the row has committed, send its submit, and tell the instance the caller holds
    how that went (the page it renders next says WAITING if the broker was unreachable)."""

    def send() -> None:
        job_send(job_id=job.pk)
        job.refresh_from_db(fields=["status", "next_poll_at"])

    transaction.on_commit(send)


def job_send(*, job_id: int) -> bool:
    """Send the job's submit task to the broker (after the row committed). When the broker
    cannot be reached, the job is WAITING — its row says "Queued — waiting for a worker" and
    the page that made it answers normally — and the sweeper sends it once the broker is
    back. True when it was sent."""
    from jobs import tasks

    try:
        tasks.job_submit.apply_async((job_id,))
    except (OperationalError, OSError) as error:  # kombu's word for "cannot reach it"
        logger.warning("job %s: its submit could not be sent (%s: %s); it waits for the "
                       "sweeper", job_id, type(error).__name__, error)
        with transaction.atomic():
            if Job.objects.filter(pk=job_id, status=JobStatus.PENDING).update(
                    status=JobStatus.WAITING):
                _event(Job.objects.get(pk=job_id), "waiting", status=JobStatus.WAITING,
                       message=BROKER_UNREACHABLE, data={"from": JobStatus.PENDING.value})
        return False
    now = timezone.now()
    with transaction.atomic():
        # sent now: from here on it is an ordinary PENDING job, resent only if lost
        if Job.objects.filter(pk=job_id, status=JobStatus.WAITING).update(
                status=JobStatus.PENDING, next_poll_at=now):
            _event(Job.objects.get(pk=job_id), "sent", status=JobStatus.PENDING, at=now,
                   message=BROKER_BACK, data={"from": JobStatus.WAITING.value})
    return True


def _find_remote(client: AEPClient, job: Job) -> Listed | None:
    """The remote job an earlier attempt of this submit created, if the kind's list has one:
    created since our first attempt, not already some other row's, with the same request."""
    kind = kind_of(job)
    since = (job.submitted_at or job.created_at) - RECONCILE_SKEW
    since_ms = int(since.timestamp() * 1000)
    taken = set(Job.objects.filter(connection=job.connection, sandbox=job.sandbox, kind=job.kind)
                .exclude(pk=job.pk).exclude(remote_id="").values_list("remote_id", flat=True))
    for index, remote in enumerate(kind.listing(client)):
        if index >= BULK_SIZE * LIST_MAX_PAGES:
            break
        if remote.creation_time is not None and remote.creation_time < since_ms:
            break  # newest first: everything further down is older than our first attempt
        if remote.id not in taken and kind.same_request(job, remote):
            return remote
    return None


def _submit_remote(job: Job, *, now: datetime, client: AEPClient) -> Job:
    try:
        remote = kind_of(job).create(client, job)
    except AEPPermanentError as error:
        return _move(job, JobStatus.FAILED, now=now, event="error",
                     message=SUBMIT_REFUSED.format(connection=job.connection.name,
                                                   message=error.message),
                     values={"error_code": (error.code or str(error.status or ""))[:100],
                             "error_message": error.message,
                             "last_response": error.body if isinstance(error.body, dict)
                             else None})
    return _apply(job, remote, now=now, event="submitted", polled=False,
                  extra={"remote_id": str(remote.id)[:100]})


def job_submit(*, job: Job, now: datetime | None = None,
               transport: httpx.BaseTransport | None = None) -> Step:
    """Send the job to the API, once.

    Not atomic on purpose: SUBMITTING (with submitted_at) is committed before the remote call,
    so a redelivered message (worker killed after the call, broker restarted) knows a call may
    have happened, and reconciles instead of creating a second remote job."""
    now = now or timezone.now()
    lock = f"jobs-submit:{job.pk}"
    if not cache.add(lock, 1, timeout=SUBMIT_LOCK_SECONDS):
        return Step(job, None)  # another worker is submitting this job right now
    try:
        # a WAITING job's message may have gone out after all: submitted like a PENDING one
        unsent = job.status if job.status in UNSENT else JobStatus.PENDING
        first = Job.objects.filter(pk=job.pk, status__in=UNSENT).update(
            status=JobStatus.SUBMITTING, submitted_at=now, next_poll_at=now)
        job.refresh_from_db()
        if job.status != JobStatus.SUBMITTING:
            return Step(job, None)  # submitted already (or cancelled): nothing to send
        if first:
            _event(job, "submitting", status=JobStatus.SUBMITTING, at=now,
                   message=f"Sending the request to {job.connection.name}",
                   data={"from": str(unsent)})
        try:
            with _client(job, transport) as client:
                found = None
                if not first and kind_of(job).listed:
                    found = _find_remote(client, job)
                if found is not None:
                    job = _apply(job, found, now=now, event="reconciled", polled=False,
                                 extra={"remote_id": str(found.id)[:100]})
                else:  # a kind the API does not list is created again (its kind says why)
                    job = _submit_remote(job, now=now, client=client)
        except AEPTransientError as error:
            Job.objects.filter(pk=job.pk).update(next_poll_at=now)
            _event(job, "retry", message=f"Submit failed, will retry: {error.message}", at=now)
            raise
        if job.is_finished or not job.remote_id:
            return Step(job, None)
        due = now + timedelta(seconds=kind_of(job).first_poll_delay)
        Job.objects.filter(pk=job.pk).update(next_poll_at=due)
        job.next_poll_at = due
        return Step(job, due)
    finally:
        cache.delete(lock)


# --- polling ------------------------------------------------------------------------------------

def job_refresh(*, job: Job, now: datetime | None = None,
                transport: httpx.BaseTransport | None = None,
                client: AEPClient | None = None) -> Job:
    """One poll step for one job: read its remote state (one API call) and store it."""
    now = now or timezone.now()
    if job.is_finished or not job.remote_id:
        return job
    if client is None:
        with _client(job, transport) as own:
            return job_refresh(job=job, now=now, client=own)
    try:
        remote = kind_of(job).get(client, job)
    except AEPNotFoundError as error:
        return _move(job, JobStatus.FAILED, now=now, event="error", polled=True,
                     message=GONE_MESSAGE.format(connection=job.connection.name,
                                                 message=error.message),
                     values={"error_code": (error.code or "404")[:100],
                             "error_message": GONE_MESSAGE.format(
                                 connection=job.connection.name, message=error.message)})
    except AEPPermanentError as error:
        # e.g. the connection's secret was revoked: the job is not at fault and may resume
        # once an admin fixes the connection; the deadline ends it otherwise.
        Job.objects.filter(pk=job.pk).update(last_polled_at=now,
                                             poll_count=F("poll_count") + 1)
        _event(job, "error", message=f"Poll failed: {error.message}", at=now,
               data={"code": error.code, "status": error.status})
        job.refresh_from_db()
        return job
    except AEPTransientError as error:
        _event(job, "retry", message=f"Poll failed, will retry: {error.message}", at=now,
               data={"code": error.code, "status": error.status})
        raise
    return _apply(job, remote, now=now)


def jobs_refresh_group(*, connection: Connection, sandbox: str, kind: str,
                       now: datetime | None = None,
                       transport: httpx.BaseTransport | None = None) -> int:
    """Refresh every unfinished job of one connection, sandbox and (listed) kind with as few
    calls as the API allows, as the kind fetches a group: bulk-get for segment jobs (100 ids a
    call), the newest-first list for export jobs (100 a page, stopping once every job was
    seen). Each call is taken from the connection's budget; when it runs out the rest waits.
    Returns how many rows it refreshed."""
    now = now or timezone.now()
    rows = {job.remote_id: job for job in Job.objects.filter(
        connection=connection, sandbox=sandbox, kind=kind, status__in=POLLED,
    ).exclude(remote_id="").select_related("connection")}
    if not rows or not kind_of(kind).listed:
        return 0
    with connection_client(connection, sandbox=sandbox, transport=transport) as client:
        return _refresh_group(client, rows, connection=connection, kind=kind, now=now)


def _refresh_group(client: AEPClient, rows: dict[str, Job], *, connection: Connection,
                   kind: str, now: datetime) -> int:
    oldest = min(job.submitted_at or job.created_at for job in rows.values()) - RECONCILE_SKEW
    found, missing = kind_of(kind).fetch_group(
        client, sorted(rows), since_ms=int(oldest.timestamp() * 1000),
        take=lambda: _budget_take(connection.pk, now))
    # rows the API's answer left out are asked one by one
    return (_apply_many(rows, found, now=now)
            + _refresh_missing([rows[key] for key in missing], now=now, client=client))


def _refresh_missing(jobs: list[Job], *, now: datetime, client: AEPClient) -> int:
    """Jobs a bulk answer or a list walk did not include (the API forgot them, or they are
    beyond the pages walked): one GET each, within the budget, so none starves."""
    done = 0
    for job in jobs:
        if not _budget_take(job.connection_id, now):
            break
        job_refresh(job=job, now=now, client=client)
        done += 1
    return done


def _apply_many(rows: dict[str, Job], found: Iterable[Listed], *,
                now: datetime) -> int:
    """Store a batch of answers: those that change nothing a person sees (status, metrics,
    errors) cost one UPDATE for all of them; the others go through _apply one by one."""
    unchanged: list[int] = []
    count = 0
    for remote in found:
        job = rows.get(remote.id)
        if job is None:
            continue
        count += 1
        status, values, _ = _remote_values(job, remote)
        if (status == job.status and values["remote_status"] == job.remote_status
                and values.get("metrics") == job.metrics
                and values.get("error_message", "") == job.error_message):
            unchanged.append(job.pk)
        else:
            _apply(job, remote, now=now)
    Job.objects.filter(pk__in=unchanged, status__in=POLLED).update(
        last_polled_at=now, poll_count=F("poll_count") + 1)
    return count


def _group_slot_take(job: Job, now: datetime) -> tuple[bool, datetime]:
    """Whether this poll refreshes its whole group — the first poll of the group in each slot
    does — and when the next slot starts. The slot follows the group's youngest job (its next
    poll delay), 5 to 30 s."""
    youngest = Job.objects.filter(connection_id=job.connection_id, sandbox=job.sandbox,
                                  kind=job.kind, status__in=POLLED,
                                  ).aggregate(least=Min("poll_count"))["least"] or 0
    interval = min(max(float(min(30, 2 ** min(youngest, 5))), GROUP_MIN_INTERVAL),
                   GROUP_MAX_INTERVAL)
    slot = int(now.timestamp() // interval)
    key = f"jobs-group:{job.connection_id}:{job.sandbox}:{job.kind}:{interval:g}:{slot}"
    following = datetime.fromtimestamp((slot + 1) * interval, tz=now.tzinfo)
    return bool(cache.add(key, 1, timeout=int(interval) + 60)), following + timedelta(
        milliseconds=50)


def _schedule(job: Job, due: datetime) -> Step:
    Job.objects.filter(pk=job.pk).update(next_poll_at=due)
    job.next_poll_at = due
    return Step(job, due)


def job_poll_step(*, job: Job, due: datetime | None = None, now: datetime | None = None,
                  transport: httpx.BaseTransport | None = None) -> Step:
    """What one job_poll task does: stop if the job finished, ran out of time or this poll was
    superseded (`due` is no longer the row's next_poll_at); otherwise refresh it — with its
    whole group when this poll opens a slot, not at all when its group refreshed it a moment
    ago, alone otherwise, within the budget — and say when the next poll is due."""
    now = now or timezone.now()
    if job.is_finished or job.status not in POLLED:
        return Step(job, None)  # finished, or PENDING/SUBMITTING: the submit task owns it
    if due is not None and (job.next_poll_at is None
                            or abs((job.next_poll_at - due).total_seconds()) > 0.001):
        return Step(job, None)  # a newer poll (the sweeper's) owns the job now
    if job.poll_deadline is not None and now >= job.poll_deadline:
        job_time_out(job=job, now=now)
        return Step(job, None)
    # refreshed (by its group) within its own cadence, or within the group's shortest slot:
    # nothing to ask the API
    listed = kind_of(job).listed
    recently = timedelta(seconds=max(job.next_poll_delay(), GROUP_MIN_INTERVAL)
                         if listed else job.next_poll_delay() * 0.8)
    if listed:
        ours, next_slot = _group_slot_take(job, now)
        if ours:
            jobs_refresh_group(connection=job.connection, sandbox=job.sandbox, kind=job.kind,
                               now=now, transport=transport)
            job.refresh_from_db()
        elif job.last_polled_at is None or job.last_polled_at < now - recently:
            return _schedule(job, next_slot)  # the group's next refresh will include it
    if job.last_polled_at is None or job.last_polled_at < now - recently:
        if not _budget_take(job.connection_id, now):
            return _schedule(job, max(_next_minute(now),
                                      now + timedelta(seconds=job.next_poll_delay())))
        job = job_refresh(job=job, now=now, transport=transport)
    if job.is_finished:
        return Step(job, None)
    return _schedule(job, now + timedelta(seconds=job.next_poll_delay()))


def job_time_out(*, job: Job, now: datetime | None = None) -> Job:
    now = now or timezone.now()
    deadline = kind_of(job).deadline
    message = TIMED_OUT_MESSAGE.format(connection=job.connection.name,
                                       deadline=_human(deadline))
    return _move(job, JobStatus.TIMED_OUT, now=now, event="timeout", message=message,
                 values={"error_code": "timed_out", "error_message": message})


def _human(delta: timedelta) -> str:
    minutes = math.ceil(delta.total_seconds() / 60)
    if minutes % 60 == 0:
        hours = minutes // 60
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{minutes} minutes"


# --- cancel ---------------------------------------------------------------------------------------

def job_cancel(*, job: Job, actor: Any, transport: httpx.BaseTransport | None = None) -> Job:
    """Ask the API to cancel, as the job's kind does (asynchronous for segment and export jobs:
    CANCELLING, then the polls see CANCELLED); a job not sent yet is cancelled here and never
    sent."""
    now = timezone.now()
    who = actor.get_username() if getattr(actor, "is_authenticated", False) else "the system"
    if job.is_finished:
        raise JobActionError(CANCEL_FINISHED)
    if job.status in UNSENT:
        unsent = job.status
        with transaction.atomic():
            moved = Job.objects.filter(pk=job.pk, status=unsent).update(
                status=JobStatus.CANCELLED, finished_at=now)
            job.refresh_from_db()
            if moved:
                _event(job, "cancel", status=JobStatus.CANCELLED, at=now,
                       message=f"Cancelled by {who} before it was sent",
                       data={"from": str(unsent)})
                _finish_after_commit(job)
        if not moved:
            raise JobActionError(CANCEL_SUBMITTING)
        job.refresh_from_db(fields=["finish_hooks_at"])  # they ran once that committed
        audit_record(actor=actor, action="job.cancel", obj=job)
        return job
    kind = kind_of(job)
    if not job.remote_id:
        raise JobActionError(CANCEL_SUBMITTING)
    if kind.cancel_refused:
        raise JobActionError(kind.cancel_refused)
    try:
        with _client(job, transport) as client:
            kind.cancel(client, job)
    except AEPError as error:
        raise JobActionError(CANCEL_FAILED.format(connection=job.connection.name,
                                                  message=error.message)) from error
    job = _move(job, kind.cancel_target, now=now, event="cancel", message=f"Cancelled by {who}")
    audit_record(actor=actor, action="job.cancel", obj=job)
    return job


# --- the sweeper ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sweep:
    timed_out: int
    submits: int
    polls: int
    hooks: int = 0  # finished jobs whose finish hooks had not run
    sent: int = 0  # WAITING jobs whose submit the broker took at last


def jobs_sweep(*, now: datetime | None = None) -> Sweep:
    """Heal what was lost: time out jobs past their deadline, send the submit of every job
    WAITING for the broker (it is reachable: this runs from beat through it), restart the
    submit or poll of every unfinished job whose next task is long overdue (its message died
    with a worker or a broker), and run the finish hooks of jobs that finished long enough
    ago without them (the process died between the commit and the hooks). The new poll
    carries a new due time, so an old one that turns up after all stops by itself."""
    from jobs import tasks

    now = now or timezone.now()
    timed_out = 0
    for job in Job.objects.unfinished().filter(poll_deadline__lt=now).select_related(
            "connection"):
        if job_time_out(job=job, now=now).status == JobStatus.TIMED_OUT:
            timed_out += 1
    sent = 0
    for job_id in Job.objects.filter(status=JobStatus.WAITING).order_by(
            "created_at", "pk").values_list("pk", flat=True):
        if not job_send(job_id=job_id):
            break  # unreachable again: the next sweep tries
        sent += 1
    overdue = now - SWEEP_GRACE
    # what it restarts runs at once, whatever time the sweep judged by (`now`)
    due = timezone.now()
    submits = polls = 0
    lost = Q(next_poll_at__lt=overdue) | Q(next_poll_at__isnull=True, created_at__lt=overdue)
    for job in Job.objects.filter(lost, status__in=(JobStatus.PENDING, JobStatus.SUBMITTING)):
        if Job.objects.filter(pk=job.pk, next_poll_at=job.next_poll_at).update(next_poll_at=due):
            tasks.job_submit.delay(job.pk)
            submits += 1
    for job in Job.objects.filter(lost, status__in=POLLED):
        if Job.objects.filter(pk=job.pk, next_poll_at=job.next_poll_at).update(next_poll_at=due):
            _event(job, "resumed", at=due, message="The sweeper resumed polling: no poll had "
                   "run for over two minutes")
            tasks.job_poll.apply_async((job.pk, due.isoformat()), eta=due)
            polls += 1
    unhooked = Job.objects.finished().filter(finish_hooks_at__isnull=True,
                                             finished_at__lt=overdue)
    hooks = 0
    for job_id in unhooked.order_by("finished_at").values_list("pk", flat=True)[
            :HOOKS_PER_SWEEP]:
        job_finish_hooks(job_id=job_id)
        hooks += 1
    if timed_out or submits or polls or hooks or sent:
        logger.info("jobs sweep: %d timed out, %d waiting jobs sent, %d submits and %d polls "
                    "resumed, the finish hooks of %d jobs run", timed_out, sent, submits, polls,
                    hooks)
    return Sweep(timed_out, submits, polls, hooks, sent)
