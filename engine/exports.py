"""Running an export job (spec/aep-api.md §5): an audience from the memberships store, written
as Parquet into a new batch of the destination dataset, whole or not at all.

The members are the profiles whose membership of a requested segment has one of the requested
statuses (all profiles without a segment filter). Each row holds the requested profile fields
(dot paths, rebuilt as nested structs; every field when none are named), the profile's
``identityMap``, its ``segmentMembership`` (``{"ups": {segment id: {status,
lastQualificationTime}}}`` for the exported segments) and, with ``additionalFields.eventList``,
its ``events`` in time order. Without ``filter.emptyProfiles: true`` (AEP's default) only
members with profile attributes are exported, not those known only from their events ("empty
profiles"); with it, every member has its row, its identityMap at least.
``filter.fromIngestTimestamp`` keeps the profiles with a record
fragment ingested after it (from the batches' completion times), and the events ingested after
it; ``additionalFields.eventList.filter`` narrows the events to an ingest-time window
(``fromIngestTimestamp`` exclusive, ``toIngestTimestamp`` inclusive) — an event's ingest time
is its batch's completion, kept by the snapshot as ``_ingested_at``. The file is written into a
staging folder of the run, renamed into the batch folder as the batch is marked success (in
its transaction). A failure removes the staging folder and marks the batch failed, so a reader
never sees a partial batch.

An export runs once at a time (engine.runs: a claim, a heartbeat). A run after one whose
worker stopped (the sweep sent the job again) reuses what that one left: its batch, still
``loading`` (its files of that run removed), and its segment job of evaluationInfo.segmentation
— run again if it had not finished, kept if it had. So an export has one batch and one segment
job whatever happens to its workers, and both end with it: failed or cancelled with the export
if it ends before them.
"""

from __future__ import annotations

import logging
import os
import shutil
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
from django.db import models, transaction
from django.utils import timezone

from engine.duck import sql_string
from engine.ingest import IDENTITIES_COLUMN, batch_path
from engine.memberships import ALIAS, attach_memberships
from engine.models import (
    FINISHED_STATUSES,
    Batch,
    BatchStatus,
    Dataset,
    ExportJob,
    JobStatus,
    MergePolicy,
    SegmentDefinition,
    SegmentJob,
    XdmClass,
    epoch_ms,
)
from engine.profiles import HIDDEN
from engine.runs import Cancelled, Run, RunKind, Superseded, claim, ms, span
from engine.snapshot import (
    NoSnapshotError,
    default_merge_policy,
    events_table,
    open_snapshot,
    profiles_table,
)
from engine.storage import batch_dir, dataset_dir, folder_lock
from engine.xdm import parse_datetime
from engine.xdm import quote_identifier as q

logger = logging.getLogger(__name__)

FILE_NAME = "part-00000.parquet"
ERROR_CODE = "0100000003"  # Adobe's "Error in Export Job"
DESTINATION_MISSING = "Error in Export Job: the destination dataset {id} is not found."
DESTINATION_NOT_EXPORT = ("Error in Export Job: the destination dataset {id} is not an "
                          "export dataset (one on the profile union schema): exported profiles "
                          "must not be mixed into ingested records.")
POLICY_NOT_BUILT = ("Error in Export Job: the merge policy {id} is not in the query snapshot "
                    "yet; rebuild the snapshot.")
FIELD_MISSING = "Error in Export Job: {path} is not a field of the profiles."
ENGINE_FAILED = "Error in Export Job: {error}"
SEGMENTATION_FAILED = "Error in Export Job: the segment job {id} run first failed: {reason}"


EVENTS_WITHOUT_INGEST_TIMES = ("the snapshot was built before events kept their ingest "
                               "time; rebuild it (manage.py build_snapshot) and export again")


SEGMENTATION_ENDED = "Error in Export Job: the export job {id} running it ended first: {reason}"
CANCELLED_REASON = "The export job was cancelled."


class ExportError(Exception):
    """A failure told to the caller as it is."""


