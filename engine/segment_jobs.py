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

import pql
from engine.memberships import MEMBER_STATUSES, attach_memberships, write_memberships
from engine.models import JobStatus, MergePolicy, SegmentDefinition, SegmentJob, epoch_ms
from engine.segments import referenced_segments, segment_members, snapshot_schema
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


def _span(start_ms: int, end_ms: int) -> dict[str, int]:
    return {"startTimeInMs": start_ms, "endTimeInMs": end_ms, "totalTimeInMs": end_ms - start_ms}


def _cancelled(job: SegmentJob) -> bool:
    status = SegmentJob.objects.filter(pk=job.pk).values_list("status", flat=True).first()
    return status in (JobStatus.CANCELLING, JobStatus.CANCELLED)


def _save(job: SegmentJob, **fields: Any) -> None:
    for name, value in fields.items():
        setattr(job, name, value)
    job.update_time = epoch_ms()
    job.save(update_fields=[*fields, "update_time"])


def _finish_cancelled(job: SegmentJob) -> SegmentJob:
    _save(job, status=JobStatus.CANCELLED)
    return job


def segment_job_run(*, job: SegmentJob) -> SegmentJob:
    """PROCESSING → SUCCEEDED (memberships written, metrics) or FAILED (errors), or CANCELLED
    when a cancel arrived: checked before the job starts and between definitions."""
    if job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED):
        return job  # a redelivered task: the row already tells the outcome
    if _cancelled(job):
        return _finish_cancelled(job)
    started = epoch_ms()
    _save(job, status=JobStatus.PROCESSING,
          metrics={"totalTime": {"startTimeInMs": started}, "profileSegmentationTime": {}})
    try:
        outcome = _evaluate(job, started)
    except (SegmentJobError, NoSnapshotError) as error:
        return _fail(job, started, str(error), "")
    except Exception as error:
        logger.exception("segment job %s failed", job.id)
        return _fail(job, started, ENGINE_FAILED.format(error=type(error).__name__),
                     traceback.format_exception_only(error)[-1].strip())
    if outcome is None:
        return _finish_cancelled(job)
    return job


def _fail(job: SegmentJob, started: int, message: str, call_stack: str) -> SegmentJob:
    ended = epoch_ms()
    metrics = dict(job.metrics)
    metrics["totalTime"] = _span(started, ended)
    _save(job, status=JobStatus.FAILED, metrics=metrics,
          errors=[{"code": ERROR_CODE, "msg": message, "callStack": call_stack}])
    return job


def _evaluate(job: SegmentJob, started: int) -> SegmentJob | None:
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
    _save(job, snapshot_file=current_path(job.sandbox).name)
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
        evaluation_started = epoch_ms()
        for definition in ordered:
            if _cancelled(job):
                return None
            policy = policies.get(definition.merge_policy_id, default)
            if profiles_table(policy) not in tables:
                raise SegmentJobError(POLICY_NOT_BUILT.format(id=policy.id))
            if str(policy.id) not in by_policy:
                by_policy[str(policy.id)] = _count(con, profiles_table(policy))
            found_members = segment_members(
                con, pql.parse(definition.pql_text), now=now, schema=schema,
                tables=Tables(profiles=profiles_table(policy), events=events_table(policy),
                              memberships=JOB_TABLE))
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
    if _cancelled(job):
        return None
    written = write_memberships(job.sandbox, results, now)
    ended = epoch_ms()
    # A cancel arriving now is too late: the memberships are written, the job succeeded.
    _save(job, status=JobStatus.SUCCEEDED, errors=[], metrics={
        "totalTime": _span(started, ended),
        "profileSegmentationTime": _span(evaluation_started, evaluation_ended),
        "totalProfiles": total_profiles[0] if total_profiles else 0,
        "segmentedProfileCounter": {key: len(members) for key, members in results.items()},
        "segmentedProfileByNamespaceCounter": by_namespace,
        "segmentedProfileByStatusCounter": written.by_status,
        "totalProfilesByMergePolicy": by_policy,
    })
    return job


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    row = con.execute(f'SELECT count(*) FROM "{table}"').fetchone()
    return int(row[0]) if row else 0
