"""A broker soak: producer processes send tasks through the app's own Celery configuration to
real worker processes, and every execution is written down, so a run tells how many tasks ran,
how many ran twice, how many never ran, whether a countdown ran early, and whether a worker died.

tests/test_embedded_broker.py runs a few hundred tasks; bench/bench_broker.py (`make bench`)
runs thousands and compares brokers. Started as `celery -A tests.broker_soak worker`, this
module is the app (config.celery) with one more task; SOAK_BROKER=filesystem puts back the
kombu filesystem transport that `make run` used before issue 15, to show how it failed.

The load mixes what the app does: tasks to both queues (`default`, `engine`), one in ten with
a countdown (as job polls are), and one in five that sends its follow-up from inside the worker
(as job_poll does), under the settings' acks_late and prefetch.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config.celery import app

ROOT = Path(__file__).resolve().parent.parent
QUEUES = ("default", "engine")
COUNTDOWN_EVERY = 10  # one task in ten waits a countdown (the worker keeps it, unacknowledged)
COUNTDOWN_SECONDS = 1.0
HOP_EVERY = 5  # one task in five sends a follow-up task from inside the worker
UNRECOVERABLE = "Unrecoverable error"

if os.environ.get("SOAK_BROKER") == "filesystem":
    # the embedded broker as config/settings.py had it before issue 15
    _folder = Path(os.environ["VAR_DIR"]) / "broker"
    for _name in ("queue", "processed", "control"):
        (_folder / _name).mkdir(parents=True, exist_ok=True)
    app.conf.update(
        broker_url="filesystem://",
        broker_transport_options={
            "data_folder_in": str(_folder / "queue"), "data_folder_out": str(_folder / "queue"),
            "processed_folder": str(_folder / "processed"),
            "control_folder": str(_folder / "control"),
            "store_processed": False, "polling_interval": 0.1})


@app.task(name="soak.record", bind=True)
def record(self: Any, producer: int, seq: int, hops: int, sent: float,
           eta: float | None = None, padding: str = "") -> None:
    """Append one line per execution (O_APPEND: whole lines, whatever the concurrency)."""
    info = self.request.delivery_info or {}
    line = json.dumps({"p": producer, "s": seq, "h": hops, "sent": sent, "eta": eta,
                       "ran": time.time(), "queue": info.get("routing_key"),
                       "redelivered": bool(info.get("redelivered")), "pid": os.getpid()})
    fd = os.open(os.environ["SOAK_SINK"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)
    if hops:
        record.apply_async((producer, seq, hops - 1, time.time()), queue=queue_of(seq))


def queue_of(seq: int) -> str:
    return QUEUES[seq % len(QUEUES)]


def hops_of(seq: int) -> int:
    return 1 if seq % HOP_EVERY == 0 else 0


def produce(producer: int, count: int, pace: float = 0.0, pad: int = 0) -> None:
    """Send `count` tasks, `pace` a second (0: as fast as the broker takes them), each with
    `pad` bytes of padding (a larger message takes longer to write)."""
    padding = "x" * pad
    for seq in range(count):
        now = time.time()
        eta = now + COUNTDOWN_SECONDS if seq % COUNTDOWN_EVERY == 1 else None
        record.apply_async((producer, seq, hops_of(seq), now, eta, padding), queue=queue_of(seq),
                           countdown=COUNTDOWN_SECONDS if eta else None)
        if pace:
            time.sleep(max(0.0, now + 1 / pace - time.time()))


def expected_executions(producers: int, per_producer: int) -> set[tuple[int, int, int]]:
    return {(p, s, h) for p in range(producers) for s in range(per_producer)
            for h in range(hops_of(s), -1, -1)}


# --- the runner -----------------------------------------------------------------------------------


@dataclass
class Soak:
    broker: str  # "embedded" (the settings without REDIS_URL), "redis" or "filesystem"
    producers: int
    per_producer: int
    workers: int = 1
    concurrency: int = 2  # the Procfile's
    redis_url: str = ""
    # after this many executions, stop worker 0 as Ctrl-C does (SIGTERM) and start it again
    restart_after: int | None = None
    timeout: float = 120.0
    pace: float = 0.0  # tasks a second per producer; 0 = as fast as possible
    pad: int = 0  # bytes of padding in each message


@dataclass
class Result:
    soak: Soak
    expected: int
    executed: int
    distinct: int
    duplicates: int
    missing: int
    early: int  # countdown tasks that ran before their ETA
    wrong_queue: int
    send_seconds: float  # first send to last send
    seconds: float  # first send to last execution
    latencies: list[float]  # send to execution, tasks without a countdown
    deaths: list[str] = field(default_factory=list)  # log lines of workers that died
    stop_seconds: list[float] = field(default_factory=list)  # warm shutdowns mid-run (restarts)
    idle_stop_seconds: list[float] = field(default_factory=list)  # warm shutdowns at the end
    producer_errors: list[str] = field(default_factory=list)
    logs: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return (not self.deaths and not self.producer_errors and self.missing == 0
                and self.duplicates == 0 and self.early == 0 and self.wrong_queue == 0)

    @property
    def rate(self) -> float:
        return self.executed / self.seconds if self.seconds else 0.0

    def latency(self, quantile: float) -> float:
        if len(self.latencies) < 2:
            return self.latencies[0] if self.latencies else 0.0
        return statistics.quantiles(self.latencies, n=100)[int(quantile * 100) - 1]

    def summary(self) -> str:
        deaths = (f", worker deaths {len(self.deaths)}: {self.deaths[0][:160]}"
                  if self.deaths else "")
        stops = ", ".join(f"{name} {max(values):.1f} s" for name, values in
                          (("busy", self.stop_seconds), ("idle", self.idle_stop_seconds)) if values)
        stops = f"; SIGTERM to exit: {stops}" if stops else ""
        return (f"{self.soak.broker}: {self.executed}/{self.expected} executed, "
                f"{self.duplicates} duplicates, {self.missing} missing, {self.early} early, "
                f"{self.wrong_queue} misrouted; {self.seconds:.1f} s, {self.rate:.0f} tasks/s, "
                f"latency p50 {self.latency(0.5) * 1000:.0f} ms p95 "
                f"{self.latency(0.95) * 1000:.0f} ms{stops}{deaths}")


def soak_env(soak: Soak, workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "SOAK_BROKER")}
    env.update(VAR_DIR=str(workdir / "var"), SOAK_SINK=str(workdir / "executions.jsonl"),
               DJANGO_SETTINGS_MODULE="config.settings", PYTHONPATH=str(ROOT),
               LOG_LEVEL="WARNING")
    if soak.broker == "redis":
        env["REDIS_URL"] = soak.redis_url
    elif soak.broker == "filesystem":
        env["SOAK_BROKER"] = "filesystem"
    return env


class Worker:
    """`celery worker` as the Procfile starts it, on this module's app."""

    def __init__(self, name: str, soak: Soak, env: dict[str, str], workdir: Path) -> None:
        self.name, self.log = name, workdir / f"{name}.log"
        with self.log.open("a") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "tests.broker_soak", "worker",
                 "--queues", ",".join(QUEUES), "--concurrency", str(soak.concurrency),
                 "--loglevel", "INFO", "--hostname", f"{name}-{uuid.uuid4().hex[:6]}@%h"],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.stopped = False

    def wait_ready(self, seconds: float = 90) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if " ready." in self.log.read_text() or self.process.poll() is not None:
                return
            time.sleep(0.1)

    @property
    def died(self) -> bool:
        return not self.stopped and self.process.poll() is not None

    def stop(self, seconds: float = 30) -> float:
        """SIGTERM, as honcho sends on Ctrl-C in `make run`: the seconds the warm shutdown
        took (honcho sends SIGKILL after 5, and a killed worker loses its unacked tasks)."""
        self.stopped = True
        started = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=seconds)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return time.monotonic() - started

    def death(self) -> str:
        lines = self.log.read_text(errors="replace").splitlines()
        fatal = [line for line in lines if UNRECOVERABLE in line or "Error" in line]
        return (fatal or lines[-1:] or ["(no output)"])[0].strip() + \
            f" (exit {self.process.returncode})"


