"""How many of the counted members an export holds, and why any are missing (issue 14).

Read from our database only — the export's job row, the segment job it followed
(``Job.parent``, "Run segment job, then export") or else each segment's last segment job
before the export (``Segment.last_count``/``last_run_at``, then the job history) — so the
export's page and the list can show it without an API call. Nothing here is estimated: a
count we do not have is said to be unknown, and for an export of several segments only what
the per-segment counts allow is said (a profile in two segments is exported once, and the job
metrics do not give the size of the union, only its bounds).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jobs.models import Job, JobKind, JobStatus
from segments.models import Segment

# segments.services reads a segment job's count per segment from AEP's metrics; one reader of
# that shape (segmentedProfileCounter, else segmentedProfileByStatusCounter)
from segments.services import segment_count as count_in_metrics

# User-facing texts (tests assert them)
ALL_EXPORTED = "{exported} of {members} members exported."
LEFT_OUT_EMPTY = ("{exported} of {members} exported — {missing} {members_have} only events and "
                  "{were} left out.")
LEFT_OUT_FILTERS = ("{exported} of {members} exported — {missing} {members_were} left out by "
                    "the export's filters: {filters}.")
NOT_IN_EXPORT = ("{exported} of {members} exported — {missing} of the members counted {are} "
                 "not in the export: the memberships changed after the count. Run the segment "
                 "job, then export, to compare the two.")
MORE_THAN_COUNTED = ("{exported} exported, {members} counted — the memberships changed after "
                     "the count. Run the segment job, then export, to compare the two.")
NO_COUNT = ("{exported} exported. No segment job of “{name}” before this export is known here, "
            "so there is no count to compare with: run the segment job, then export.")
MULTI_RANGE = ("{exported} profiles exported from {segments} segments. A profile in several of "
               "them is exported once, so their counts do not add up: with every member "
               "exported, the export would hold between {low} and {high} rows.")
MULTI_SHORT = ("{exported} profiles exported from {segments} segments, fewer than the {low} "
               "members of the largest: at least {missing} {members_were} left out.")
MULTI_FILTERED = " The export's filters leave some out: {filters}."
MULTI_UNKNOWN = ("{exported} profiles exported from {segments} segments. Not every segment has "
                 "a count from before this export, so there is nothing to compare with.")
SOURCE_PARENT = "Counted by the segment job run for this export"
SOURCE_LAST = "Counted by the segment's last segment job before this export"
FILTER_EMPTY = "members with only events are left out"
FILTER_UPDATED = "only profiles updated after {moment}"
FILTER_WINDOW = "only members qualified within a time window"
FILTER_STATUS = "only memberships with status {statuses}"
DEFAULT_STATUSES = ["existing", "realized"]


@dataclass(frozen=True)
class SegmentCount:
    """One exported segment and its member count, with the run it comes from."""

    segment_id: str
    name: str
    count: int | None
    counted_at: datetime | None
    source: str  # SOURCE_PARENT or SOURCE_LAST; empty when there is no count
    job: Job | None  # the segment job counted in, when we know it


@dataclass(frozen=True)
class Reconciliation:
    exported: int
    counts: list[SegmentCount]
    message: str
    # "ok" (all exported), "short" (members left out), "range" (several segments: within what
    # their counts allow), "changed" (memberships changed after the count) or "unknown"
    tone: str
    offer_empty_profiles: bool  # "include them": the same export with emptyProfiles on

    @property
    def members(self) -> int | None:
        return self.counts[0].count if len(self.counts) == 1 else None


def _plural(count: int, one: str, many: str) -> str:
    return one if count == 1 else many


def _count(job: Job, segment_id: str, segment: Segment | None) -> SegmentCount:
    name = segment.name if segment else segment_id
    parent = job.parent
    if parent is not None and parent.kind == JobKind.SEGMENT \
            and parent.status == JobStatus.SUCCEEDED:
        count = count_in_metrics(parent.metrics or {}, segment_id)
        if count is not None:
            return SegmentCount(segment_id, name, count, parent.finished_at, SOURCE_PARENT,
                                parent)
    if segment is None:
        return SegmentCount(segment_id, name, None, None, "", None)
    started = job.created_at
    if segment.last_count is not None and segment.last_run_at is not None \
            and segment.last_run_at <= started:
        last = segment.jobs.filter(kind=JobKind.SEGMENT, finished_at=segment.last_run_at).first()
        return SegmentCount(segment_id, name, segment.last_count, segment.last_run_at,
                            SOURCE_LAST, last)
    # run again since the export: the last segment job that finished before it
    for earlier in segment.jobs.filter(kind=JobKind.SEGMENT, status=JobStatus.SUCCEEDED,
                                       finished_at__lte=started).order_by("-finished_at")[:5]:
        count = count_in_metrics(earlier.metrics or {}, segment_id)
        if count is not None:
            return SegmentCount(segment_id, name, count, earlier.finished_at, SOURCE_LAST,
                                earlier)
    return SegmentCount(segment_id, name, None, None, "", None)


def _filters(request: dict[str, Any]) -> list[str]:
    """What the export's own filters leave out, besides members with only events."""
    filters = request.get("filter") or {}
    found = []
    if filters.get("fromIngestTimestamp"):
        found.append(FILTER_UPDATED.format(moment=filters["fromIngestTimestamp"]))
    if filters.get("segmentQualificationTime"):
        found.append(FILTER_WINDOW)
    statuses = {tuple(sorted(item.get("status") or DEFAULT_STATUSES))
                for item in filters.get("segments") or [] if isinstance(item, dict)}
    if statuses - {tuple(DEFAULT_STATUSES)}:
        found.append(FILTER_STATUS.format(statuses=", ".join(sorted(
            {status for group in statuses for status in group}))))
    return found


