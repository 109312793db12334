"""A job kind has one home: one class per kind of job (preview, segment, export, ingestion).

A kind owns everything that differs between kinds: how a job of it is sent to the API, read,
listed (for a group refresh, and to find the remote job of a redelivered submit) and
cancelled; what the API's statuses mean in ours; how long a job may take and how soon it is
polled; its metrics, typed; the figures and links its page shows. The job services
(jobs.services) ask a job's kind (`kind_of(job)`) and never which kind it is, so adding a kind
is one class, registered with `register`.

What happens when a job finishes belongs to the apps that care, not to jobs: they register
finish hooks with `on_finish` (in their AppConfig.ready). The services run them once the final
status has committed (`transaction.on_commit`), in `order`, each in a transaction of its own,
so a hook can never undo a status and a failing hook is logged without stopping the others;
the sweeper runs the hooks of a job whose process died before running them. A hook must
therefore be idempotent: it may run twice.

    from jobs.kinds import on_finish
    from jobs.models import JobKind, JobStatus

    class SegmentsConfig(AppConfig):
        def ready(self) -> None:
            on_finish(record_counts, kinds=[JobKind.SEGMENT], statuses=[JobStatus.SUCCEEDED],
                      order=10)
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.urls import reverse

from aep import (
    AEPClient,
    AEPPermanentError,
    Batch,
    Estimate,
    ExportJob,
    Preview,
    SegmentJob,
)
from jobs.models import Job, JobKind, JobStatus

logger = logging.getLogger(__name__)

# User-facing texts (tests assert them)
CANCEL_INGEST = ("An ingestion cannot be stopped once its file was sent; the platform finishes "
                 "the batch on its own.")
UPLOAD_MISSING = "The uploaded file {name} is no longer on this server; upload it again."

FIRST_POLL_DELAY = 1.0  # seconds after the submit; then next_poll_delay(): 2, 4, … 30
PREVIEW_POLL_SECONDS = 0.5
PREVIEW_FAST_POLLS = 30
BULK_SIZE = 100  # ids per POST /segment/jobs/bulk-get, records per page of GET /export/jobs
LIST_MAX_PAGES = 20


class Remote(Protocol):
    """An API answer about a job (aep's SegmentJob, ExportJob, Preview, Estimate, Batch…)."""

    @property
    def raw(self) -> Any: ...


class Created(Remote, Protocol):
    """The answer to a create call: it names the remote job."""

    @property
    def id(self) -> str: ...


class Listed(Created, Protocol):
    """An item of a kind's list (segment and export jobs): newest first, with its time."""

    @property
    def creation_time(self) -> int | None: ...


@dataclass(frozen=True)
class Reading:
    """What one API answer says about a job, in our words."""

    remote_status: str
    status: JobStatus | None  # None: a word we do not know (the row keeps its status)
    metrics: dict[str, Any] | None = None  # None: the answer carries none (the row keeps its)
    progress: float | None = None
    error_code: str = ""
    error_message: str = ""


@dataclass(frozen=True)
class Link:
    """A link of a job's page to where its results are (the exported files of an export)."""

    term: str
    text: str
    url: str
    testid: str = ""


def request_id(job: Job) -> str:
    """The x-request-id of the job's create call: the same on every attempt, so a redelivered
    submit recognises its remote job by the requestId the API echoes."""
    return f"segment-studio-job-{job.pk}-{int(job.created_at.timestamp())}"


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _total_time_ms(metrics: Mapping[str, Any]) -> float | None:
    total = _dict(metrics.get("totalTime")).get("totalTimeInMs")
    return float(total) if isinstance(total, int | float) and total else None


# --- typed metrics ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Metrics:
    """A job's metrics as Job.metrics keeps them (AEP's names), read into typed fields."""

    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: Any) -> Metrics:
        return cls(raw=_dict(data))

    def to_json(self) -> dict[str, Any]:
        return dict(self.raw)

    @property
    def total_time_ms(self) -> float | None:
        """The platform's own time for the job (totalTime.totalTimeInMs), when it says."""
        return _total_time_ms(self.raw)


