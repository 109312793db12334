"""What every engine job shares while a worker runs it — previews, segment jobs, export jobs and
ingestion batches: the claim on its row, its heartbeat, its writes, its cancellation checks,
the time spans of its metrics — and the beat sweep that gives a job whose worker stopped to a
worker again, or fails it saying why. Each kind says how (a ``RunKind`` beside its runner:
engine.previews, engine.segment_jobs, engine.exports, engine.batches).

A row waits for a worker while ``heartbeat_at`` is empty. A run claims it with one conditional
update (a waiting status and no heartbeat → the running status, ``attempts`` + 1,
``heartbeat_at`` now), so two deliveries of one task never both run it. While the run lasts, a
thread of its own beats ``heartbeat_at`` every ENGINE_JOB_HEARTBEAT_SECONDS (one DuckDB query
may hold the run's thread for minutes), and every write and progress point beats it too. Every
write of the run is conditional on its claim (its attempt, a heartbeat present): a run whose
row was given to another worker meanwhile writes nothing more and stops (``Superseded``). A run
that ends without finishing its job (an error nobody caught, a generator closed) gives the
row back: it waits again.

engine.tasks.jobs_sweep (beat, every minute) looks at the rows (and rebuilds a query snapshot
whose build stopped after its batch succeeded, engine.snapshot.snapshots_sweep):

- running, heartbeat older than ENGINE_JOB_STALE_SECONDS: its worker stopped (killed, out of
  memory, past the task's time limit, restarted). The row waits again and is sent to a worker,
  at most ENGINE_JOB_MAX_REQUEUES times; after that it fails with WORKER_STOPPED. A row whose
  cancel was asked ends CANCELLED instead, as does one cancelled while no worker held it;
- waiting and unchanged for ENGINE_JOB_RESEND_SECONDS: its message was lost (a broker
  restart, a send that failed), so it is sent again; a second message finds it claimed or
  finished, and does nothing.

The broker's own redelivery (Redis' visibility_timeout, an hour) is not what recovers a job:
by then the sweep has, and the redelivered task finds the row finished.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, ClassVar

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.db import DatabaseError, connections, models
from django.db.models import F, Q
from django.utils import timezone

from engine.models import WorkerRun

logger = logging.getLogger(__name__)

# The progress points where ENGINE_JOB_PAUSES may hold a run (so a test can kill its worker).
PAUSE_POINTS = ("preview-step", "segment-evaluate", "export-write", "ingest-write")
BEAT_AT_MOST_EVERY = 1.0  # seconds: progress points closer than this write one beat

WORKER_STOPPED = ("the worker running it stopped {times} before it finished (killed, out of "
                  "memory, past its time limit or restarted), so it is not tried again; run "
                  "it again, and if it stops again the engine workers' logs say why")


class Superseded(Exception):  # noqa: N818 - a signal, not an error
    """The run's row is no longer its own: sent to another worker meanwhile, or deleted."""


class Cancelled(Exception):  # noqa: N818 - a signal, not an error
    """A cancel was asked for the job (or for the job running it)."""


def span(start_ms: int, end_ms: int) -> dict[str, int]:
    """A time span of AEP's job metrics (epoch milliseconds)."""
    return {"startTimeInMs": start_ms, "endTimeInMs": end_ms, "totalTimeInMs": end_ms - start_ms}


def ms(moment: datetime) -> int:
    """A moment in epoch milliseconds (AEP's creationTime/updateTime)."""
    return int(moment.timestamp() * 1000)


def times(count: int) -> str:
    return {1: "once", 2: "twice"}.get(count, f"{count} times")


def worker_stopped(count: int) -> str:
    return WORKER_STOPPED.format(times=times(count))


def pause(point: str) -> None:
    """Tests only: hold the run at `point` for the seconds ENGINE_JOB_PAUSES names."""
    seconds = settings.ENGINE_JOB_PAUSES.get(point)
    if seconds:
        logger.warning("engine job paused at %s for %s s (ENGINE_JOB_PAUSES)", point, seconds)
        time.sleep(float(seconds))


