"""Every write of the segments app: saving (remote definition first, then our row and a version),
restoring, deleting, estimating and running. Remote calls go through the connection's aep client;
nothing here talks to the built-in engine in any other way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

import pql
from aep import AEPError, AEPNotFoundError
from connections.models import Connection
from connections.services import connection_client, connection_union_schemas
from core.errors import RefusedError
from core.services import audit_record
from jobs.models import Job, JobKind, JobStatus
from jobs.services import job_create
from pql.schema import Schema
from segments.models import EvaluationMethod, Segment, SegmentVersion
from segments.pql_support import PROFILE_UNION, Diagnostic, diagnose, schema_from_unions

NAME_TAKEN = "A segment named “{name}” already exists in sandbox {sandbox}. Choose another name."
PQL_INVALID = "The definition has an error at line {line}, column {column}: {message}"
NOT_SAVED = ("Not saved: the definition has {count} at line {line}, column {column} (underlined "
             "below). Fix it, then save again.")
STILL_REFERENCED = ("{count} other segment(s) use this one with inSegment: {names}. "
                    "Change them first.")
REMOTE_FAILED = "{connection} refused the change: {message}"
NO_REMOTE = "This segment has not been saved to {connection} yet; save it before running it."
NOTHING_SELECTED = "Select at least one saved segment to run."
SCHEMA_UNAVAILABLE = ("Field checks are off: the union schema could not be read from "
                      "{connection} ({message}). Syntax is still checked.")
SELF_REFERENCE = ('A segment cannot use itself: inSegment("{id}") names this segment. Use '
                  "another segment's id.")
SEGMENT_NAMES_SECONDS = 60

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


@dataclass(frozen=True)
class DefinitionCheck:
    """The one judge's verdict on a definition (pql.check against the sandbox's union schema
    and segments), as the editor shows it: every problem with its span, and a note when the
    fields could not be checked."""

    diagnostics: list[Diagnostic]
    schema_message: str = ""

    @property
    def errors(self) -> list[Diagnostic]:
        return [problem for problem in self.diagnostics if problem.severity == "error"]


def segment_union_schema(*, connection: Connection, sandbox: str) -> tuple[Schema | None, str]:
    """The checker's schema of the sandbox, and a message when it could not be read (the
    definition is then checked for syntax only; the API still judges it when it is sent)."""
    try:
        return schema_from_unions(*connection_union_schemas(connection, sandbox)), ""
    except AEPError as error:
        return None, SCHEMA_UNAVAILABLE.format(connection=connection.name, message=error.message)


def _names_key(connection: Connection, sandbox: str) -> str:
    return f"segments:names:{connection.pk}:{sandbox}"


def segment_names(*, connection: Connection, sandbox: str) -> dict[str, str] | None:
    """{id: name} of every segment definition of the sandbox that inSegment may name: the
    API's list (segments made elsewhere count too) with ours, cached for a minute and
    forgotten on every save or delete here. None when the API cannot list them: ids are
    then not checked here (the API still judges them)."""
    key = _names_key(connection, sandbox)
    found: dict[str, str] | None = cache.get(key)
    if found is None:
        try:
            with connection_client(connection, sandbox=sandbox) as client:
                found = {definition.id: definition.name for definition in client.definitions()}
        except AEPError:
            return None
        cache.set(key, found, SEGMENT_NAMES_SECONDS)
    ours = Segment.objects.in_sandbox(connection, sandbox).exclude(remote_id="")
    return {**found, **dict(ours.values_list("remote_id", "name"))}


def _forget_names(connection: Connection, sandbox: str) -> None:
    cache.delete(_names_key(connection, sandbox))


def definition_check(*, connection: Connection, sandbox: str, text: str,
                     segment: Segment | None = None) -> DefinitionCheck:
    """Judge ``text`` as the editor, the save, the estimate and the import do: syntax, fields
    and types against the union schema, inSegment ids (not the segment itself)."""
    schema, message = segment_union_schema(connection=connection, sandbox=sandbox)
    names = segment_names(connection=connection, sandbox=sandbox) if schema else None
    own = f'"{segment.remote_id}"' if segment is not None and segment.remote_id else None
    if names is not None and segment is not None:
        names.pop(segment.remote_id, None)
    diagnostics = [
        # its own id reads better as "itself" than as an unknown segment
        replace(problem, message=SELF_REFERENCE.format(id=segment.remote_id))
        if own and segment and problem.code == "unknown-segment"
        and text[problem.start:problem.end] == own else problem
        for problem in diagnose(text, schema, segments=names)
    ]
    return DefinitionCheck(diagnostics, message)


def _judge(*, connection: Connection, sandbox: str, text: str,
           segment: Segment | None = None, saving: bool = False) -> None:
    """Refuse a definition with errors, naming the first one's place (the editor underlines
    every one, with its message, so a refused save points there instead of repeating it)."""
    checked = definition_check(connection=connection, sandbox=sandbox, text=text,
                               segment=segment)
    if checked.errors:
        first = checked.errors[0]
        count = len(checked.errors)
        message = (NOT_SAVED.format(count="an error" if count == 1 else f"{count} errors, the "
                                    "first", line=first.line, column=first.column)
                   if saving else PQL_INVALID.format(line=first.line, column=first.column,
                                                     message=first.message))
        raise SegmentError(message, field="pql")


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
    if segment is not None:
        connection, sandbox = segment.connection, segment.sandbox
    _judge(connection=connection, sandbox=sandbox, text=pql_text, segment=segment, saving=True)
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
        version = SegmentVersion.objects.create(
            segment=segment, number=number, name=name, description=description, pql=pql_text,
            merge_policy_id=segment.merge_policy_id, evaluation_method=evaluation_method,
            created_by=actor, note=note, estimate=_estimate_of_text(segment, pql_text, actor),
        )
        if version.estimate is not None:
            segment.last_estimate = {**version.estimate, "version": number}
            segment.save(update_fields=["last_estimate"])
        audit_record(actor=actor, action="segment.create" if before is None else "segment.update",
                     obj=segment, before=before, after=_snapshot(segment) | {"version": number})
    _forget_names(connection, sandbox)
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
    _forget_names(segment.connection, segment.sandbox)


def segment_estimate(*, connection: Connection, sandbox: str, pql_text: str, actor: Any,
                     segment: Segment | None = None, label: str = "") -> Job:
    """Start a preview (estimate + sample members) of possibly unsaved PQL."""
    _judge(connection=connection, sandbox=sandbox, text=pql_text, segment=segment)
    with transaction.atomic():  # linked before the submit is sent, so its figures come back
        job = job_create(
            kind=JobKind.PREVIEW, connection=connection, sandbox=sandbox,
            request={"predicateExpression": pql_text, "predicateType": "pql/text",
                     "predicateModel": PROFILE_UNION, "graphType": "pdg"},
            label=label or (segment.name if segment else "Unsaved definition"),
            created_by=actor, reuse_queued=True,  # pressed again: the same job, not a second
        )
        if segment is not None:
            segment.jobs.add(job)
        audit_record(actor=actor, action="segment.estimate", obj=job, after={"pql": pql_text})
    return job


def segments_run(*, segments: list[Segment], actor: Any,
                 reuse_queued: bool = True) -> list[Job]:
    """One segment job per connection and sandbox for the selected, saved definitions; run
    again while such a job still waits for a worker, the same job (jobs.services.job_create's
    reuse_queued)."""
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
            # each segment's current version rides along (ours; the API reads the ids only),
            # so the count comes back to the version it counted
            job = job_create(
                kind=JobKind.SEGMENT, connection=first.connection, sandbox=first.sandbox,
                request={"segments": [{"segmentId": segment.remote_id,
                                       "version": segment.version_number}
                                      for segment in group]},
                label=label, created_by=actor, reuse_queued=reuse_queued,
            )
            for segment in group:
                segment.jobs.add(job)
            audit_record(actor=actor, action="segment.run", obj=job,
                         after={"segments": [segment.remote_id for segment in group]})
        jobs.append(job)
    return jobs


def canonical_text(text: str) -> str:
    """A definition's text as the printer writes it, so that spacing and line breaks do not
    make two equal definitions different (the text itself when it does not parse)."""
    try:
        return pql.to_text(pql.parse(text))
    except pql.PQLError:
        return text.strip()


def estimate_of(job: Job) -> dict[str, Any] | None:
    """A finished preview job's estimate as the segments keep it: exact when every profile
    of the store was read, else a sample with its standard error."""
    metrics = job.metrics or {}
    if job.status != JobStatus.SUCCEEDED or metrics.get("estimatedSize") is None:
        return None
    read, total = metrics.get("profilesReadSoFar"), metrics.get("totalRows")
    return {
        "size": metrics.get("estimatedSize"),
        "standard_error": metrics.get("standardError"),
        "sample": read,
        "total": total,
        "exact": bool(total is not None and read is not None and read >= total),
        "at": job.finished_at.isoformat() if job.finished_at else None,
        "job": job.pk,
    }


DRAFT_ESTIMATE_AGE = timedelta(hours=1)


def _estimate_of_text(segment: Segment, text: str, actor: Any) -> dict[str, Any] | None:
    """The newest succeeded estimate of ``text`` for this segment: one of its own previews, or
    the saver's own estimate of the same text in this sandbox within the hour, made in the
    editor before the segment existed (it is linked to the segment now). An estimate made
    before saving belongs to the version the save makes."""
    wanted = canonical_text(text)
    previews = Job.objects.filter(kind=JobKind.PREVIEW, status=JobStatus.SUCCEEDED,
                                  connection=segment.connection, sandbox=segment.sandbox)
    own = previews.filter(segments=segment)
    drafts = previews.filter(segments__isnull=True, created_by_id=getattr(actor, "pk", None),
                             finished_at__gte=timezone.now() - DRAFT_ESTIMATE_AGE)
    for job in (own | drafts).distinct().order_by("-finished_at", "-pk")[:20]:
        if canonical_text(str((job.request or {}).get("predicateExpression", ""))) == wanted:
            segment.jobs.add(job)
            return estimate_of(job)
    return None


def segments_record_count(*, job: Job) -> None:
    """A succeeded segment job's count per segment goes back to its segments, with the
    version it counted (a finish hook of segment jobs: idempotent)."""
    for segment in job.segments.all():
        count = segment_count(job.metrics or {}, segment.remote_id)
        if count is not None:
            segment.last_count = count
            segment.last_run_version = _version_run(job, segment.remote_id)
        segment.last_run_at = job.finished_at
        segment.save(update_fields=["last_count", "last_run_at", "last_run_version"])


def segments_record_estimate(*, job: Job) -> None:
    """A succeeded preview's estimate goes to the version whose text it estimated (an estimate
    of unsaved text belongs to no version yet) — a finish hook of previews: idempotent."""
    estimate = estimate_of(job)
    if estimate is None:
        return
    text = canonical_text(str((job.request or {}).get("predicateExpression", "")))
    for segment in job.segments.all():
        versions = [version for version in segment.versions.order_by("-number")
                    if canonical_text(version.pql) == text]
        if not versions:
            continue
        version = versions[0]
        version.estimate = estimate
        version.save(update_fields=["estimate"])
        newest = (segment.last_estimate or {}).get("version")
        if newest is None or version.number >= newest:
            segment.last_estimate = {**estimate, "version": version.number}
            segment.save(update_fields=["last_estimate"])


def _version_run(job: Job, segment_id: str) -> int | None:
    for item in (job.request or {}).get("segments") or []:
        if isinstance(item, dict) and item.get("segmentId") == segment_id:
            version = item.get("version")
            return int(version) if isinstance(version, int) else None
    return None


def segment_count(metrics: dict[str, Any], segment_id: str) -> int | None:
    """AEP's segment job metrics: segmentedProfileCounter {segmentId: n} (and
    segmentedProfileByStatusCounter {segmentId: {realized, existing, exited}})."""
    counts = metrics.get("segmentedProfileCounter") or {}
    if segment_id in counts:
        return int(counts[segment_id])
    by_status = (metrics.get("segmentedProfileByStatusCounter") or {}).get(segment_id)
    if isinstance(by_status, dict):
        return int(by_status.get("realized", 0)) + int(by_status.get("existing", 0))
    return None