class ExportJobRuns(RunKind):
    """Export jobs as engine.runs sees them; a job's batch and own segment job end with it."""

    model = ExportJob
    name = "export job"
    waiting = (JobStatus.NEW, JobStatus.QUEUED)
    requeued = JobStatus.QUEUED
    running = JobStatus.PROCESSING
    unfinished = (JobStatus.NEW, JobStatus.QUEUED, JobStatus.PROCESSING, JobStatus.CANCELLING)
    cancelling = (JobStatus.CANCELLING,)

    def changed(self, now: datetime) -> dict[str, Any]:
        return {"update_time": ms(now)}

    def changed_before(self, moment: datetime) -> models.Q:
        return models.Q(update_time__lt=ms(moment))

    def send(self, pk: Any) -> None:
        from engine.tasks_jobs import export_job_run as task

        task.delay(pk)

    def requeue(self, row: Any, now: datetime) -> bool:
        with transaction.atomic():
            if not super().requeue(row, now):
                return False
            _segmentation(row).update(status=JobStatus.QUEUED, heartbeat_at=None,
                                      update_time=ms(now))
        return True

    def give_up(self, row: Any, reason: str, now: datetime) -> bool:
        message = ENGINE_FAILED.format(error=reason)
        return _end(row, self.as_read(row), now, failed(row, message, now), message)

    def end_cancelled(self, row: Any, now: datetime) -> bool:
        return _end(row, self.as_read(row), now,
                    {"status": JobStatus.CANCELLED, "heartbeat_at": None,
                     "update_time": ms(now)}, CANCELLED_REASON)


RUNS = ExportJobRuns()


def failed(job: ExportJob, message: str, now: datetime, call_stack: str = "") -> dict[str, Any]:
    """The fields of a job failed at `now` (its totalTime closed), for an update."""
    metrics = dict(job.metrics)
    started = metrics.get("totalTime", {}).get("startTimeInMs")
    if started:
        metrics["totalTime"] = span(started, ms(now))
    return {"status": JobStatus.FAILED, "metrics": metrics, "heartbeat_at": None,
            "update_time": ms(now),
            "errors": [{"code": ERROR_CODE, "msg": message, "callStack": call_stack}]}


def _segmentation(job: ExportJob) -> models.QuerySet[SegmentJob]:
    """The job's own segment job, if it has not ended."""
    return SegmentJob.objects.filter(export_job=job.pk, status__in=RUNS.unfinished)


def _end(job: ExportJob, rows: models.QuerySet[Any], now: datetime, fields: dict[str, Any],
         reason: str) -> bool:
    """End the job with `fields` (one update of `rows`, the job's row if it is as expected),
    its batch failed for `reason` and its unfinished segment job ended the same way. False
    if `rows` updated nothing (the job changed meanwhile)."""
    with transaction.atomic():
        if not rows.update(**fields):
            return False
        segment_fields = {"status": fields["status"], "heartbeat_at": None,
                          "update_time": ms(now)}
        if fields["status"] == JobStatus.FAILED:
            segment_fields["errors"] = [{"code": ERROR_CODE, "callStack": "",
                                         "msg": SEGMENTATION_ENDED.format(id=job.pk,
                                                                          reason=reason)}]
        _segmentation(job).update(**segment_fields)
        batch = (Batch.objects.select_related("dataset").filter(pk=job.batch_id).first()
                 if job.batch_id else None)
        _fail_batch(batch, reason)
    return True


def export_job_run(*, job: ExportJob) -> ExportJob:
    """NEW or QUEUED → PROCESSING → SUCCEEDED (a batch of the destination, success), FAILED
    (errors; its batch failed) or CANCELLED. A job another worker holds, or that ended, is
    left alone (a task delivered twice)."""
    if job.status in FINISHED_STATUSES:
        return job  # a redelivered task: the row already tells the outcome
    if RUNS.end_cancelled_waiting(job):
        job.refresh_from_db()  # cancelled before a worker took it
        return job
    started = epoch_ms()
    run = claim(RUNS, job, metrics={"totalTime": {"startTimeInMs": started}})
    if run is None:
        job.refresh_from_db()
        return job
    with run:
        try:
            try:
                _run(job, run, started)
            except Cancelled:
                _finish(run, {"status": JobStatus.CANCELLED}, CANCELLED_REASON)
            except (ExportError, NoSnapshotError) as error:
                _finish(run, failed(job, str(error), timezone.now()), str(error))
            except Superseded:
                raise
            except Exception as error:
                logger.exception("export job %s failed", job.pk)
                message = ENGINE_FAILED.format(error=type(error).__name__)
                _finish(run, failed(job, message, timezone.now(),
                                    traceback.format_exception_only(error)[-1].strip()),
                        message)
        except Superseded:
            logger.warning("export job %s was given to another worker; this run stops", job.pk)
    return job