@dataclass(frozen=True)
class PreviewMetrics(Metrics):
    """An estimate's figures (spec §3.3)."""

    estimated_size: int | None = None
    standard_error: int | None = None
    confidence_interval: str | None = None
    profiles_read_so_far: int | None = None
    profiles_matched_so_far: int | None = None
    total_rows: int | None = None
    num_rows_to_read: int | None = None

    @classmethod
    def from_json(cls, data: Any) -> PreviewMetrics:
        data = _dict(data)
        interval = data.get("confidenceInterval")
        return cls(raw=data, estimated_size=_int(data.get("estimatedSize")),
                   standard_error=_int(data.get("standardError")),
                   confidence_interval=interval if isinstance(interval, str) else None,
                   profiles_read_so_far=_int(data.get("profilesReadSoFar")),
                   profiles_matched_so_far=_int(data.get("profilesMatchedSoFar")),
                   total_rows=_int(data.get("totalRows")),
                   num_rows_to_read=_int(data.get("numRowsToRead")))

    @classmethod
    def from_estimate(cls, remote: Estimate) -> PreviewMetrics:
        return cls.from_json({
            "estimatedSize": remote.estimated_size,
            "confidenceInterval": remote.confidence_interval,
            "standardError": remote.standard_error,
            "profilesReadSoFar": remote.profiles_read_so_far,
            "profilesMatchedSoFar": remote.profiles_matched_so_far,
            "totalRows": remote.total_rows,
            "numRowsToRead": remote.num_rows_to_read,
        })

    @property
    def progress(self) -> float | None:
        if self.total_rows and self.profiles_read_so_far is not None:
            return min(self.profiles_read_so_far / self.total_rows, 1.0)
        return None


@dataclass(frozen=True)
class SegmentMetrics(Metrics):
    """A segment job's metrics, kept whole as AEP sends them (spec §4.2)."""

    @property
    def total_profiles(self) -> int | None:
        return _int(self.raw.get("totalProfiles"))

    @property
    def counts(self) -> dict[str, int]:
        """segmentedProfileCounter: segment id → qualified profiles."""
        return {str(key): int(value) for key, value in
                _dict(self.raw.get("segmentedProfileCounter")).items()
                if isinstance(value, int | float)}


@dataclass(frozen=True)
class ExportMetrics(Metrics):
    """An export job's metrics (spec §5.2) with the batch it wrote and its dataset."""

    @property
    def exported(self) -> int | None:
        return _int(self.raw.get("totalExportedProfileCounter"))

    @property
    def batch_id(self) -> str | None:
        return self.raw.get("batchId") or None

    @property
    def dataset_id(self) -> str | None:
        return self.raw.get("datasetId") or None


@dataclass(frozen=True)
class IngestMetrics(Metrics):
    """A Catalog batch's record counts (spec §6), its id and its dataset."""

    @property
    def records_written(self) -> int | None:
        return _int(self.raw.get("recordsWritten"))

    @property
    def failed_records(self) -> int | None:
        return _int(self.raw.get("failedRecordCount"))

    @property
    def batch_id(self) -> str | None:
        return self.raw.get("batchId") or None

    @property
    def dataset_id(self) -> str | None:
        return self.raw.get("datasetId") or None


M = TypeVar("M", bound=Metrics)


# --- the kinds ---------------------------------------------------------------------------------