def segment_ids(job: Job) -> list[str]:
    """The ups segments an export job asked for, in its request's order."""
    items = ((job.request or {}).get("filter") or {}).get("segments") or []
    return [str(item["segmentId"]) for item in items
            if isinstance(item, dict) and item.get("segmentId")
            and item.get("segmentNs", "ups") == "ups"]


def export_reconcile(job: Job, segments: dict[str, Segment] | None = None
                     ) -> Reconciliation | None:
    """The comparison for a succeeded export job (None before it succeeded, or when it
    exported no segment). `segments` (remote id → row) saves the lookup for a list of jobs."""
    if job.kind != JobKind.EXPORT or job.status != JobStatus.SUCCEEDED:
        return None
    exported = (job.metrics or {}).get("totalExportedProfileCounter")
    ids = segment_ids(job)
    if exported is None or not ids:
        return None
    exported = int(exported)
    if segments is None:
        segments = {s.remote_id: s for s in Segment.objects.in_sandbox(
            job.connection, job.sandbox).filter(remote_id__in=ids)}
    counts = [_count(job, sid, segments.get(sid)) for sid in ids]
    empty = bool(((job.request or {}).get("filter") or {}).get("emptyProfiles"))
    filters = _filters(job.request or {})
    if len(counts) == 1:
        return _one(exported, counts, empty=empty, filters=filters)
    return _several(exported, counts, empty=empty, filters=filters)


def _one(exported: int, counts: list[SegmentCount], *, empty: bool,
         filters: list[str]) -> Reconciliation:
    members = counts[0].count
    if members is None:
        return Reconciliation(exported, counts, NO_COUNT.format(
            exported=f"{exported:,}", name=counts[0].name), "unknown", False)
    figures = {"exported": f"{exported:,}", "members": f"{members:,}"}
    if exported == members:
        return Reconciliation(exported, counts, ALL_EXPORTED.format(**figures), "ok", False)
    if exported > members:
        return Reconciliation(exported, counts, MORE_THAN_COUNTED.format(**figures), "changed",
                              False)
    missing = members - exported
    figures["missing"] = f"{missing:,}"
    if not empty and not filters:
        return Reconciliation(exported, counts, LEFT_OUT_EMPTY.format(
            **figures, members_have=_plural(missing, "member has", "members have"),
            were=_plural(missing, "was", "were")), "short", True)
    if filters:
        reasons = ([] if empty else [FILTER_EMPTY]) + filters
        return Reconciliation(exported, counts, LEFT_OUT_FILTERS.format(
            **figures, members_were=_plural(missing, "member was", "members were"),
            filters="; ".join(reasons)), "short", not empty)
    return Reconciliation(exported, counts, NOT_IN_EXPORT.format(
        **figures, are=_plural(missing, "is", "are")), "changed", False)


def _several(exported: int, counts: list[SegmentCount], *, empty: bool,
             filters: list[str]) -> Reconciliation:
    known = [c.count for c in counts if c.count is not None]
    if len(known) < len(counts):
        return Reconciliation(exported, counts, MULTI_UNKNOWN.format(
            exported=f"{exported:,}", segments=len(counts)), "unknown", False)
    low, high = max(known), sum(known)
    reasons = ([] if empty else [FILTER_EMPTY]) + filters
    why = MULTI_FILTERED.format(filters="; ".join(reasons)) if reasons else ""
    if exported < low:
        missing = low - exported
        return Reconciliation(exported, counts, MULTI_SHORT.format(
            exported=f"{exported:,}", segments=len(counts), low=f"{low:,}",
            missing=f"{missing:,}",
            members_were=_plural(missing, "member was", "members were")) + why, "short",
            not empty)
    if exported > high:
        return Reconciliation(exported, counts, MORE_THAN_COUNTED.format(
            exported=f"{exported:,}", members=f"{high:,}"), "changed", False)
    # within the bounds: whether everyone is in cannot be told from the counts
    return Reconciliation(exported, counts, MULTI_RANGE.format(
        exported=f"{exported:,}", segments=len(counts), low=f"{low:,}", high=f"{high:,}") + why,
        "range", not empty)