def _finish(run: Run, fields: dict[str, Any], reason: str) -> None:
    """End the run's job unsuccessfully (as _end does), if the row is still the run's."""
    job = run.row
    now = timezone.now()
    fields = {**fields, "heartbeat_at": now, "update_time": ms(now)}  # ended by its own run
    if not _end(job, run.mine(), now, fields, reason):
        raise Superseded(f"export job {job.pk}")
    run.finished = True
    for name, value in fields.items():
        setattr(job, name, value)


def _run(job: ExportJob, run: Run, started: int) -> None:
    dataset = _destination(job)
    # shared: exports into one dataset run side by side; a deletion of the dataset waits
    # for none of them and is refused while one writes (engine.api.services_jobs)
    with folder_lock(dataset_dir(dataset.sandbox, dataset.id), shared=True) as folder:
        if not Dataset.objects.filter(pk=dataset.pk).exists():  # deleted meanwhile
            shutil.rmtree(folder, ignore_errors=True)
            raise ExportError(DESTINATION_MISSING.format(id=dataset.id))
        batch = _batch(job, run, dataset)
        if job.request.get("evaluationInfo", {}).get("segmentation"):
            _segment_first(job, run)
        _write(job, run, dataset, batch, started)


def _batch(job: ExportJob, run: Run, dataset: Dataset) -> Batch:
    """The job's batch: the one an earlier run of it left loading (its files removed), or a
    new one, recorded on the job in the same transaction (so no batch is ever nobody's)."""
    earlier = (Batch.objects.select_related("dataset")
               .filter(pk=job.batch_id, dataset=dataset, status=BatchStatus.LOADING).first()
               if job.batch_id else None)
    if earlier is not None:
        _remove_files(earlier)
        return earlier
    with transaction.atomic():
        batch = Batch.objects.create(dataset=dataset, source_files=[f"export job {job.pk}"])
        run.save(batch=batch)
    return batch


def _segment_first(job: ExportJob, run: Run) -> None:
    """evaluationInfo.segmentation: evaluate the exported segments first, as a segment job of
    its own (listed with the others), so the export reads fresh memberships. A run after one
    whose worker stopped reuses that segment job: kept if it succeeded, run if it had not
    finished."""
    from engine.segment_jobs import segment_job_run

    segments = [s["segmentId"] for s in job.request.get("filter", {}).get("segments", [])
                if s.get("segmentNs", "ups") == "ups"]
    if not segments:
        return
    segment_job = SegmentJob.objects.filter(export_job=job).order_by("creation_time").first()
    if segment_job is None:
        segment_job = SegmentJob.objects.create(
            sandbox=job.sandbox, client=job.client, segment_ids=list(dict.fromkeys(segments)),
            request={"requestId": job.request.get("requestId", ""), "exportJobId": job.pk},
            export_job=job)
    elif segment_job.status == JobStatus.PROCESSING:  # its run was this job's, which stopped
        SegmentJob.objects.filter(pk=segment_job.pk, status=JobStatus.PROCESSING).update(
            status=JobStatus.QUEUED, heartbeat_at=None, update_time=epoch_ms())
        segment_job.refresh_from_db()
    if segment_job.status != JobStatus.SUCCEEDED:
        segment_job_run(job=segment_job, parent=run)
    if segment_job.status == JobStatus.CANCELLED:
        raise Cancelled(f"export job {job.pk}")
    if segment_job.status != JobStatus.SUCCEEDED:
        reason = segment_job.errors[0]["msg"] if segment_job.errors else segment_job.status
        raise ExportError(SEGMENTATION_FAILED.format(id=segment_job.id, reason=reason))