class Kind(Generic[M]):
    """What every kind of job declares. The defaults fit a job the API neither lists nor can
    cancel; a kind overrides what it has."""

    value: ClassVar[str]  # Job.kind
    label: ClassVar[str]
    deadline: ClassVar[timedelta]  # no final status within this: TIMED_OUT
    # the API's status words (upper case) in ours; any other word keeps the row's status
    statuses: ClassVar[Mapping[str, JobStatus]]
    metrics_type: ClassVar[type[Metrics]] = Metrics
    first_poll_delay: ClassVar[float] = FIRST_POLL_DELAY
    # The API lists these jobs (newest first): a connection/sandbox group of them is refreshed
    # together, and a redelivered submit looks for the remote job an earlier attempt made.
    listed: ClassVar[bool] = False
    cancel_target: ClassVar[JobStatus] = JobStatus.CANCELLING  # asynchronous by default
    cancel_refused: ClassVar[str] = ""  # once sent, cannot be cancelled: why

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.value!r}>"

    # remote calls
    def create(self, client: AEPClient, job: Job) -> Created:
        raise NotImplementedError

    def get(self, client: AEPClient, job: Job) -> Remote:
        raise NotImplementedError

    def cancel(self, client: AEPClient, job: Job) -> None:
        raise NotImplementedError

    def listing(self, client: AEPClient) -> Iterable[Listed]:
        """Every remote job of this kind, newest first (listed kinds only)."""
        return ()

    def same_request(self, job: Job, remote: Listed) -> bool:
        """Whether a listed remote job is the one `job` asked for."""
        echoed = _dict(remote.raw).get("requestId")
        return bool(echoed == request_id(job))

    def fetch_group(self, client: AEPClient, ids: list[str], *, since_ms: int,
                    take: Callable[[], bool]) -> tuple[list[Listed], list[str]]:
        """Answers for many remote ids in as few calls as the API allows, each call taken
        from the budget first (`take()`; False: stop): (answers, ids the API left out)."""
        return [], []

    # what an answer means
    def remote_status(self, remote: Remote) -> str:
        return str(getattr(remote, "status", "") or "")

    def normalise(self, remote_status: str | None) -> JobStatus | None:
        """Our status for the API's word, or None when we do not know it (case and
        surrounding blanks do not matter)."""
        return self.statuses.get((remote_status or "").strip().upper())

    def read(self, job: Job, remote: Remote) -> Reading:
        status_word = self.remote_status(remote)
        return Reading(status_word, self.normalise(status_word))

    # polling
    def next_poll_delay(self, job: Job) -> float:
        """Seconds until the next poll: 1, 2, 4, 8, 16, then every 30 s."""
        return float(min(30, 2 ** min(job.poll_count, 5)))

    # what people read
    def metrics(self, job: Job) -> M:
        return self.metrics_type.from_json(job.metrics)  # type: ignore[return-value]

    def figures(self, job: Job) -> list[tuple[str, Any]]:
        """The few numbers a person looks for on the job's page, from the stored metrics."""
        total = self.metrics(job).total_time_ms
        return [("Time on the platform", f"{total / 1000:,.1f} s")] if total else []

    def counts(self, job: Job) -> dict[str, int]:
        """Qualified profiles per segment id, for a kind that counts audiences."""
        return {}

    def links(self, job: Job) -> list[Link]:
        return []


_BATCH_JOB = {
    "NEW": JobStatus.QUEUED,
    "QUEUED": JobStatus.QUEUED,
    "PROCESSING": JobStatus.RUNNING,
    "RUNNING": JobStatus.RUNNING,
    "CANCELLING": JobStatus.CANCELLING,
    "CANCELLED": JobStatus.CANCELLED,
    "FAILED": JobStatus.FAILED,
    "SUCCEEDED": JobStatus.SUCCEEDED,
}


def _job_errors(remote: SegmentJob | ExportJob) -> tuple[str, str]:
    return (remote.errors[0].code, remote.errors[0].message) if remote.errors else ("", "")


