"""1,000 jobs in flight on one connection: how many API calls a minute does polling them cost?

    .venv/bin/python bench/bench_jobs.py [--jobs 1000] [--seed 6]

The real job services (jobs.services: job_submit, job_poll_step) run against a fake AEP on
httpx.MockTransport (tests/jobs/fake_aep.py, the payload shapes of spec/aep-api.md) on a
simulated clock: a heap of due polls stands in for Celery's countdowns, so a quarter of an hour
of polling takes seconds. Segment jobs are submitted over the first minute and run 3 to 12
minutes each on the remote side.

Baseline: the naive poller — every job reads its own status (GET /segment/jobs/{id}) at each
countdown (1, 2, 4, 8, 16, then every 30 s), i.e. jobs.services.job_refresh per job with
no batching and no budget — on the same arrivals and the same remote durations.
Targets (issue 6): calls per minute per connection bounded (≤ the polling budget, 240, far
under the engine's ENGINE_RATE_LIMIT of 600), whatever the number of jobs; every job finishes.
The database is an in-memory SQLite database of this process, never the suite's.
"""

from __future__ import annotations

import argparse
import heapq
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH = ROOT / "var" / "bench"
BENCH.mkdir(parents=True, exist_ok=True)
os.environ["VAR_DIR"] = str(BENCH)
os.environ["DATABASE_URL"] = "sqlite://:memory:"  # migrated below; this process only
os.environ.pop("REDIS_URL", None)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

import httpx  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test.utils import override_settings  # noqa: E402

from connections.models import Connection, ConnectionKind  # noqa: E402
from jobs import services  # noqa: E402
from jobs.models import Job, JobEvent, JobKind, JobStatus  # noqa: E402
from tests.jobs.fake_aep import FakeAEP  # noqa: E402

START = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@dataclass
class Sim:
    """The simulated clock, and every API call made, by simulated second."""

    now: datetime = START
    calls: list[tuple[float, str]] = field(default_factory=list)

    def epoch(self) -> float:
        return self.now.timestamp()


class Counting(httpx.BaseTransport):
    def __init__(self, sim: Sim, inner: httpx.BaseTransport) -> None:
        self.sim, self.inner = sim, inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path != "/ims/token/v3":  # tokens are cached in production (one a day)
            path = request.url.path
            kind = ("submit" if request.method == "POST" and path.endswith("/segment/jobs")
                    else "poll")
            self.sim.calls.append(((self.sim.now - START).total_seconds(), kind))
        return self.inner.handle_request(request)


@dataclass
class Result:
    name: str
    per_minute: Counter[int]  # polling calls (GET one job, bulk-get, list pages)
    submits: Counter[int]  # POST /segment/jobs, the same for every strategy
    finished: int
    lag: float  # mean seconds between the remote job's end and our SUCCEEDED
    elapsed: float
    minutes: int

    @property
    def peak(self) -> int:
        return max(self.per_minute.values())

    @property
    def mean(self) -> float:
        return sum(self.per_minute.values()) / max(self.minutes, 1)


