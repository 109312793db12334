"""A task makes a round trip through a real Celery worker process over the real Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from celery import Celery
from django.core.cache.backends.redis import RedisCache

pytestmark = pytest.mark.worker

ROOT = Path(__file__).resolve().parent.parent


def isolated_redis_url() -> str:
    """The configured Redis, on database 15 so the test never meets a developer's own worker."""
    parts = urlsplit(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0")
    return urlunsplit(parts._replace(path="/15"))


@pytest.fixture(scope="module")
def redis_url() -> str:
    url = isolated_redis_url()
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.ConnectionError:
        pytest.fail(f"No Redis answers at {url}: start redis-server (.ci/run does) "
                    "or set REDIS_URL.")
    return url


@pytest.fixture(scope="module")
def worker(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    env = {**os.environ, "REDIS_URL": redis_url, "DJANGO_SETTINGS_MODULE": "config.settings"}
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--queues", "default,engine",
             "--pool", "solo", "--loglevel", "INFO",
             "--hostname", f"test-{uuid.uuid4().hex[:8]}@%h",
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        yield log
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def wait_for(cache: RedisCache, key: str, seconds: float = 30) -> object:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = cache.get(key)
        if value is not None:
            return value
        time.sleep(0.2)
    return None


@pytest.mark.parametrize("queue", ["default", "engine"])
def test_task_round_trip_through_a_real_worker(redis_url: str, worker: Path, queue: str) -> None:
    nonce = uuid.uuid4().hex
    sender = Celery("probe", broker=redis_url)
    sender.send_task("core.tasks.ping", args=[nonce], queue=queue, routing_key=queue,
                     exchange=queue, serializer="json")

    answer = wait_for(RedisCache(redis_url, {}), f"celery-ping:{nonce}")

    assert answer is not None, "the worker never ran the task:\n" + worker.read_text()[-3000:]
    assert isinstance(answer, str) and answer  # the worker's host name
    assert "uses the Redis at redis://" in worker.read_text()


def test_engine_tasks_are_routed_to_the_engine_queue() -> None:
    from config.celery import app

    route = app.amqp.router.route({}, "engine.tasks.segment_job_run")
    assert route["queue"].name == "engine"
    assert app.amqp.router.route({}, "jobs.tasks.job_poll")["queue"].name == "default"