class PreviewKind(Kind[PreviewMetrics]):
    """A preview and its estimate (spec §3): created as a preview, read as its estimate,
    deleted to cancel; AEP lists no previews."""

    value = JobKind.PREVIEW.value
    label = JobKind.PREVIEW.label
    deadline = timedelta(minutes=15)  # an estimate takes seconds (spec §3.5)
    statuses = {
        "NEW": JobStatus.QUEUED,
        "QUEUED": JobStatus.QUEUED,
        "RUNNING": JobStatus.RUNNING,
        "RESULT_READY": JobStatus.SUCCEEDED,
        "FAILED": JobStatus.FAILED,
        "KILLED": JobStatus.CANCELLED,  # a deleted preview
        "CANCELLED": JobStatus.CANCELLED,
    }
    metrics_type = PreviewMetrics
    first_poll_delay = PREVIEW_POLL_SECONDS
    cancel_target = JobStatus.CANCELLED  # deleting a preview is immediate

    def create(self, client: AEPClient, job: Job) -> Preview:
        # A redelivered preview submit creates it again (previews cannot be looked for): at
        # worst an orphan estimate runs on a sample and expires by itself; nothing is written.
        body = _dict(job.request)
        return client.create_preview(
            pql_text=body.get("predicateExpression"), merge_policy_id=body.get("mergePolicyId"),
            model=body.get("predicateModel") or "_xdm.context.profile",
            graph_type=body.get("graphType"), request_id=request_id(job))

    def get(self, client: AEPClient, job: Job) -> Estimate:
        return client.get_estimate(job.remote_id)

    def cancel(self, client: AEPClient, job: Job) -> None:
        client.delete_preview(job.remote_id)

    def remote_status(self, remote: Remote) -> str:
        return str(getattr(remote, "state", "") or "")

    def read(self, job: Job, remote: Remote) -> Reading:
        word = self.remote_status(remote)
        status = self.normalise(word)
        if not isinstance(remote, Estimate):  # the create call's answer: no figures yet
            return Reading(word, status)
        metrics = PreviewMetrics.from_estimate(remote)
        message = (str(_dict(remote.error).get("description") or "")
                   if status == JobStatus.FAILED else "")
        return Reading(word, status, metrics.to_json(), metrics.progress, "", message)

    def next_poll_delay(self, job: Job) -> float:
        """Every half second for the first 30 polls: someone is watching the estimate
        converge (the built-in engine refines it within a second, AEP within 10–15 s)."""
        if job.poll_count < PREVIEW_FAST_POLLS:
            return PREVIEW_POLL_SECONDS
        return super().next_poll_delay(job)

    def figures(self, job: Job) -> list[tuple[str, Any]]:
        metrics = self.metrics(job)
        figures: list[tuple[str, Any]] = []
        if metrics.estimated_size is not None:
            error = metrics.standard_error
            figures.append(("Estimated size", f"≈ {metrics.estimated_size:,}"
                            + (f" ± {error:,}" if error else "")))
        if metrics.confidence_interval:
            figures.append(("Confidence", metrics.confidence_interval))
        if metrics.total_rows:
            figures.append(("Profiles read", f"{metrics.profiles_read_so_far or 0:,} of "
                                              f"{metrics.total_rows:,}"))
        return figures + super().figures(job)


def segment_ids(request: Any) -> list[str]:
    """The segment ids of a segment job's request: ``{"segments": [{"segmentId"}]}`` or the
    bare list."""
    items = request.get("segments") if isinstance(request, dict) else request
    return [str(item["segmentId"]) for item in items or []
            if isinstance(item, dict) and item.get("segmentId")]


