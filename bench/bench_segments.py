"""How fast the marketer's screens answer under polling load.

Run: ``python bench/bench_segments.py``. A gunicorn server (the production web server of the
Docker image, 2 workers × 8 threads on this 2-core machine, DEBUG off, SQLite) serves a fresh
install with 2,000 demo profiles. A second process runs 50 concurrent pollers for 10 s, each
polling as an open tab does — a job row fragment every 2 s and an estimate panel fragment every
second (their hx-trigger intervals). Meanwhile this process measures the editor's validation
round trip (POST /segments/validate/, parse + check against the union schema). Targets:
fragments p95 < 50 ms, validation p95 < 100 ms. Baseline: the same request from one client on
an idle server.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

POLLERS = 50
SECONDS = 10.0
VALIDATIONS = 200
PQL = ('homeAddress.countryCode = "US" and person.birthDate.year > 1980 and '
       'select X from xEvent where X.commerce.order.priceTotal > 50')


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def poller(base: str, cookies: dict[str, str], urls: dict[str, float], ready: threading.Barrier,
           out: list[tuple[str, float, int]]) -> None:
    """One open tab: each fragment every `urls[url]` seconds, as its hx-trigger asks. The tab
    is open (client made, connection up) before the clock starts: a browser's tab is too."""
    with httpx.Client(base_url=base, cookies=cookies, headers={"HX-Request": "true"},
                      timeout=10) as client:
        client.get(next(iter(urls)))
        ready.wait()
        # tabs were opened at different moments: spread them over the longest interval
        offset = random.random() * max(urls.values())
        due = {url: time.monotonic() + offset for url in urls}
        stop_at = time.monotonic() + SECONDS
        while time.monotonic() < stop_at:
            url = min(due, key=due.__getitem__)
            time.sleep(max(0.0, due[url] - time.monotonic()))
            start = time.perf_counter()
            status = client.get(url).status_code
            out.append((url, (time.perf_counter() - start) * 1000, status))
            due[url] += urls[url]