class RunKind:
    """One kind of engine job as the runs and the sweep see it. The runner's module subclasses
    it; ``kinds()`` lists them."""

    model: ClassVar[type[WorkerRun]]
    name: ClassVar[str]
    status_field: ClassVar[str] = "status"
    waiting: ClassVar[tuple[str, ...]]  # the statuses a worker may claim the row in
    requeued: ClassVar[str]  # the status the row waits in again
    running: ClassVar[str]  # the status while a worker runs it
    unfinished: ClassVar[tuple[str, ...]]
    cancelling: ClassVar[tuple[str, ...]] = ()  # a cancel was asked, the job has not ended

    def rows(self) -> models.QuerySet[Any]:
        """The rows the sweep looks after."""
        return self.model._default_manager.all()

    def changed(self, now: datetime) -> dict[str, Any]:
        """The fields that say the row changed (a write, not a beat)."""
        return {"updated_at": now}

    def changed_before(self, moment: datetime) -> Q:
        return Q(updated_at__lt=moment)

    def send(self, pk: Any) -> None:
        raise NotImplementedError

    def give_up(self, row: Any, reason: str, now: datetime) -> bool:
        """Fail a row the sweep will not send again, for `reason`; False if it changed since
        it was read (then it is left as it is)."""
        raise NotImplementedError

    def end_cancelled(self, row: Any, now: datetime) -> bool:
        """End as cancelled a row whose cancel was asked and that no worker runs."""
        return bool(self.as_read(row).update(
            **{self.status_field: "CANCELLED"}, heartbeat_at=None, **self.changed(now)))

    def end_cancelled_waiting(self, row: Any) -> bool:
        """End as cancelled a row whose cancel was asked before any worker took it."""
        if not self.cancelling:
            return False
        waiting = self.model._default_manager.filter(
            pk=row.pk, heartbeat_at__isnull=True,
            **{f"{self.status_field}__in": self.cancelling}).first()
        return waiting is not None and self.end_cancelled(waiting, timezone.now())

    def requeue(self, row: Any, now: datetime) -> bool:
        """Make a row whose worker stopped wait again (sent by the sweep after this)."""
        return bool(self.as_read(row).update(
            **{self.status_field: self.requeued}, heartbeat_at=None, **self.changed(now)))

    def as_read(self, row: Any) -> models.QuerySet[Any]:
        """The row, if it is still as the sweep read it (a conditional update's target)."""
        return self.model._default_manager.filter(
            pk=row.pk, attempts=row.attempts, heartbeat_at=row.heartbeat_at,
            **{self.status_field: getattr(row, self.status_field)})

    def status(self, row: Any) -> str:
        return str(getattr(row, self.status_field))

    def cancel_asked(self, pk: Any) -> bool:
        if not self.cancelling:
            return False
        return self.model._default_manager.filter(
            pk=pk, **{f"{self.status_field}__in": self.cancelling}).exists()


def kinds() -> list[RunKind]:
    """Every kind of engine job a worker runs (imported here: their modules import this one)."""
    from engine.batches import RUNS as batches
    from engine.exports import RUNS as exports
    from engine.previews import RUNS as previews
    from engine.segment_jobs import RUNS as segment_jobs

    return [previews, segment_jobs, exports, batches]


# --- a run ---------------------------------------------------------------------------------------

class Run:
    """A worker's hold on one row, from its claim to the end of the ``with`` block."""

    def __init__(self, kind: RunKind, row: Any, parent: Run | None = None) -> None:
        self.kind = kind
        self.row = row
        self.attempt: int = row.attempts
        self.parent = parent  # the run this one runs inside (an export's segment job)
        self.finished = False
        self._beaten = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def mine(self) -> models.QuerySet[Any]:
        return self.kind.model._default_manager.filter(pk=self.row.pk, attempts=self.attempt,
                                              heartbeat_at__isnull=False)

    def save(self, **fields: Any) -> None:
        """Write `fields` (and a beat) if the row is still this run's; Superseded if not."""
        now = timezone.now()
        if not self.mine().update(heartbeat_at=now, **self.kind.changed(now), **fields):
            raise Superseded(f"{self.kind.name} {self.row.pk}")
        for name, value in fields.items():
            setattr(self.row, name, value)
        self._beaten = time.monotonic()
        status = fields.get(self.kind.status_field)
        if status is not None and status not in self.kind.unfinished:
            self.finished = True

    def beat(self) -> None:
        if not self.mine().update(heartbeat_at=timezone.now()):
            raise Superseded(f"{self.kind.name} {self.row.pk}")
        self._beaten = time.monotonic()

    def check(self, point: str | None = None) -> None:
        """A progress point: beat, then Superseded if the row is no longer the run's, Cancelled
        if a cancel was asked for it (or for the run it runs inside)."""
        if point is not None:
            pause(point)
        if time.monotonic() - self._beaten >= BEAT_AT_MOST_EVERY:
            self.beat()
        if self.kind.cancel_asked(self.row.pk):
            raise Cancelled(f"{self.kind.name} {self.row.pk}")
        if self.parent is not None:
            self.parent.check()

    # the heartbeat thread ---------------------------------------------------------------------

    def __enter__(self) -> Run:
        self._thread = threading.Thread(target=self._beat_until_stopped, daemon=True,
                                        name=f"heartbeat {self.kind.name} {self.row.pk}")
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if kind is not None and not self.finished and not issubclass(kind, Superseded):
            self.release()

    def _beat_until_stopped(self) -> None:
        try:
            while not self._stop.wait(settings.ENGINE_JOB_HEARTBEAT_SECONDS):
                try:
                    self.mine().update(heartbeat_at=timezone.now())
                except DatabaseError as error:  # a busy database: the next beat tries again
                    logger.warning("%s %s: heartbeat not written (%s)", self.kind.name,
                                   self.row.pk, error)
        finally:
            connections.close_all()  # this thread's own connections

    def release(self) -> None:
        """Give the row back (the run ends without finishing it): it waits again; a cancel that
        was asked stays asked."""
        now = timezone.now()
        field = self.kind.status_field
        try:
            self.mine().filter(**{field: self.kind.running}).update(
                **{field: self.kind.requeued}, heartbeat_at=None, **self.kind.changed(now))
            self.mine().update(heartbeat_at=None)
        except DatabaseError:
            logger.exception("%s %s could not be given back; the sweep will", self.kind.name,
                             self.row.pk)
        logger.warning("%s %s: its run ended unfinished; it waits for a worker again",
                       self.kind.name, self.row.pk)


