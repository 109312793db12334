"""The embedded broker of `make run` under load, against Redis and against the broker it replaced.

    .venv/bin/python bench/bench_broker.py [--producers 4] [--per-producer 1250] [--workers 2]

Every run starts real `celery worker` processes (the Procfile's flags: prefork, 2 processes,
both queues) on the app's own Celery settings, and producer processes that send a task mix like
the app's (tests/broker_soak.py: both queues, one in ten with a 1 s countdown, one in five
sending a follow-up from inside the worker). Each execution is written down, so a run counts
tasks run, run twice, never run, run before their countdown, and workers that died.

1. trickle, filesystem: kombu's filesystem transport as `make run` had it before issue 15, four
   producers sending 2 tasks/s each with 1 MB messages: the worker keeps up, so it reads each
   file as soon as it appears, and a larger message stays longer half-written (kombu creates
   the file, then encodes the message, then writes it), so the race that killed the worker
   once in three benchmark sessions shows within seconds. The worker's death here is the
   failure reproduced, not a failure of the bench.
2. trickle, embedded: the same load on the embedded SQLite broker (config/broker.py).
3. soak, embedded: 4 producers x 1,250 tasks (+ 1,000 follow-ups = 6,000 executions) as fast as
   they can send, two workers, one of them stopped (SIGTERM, as Ctrl-C in `make run`) and
   started again mid-way.
4. soak, filesystem: the same on the old broker (it survives a backlog: its reader takes the
   oldest file, long written), for its figures.
5. soak, Redis (the baseline; database 14 of REDIS_URL's server, flushed first): the same.

Each line also gives the seconds from SIGTERM (what honcho sends on Ctrl-C in `make run`) to
the worker's exit, busy (the restart) and idle (the end): honcho sends SIGKILL after 5 s, and a
killed worker loses the countdowns it holds.

Exit status 1 when an embedded run loses, repeats or misroutes a task or a worker dies.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import redis  # noqa: E402

from tests.broker_soak import Result, Soak, run  # noqa: E402

BENCH = ROOT / "var" / "bench" / "broker"


def redis_url() -> str:
    parts = urlsplit(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0")
    return urlunsplit(parts._replace(path="/14"))


def redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


def soak(name: str, settings: Soak) -> Result:
    folder = BENCH / name
    shutil.rmtree(folder, ignore_errors=True)
    result = run(settings, folder)
    print(f"{name:<22} {result.summary()}", flush=True)
    for error in result.producer_errors[:3]:
        print(f"{'':<22} producer failed: {error}")
    return result


def ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:.2f}x" if baseline else "n/a"


def compare(result: Result, baseline: Result) -> None:
    print(f"{result.soak.broker} vs {baseline.soak.broker}: "
          f"throughput {ratio(result.rate, baseline.rate)}, "
          f"latency p50 {ratio(result.latency(0.5), baseline.latency(0.5))}, "
          f"p95 {ratio(result.latency(0.95), baseline.latency(0.95))}, "
          f"wall time {ratio(result.seconds, baseline.seconds)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--producers", type=int, default=4)
    parser.add_argument("--per-producer", type=int, default=1250)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    total = args.producers * args.per_producer
    url = redis_url()
    print(f"{args.producers} producers, {total} tasks (+ follow-ups), {args.workers} workers "
          f"x 2 processes; baseline: the Redis transport at {url}")

    def trickle(broker: str) -> Soak:
        return Soak(broker, producers=4, per_producer=60, pace=2.0, pad=1_000_000, timeout=90)

    def load(broker: str) -> Soak:
        return Soak(broker, producers=args.producers, per_producer=args.per_producer,
                    workers=args.workers, restart_after=total // 2, timeout=600, redis_url=url)

    old = soak("trickle, filesystem", trickle("filesystem"))
    print(f"{'':<22} -> " + ("failure reproduced: " + old.deaths[0][:120] if old.deaths
                             else "no worker died this time (the race is a matter of timing)"))
    embedded_trickle = soak("trickle, embedded", trickle("embedded"))

    old_soak = soak("soak, filesystem", load("filesystem"))  # the old broker, for its figures
    embedded = soak("soak, embedded", load("embedded"))
    compare(embedded, old_soak)
    if redis_answers(url):
        baseline = soak("soak, Redis", load("redis"))
        compare(embedded, baseline)
        compare(old_soak, baseline)
    else:
        baseline = None
        print(f"no Redis answers at {url}: the baseline run is skipped")
    idle = [(name, max(r.idle_stop_seconds)) for name, r in
            (("filesystem", old_soak), ("embedded", embedded), ("Redis", baseline))
            if r is not None and r.idle_stop_seconds]
    print("SIGTERM to exit, idle worker (honcho kills at 5 s): "
          + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in idle))

    failed = [r for r in (embedded_trickle, embedded) if not r.ok]
    for result in failed:
        print(f"FAILED: {result.summary()}")
        for name, log in result.logs.items():
            print(f"--- {name}\n{log}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