class SegmentKind(Kind[SegmentMetrics]):
    """A segment job (spec §4): listed, read 100 at a time by bulk-get."""

    value = JobKind.SEGMENT.value
    label = JobKind.SEGMENT.label
    deadline = timedelta(hours=6)  # an on-demand segment job "can take up to 4 h" (§4.1)
    statuses = _BATCH_JOB
    metrics_type = SegmentMetrics
    listed = True

    def create(self, client: AEPClient, job: Job) -> SegmentJob:
        return client.create_segment_job(segment_ids(job.request), request_id=request_id(job))

    def get(self, client: AEPClient, job: Job) -> SegmentJob:
        return client.get_segment_job(job.remote_id)

    def cancel(self, client: AEPClient, job: Job) -> None:
        client.cancel_segment_job(job.remote_id)

    def listing(self, client: AEPClient) -> Iterable[SegmentJob]:
        return client.segment_jobs(limit=BULK_SIZE, sort="creationTime:desc")

    def same_request(self, job: Job, remote: Listed) -> bool:
        if _dict(remote.raw).get("requestId") or not isinstance(remote, SegmentJob):
            return super().same_request(job, remote)
        return sorted(set(segment_ids(job.request))) == sorted(set(remote.segment_ids))

    def fetch_group(self, client: AEPClient, ids: list[str], *, since_ms: int,
                    take: Callable[[], bool]) -> tuple[list[Listed], list[str]]:
        found: list[Listed] = []
        missing: list[str] = []
        for start in range(0, len(ids), BULK_SIZE):
            if not take():
                break
            chunk = ids[start:start + BULK_SIZE]
            answer = client.bulk_get_segment_jobs(chunk)
            found.extend(answer.values())
            missing.extend(key for key in chunk if key not in answer)
        return found, missing

    def read(self, job: Job, remote: Remote) -> Reading:
        word = self.remote_status(remote)
        code, message = _job_errors(remote) if isinstance(remote, SegmentJob) else ("", "")
        metrics = dict(remote.metrics) if isinstance(remote, SegmentJob) else None
        return Reading(word, self.normalise(word), metrics, None, code, message)

    def counts(self, job: Job) -> dict[str, int]:
        return self.metrics(job).counts

    def figures(self, job: Job) -> list[tuple[str, Any]]:
        total = self.metrics(job).total_profiles
        figures: list[tuple[str, Any]] = []
        if total is not None:
            figures.append(("Profiles evaluated", f"{total:,}"))
        return figures + super().figures(job)


def _export_key(body: Any) -> tuple[Any, ...]:
    body = _dict(body)
    destination = _dict(body.get("destination"))
    segments = _dict(body.get("filter")).get("segments") or []
    return (destination.get("datasetId") or destination.get("dataSetId"),
            sorted(str(s.get("segmentId")) for s in segments if isinstance(s, dict)),
            body.get("fields") or None)


class ExportKind(Kind[ExportMetrics]):
    """An export job (spec §5): listed newest first, 100 a page."""

    value = JobKind.EXPORT.value
    label = JobKind.EXPORT.label
    deadline = timedelta(hours=6)
    statuses = _BATCH_JOB
    metrics_type = ExportMetrics
    listed = True

    def create(self, client: AEPClient, job: Job) -> ExportJob:
        return client.create_export_job(_dict(job.request), request_id=request_id(job))

    def get(self, client: AEPClient, job: Job) -> ExportJob:
        return client.get_export_job(job.remote_id)

    def cancel(self, client: AEPClient, job: Job) -> None:
        client.cancel_export_job(job.remote_id)

    def listing(self, client: AEPClient) -> Iterable[ExportJob]:
        return client.export_jobs(limit=BULK_SIZE)

    def same_request(self, job: Job, remote: Listed) -> bool:
        if _dict(remote.raw).get("requestId"):
            return super().same_request(job, remote)
        return _export_key(job.request) == _export_key(remote.raw)

    def fetch_group(self, client: AEPClient, ids: list[str], *, since_ms: int,
                    take: Callable[[], bool]) -> tuple[list[Listed], list[str]]:
        """The list, newest first, until every id was seen or the list is older than the
        oldest job asked for; each further page is taken from the budget first."""
        wanted = set(ids)
        if not take():
            return [], []
        seen: list[Listed] = []
        for index, remote in enumerate(self.listing(client)):
            if remote.id in wanted:
                seen.append(remote)
                wanted.discard(remote.id)
            if not wanted or (remote.creation_time is not None
                              and remote.creation_time < since_ms):
                break
            # the next item may need the next page: take it from the budget first
            if (index + 1) % BULK_SIZE == 0 and (index + 1 >= BULK_SIZE * LIST_MAX_PAGES
                                                 or not take()):
                break
        return seen, [key for key in ids if key in wanted]

    def read(self, job: Job, remote: Remote) -> Reading:
        word = self.remote_status(remote)
        if not isinstance(remote, ExportJob):
            return Reading(word, self.normalise(word))
        code, message = _job_errors(remote)
        metrics = {**remote.metrics, "batchId": remote.batch_id,
                   "batchIds": remote.batch_ids, "datasetId": remote.dataset_id}
        return Reading(word, self.normalise(word), metrics, None, code, message)

    def figures(self, job: Job) -> list[tuple[str, Any]]:
        metrics = self.metrics(job)
        figures: list[tuple[str, Any]] = []
        if metrics.exported is not None:
            figures.append(("Profiles exported", f"{metrics.exported:,}"))
        if metrics.dataset_id:
            figures.append(("Dataset", metrics.dataset_id))
        if metrics.batch_id:
            figures.append(("Batch", metrics.batch_id))
        return figures + super().figures(job)

    def links(self, job: Job) -> list[Link]:
        return [Link("Exported files", "Read and download the exported files"
                     if job.status == JobStatus.SUCCEEDED else "The export's page",
                     reverse("exports:detail", args=[job.pk]), "job-export-files")]


