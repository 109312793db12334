"""Every write of the segments app: saving (remote definition first, then our row and a version),
restoring, deleting, estimating and running. Remote calls go through the connection's aep client;
nothing here talks to the built-in engine in any other way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Max

import pql
from aep import AEPError, AEPNotFoundError
from connections.models import Connection
from connections.services import connection_client
from core.errors import RefusedError
from core.services import audit_record
from jobs.models import Job, JobKind, JobStatus
from jobs.services import job_create
from segments.models import EvaluationMethod, Segment, SegmentVersion
from segments.pql_support import PROFILE_UNION

NAME_TAKEN = "A segment named “{name}” already exists in sandbox {sandbox}. Choose another name."
PQL_INVALID = "The definition has an error at line {line}, column {column}: {message}"
STILL_REFERENCED = ("{count} other segment(s) use this one with inSegment: {names}. "
                    "Change them first.")
REMOTE_FAILED = "{connection} refused the change: {message}"
NO_REMOTE = "This segment has not been saved to {connection} yet; save it before running it."
NOTHING_SELECTED = "Select at least one saved segment to run."

EVALUATION_INFO = {
    EvaluationMethod.BATCH: {"batch": {"enabled": True}, "continuous": {"enabled": False},
                             "synchronous": {"enabled": False}},
    EvaluationMethod.STREAMING: {"batch": {"enabled": False}, "continuous": {"enabled": True},
                                 "synchronous": {"enabled": False}},
    EvaluationMethod.EDGE: {"batch": {"enabled": False}, "continuous": {"enabled": False},
                            "synchronous": {"enabled": True}},
}


class SegmentError(RefusedError):
    """A change that was refused, with a message for the person who asked (and the form field
    it belongs to, when there is one)."""


@dataclass
class Dependents:
    segments: list[Segment] = field(default_factory=list)
    exports: list[Job] = field(default_factory=list)
    schedules: list[Any] = field(default_factory=list)

    @property
    def blocking(self) -> bool:
        return bool(self.segments or self.schedules)


def _check_pql(text: str) -> None:
    try:
        pql.parse(text)
    except pql.PQLSyntaxError as error:
        raise SegmentError(PQL_INVALID.format(line=error.line, column=error.column,
                                              message=error.message), field="pql") from error


def _name_taken(*, connection: Connection, sandbox: str, name: str,
                exclude: int | None = None) -> bool:
    taken = Segment.objects.in_sandbox(connection, sandbox).filter(name__iexact=name)
    if exclude is not None:
        taken = taken.exclude(pk=exclude)
    return taken.exists()


def _snapshot(segment: Segment) -> dict[str, Any]:
    return {"name": segment.name, "description": segment.description, "pql": segment.pql,
            "merge_policy_id": segment.merge_policy_id,
            "evaluation_method": segment.evaluation_method, "remote_id": segment.remote_id}


def segment_save(
    *,
    segment: Segment | None,
    connection: Connection,
    sandbox: str,
    name: str,
    description: str,
    pql_text: str,
    merge_policy_id: str,
    evaluation_method: str,
    actor: Any,
    note: str = "",
    transport: Any = None,
) -> Segment:
    """Create or update the remote definition, then our row and a new version.

    The remote call comes first and outside any transaction: if it fails, nothing of ours
    changes; if our write then failed, the next save finds the definition by its remote id.
    """
    name = name.strip()
    _check_pql(pql_text)
    if segment is not None:
        connection, sandbox = segment.connection, segment.sandbox
    if _name_taken(connection=connection, sandbox=sandbox, name=name,
                   exclude=segment.pk if segment else None):
        raise SegmentError(NAME_TAKEN.format(name=name, sandbox=sandbox), field="name")

    client = connection_client(connection, sandbox=sandbox, transport=transport)
    evaluation_info = EVALUATION_INFO.get(EvaluationMethod(evaluation_method))
    try:
        if segment is not None and segment.remote_id:
            remote = client.update_definition(
                segment.remote_id, name=name, pql_text=pql_text, description=description,
                merge_policy_id=merge_policy_id or None, schema=PROFILE_UNION,
                evaluation_info=evaluation_info)
        else:
            remote = client.create_definition(
                name=name, pql_text=pql_text, description=description,
                merge_policy_id=merge_policy_id or None, schema=PROFILE_UNION,
                evaluation_info=evaluation_info)
    except AEPError as error:
        if error.status == 422:
            raise SegmentError(NAME_TAKEN.format(name=name, sandbox=sandbox),
                               field="name") from error
        field_name = "pql" if error.status == 400 else None
        raise SegmentError(REMOTE_FAILED.format(connection=connection.name,
                                                message=error.message),
                           field=field_name) from error

    with transaction.atomic():
        before = _snapshot(segment) if segment is not None else None
        if segment is None:
            segment = Segment(connection=connection, sandbox=sandbox, created_by=actor)
        segment.remote_id = remote.id
        segment.name = name
        segment.description = description
        segment.pql = pql_text
        segment.merge_policy_id = merge_policy_id or getattr(remote, "merge_policy_id", "") or ""
        segment.evaluation_method = evaluation_method
        segment.updated_by = actor
        segment.save()
        number = (segment.versions.aggregate(n=Max("number"))["n"] or 0) + 1
        SegmentVersion.objects.create(
            segment=segment, number=number, name=name, description=description, pql=pql_text,
            merge_policy_id=segment.merge_policy_id, evaluation_method=evaluation_method,
            created_by=actor, note=note,
        )
        audit_record(actor=actor, action="segment.create" if before is None else "segment.update",
                     obj=segment, before=before, after=_snapshot(segment) | {"version": number})
    return segment


def segment_restore(*, segment: Segment, version: SegmentVersion, actor: Any,
                    transport: Any = None) -> Segment:
    return segment_save(
        segment=segment, connection=segment.connection, sandbox=segment.sandbox,
        name=version.name, description=version.description, pql_text=version.pql,
        merge_policy_id=version.merge_policy_id, evaluation_method=version.evaluation_method,
        actor=actor, note=f"restored from version {version.number}", transport=transport,
    )


def segment_dependents(*, segment: Segment) -> Dependents:
    """What uses this segment: definitions that name it in inSegment, exports of it and (once
    schedules exist) schedules that run it."""
    found = Dependents()
    if not segment.remote_id:
        return found
    pattern = re.compile(r"inSegment\s*\(\s*\"" + re.escape(segment.remote_id) + r"\"")
    siblings = Segment.objects.in_sandbox(segment.connection, segment.sandbox).exclude(
        pk=segment.pk).filter(pql__contains=segment.remote_id)
    found.segments = [other for other in siblings if pattern.search(other.pql)]
    exports = Job.objects.filter(kind=JobKind.EXPORT, connection=segment.connection,
                                 sandbox=segment.sandbox)
    found.exports = [job for job in exports.order_by("-created_at")[:200]
                     if segment.remote_id in str(job.request)][:20]
    return found


def segment_delete(*, segment: Segment, actor: Any, transport: Any = None) -> None:
    dependents = segment_dependents(segment=segment)
    if dependents.segments:
        names = ", ".join(other.name for other in dependents.segments)
        raise SegmentError(STILL_REFERENCED.format(count=len(dependents.segments), names=names))
    if segment.remote_id:
        client = connection_client(segment.connection, sandbox=segment.sandbox,
                                   transport=transport)
        try:
            client.delete_definition(segment.remote_id)
        except AEPNotFoundError:
            pass  # already gone remotely: forgetting it here is what the user asked
        except AEPError as error:
            raise SegmentError(REMOTE_FAILED.format(connection=segment.connection.name,
                                                    message=error.message)) from error
    with transaction.atomic():
        audit_record(actor=actor, action="segment.delete", obj=segment, before=_snapshot(segment))
        segment.delete()


def segment_estimate(*, connection: Connection, sandbox: str, pql_text: str, actor: Any,
                     segment: Segment | None = None, label: str = "") -> Job:
    """Start a preview (estimate + sample members) of possibly unsaved PQL."""
    _check_pql(pql_text)
    job = job_create(
        kind=JobKind.PREVIEW, connection=connection, sandbox=sandbox,
        request={"predicateExpression": pql_text, "predicateType": "pql/text",
                 "predicateModel": PROFILE_UNION, "graphType": "pdg"},
        label=label or (segment.name if segment else "Unsaved definition"), created_by=actor,
    )
    if segment is not None:
        segment.jobs.add(job)
    audit_record(actor=actor, action="segment.estimate", obj=job, after={"pql": pql_text})
    return job


def segments_run(*, segments: list[Segment], actor: Any) -> list[Job]:
    """One segment job per connection and sandbox for the selected, saved definitions."""
    if not segments:
        raise SegmentError(NOTHING_SELECTED)
    if unsaved := [segment for segment in segments if not segment.remote_id]:
        raise SegmentError(NO_REMOTE.format(connection=unsaved[0].connection.name))
    groups: dict[tuple[int, str], list[Segment]] = {}
    for segment in segments:
        groups.setdefault((segment.connection_id, segment.sandbox), []).append(segment)
    jobs = []
    for group in groups.values():
        first = group[0]
        label = first.name if len(group) == 1 else f"{first.name} and {len(group) - 1} more"
        with transaction.atomic():
            job = job_create(
                kind=JobKind.SEGMENT, connection=first.connection, sandbox=first.sandbox,
                request={"segments": [{"segmentId": segment.remote_id} for segment in group]},
                label=label, created_by=actor,
            )
            for segment in group:
                segment.jobs.add(job)
            audit_record(actor=actor, action="segment.run", obj=job,
                         after={"segments": [segment.remote_id for segment in group]})
        jobs.append(job)
    return jobs


def segments_record_job(*, job: Job) -> None:
    """Write a finished job's figures back to its segments: a segment job's counts per
    segment, a preview's estimate."""
    if not job.is_finished:
        return
    for segment in job.segments.all():
        if job.kind == JobKind.SEGMENT and job.status == JobStatus.SUCCEEDED:
            count = _count_for(job.metrics or {}, segment.remote_id)
            if count is not None:
                segment.last_count = count
            segment.last_run_at = job.finished_at
            segment.save(update_fields=["last_count", "last_run_at"])
        elif job.kind == JobKind.PREVIEW and job.status == JobStatus.SUCCEEDED:
            metrics = job.metrics or {}
            if "estimatedSize" in metrics:
                segment.last_estimate = {
                    "size": metrics.get("estimatedSize"),
                    "standard_error": metrics.get("standardError"),
                    "sample": metrics.get("profilesReadSoFar"),
                    "at": job.finished_at.isoformat() if job.finished_at else None,
                }
                segment.save(update_fields=["last_estimate"])


def _count_for(metrics: dict[str, Any], segment_id: str) -> int | None:
    """AEP's segment job metrics: segmentedProfileCounter {segmentId: n} (and
    segmentedProfileByStatusCounter {segmentId: {realized, existing, exited}})."""
    counts = metrics.get("segmentedProfileCounter") or {}
    if segment_id in counts:
        return int(counts[segment_id])
    by_status = (metrics.get("segmentedProfileByStatusCounter") or {}).get(segment_id)
    if isinstance(by_status, dict):
        return int(by_status.get("realized", 0)) + int(by_status.get("existing", 0))
    return None
