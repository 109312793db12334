"""The history page's charts, drawn here as SVG (no CDN, no front-end build): each a title
that says what it answers, axis labels and a legend. The data comes from our database only.

Segment figures come through the relation the segments app declares on Job (`Job.segments`),
so jobs imports nothing from segments.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from jobs.kinds import all_kinds
from jobs.models import Job, JobQuerySet, JobStatus

# status groups, drawn in the badge colours of DESIGN.md
STATUS_GROUPS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("Succeeded", "var(--green)", (JobStatus.SUCCEEDED,)),
    ("Failed", "var(--red)", (JobStatus.FAILED,)),
    ("Timed out", "var(--amber)", (JobStatus.TIMED_OUT,)),
    ("Cancelled", "var(--grey-400)", (JobStatus.CANCELLED,)),
    ("Unfinished", "var(--blue)", (JobStatus.PENDING, JobStatus.WAITING, JobStatus.SUBMITTING,
                                    JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.CANCELLING)),
)
SERIES_COLOURS = ("#4f46e5", "#0891b2", "#c2410c", "#15803d", "#a21caf", "#64748b")
PERCENTILES = ((50, "p50", "#a5b4fc"), (90, "p90", "#6366f1"), (99, "p99", "#3730a3"))
MAX_DAYS = 62
MAX_SEGMENTS = 6
MAX_JOBS = 5000  # the newest this many of the filtered jobs feed the charts

W, H = 560, 240
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 56


@dataclass(frozen=True)
class Chart:
    slug: str
    title: str
    question: str
    svg: SafeString
    empty: str = ""


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def _count_max(value: float) -> float:
    """A top for an axis of whole numbers: its four ticks are whole numbers too."""
    if value <= 40:
        return float(max(4, math.ceil(value / 4) * 4))
    return _nice_max(value)


def _short(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if value >= 1000:
        return f"{value / 1000:g}k"
    return f"{value:g}"


def _seconds(value: float) -> str:
    if value >= 3600:
        return f"{value / 3600:.1f} h"
    if value >= 60:
        return f"{value / 60:.0f} min"
    if 0 < value < 1:
        return f"{value * 1000:.3g} ms"
    return f"{value:.3g} s"


def _svg(label: str, body: list[str], *, height: int = H) -> SafeString:
    return mark_safe(  # noqa: S308 -- every text in body went through escape()
        f'<svg class="chart" viewBox="0 0 {W} {height}" role="img" aria-label="{escape(label)}"'
        f' xmlns="http://www.w3.org/2000/svg">{"".join(body)}</svg>')


def _y_axis(top: float, fmt: Any, label: str, *, height: int = H) -> list[str]:
    """Gridlines and ticks for 0..top, and the axis title rotated along the left edge."""
    plot = height - TOP - BOTTOM
    parts = []
    for i in range(5):
        value = top * i / 4
        y = TOP + plot - plot * i / 4
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" '
                     f'y2="{y:.1f}"/><text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" '
                     f'text-anchor="end">{escape(fmt(value))}</text>')
    parts.append(f'<text class="axis-title" transform="translate(14 {TOP + plot / 2:.0f}) '
                 f'rotate(-90)" text-anchor="middle">{escape(label)}</text>')
    return parts


def _x_title(label: str, *, height: int = H) -> str:
    return (f'<text class="axis-title" x="{LEFT + (W - LEFT - RIGHT) / 2:.0f}" '
            f'y="{height - 6}" text-anchor="middle">{escape(label)}</text>')


def _legend(items: list[tuple[str, str]], *, y: float) -> list[str]:
    parts, x = [], float(LEFT)
    for name, colour in items:
        parts.append(f'<rect x="{x:.0f}" y="{y - 9:.0f}" width="10" height="10" rx="2" '
                     f'fill="{colour}"/><text class="legend" x="{x + 14:.0f}" y="{y:.0f}">'
                     f'{escape(name)}</text>')
        x += 24 + 7 * len(name)
    return parts


def _days(jobs: list[Job], date_from: date | None, date_to: date | None) -> list[date]:
    today = timezone.localdate()
    last = min(date_to or today, today)
    first = date_from or min((timezone.localdate(job.created_at) for job in jobs),
                             default=last - timedelta(days=13))
    first = max(first, last - timedelta(days=MAX_DAYS - 1))
    if (last - first).days < 6:
        first = last - timedelta(days=6)
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def jobs_per_day(jobs: list[Job], *, date_from: date | None = None,
                 date_to: date | None = None) -> Chart:
    days = _days(jobs, date_from, date_to)
    counts: dict[date, dict[str, int]] = {day: defaultdict(int) for day in days}
    group_of = {status: name for name, _, statuses in STATUS_GROUPS for status in statuses}
    for job in jobs:
        day = timezone.localdate(job.created_at)
        if day in counts:
            counts[day][group_of[job.status]] += 1
    top = _count_max(max((sum(c.values()) for c in counts.values()), default=0))
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    slot = plot_w / len(days)
    bar = max(min(slot * 0.7, 28), 2)
    body = _y_axis(top, lambda v: f"{v:g}", "Jobs")
    every = max(1, math.ceil(len(days) / 10))
    for index, day in enumerate(days):
        x = LEFT + slot * index + (slot - bar) / 2
        y = float(TOP + plot_h)
        tip = [f"{day:%a %d %b}"]
        for name, colour, _ in STATUS_GROUPS:
            n = counts[day].get(name, 0)
            if not n:
                continue
            h = plot_h * n / top
            y -= h
            body.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                        f'fill="{colour}"><title>{escape(f"{day:%d %b}: {n} {name.lower()}")}'
                        f'</title></rect>')
            tip.append(f"{n} {name.lower()}")
        if index % every == 0:
            body.append(f'<text class="tick" x="{x + bar / 2:.1f}" y="{TOP + plot_h + 14}" '
                        f'text-anchor="middle">{day:%d %b}</text>')
    body.extend(_legend([(name, colour) for name, colour, _ in STATUS_GROUPS],
                        y=H - 24))
    body.append(_x_title("Day the job was started", height=H))
    return Chart("per-day", "Jobs per day, by status",
                 "How many jobs ran each day, and how many of them failed?",
                 _svg("Jobs per day by status", body),
                 "" if jobs else "No jobs in this period.")


def _percentile(values: list[float], p: int) -> float:
    ordered = sorted(values)
    rank = max(0, math.ceil(p / 100 * len(ordered)) - 1)
    return ordered[rank]


def duration_percentiles(jobs: list[Job]) -> Chart:
    durations: dict[str, list[float]] = defaultdict(list)
    for job in jobs:
        if job.is_finished and job.duration is not None:
            durations[job.kind].append(max(job.duration.total_seconds(), 0.0))
    kinds = [kind for kind in all_kinds() if durations[kind.value]]
    values = {kind.value: [_percentile(durations[kind.value], p) for p, _, _ in PERCENTILES]
              for kind in kinds}
    top = _nice_max(max((max(v) for v in values.values()), default=0))
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    body = _y_axis(top, _seconds, "Duration")
    slot = plot_w / max(len(kinds), 1)
    bar = min(slot / (len(PERCENTILES) + 1), 36)
    for index, kind in enumerate(kinds):
        x0 = LEFT + slot * index + (slot - bar * len(PERCENTILES)) / 2
        for j, (_, name, colour) in enumerate(PERCENTILES):
            value = values[kind.value][j]
            h = plot_h * value / top
            x = x0 + bar * j
            body.append(f'<rect x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{bar - 3:.1f}" '
                        f'height="{max(h, 1):.1f}" fill="{colour}"><title>'
                        f'{escape(f"{kind.label} {name}: {_seconds(round(value, 1))}")}'
                        f'</title></rect>')
        body.append(f'<text class="tick" x="{LEFT + slot * index + slot / 2:.1f}" '
                    f'y="{TOP + plot_h + 14}" text-anchor="middle">'
                    f'{escape(f"{kind.label} ({len(durations[kind.value])})")}</text>')
    body.extend(_legend([(f"{name} (median)" if p == 50 else name, colour)
                         for p, name, colour in PERCENTILES], y=H - 24))
    body.append(_x_title("Kind of job (finished jobs)"))
    return Chart("durations", "Duration percentiles, by kind",
                 "How long does a job of each kind usually take, and how long in the worst "
                 "cases?", _svg("Duration percentiles by kind", body),
                 "" if kinds else "No finished jobs in this period.")


def _segment_counts(jobs: list[Job]) -> dict[tuple[int, str], list[tuple[datetime, int]]]:
    """(segment pk, name) → [(finished_at, count)] from the counts of succeeded jobs whose
    kind counts audiences (segment jobs' segmentedProfileCounter), keyed by the segment's
    remote id."""
    series: dict[tuple[int, str], list[tuple[datetime, int]]] = defaultdict(list)
    for job in jobs:
        if job.status != JobStatus.SUCCEEDED:
            continue
        counts = job.kind_spec.counts(job)
        if not counts:
            continue
        for segment in job.segments.all():  # type: ignore[attr-defined]
            if segment.remote_id in counts:
                series[(segment.pk, segment.name)].append(
                    (job.finished_at or job.created_at, int(counts[segment.remote_id])))
    return series


def audience_over_time(jobs: list[Job]) -> Chart:
    series = _segment_counts(jobs)
    # the segments run most often, up to MAX_SEGMENTS
    chosen = sorted(series, key=lambda key: (-len(series[key]), key[1]))[:MAX_SEGMENTS]
    points = [point for key in chosen for point in series[key]]
    body: list[str] = []
    if points:
        start = min(at for at, _ in points)
        end = max(at for at, _ in points)
        span = max((end - start).total_seconds(), 1.0)
        top = _nice_max(max(n for _, n in points))
        plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
        body = _y_axis(top, _short, "Profiles in segment")

        def xy(at: datetime, n: int) -> tuple[float, float]:
            return (LEFT + plot_w * (at - start).total_seconds() / span if span > 1 else
                    LEFT + plot_w / 2, TOP + plot_h - plot_h * n / top)

        for index, key in enumerate(chosen):
            colour = SERIES_COLOURS[index % len(SERIES_COLOURS)]
            line = sorted(series[key])
            coords = [xy(at, n) for at, n in line]
            body.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="'
                        + " ".join(f"{x:.1f},{y:.1f}" for x, y in coords) + '"/>')
            for (at, n), (x, y) in zip(line, coords, strict=True):
                local = timezone.localtime(at)
                body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"><title>'
                            f'{escape(f"{key[1]}: {n:,} on {local:%d %b %H:%M}")}</title>'
                            f'</circle>')
        fmt = "%d %b" if span >= 3 * 86400 else "%d %b %H:%M" if span >= 600 else "%H:%M:%S"
        for fraction in (0, 0.5, 1):
            at = start + timedelta(seconds=span * fraction) if span > 1 else start
            x = LEFT + plot_w * fraction if span > 1 else LEFT + plot_w / 2
            anchor = {0: "start", 0.5: "middle", 1: "end"}[fraction]
            body.append(f'<text class="tick" x="{x:.1f}" y="{TOP + plot_h + 14}" '
                        f'text-anchor="{anchor}">{timezone.localtime(at).strftime(fmt)}</text>')
            if span <= 1:
                break
        body.extend(_legend([(key[1][:24], SERIES_COLOURS[i % len(SERIES_COLOURS)])
                             for i, key in enumerate(chosen)], y=H - 24))
        body.append(_x_title("When the segment job finished"))
    return Chart("audience", "Audience size over time, per segment",
                 "Is each audience growing or shrinking from one segment job to the next?",
                 _svg("Audience size over time per segment", body),
                 "" if points else "No succeeded segment jobs with counts in this period.")


NO_ESTIMATED_RUN = ("No segment run in this period has an estimate of the version it ran: "
                    "estimate a segment, save it, then run it.")


def _counted_version(job: Job, segment_id: str) -> int | None:
    """The version of the segment that a segment job counted (its request names it)."""
    for item in (job.request or {}).get("segments") or []:
        if isinstance(item, dict) and item.get("segmentId") == segment_id:
            version = item.get("version")
            return version if isinstance(version, int) else None
    return None


def estimate_vs_actual(jobs: list[Job]) -> Chart:
    """Per segment: the latest count of a succeeded segment job against the estimate of the
    same version of the definition (an estimate of another text would compare two different
    audiences)."""
    actual: dict[tuple[int, str], int] = {}
    estimates: dict[tuple[int, str], tuple[datetime, int, float | None]] = {}
    latest: dict[tuple[int, str], datetime] = {}
    for job in jobs:
        if job.status != JobStatus.SUCCEEDED:
            continue
        counts = job.kind_spec.counts(job)
        if not counts:
            continue
        at = job.finished_at or job.created_at
        for segment in job.segments.all():  # type: ignore[attr-defined]
            key = (segment.pk, segment.name)
            if segment.remote_id not in counts or (key in latest and latest[key] >= at):
                continue
            latest[key] = at
            actual[key] = int(counts[segment.remote_id])
            number = _counted_version(job, segment.remote_id)
            version = next((v for v in segment.versions.all() if v.number == number), None)
            estimate = version.estimate if version is not None else None
            if estimate and estimate.get("size") is not None:
                estimates[key] = (at, int(estimate["size"]), estimate.get("standard_error"))
            else:
                estimates.pop(key, None)
    keys = sorted((key for key in actual if key in estimates), key=lambda k: k[1])
    keys = keys[:8]
    row = 30
    height = TOP + row * max(len(keys), 1) + BOTTOM + 10
    body: list[str] = []
    if keys:
        top = _nice_max(max(max(actual[k], estimates[k][1] + 1.96 * (estimates[k][2] or 0))
                            for k in keys))
        left = 150
        plot_w = W - left - RIGHT - 50
        for i in range(5):
            x = left + plot_w * i / 4
            body.append(f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" '
                        f'y2="{TOP + row * len(keys)}"/><text class="tick" x="{x:.1f}" '
                        f'y="{TOP + row * len(keys) + 14}" text-anchor="middle">'
                        f'{_short(top * i / 4)}</text>')
        for index, key in enumerate(keys):
            y = TOP + row * index
            _, size, error = estimates[key]
            real = actual[key]
            body.append(f'<text class="tick" x="{left - 8}" y="{y + 17}" text-anchor="end">'
                        f'{escape(key[1][:22])}</text>')
            body.append(f'<rect x="{left}" y="{y + 5}" width="{plot_w * size / top:.1f}" '
                        f'height="9" fill="#a5b4fc"><title>'
                        f'{escape(f"{key[1]}: estimate ≈ {size:,}")}</title></rect>')
            if error:
                low = max(size - 1.96 * error, 0)
                high = size + 1.96 * error
                body.append(f'<line class="whisker" x1="{left + plot_w * low / top:.1f}" '
                            f'x2="{left + plot_w * high / top:.1f}" y1="{y + 9.5}" '
                            f'y2="{y + 9.5}"/>')
            body.append(f'<rect x="{left}" y="{y + 15}" width="{plot_w * real / top:.1f}" '
                        f'height="9" fill="#3730a3"><title>'
                        f'{escape(f"{key[1]}: actual {real:,}")}</title></rect>')
            off = (size - real) / real * 100 if real else 0.0
            tone = "good" if abs(off) <= 10 else "bad"
            body.append(f'<text class="delta delta-{tone}" x="{W - RIGHT}" y="{y + 19}" '
                        f'text-anchor="end">{off:+.0f} %</text>')
        body.extend(_legend([("Estimate of the version counted (95 % interval)", "#a5b4fc"),
                             ("Latest segment job count", "#3730a3")], y=height - 24))
        body.append(f'<text class="axis-title" x="{left + plot_w / 2:.0f}" y="{height - 6}" '
                    f'text-anchor="middle">Profiles · right: estimate off by</text>')
    return Chart("estimates", "Estimate against actual count, per segment",
                 "How close were the estimates to what the segment job counted?",
                 _svg("Estimate against actual count per segment", body, height=height),
                 "" if keys else NO_ESTIMATED_RUN)


def history_charts(jobs: JobQuerySet, *, date_from: date | None = None,
                   date_to: date | None = None) -> list[Chart]:
    """The four charts for the filtered jobs (the newest MAX_JOBS of them)."""
    rows = list(jobs.order_by("-created_at").prefetch_related("segments__versions")[:MAX_JOBS])
    return [jobs_per_day(rows, date_from=date_from, date_to=date_to),
            duration_percentiles(rows), audience_over_time(rows), estimate_vs_actual(rows)]