@contextmanager
def workers_running(soak: Soak, env: dict[str, str], workdir: Path,
                    stops: list[float]) -> Iterator[list[Worker]]:
    """The soak's workers, stopped at the end (the seconds each took go to `stops`)."""
    workers = [Worker(f"soak{i}", soak, env, workdir) for i in range(soak.workers)]
    try:
        for worker in workers:
            worker.wait_ready()
        yield workers
    finally:
        stops.extend(worker.stop() for worker in workers if not (worker.stopped or worker.died))


def read_executions(sink: Path) -> list[dict[str, Any]]:
    if not sink.exists():
        return []
    return [json.loads(line) for line in sink.read_text().splitlines() if line.strip()]


def count_lines(sink: Path) -> int:
    try:
        with sink.open("rb") as f:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 16), b""))
    except FileNotFoundError:
        return 0


def run(soak: Soak, workdir: Path) -> Result:
    """Start the workers, then the producers together, and wait for every execution (or for
    the timeout, or for every worker to have died)."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = soak_env(soak, workdir)
    sink = Path(env["SOAK_SINK"])
    expected = expected_executions(soak.producers, soak.per_producer)
    if soak.broker == "redis":
        import redis

        redis.Redis.from_url(soak.redis_url).flushdb()  # the soak's own database only
    producer_errors: list[str] = []
    restarted: list[Worker] = []
    stop_seconds: list[float] = []
    idle_stops: list[float] = []
    with workers_running(soak, env, workdir, idle_stops) as workers:
        started = time.time()
        producers = [subprocess.Popen(
            [sys.executable, "-m", "tests.broker_soak", "produce", str(p),
             str(soak.per_producer), str(soak.pace), str(soak.pad)],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        ) for p in range(soak.producers)]
        deadline = time.monotonic() + soak.timeout
        while time.monotonic() < deadline:
            done = count_lines(sink)
            if done >= len(expected) and all(p.poll() is not None for p in producers):
                break
            live = [w for w in workers + restarted if not w.stopped]
            if all(w.died for w in live):
                break
            if soak.restart_after is not None and not restarted and done >= soak.restart_after:
                stop_seconds.append(workers[0].stop())
                restarted.append(Worker("soak0-again", soak, env, workdir))
                restarted[0].wait_ready()
            time.sleep(0.05)
        for p in producers:
            try:
                _, err = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                _, err = p.communicate()
            if p.returncode:
                producer_errors.append((err or "").strip().splitlines()[-1:][0]
                                       if (err or "").strip() else f"exit {p.returncode}")
        time.sleep(0.5)  # a duplicate would show up now
        all_workers = workers + restarted
        deaths = [w.death() for w in all_workers if w.died]
    idle_stops.extend(worker.stop() for worker in restarted if not worker.died)
    runs = read_executions(sink)
    seen = Counter((r["p"], r["s"], r["h"]) for r in runs)
    sends = [r["sent"] for r in runs if r["h"] == hops_of(r["s"])]
    latencies = [r["ran"] - r["sent"] for r in runs if r["eta"] is None]
    return Result(
        soak=soak, expected=len(expected), executed=len(runs), distinct=len(seen),
        duplicates=sum(n - 1 for n in seen.values()),
        missing=len(expected - set(seen)),
        early=sum(1 for r in runs if r["eta"] is not None and r["ran"] < r["eta"] - 0.05),
        wrong_queue=sum(1 for r in runs if r["queue"] != queue_of(r["s"])),
        send_seconds=(max(sends) - min(sends)) if sends else 0.0,
        seconds=(max(r["ran"] for r in runs) - started) if runs else 0.0,
        latencies=latencies, deaths=deaths, producer_errors=producer_errors,
        stop_seconds=stop_seconds, idle_stop_seconds=idle_stops,
        logs={w.name: w.log.read_text(errors="replace")[-4000:] for w in all_workers},
    )


if __name__ == "__main__":  # python -m tests.broker_soak produce PRODUCER COUNT PACE PAD
    if sys.argv[1:2] == ["produce"] and len(sys.argv) == 6:
        produce(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]))
    else:
        sys.exit("usage: python -m tests.broker_soak produce PRODUCER COUNT PACE PAD")