def pollers_process(base: str, cookies: dict[str, str], urls: dict[str, float],
                    queue: multiprocessing.Queue,  # type: ignore[type-arg]
                    started: Any) -> None:
    """The second process: 50 threads polling like 50 open tabs."""
    samples: list[tuple[str, float, int]] = []
    ready = threading.Barrier(POLLERS + 1)
    threads = [threading.Thread(target=poller, args=(base, cookies, urls, ready, samples))
               for _ in range(POLLERS)]
    for thread in threads:
        thread.start()
    ready.wait()
    started.set()
    for thread in threads:
        thread.join()
    queue.put(samples)


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="studio-bench-segments-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "VAR_DIR": str(folder), "DEBUG": "false",
           "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}",
           "ENGINE_DATA_DIR": str(folder / "engine"), "BUILTIN_ENGINE_URL": base,
           "ENGINE_RATE_LIMIT": "100000", "LOG_LEVEL": "WARNING"}
    env.pop("REDIS_URL", None)
    python = sys.executable
    for command in (["migrate", "-v0"], ["bootstrap", "--no-demo-users"],
                    ["generate_demo", "--profiles", "2000"], ["collectstatic", "--noinput", "-v0"]):
        subprocess.run([python, "manage.py", *command], cwd=ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL)

    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from django.test import Client

    from connections.models import Connection
    from core.roles import Role
    from jobs.models import Job, JobKind, JobStatus

    user = User.objects.create_user("bench", password="bench-password-1")
    user.groups.add(Group.objects.get(name=Role.MARKETER.value))
    connection = Connection.objects.get()
    running = Job.objects.create(kind=JobKind.SEGMENT, connection=connection, sandbox="prod",
                                 label="Running segment job", status=JobStatus.RUNNING,
                                 remote_id="bench-1", created_by=user, progress=0.4)
    estimate = Job.objects.create(
        kind=JobKind.PREVIEW, connection=connection, sandbox="prod", label="Estimate",
        status=JobStatus.RUNNING, remote_id="bench-2", created_by=user, progress=0.5,
        request={"predicateExpression": PQL},
        metrics={"estimatedSize": 1234, "standardError": 40, "profilesReadSoFar": 1000,
                 "profilesMatchedSoFar": 600, "totalRows": 2000})
    client = Client()
    client.force_login(user)
    cookies = {"sessionid": client.cookies["sessionid"].value}

    server = subprocess.Popen(
        [python, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}",
         "--workers", "2", "--threads", "8", "--log-level", "warning"],
        cwd=ROOT, env=env)
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code < 500:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        with httpx.Client(base_url=base, cookies=cookies, timeout=10) as session:
            session.get("/segments/new/")  # the CSRF cookie, and the union schema cached
            token = session.cookies["csrftoken"]
            headers = {"X-CSRFToken": token, "HX-Request": "true"}

            def validate_round_trips(count: int) -> list[float]:
                took = []
                for _ in range(count):
                    start = time.perf_counter()
                    response = session.post("/segments/validate/", data={"pql": PQL},
                                            headers=headers)
                    took.append((time.perf_counter() - start) * 1000)
                    assert response.status_code == 200, response.text[:300]
                    assert "pql-diagnostics" in response.text
                return took

            validate_round_trips(20)  # warm every worker and thread
            quiet = validate_round_trips(VALIDATIONS)
            quiet_fragments: dict[str, list[float]] = {}
            for url in (f"/jobs/{running.pk}/row/", f"/segments/estimate/{estimate.pk}/"):
                for _ in range(VALIDATIONS):
                    start = time.perf_counter()
                    session.get(url, headers={"HX-Request": "true"})
                    quiet_fragments.setdefault(url, []).append(
                        (time.perf_counter() - start) * 1000)

            urls = {f"/jobs/{running.pk}/row/": 2.0, f"/segments/estimate/{estimate.pk}/": 1.0}
            queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
            started = multiprocessing.Event()
            second = multiprocessing.Process(target=pollers_process,
                                             args=(base, cookies, urls, queue, started))
            second.start()
            started.wait(timeout=60)
            time.sleep(1.0)
            loaded = validate_round_trips(VALIDATIONS // 4)
            samples = queue.get(timeout=SECONDS + 60)
            second.join()
    finally:
        server.terminate()
        server.wait(timeout=10)

    errors = [s for s in samples if s[2] != 200]
    by_url: dict[str, list[float]] = {}
    for url, ms, _ in samples:
        by_url.setdefault(url, []).append(ms)
    print(f"{POLLERS} pollers from a second process for {SECONDS:.0f} s (job row every 2 s, "
          f"estimate panel every 1 s); gunicorn 2 workers × 8 threads, SQLite, DEBUG off; "
          f"baseline: one client, idle server")
    for url, values in by_url.items():
        name = "job row fragment" if "/jobs/" in url else "estimate panel fragment"
        p95, base_p95 = percentile(values, 0.95), percentile(quiet_fragments[url], 0.95)
        verdict = "OK" if p95 < 50 else "OVER TARGET"
        print(f"{name:<24} p50 {statistics.median(values):6.1f} ms  p95 {p95:6.1f} ms  "
              f"({len(values)} requests; idle p95 {base_p95:5.1f} ms, {p95 / base_p95:4.2f}×)  "
              f"target p95 < 50 ms: {verdict}")
    base_p95 = percentile(quiet, 0.95)
    for label, values in (("idle server", quiet), ("under the pollers", loaded)):
        p95 = percentile(values, 0.95)
        verdict = "OK" if p95 < 100 else "OVER TARGET"
        print(f"validation round trip, {label:<18} p50 {statistics.median(values):6.1f} ms  "
              f"p95 {p95:6.1f} ms  ({p95 / base_p95:4.2f}× idle)  "
              f"target p95 < 100 ms: {verdict}")
    if errors:
        print(f"{len(errors)} requests did not answer 200, e.g. {errors[0]}")
        sys.exit(1)


if __name__ == "__main__":
    main()