def _destination(job: ExportJob) -> Dataset:
    dataset_id = job.request.get("destination", {}).get("datasetId", "")
    dataset = Dataset.objects.in_sandbox(job.sandbox).filter(id=dataset_id).first()
    if dataset is None:
        raise ExportError(DESTINATION_MISSING.format(id=dataset_id))
    if not dataset.union_persisting:  # a profile-enabled one would read its members back
        raise ExportError(DESTINATION_NOT_EXPORT.format(id=dataset_id))
    return dataset


def _fail_batch(batch: Batch | None, reason: str) -> None:
    if batch is None or batch.status == BatchStatus.SUCCESS:
        return
    _remove_files(batch)
    # an update, not save(): a row deleted with its dataset since is not inserted again
    Batch.objects.filter(pk=batch.pk).exclude(status=BatchStatus.SUCCESS).update(
        status=BatchStatus.FAILED, failure_reason=reason, files=[], record_count=0,
        completed_at=timezone.now(), updated_at=timezone.now())


def _staging(batch: Batch, run: Run) -> Path:
    """The run's own staging folder (an earlier run's, if its worker still wrote, is not it)."""
    final = batch_dir(batch.dataset.sandbox, batch.dataset_id, batch.id)
    return final.with_name(f".{batch.id}.staging-{run.attempt}")


def _remove_files(batch: Batch) -> None:
    """The files of an unfinished batch: staging folders, and a batch folder renamed into
    place by a run whose worker stopped before the batch was recorded."""
    final = batch_dir(batch.dataset.sandbox, batch.dataset_id, batch.id)
    for leftover in final.parent.glob(f".{batch.id}.staging*"):
        shutil.rmtree(leftover, ignore_errors=True)
    shutil.rmtree(final, ignore_errors=True)


def _policy(job: ExportJob) -> MergePolicy:
    wanted = job.request.get("mergePolicy", {}).get("id")
    if not wanted:
        segments = job.request.get("filter", {}).get("segments", [])
        first = next((s["segmentId"] for s in segments if s.get("segmentNs") == "ups"), None)
        definition = (SegmentDefinition.objects.in_sandbox(job.sandbox).filter(id=first).first()
                      if first else None)
        wanted = definition.merge_policy_id if definition else None
    policy = MergePolicy.objects.filter(sandbox=job.sandbox, id=wanted).first() if wanted else None
    return policy or default_merge_policy(job.sandbox)


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [row[0] for row in con.execute(f"DESCRIBE {q(table)}").fetchall()]


def field_selection(paths: list[str], columns: list[str], alias: str
                    ) -> list[tuple[str, str]]:
    """``a.b.c`` paths → (expression, top-level name) pairs rebuilding only the named parts,
    nested as in XDM."""
    tree: dict[str, Any] = {}
    for path in paths:
        node = tree
        parts = path.split(".")
        if parts[0] not in columns:
            raise ExportError(FIELD_MISSING.format(path=path))
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if child is None:  # a parent was asked for whole: it holds this part already
                break
            node = child
        else:
            node[parts[-1]] = None

    def build(node: dict[str, Any] | None, expr: str) -> str:
        if node is None:
            return expr
        inner = ", ".join(
            f"{q(name)} := {build(child, f'struct_extract({expr}, {sql_string(name)})')}"
            for name, child in node.items())
        return f"struct_pack({inner})"

    return [(build(child, f"{alias}.{q(name)}"), q(name)) for name, child in tree.items()]


def _members_sql(job: ExportJob) -> tuple[str, list[str]]:
    """SQL of the member profile ids, and the segments whose memberships are exported."""
    filters = job.request.get("filter", {})
    segments = filters.get("segments")
    if not segments:
        return "", []
    window = filters.get("segmentQualificationTime", {})
    conditions = []
    ids = []
    for item in segments:
        if item.get("segmentNs", "ups") != "ups":
            continue  # external namespaces hold no members here
        statuses = ", ".join(sql_string(s) for s in item["status"])
        conditions.append(f"(segment_id = {sql_string(item['segmentId'])} "
                          f"AND status IN ({statuses}))")
        ids.append(item["segmentId"])
    where = " OR ".join(conditions) or "false"
    for key, op in (("startTime", ">="), ("endTime", "<=")):
        if key in window:
            where = (f"({where}) AND last_qualification_time {op} "
                     f"CAST({sql_string(window[key])} AS TIMESTAMPTZ)::TIMESTAMP")
    return f"SELECT _profile_id FROM {ALIAS}.memberships WHERE {where}", ids