def uploads_dir() -> Path:
    """Where files to ingest wait until their job's submit sends them (under VAR_DIR, which
    web and workers share); a job's request names its file relative to this folder."""
    return Path(settings.VAR_DIR) / "uploads"


def upload_path(job: Job) -> Path:
    return uploads_dir() / str(job.request["upload"])


class IngestKind(Kind[IngestMetrics]):
    """A file sent into a dataset through Batch Ingestion (spec §6), then its Catalog batch
    polled until the platform has ingested it."""

    value = JobKind.INGEST.value
    label = JobKind.INGEST.label
    deadline = timedelta(hours=2)
    # loading while files arrive, then queued/processing on the platform's side, success or
    # failed (older answers: failure); aborted when given up
    statuses = {
        "LOADING": JobStatus.QUEUED,
        "LOADED": JobStatus.QUEUED,
        "QUEUED": JobStatus.QUEUED,
        "STAGING": JobStatus.RUNNING,
        "PROCESSING": JobStatus.RUNNING,
        "RETRYING": JobStatus.RUNNING,
        "SUCCESS": JobStatus.SUCCEEDED,
        "FAILED": JobStatus.FAILED,
        "FAILURE": JobStatus.FAILED,
        "ABORTED": JobStatus.CANCELLED,
    }
    metrics_type = IngestMetrics
    cancel_refused = CANCEL_INGEST

    def create(self, client: AEPClient, job: Job) -> Batch:
        """A batch for the dataset, the file streamed into it, COMPLETE; the local copy goes
        once the platform has it. The batch id is stored as soon as the batch exists, so a
        retried submit resumes that batch (the file sent again replaces itself) instead of
        ingesting the file twice."""
        body = _dict(job.request)
        path = upload_path(job)
        batch = client.get_batch(job.remote_id) if job.remote_id else None
        if batch is not None and batch.status.lower() != "loading":
            shutil.rmtree(path.parent, ignore_errors=True)  # COMPLETE went through before
            return batch
        if not path.exists():
            raise AEPPermanentError(UPLOAD_MISSING.format(name=body["fileName"]))
        if batch is None:
            batch = client.create_batch(body["datasetId"], file_format=body["format"],
                                        request_id=request_id(job))
            Job.objects.filter(pk=job.pk).update(remote_id=batch.id[:100])
            job.remote_id = batch.id
        client.upload_batch_file(batch.id, body["datasetId"], body["fileName"], path)
        client.complete_batch(batch.id)
        shutil.rmtree(path.parent, ignore_errors=True)
        return client.get_batch(batch.id)

    def get(self, client: AEPClient, job: Job) -> Batch:
        return client.get_batch(job.remote_id)

    def read(self, job: Job, remote: Remote) -> Reading:
        word = self.remote_status(remote)
        status = self.normalise(word)
        if not isinstance(remote, Batch):
            return Reading(word, status)
        found = _dict(_dict(remote.raw).get("metrics"))
        metrics = {**{key: found[key] for key in (
            "recordsRead", "recordsWritten", "failedRecordCount") if key in found},
            "batchId": remote.id, "datasetId": remote.dataset_id}
        code = message = ""
        if remote.errors and status == JobStatus.FAILED:  # a success may list bad records
            first = remote.errors[0]
            code = str(first.get("code") or "")
            message = str(first.get("description") or first.get("message") or "")
        return Reading(word, status, metrics, None, code, message)

    def figures(self, job: Job) -> list[tuple[str, Any]]:
        metrics = self.metrics(job)
        request = _dict(job.request)
        figures: list[tuple[str, Any]] = []
        if request.get("fileName"):
            size = request.get("size")
            figures.append(("File", request["fileName"] + (
                f" ({filesizeformat(size)})" if isinstance(size, int) else "")))
        for value, label in ((metrics.records_written, "Records ingested"),
                             (metrics.failed_records, "Records refused")):
            if value is not None:
                figures.append((label, f"{value:,}"))
        dataset = request.get("datasetId") or metrics.dataset_id
        if dataset:
            name = request.get("datasetName")
            figures.append(("Dataset", f"{name} ({dataset})" if name else dataset))
        if metrics.batch_id:
            figures.append(("Batch", metrics.batch_id))
        return figures + super().figures(job)