def claim(kind: RunKind, row: Any, *, parent: Run | None = None, **fields: Any) -> Run | None:
    """The row, claimed for this worker (running, ``fields`` written), if it waits for one;
    None if another worker holds it or it ended."""
    now = timezone.now()
    field = kind.status_field
    taken = kind.model._default_manager.filter(
        pk=row.pk, heartbeat_at__isnull=True, **{f"{field}__in": kind.waiting},
    ).update(attempts=F("attempts") + 1, heartbeat_at=now, **{field: kind.running},
             **kind.changed(now), **fields)
    if not taken:
        return None
    try:
        row.refresh_from_db()
    except ObjectDoesNotExist:  # deleted as it was claimed (a preview's cancel)
        return None
    return Run(kind, row, parent)


# --- the sweep -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sweep:
    requeued: int = 0  # sent to a worker again: its worker had stopped
    failed: int = 0  # its worker stopped more than ENGINE_JOB_MAX_REQUEUES times
    cancelled: int = 0  # cancelled while no worker ran it
    resent: int = 0  # waiting, its message presumably lost
    rebuilt: int = 0  # query snapshots rebuilt: their build stopped (engine.snapshot)


def _send(kind: RunKind, pk: Any) -> None:
    try:
        kind.send(pk)
    except Exception:  # the broker is down: the row waits, and is sent again later
        logger.exception("%s %s could not be sent to a worker; the sweep sends it again",
                         kind.name, pk)


def jobs_sweep(*, now: datetime | None = None) -> Sweep:
    """Re-queue, fail or end what no worker runs any more (see the module)."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.ENGINE_JOB_STALE_SECONDS)
    lost = now - timedelta(seconds=settings.ENGINE_JOB_RESEND_SECONDS)
    limit = settings.ENGINE_JOB_MAX_REQUEUES
    done: Counter[str] = Counter()
    for kind in kinds():
        field = kind.status_field
        unfinished = kind.rows().filter(**{f"{field}__in": kind.unfinished})
        # stopped: no heartbeat for too long; or cancelled while no worker holds it
        stopped = unfinished.filter(Q(heartbeat_at__lt=stale) | Q(
            heartbeat_at__isnull=True, **{f"{field}__in": kind.cancelling or ("-",)}))
        for row in stopped:
            if kind.status(row) in kind.cancelling:
                if kind.end_cancelled(row, now):
                    done["cancelled"] += 1
            elif row.attempts > limit:
                if kind.give_up(row, worker_stopped(row.attempts), now):
                    logger.warning("%s %s failed: its worker stopped %d times", kind.name,
                                   row.pk, row.attempts)
                    done["failed"] += 1
            elif kind.requeue(row, now):
                logger.warning("%s %s: its worker stopped (no heartbeat since %s); sent to a "
                               "worker again", kind.name, row.pk, row.heartbeat_at)
                _send(kind, row.pk)
                done["requeued"] += 1
        waiting = unfinished.filter(kind.changed_before(lost), heartbeat_at__isnull=True,
                                    **{f"{field}__in": kind.waiting})
        for row in waiting:
            if row.attempts > limit:
                if kind.give_up(row, worker_stopped(row.attempts), now):
                    done["failed"] += 1
            elif kind.as_read(row).filter(kind.changed_before(lost)).update(
                    **kind.changed(now)):
                _send(kind, row.pk)
                done["resent"] += 1
    from engine.snapshot import snapshots_sweep

    done["rebuilt"] = snapshots_sweep(now=now)
    sweep = Sweep(**done)
    if any(done.values()):
        logger.warning("engine jobs sweep: %s", sweep)
    return sweep
