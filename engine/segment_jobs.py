"""Running a segment job (spec/aep-api.md §4): evaluate its definitions on the current snapshot,
in dependency order, and record their memberships (engine.memberships).

A definition that uses ``inSegment`` of another definition of the same job is evaluated after
it and sees its new members: the job's results so far are a temporary table on the read-only
snapshot connection, over the memberships of every other segment. The memberships store is
written once, at the end: a failed or cancelled job changes nothing.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import duckdb
from django.db import models

import pql
from engine.memberships import MEMBER_STATUSES, attach_memberships, write_memberships
from engine.models import (
    FINISHED_STATUSES,
    JobStatus,
    MergePolicy,
    SegmentDefinition,
    SegmentJob,
    epoch_ms,
)
from engine.runs import Cancelled, Run, RunKind, Superseded, claim, ms, span
from engine.segments import (
    EvaluationBudget,
    EvaluationBudgetExceeded,
    referenced_segments,
    segment_members,
    snapshot_schema,
)
from engine.snapshot import (
    NoSnapshotError,
    current_path,
    default_merge_policy,
    events_table,
    open_snapshot,
    profiles_table,
)
from pql.sql import Tables

logger = logging.getLogger(__name__)

JOB_TABLE = "job_memberships"  # temporary, on the job's connection
CYCLE = "The segment definitions {names} use each other with inSegment; none can go first."
DEFINITION_GONE = "The segment definition {id} was deleted before the job ran."
POLICY_NOT_BUILT = ("The merge policy {id} is not in the query snapshot yet; rebuild the "
                    "snapshot and run the job again.")
ENGINE_FAILED = "The segment job failed: {error}"
ERROR_CODE = "0080000018"  # Adobe's example code of a failed segment job


class SegmentJobError(Exception):
    """A failure worth telling the caller as it is (no internals)."""


def evaluation_order(definitions: Sequence[SegmentDefinition]) -> list[SegmentDefinition]:
    """Definitions that others of the job name with inSegment come first (Kahn's algorithm,
    stable in the order sent); a cycle is a SegmentJobError."""
    by_id = {str(d.id): d for d in definitions}
    needs = {key: {ref for ref in referenced_segments(pql.parse(d.pql_text))
                   if ref in by_id and ref != key} for key, d in by_id.items()}
    ordered: list[SegmentDefinition] = []
    done: set[str] = set()
    while len(ordered) < len(by_id):
        ready = [key for key in by_id if key not in done and needs[key] <= done]
        if not ready:
            names = ", ".join(repr(by_id[k].name) for k in by_id if k not in done)
            raise SegmentJobError(CYCLE.format(names=names))
        for key in ready:
            ordered.append(by_id[key])
            done.add(key)
    return ordered


class SegmentJobRuns(RunKind):
    """Segment jobs as engine.runs sees them. One that an export runs first
    (evaluationInfo.segmentation) is the export's: it ends with it (engine.exports)."""

    model = SegmentJob
    name = "segment job"
    waiting = (JobStatus.NEW, JobStatus.QUEUED)
    requeued = JobStatus.QUEUED
    running = JobStatus.PROCESSING
    unfinished = (JobStatus.NEW, JobStatus.QUEUED, JobStatus.PROCESSING, JobStatus.CANCELLING)
    cancelling = (JobStatus.CANCELLING,)

    def rows(self) -> models.QuerySet[Any]:
        return SegmentJob.objects.filter(export_job__isnull=True)

    def changed(self, now: datetime) -> dict[str, Any]:
        return {"update_time": ms(now)}

    def changed_before(self, moment: datetime) -> models.Q:
        return models.Q(update_time__lt=ms(moment))

    def send(self, pk: Any) -> None:
        from engine.tasks_jobs import segment_job_run as task

        task.delay(str(pk))

    def give_up(self, row: Any, reason: str, now: datetime) -> bool:
        return bool(self.as_read(row).update(**failed(row, ENGINE_FAILED.format(error=reason),
                                                      now)))


RUNS = SegmentJobRuns()


def failed(job: SegmentJob, message: str, now: datetime, call_stack: str = "") -> dict[str, Any]:
    """The fields of a job failed at `now` (its totalTime closed), for an update."""
    metrics = dict(job.metrics)
    started = metrics.get("totalTime", {}).get("startTimeInMs")
    if started:
        metrics["totalTime"] = span(started, ms(now))
    return {"status": JobStatus.FAILED, "metrics": metrics, "heartbeat_at": None,
            "update_time": ms(now),
            "errors": [{"code": ERROR_CODE, "msg": message, "callStack": call_stack}]}