# --- the registry of kinds ---------------------------------------------------------------------

_KINDS: dict[str, Kind[Any]] = {}


def register(kind: Kind[Any]) -> Kind[Any]:
    """Make `kind` the one for Job.kind == kind.value (a kind registered again replaces it)."""
    _KINDS[kind.value] = kind
    return kind


def unregister(value: str) -> None:
    _KINDS.pop(value, None)


for _builtin in (PreviewKind(), SegmentKind(), ExportKind(), IngestKind()):
    register(_builtin)


def kind_of(job_or_value: Job | str) -> Kind[Any]:
    """The kind of a job (or of a Job.kind value)."""
    value = job_or_value.kind if isinstance(job_or_value, Job) else str(job_or_value)
    try:
        return _KINDS[value]
    except KeyError:
        raise LookupError(f"no job kind {value!r} is registered") from None


def all_kinds() -> list[Kind[Any]]:
    return list(_KINDS.values())


def choices() -> list[tuple[str, str]]:
    """(value, label) of every kind, for Job.kind and the history's filter."""
    return [(kind.value, kind.label) for kind in _KINDS.values()]


# --- finish hooks ------------------------------------------------------------------------------

FinishHookFunction = Callable[[Job], Any]
F = TypeVar("F", bound=FinishHookFunction)


@dataclass(frozen=True)
class FinishHook:
    name: str
    function: FinishHookFunction
    order: int
    kinds: frozenset[str] | None  # None: every kind
    statuses: frozenset[str] | None  # None: every final status

    def wants(self, job: Job) -> bool:
        return ((self.kinds is None or job.kind in self.kinds)
                and (self.statuses is None or job.status in self.statuses))


_HOOKS: dict[str, FinishHook] = {}


def on_finish(function: F, *, kinds: Iterable[str] | None = None,
              statuses: Iterable[str] | None = None, order: int = 100,
              name: str = "") -> F:
    """Run `function(job)` after a job of one of `kinds` (default: any) reaches one of
    `statuses` (default: any final status) and that status has committed. Hooks run by
    `order`, then name; each in a transaction of its own, so what a failing hook wrote is
    undone, it is logged, and the others still run. A hook may run again (the sweeper runs
    the hooks of a job whose process died before it could): make it idempotent.

    Registered again under the same name (default: the function's module and name), a hook
    replaces itself, so AppConfig.ready may run twice."""
    key = name or f"{function.__module__}.{function.__qualname__}"
    _HOOKS[key] = FinishHook(key, function, order,
                             frozenset(str(k) for k in kinds) if kinds is not None else None,
                             frozenset(str(s) for s in statuses) if statuses is not None
                             else None)
    return function


def remove_finish_hook(name: str) -> None:
    _HOOKS.pop(name, None)


def finish_hooks(job: Job) -> list[FinishHook]:
    """The hooks that want this finished job, in the order they run."""
    return sorted((hook for hook in _HOOKS.values() if hook.wants(job)),
                  key=lambda hook: (hook.order, hook.name))