def _moment(value: str) -> datetime:
    """An ingest timestamp of the request, as naive UTC (the API checked that it parses)."""
    moment = parse_datetime(value)
    if moment is None:
        raise ExportError(ENGINE_FAILED.format(error=f"bad ingest timestamp {value!r}"))
    return moment


def _updated_since(sandbox: str, since: str) -> str:
    """SQL of the profiles with a record fragment ingested after `since` (their merged update
    time is later): the identities of the batches completed since then, mapped to profiles
    through the snapshot's identities. The snapshot keeps no ingest times, the batches do."""
    moment = _moment(since)
    batches = (Batch.objects.filter(dataset__sandbox=sandbox, dataset__xdm_class=XdmClass.PROFILE,
                                    dataset__profile_enabled=True, status=BatchStatus.SUCCESS,
                                    completed_at__gt=moment.replace(tzinfo=UTC))
               .select_related("dataset"))
    files = [str(batch_path(batch) / item["name"]) for batch in batches for item in batch.files]
    if not files:
        return "SELECT NULL::VARCHAR WHERE false"
    column = q(IDENTITIES_COLUMN)
    return f"""
        SELECT i._profile_id FROM identities i
        JOIN (SELECT DISTINCT upper(x.namespace) AS namespace, x.id
              FROM (SELECT unnest({column}) AS x
                    FROM read_parquet([{", ".join(sql_string(f) for f in files)}],
                                      union_by_name = true))) k
          ON upper(i.namespace) = k.namespace AND i.id = k.id"""


def _ingest_window(request: dict[str, Any], event_list: dict[str, Any], *,
                   has_ingest_times: bool) -> str:
    """The WHERE of the exported events (alias e) by ingest time: after filter.fromIngestTimestamp
    and within eventList.filter's window; empty without either."""
    bounds = [(request.get("filter", {}).get("fromIngestTimestamp"), ">")]
    window = event_list.get("filter", {})
    bounds += [(window.get("fromIngestTimestamp"), ">"), (window.get("toIngestTimestamp"), "<=")]
    conditions = []
    for value, op in bounds:
        if not value:
            continue
        moment = _moment(value).isoformat(sep=" ")
        conditions.append(f"e._ingested_at {op} TIMESTAMP {sql_string(moment)}")
    if conditions and not has_ingest_times:
        raise ExportError(ENGINE_FAILED.format(error=EVENTS_WITHOUT_INGEST_TIMES))
    return f"WHERE {' AND '.join(conditions)}" if conditions else ""


