"""The job history: the filters, sort orders and totals of the Jobs page and its CSV.

Reads our database only. The jobs app does not import segments or schedules (they import
jobs); it reaches them through the relations they declare on Job: `Job.segments` (the
Segment.jobs many-to-many) and `Job.schedule_runs` (schedules.ScheduleRun.job).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from jobs import kinds
from jobs.models import FINISHED, Job, JobQuerySet, JobStatus, seconds_text

# ?sort= value → ORDER BY; "-" first means descending. The default is the newest first.
SORTS: dict[str, tuple[str, ...]] = {
    "-created": ("-created_at", "-pk"), "created": ("created_at", "pk"),
    "-duration": ("-duration_value", "-pk"), "duration": ("duration_value", "pk"),
    "status": ("status", "-created_at"), "-status": ("-status", "-created_at"),
    "label": ("label", "-created_at"), "-label": ("-label", "-created_at"),
    "kind": ("kind", "-created_at"), "-kind": ("-kind", "-created_at"),
    "user": ("created_by__username", "-created_at"),
    "-user": ("-created_by__username", "-created_at"),
}
SORT_LABELS = {"-created": "Newest first", "created": "Oldest first",
               "-duration": "Longest first", "duration": "Shortest first",
               "status": "Status", "label": "Name", "kind": "Kind", "user": "Started by"}
PAGE_SIZE = 50
CSV_COLUMNS = ["id", "kind", "status", "label", "connection", "sandbox", "started_by",
               "created_at", "submitted_at", "finished_at", "duration_seconds", "remote_id",
               "remote_status", "error_code", "error_message", "schedule"]
FAILED_STATUSES = (JobStatus.FAILED, JobStatus.TIMED_OUT)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


@dataclass
class HistoryFilters:
    """What the filter bar asked for, parsed; invalid values are dropped, not errors."""

    kind: str = ""
    status: str = ""
    user: int | None = None
    connection: int | None = None
    sandbox: str = ""
    segment: int | None = None
    schedule: int | None = None
    date_from: date | None = None
    date_to: date | None = None
    sort: str = "-created"
    errors: list[str] = field(default_factory=list)

    @classmethod
    def from_query(cls, query: Any) -> HistoryFilters:
        kind = query.get("kind", "")
        status = query.get("status", "")
        sort = query.get("sort", "-created")
        return cls(
            kind=kind if kind in dict(kinds.choices()) else "",
            status=status if status in JobStatus.values or status == "problems" else "",
            user=_int(query.get("user")), connection=_int(query.get("connection")),
            sandbox=query.get("sandbox", "").strip()[:100],
            segment=_int(query.get("segment")), schedule=_int(query.get("schedule")),
            date_from=_date(query.get("date_from")), date_to=_date(query.get("date_to")),
            sort=sort if sort in SORTS else "-created",
        )

    @property
    def active(self) -> bool:
        return any((self.kind, self.status, self.user, self.connection, self.sandbox,
                    self.segment, self.schedule, self.date_from, self.date_to))

    def query_string(self, **changes: Any) -> str:
        """The filters as a query string (for the sort links, the pager and the CSV link)."""
        from urllib.parse import urlencode

        values = {
            "kind": self.kind, "status": self.status, "user": self.user or "",
            "connection": self.connection or "", "sandbox": self.sandbox,
            "segment": self.segment or "", "schedule": self.schedule or "",
            "date_from": self.date_from.isoformat() if self.date_from else "",
            "date_to": self.date_to.isoformat() if self.date_to else "",
            "sort": "" if self.sort == "-created" else self.sort,
        }
        values.update(changes)
        return urlencode({key: value for key, value in values.items() if value})


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def with_duration(jobs: JobQuerySet, *, now: datetime | None = None) -> JobQuerySet:
    """Annotate `duration_value`: finished (or now) minus submitted (or created), as in
    Job.duration, so the database can sort by it."""
    now = now or timezone.now()
    return jobs.annotate(duration_value=ExpressionWrapper(
        Coalesce(F("finished_at"), Value(now)) - Coalesce(F("submitted_at"), F("created_at")),
        output_field=DurationField()))


def jobs_filtered(*, user: Any, filters: HistoryFilters) -> JobQuerySet:
    """The jobs this user may see (Job.objects.visible_to), narrowed by the filters, in the
    asked order."""
    jobs = Job.objects.visible_to(user)
    if filters.kind:
        jobs = jobs.filter(kind=filters.kind)
    if filters.status == "problems":
        jobs = jobs.filter(status__in=FAILED_STATUSES)
    elif filters.status:
        jobs = jobs.filter(status=filters.status)
    if filters.user:
        jobs = jobs.filter(created_by_id=filters.user)
    if filters.connection:
        jobs = jobs.filter(connection_id=filters.connection)
    if filters.sandbox:
        jobs = jobs.filter(sandbox=filters.sandbox)
    if filters.segment:
        # a segment's own jobs, and the exports that followed them
        jobs = jobs.filter(Q(segments__pk=filters.segment)
                           | Q(parent__segments__pk=filters.segment))
    if filters.schedule:
        jobs = jobs.filter(Q(schedule_runs__schedule_id=filters.schedule)
                           | Q(parent__schedule_runs__schedule_id=filters.schedule))
    if filters.date_from:
        jobs = jobs.filter(created_at__gte=_day_start(filters.date_from))
    if filters.date_to:
        jobs = jobs.filter(created_at__lt=_day_start(filters.date_to + timedelta(days=1)))
    if filters.segment or filters.schedule:
        jobs = jobs.distinct()
    return with_duration(jobs).select_related("connection", "created_by").order_by(
        *SORTS[filters.sort])


@dataclass(frozen=True)
class Totals:
    count: int
    by_status: dict[str, int]
    succeeded: int
    problems: int
    unfinished: int
    median_seconds: float | None

    @property
    def success_rate(self) -> int | None:
        finished = self.count - self.unfinished
        return round(100 * self.succeeded / finished) if finished else None

    @property
    def median_text(self) -> str:
        return seconds_text(self.median_seconds)


def history_totals(jobs: JobQuerySet) -> Totals:
    by_status = {row["status"]: row["n"] for row in
                 jobs.order_by().values("status").annotate(n=Count("pk", distinct=True))}
    durations = sorted(d.total_seconds() for d in jobs.filter(status__in=FINISHED).order_by()
                       .values_list("duration_value", flat=True)[:20000]  # type: ignore[misc]
                       if d is not None)
    median = durations[len(durations) // 2] if durations else None
    return Totals(
        count=sum(by_status.values()), by_status=by_status,
        succeeded=by_status.get(JobStatus.SUCCEEDED, 0),
        problems=sum(by_status.get(status, 0) for status in FAILED_STATUSES),
        unfinished=sum(n for status, n in by_status.items() if status not in FINISHED),
        median_seconds=median,
    )


def schedule_names(jobs: Iterable[Job]) -> None:
    """Set `schedule_name` and `schedule_id` on each job a schedule started (or whose parent
    a schedule started: the export after a scheduled segment run), for the rows to link."""
    jobs = list(jobs)
    parents = {job.parent_id for job in jobs if job.parent_id}
    ids = {job.pk for job in jobs} | parents
    links: dict[int, tuple[int, str]] = {}
    for job_id, schedule_id, name in (
            Job.objects.filter(pk__in=ids, schedule_runs__isnull=False)
            .values_list("pk", "schedule_runs__schedule_id", "schedule_runs__schedule__name")):
        links[job_id] = (schedule_id, name)
    for job in jobs:
        link = links.get(job.pk) or (links.get(job.parent_id) if job.parent_id else None)
        job.schedule_id, job.schedule_name = link if link else (None, "")  # type: ignore[attr-defined]


def _csv_line(values: list[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(values)
    return buffer.getvalue()


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    text = value if isinstance(value, str) else value
    # a cell a spreadsheet would run as a formula is quoted (OWASP "CSV injection")
    if isinstance(text, str) and text[:1] in ("=", "+", "-", "@"):
        return "'" + text
    return text


def history_csv(jobs: JobQuerySet) -> Iterator[str]:
    """The filtered list as CSV lines, streamed a chunk of rows at a time."""
    yield _csv_line(CSV_COLUMNS)
    chunk: list[Job] = []
    for job in jobs.iterator(chunk_size=500):
        chunk.append(job)
        if len(chunk) == 500:
            yield from _csv_rows(chunk)
            chunk = []
    yield from _csv_rows(chunk)


def _csv_rows(jobs: list[Job]) -> Iterator[str]:
    schedule_names(jobs)
    for job in jobs:
        duration = getattr(job, "duration_value", None) or job.duration
        yield _csv_line([_cell(value) for value in (
            job.pk, job.kind, job.status, job.label, job.connection.name, job.sandbox,
            job.created_by.get_username() if job.created_by else "",
            job.created_at, job.submitted_at or "", job.finished_at or "",
            f"{duration.total_seconds():.1f}" if duration is not None else "",
            job.remote_id, job.remote_status, job.error_code, job.error_message,
            getattr(job, "schedule_name", ""))])