def segment_job_run(*, job: SegmentJob, parent: Run | None = None) -> SegmentJob:
    """NEW or QUEUED → PROCESSING → SUCCEEDED (memberships written, metrics) or FAILED (errors),
    or CANCELLED when a cancel arrived: checked before the job starts and between definitions.
    A job another worker holds, or that ended, is left alone (a task delivered twice). An
    export's own segment job runs with the export's run as `parent`: cancelling the export
    cancels it."""
    if job.status in FINISHED_STATUSES:
        return job  # a redelivered task: the row already tells the outcome
    if RUNS.end_cancelled_waiting(job):
        job.refresh_from_db()  # cancelled before a worker took it
        return job
    started = epoch_ms()
    run = claim(RUNS, job, parent=parent, metrics={"totalTime": {"startTimeInMs": started},
                                                   "profileSegmentationTime": {}})
    if run is None:
        job.refresh_from_db()
        return job
    with run:
        try:
            try:
                _evaluate(job, run, started)
            except Cancelled:
                run.save(status=JobStatus.CANCELLED)
            except (SegmentJobError, NoSnapshotError) as error:
                _fail(run, started, str(error), "")
            except EvaluationBudgetExceeded as error:  # what to change is in its message
                _fail(run, started, error.message, "")
            except Superseded:
                raise
            except Exception as error:
                logger.exception("segment job %s failed", job.id)
                _fail(run, started, ENGINE_FAILED.format(error=type(error).__name__),
                      traceback.format_exception_only(error)[-1].strip())
        except Superseded:
            logger.warning("segment job %s was given to another worker (or deleted); this run "
                           "stops", job.id)
    return job


def _fail(run: Run, started: int, message: str, call_stack: str) -> None:
    metrics = dict(run.row.metrics)
    metrics["totalTime"] = span(started, epoch_ms())
    run.save(status=JobStatus.FAILED, metrics=metrics,
             errors=[{"code": ERROR_CODE, "msg": message, "callStack": call_stack}])


def _evaluate(job: SegmentJob, run: Run, started: int) -> None:
    found = {str(d.id): d for d in SegmentDefinition.objects.in_sandbox(job.sandbox)
             .filter(id__in=job.segment_ids)}
    for key in job.segment_ids:
        if key not in found:
            raise SegmentJobError(DEFINITION_GONE.format(id=key))
    ordered = evaluation_order([found[key] for key in job.segment_ids])
    default = default_merge_policy(job.sandbox)
    policies = {str(p.id): p for p in MergePolicy.objects.filter(sandbox=job.sandbox)}
    now = datetime.now(UTC)
    results: dict[str, set[str]] = {}
    by_namespace: dict[str, dict[str, int]] = {}
    run.save(snapshot_file=current_path(job.sandbox).name)
    with open_snapshot(job.sandbox) as con:
        attach_memberships(con, job.sandbox)
        job_ids = [str(d.id) for d in ordered]
        con.execute(f"CREATE TEMP TABLE {JOB_TABLE} AS SELECT * FROM ms.memberships "
                    "WHERE segment_id NOT IN (SELECT unnest($ids))", {"ids": job_ids})
        tables = {name for (name,) in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name <> 'ms'").fetchall()}
        schema = snapshot_schema(con)
        total_profiles = con.execute("SELECT count(*) FROM profiles").fetchone()
        by_policy: dict[str, int] = {}
        budget = EvaluationBudget()  # one for the whole job, however many definitions
        evaluation_started = epoch_ms()
        for definition in ordered:
            run.check("segment-evaluate")
            policy = policies.get(definition.merge_policy_id, default)
            if profiles_table(policy) not in tables:
                raise SegmentJobError(POLICY_NOT_BUILT.format(id=policy.id))
            if str(policy.id) not in by_policy:
                by_policy[str(policy.id)] = _count(con, profiles_table(policy))
            found_members = segment_members(
                con, pql.parse(definition.pql_text), now=now, schema=schema,
                tables=Tables(profiles=profiles_table(policy), events=events_table(policy),
                              memberships=JOB_TABLE), budget=budget)
            key = str(definition.id)
            results[key] = found_members.members
            if found_members.members:  # what inSegment of a later definition reads
                con.execute(f"INSERT INTO {JOB_TABLE} SELECT unnest($ids), $segment, "
                            f"'{MEMBER_STATUSES[0]}', $now",
                            {"ids": sorted(found_members.members), "segment": key,
                             "now": now.replace(tzinfo=None)})
            by_namespace[key] = dict(con.execute(
                "SELECT namespace, count(DISTINCT _profile_id) FROM identities "
                "WHERE _profile_id IN (SELECT unnest($ids)) GROUP BY namespace ORDER BY 1",
                {"ids": sorted(found_members.members) or [""]}).fetchall())
        evaluation_ended = epoch_ms()
    run.check()
    written = write_memberships(job.sandbox, results, now)
    ended = epoch_ms()
    # A cancel arriving now is too late: the memberships are written, the job succeeded.
    run.save(status=JobStatus.SUCCEEDED, errors=[], metrics={
        "totalTime": span(started, ended),
        "profileSegmentationTime": span(evaluation_started, evaluation_ended),
        "totalProfiles": total_profiles[0] if total_profiles else 0,
        "segmentedProfileCounter": {key: len(members) for key, members in results.items()},
        "segmentedProfileByNamespaceCounter": by_namespace,
        "segmentedProfileByStatusCounter": written.by_status,
        "totalProfilesByMergePolicy": by_policy,
    })


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    row = con.execute(f'SELECT count(*) FROM "{table}"').fetchone()
    return int(row[0]) if row else 0