def export_sql(con: duckdb.DuckDBPyConnection, job: ExportJob, policy: MergePolicy
               ) -> tuple[str, str]:
    """The export's SELECT, and the FROM … WHERE of the exported profiles (alias p) without the
    SELECT's joins — what counting their identities needs (the joins only add columns)."""
    table = profiles_table(policy)
    columns = _columns(con, table)
    request = job.request
    attributes = [c for c in columns if c not in (*HIDDEN, "identityMap", "segmentMembership")]
    if "fields" in request:
        paths = [p for p in request["fields"].split(",") if p.split(".")[0] != "identityMap"]
        select = [f"{expr} AS {name}" for expr, name in field_selection(paths, columns, "p")]
    else:
        select = [f"p.{q(c)}" for c in attributes]
    if "identityMap" in columns:
        select.insert(0, 'p."identityMap"')
    members, segment_ids = _members_sql(job)
    membership_where = ("WHERE segment_id IN (" + ", ".join(sql_string(s) for s in segment_ids)
                        + ")") if members else ""
    select.append("CASE WHEN sm.ups IS NULL THEN NULL ELSE MAP {'ups': sm.ups} END "
                  'AS "segmentMembership"')
    joins = [f"""LEFT JOIN (
        SELECT _profile_id, map_from_entries(list({{'key': segment_id, 'value': {{
                   'status': status, 'lastQualificationTime': last_qualification_time}}}}))
               AS ups
        FROM {ALIAS}.memberships {membership_where} GROUP BY _profile_id) sm
        ON sm._profile_id = p._profile_id"""]
    event_list = request.get("additionalFields", {}).get("eventList")
    if event_list is not None:
        events = events_table(policy)
        stored = _columns(con, events)
        event_columns = [c for c in stored if c not in HIDDEN]
        if "fields" in event_list:
            items = field_selection(event_list["fields"].split(","), event_columns, "e")
        else:
            items = [(f"e.{q(c)}", q(c)) for c in event_columns]
        struct = "struct_pack(" + ", ".join(f"{name} := {expr}" for expr, name in items) + ")"
        window = _ingest_window(request, event_list,
                                has_ingest_times="_ingested_at" in stored)
        joins.append(f"""LEFT JOIN (
            SELECT e._profile_id, list({struct} ORDER BY e."timestamp") AS events
            FROM {q(events)} e {window} GROUP BY e._profile_id) ev
            ON ev._profile_id = p._profile_id""")
        select.append('ev.events AS "events"')
    where = [f"p._profile_id IN ({members})"] if members else []
    since = request.get("filter", {}).get("fromIngestTimestamp")
    if since:
        where.append(f"p._profile_id IN ({_updated_since(job.sandbox, since)})")
    if not request.get("filter", {}).get("emptyProfiles", False):
        # by default only profiles with record attributes, not those made of events alone
        has_record = " OR ".join(f"p.{q(c)} IS NOT NULL" for c in attributes) or "false"
        where.append(f"({has_record})")
    condition = f"WHERE {' AND '.join(where)}" if where else ""
    return (f"SELECT {', '.join(select)} FROM {q(table)} p {' '.join(joins)} {condition} "
            "ORDER BY p._profile_id", f"FROM {q(table)} p {condition}")


def _write(job: ExportJob, run: Run, dataset: Dataset, batch: Batch, started: int) -> None:
    staging = _staging(batch, run)
    final = batch_dir(dataset.sandbox, dataset.id, batch.id)
    policy = _policy(job)
    if "mergePolicy" not in job.request:  # the job tells which policy it exported with
        run.save(request={**job.request,
                          "mergePolicy": {"id": str(policy.id), "version": policy.version}})
    export_started = epoch_ms()
    with open_snapshot(job.sandbox) as con:
        attach_memberships(con, job.sandbox)
        tables = {row[0] for row in con.execute(
            f"SELECT table_name FROM duckdb_tables() WHERE database_name <> '{ALIAS}'").fetchall()}
        if profiles_table(policy) not in tables:
            raise ExportError(POLICY_NOT_BUILT.format(id=policy.id))
        sql, source = export_sql(con, job, policy)
        run.check("export-write")
        staging.mkdir(parents=True, exist_ok=True)
        row = con.execute(f"COPY ({sql}) TO {sql_string(str(staging / FILE_NAME))} "
                          "(FORMAT parquet, COMPRESSION zstd)").fetchone()
        written = int(row[0]) if row else 0
        by_namespace = dict(con.execute(f"""
            SELECT namespace, count(DISTINCT i._profile_id) FROM identities i
            SEMI JOIN (SELECT p._profile_id {source}) x ON x._profile_id = i._profile_id
            GROUP BY namespace ORDER BY 1""").fetchall())
    export_ended = epoch_ms()
    run.check()
    size = (staging / FILE_NAME).stat().st_size
    files = [{"name": FILE_NAME, "size": size, "records": written}]
    with transaction.atomic():
        ended = epoch_ms()
        run.save(status=JobStatus.SUCCEEDED, errors=[], metrics={
            "totalTime": span(started, ended),
            "profileExportTime": span(export_started, export_ended),
            "aCPDatasetWriteTime": span(export_ended, ended),
            "totalExportedProfileCounter": written,
            "exportedProfileByNamespaceCounter": by_namespace,
        })
        Batch.objects.filter(pk=batch.pk).update(
            status=BatchStatus.SUCCESS, record_count=written, files=files,
            completed_at=timezone.now(), updated_at=timezone.now())
        # last, so the batch folder appears whole with the commit; a worker stopping before the
        # commit leaves it to the next run, which removes it (_remove_files)
        os.replace(staging, final)