def run(name: str, jobs: int, seed: int,
        poll: Callable[[Job, datetime, datetime | None, httpx.BaseTransport],
                       datetime | None]) -> Result:
    Job.objects.all().delete()
    JobEvent.objects.all().delete()
    cache.clear()
    sim = Sim()
    fake = FakeAEP(clock=sim.epoch)
    transport = Counting(sim, fake.transport())
    connection = Connection.objects.get()
    rng = random.Random(seed)
    arrivals = sorted(rng.uniform(0, 60) for _ in range(jobs))
    durations = [rng.uniform(180, 720) for _ in range(jobs)]
    due: list[tuple[datetime, int, int, datetime | None]] = []
    started = time.perf_counter()
    for n, at in enumerate(arrivals):
        job = Job.objects.create(
            kind=JobKind.SEGMENT, connection=connection, sandbox="prod", label=f"job {n}",
            request={"segments": [{"segmentId": f"def-{n}"}]}, next_poll_at=START,
            poll_deadline=START + timedelta(hours=6))
        heapq.heappush(due, (START + timedelta(seconds=at), job.pk, -1, None))
    remote_end: dict[int, float] = {}
    while due:
        moment, pk, kind, token = heapq.heappop(due)
        sim.now = moment
        job = Job.objects.select_related("connection").get(pk=pk)
        if kind == -1:  # the submit task
            fake.runs_for = durations[int(job.label.split()[1])]  # the remote job's duration
            step = services.job_submit(job=job, now=moment, transport=transport)
            remote = fake.jobs[step.job.remote_id]
            remote_end[pk] = remote.created + remote.runs_for
            nxt = step.poll_due
        else:
            nxt = poll(job, moment, token, transport)
        if nxt is not None:
            heapq.heappush(due, (nxt, pk, 0, nxt))
    elapsed = time.perf_counter() - started
    done = Job.objects.filter(status=JobStatus.SUCCEEDED)
    lags = [(j.finished_at.timestamp() - remote_end[j.pk]) for j in done if j.finished_at]
    per_minute = Counter(int(second // 60) for second, kind in sim.calls if kind == "poll")
    submits = Counter(int(second // 60) for second, kind in sim.calls if kind == "submit")
    last = max((j.finished_at for j in done if j.finished_at), default=START)
    return Result(name, per_minute, submits, done.count(), sum(lags) / max(len(lags), 1), elapsed,
                  int((last - START).total_seconds() // 60) + 1)


def naive(job: Job, now: datetime, due: datetime | None,
          transport: httpx.BaseTransport) -> datetime | None:
    job = services.job_refresh(job=job, now=now, transport=transport)
    return None if job.is_finished else now + timedelta(seconds=job.next_poll_delay())


def ours(job: Job, now: datetime, due: datetime | None,
         transport: httpx.BaseTransport) -> datetime | None:
    return services.job_poll_step(job=job, due=due, now=now, transport=transport).poll_due


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=6)
    args = parser.parse_args()

    call_command("migrate", verbosity=0, interactive=False)
    Job.objects.all().delete()
    Connection.objects.all().delete()
    connection = Connection(name="Bench", kind=ConnectionKind.ADOBE,
                            base_url="https://platform.adobe.io",
                            ims_url="https://ims-na1.adobelogin.com", org_id="BENCH@AdobeOrg",
                            client_id="bench")
    connection.set_client_secret("bench-secret")
    connection.save()

    budget = services.POLL_BUDGET_PER_MINUTE
    print(f"{args.jobs:,} segment jobs submitted over the first minute, each running 3–12 min "
          "on the remote; polling API calls per simulated minute on one connection (the "
          f"{args.jobs:,} submits and the token calls are the same for both and not counted)")
    results = []
    with override_settings(CACHES={"default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "bench-jobs"}}):
        for name, poll in (("naive: one GET per job per countdown", naive),
                           ("ours: group bulk-get + budget", ours)):
            result = run(name, args.jobs, args.seed, poll)
            results.append(result)
            minutes = ", ".join(f"{result.per_minute[m]}" for m in range(result.minutes))
            print(f"  {result.name}")
            print(f"    polling calls/min peak {result.peak:,}, mean {result.mean:,.0f} over "
                  f"{result.minutes} min; {result.finished:,}/{args.jobs:,} jobs succeeded; "
                  f"mean lag after the remote finished {result.lag:.1f} s "
                  f"({result.elapsed:.1f} s to simulate)")
            print(f"    per minute: {minutes}")
    baseline, mine = results
    print(f"ratio (ours / naive): peak {mine.peak / baseline.peak:.3f} "
          f"({baseline.peak / mine.peak:.0f}x fewer), mean {mine.mean / baseline.mean:.3f}")
    total_peak = max(mine.per_minute[m] + mine.submits[m] for m in range(mine.minutes))
    print(f"ours with the submits: peak {total_peak:,} calls in a minute")
    ok = (mine.peak <= budget and mine.finished == args.jobs
          and baseline.finished == args.jobs)
    print(f"target: peak ≤ {budget} calls/min per connection (the polling budget; the engine "
          f"allows 600) and every job finished: {'met' if ok else 'NOT MET'}")
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
