"""The embedded broker of `make run` (config/broker.py): no half-written message is ever read,
each message goes to one consumer, and real workers run every task of several producers once,
through a restart. The 6,000-task soak against Redis and the old filesystem broker is
bench/bench_broker.py."""

from __future__ import annotations

import multiprocessing
import socket
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from queue import Empty

import pytest
from django.test import Client, override_settings
from kombu import Connection

from config.broker import database_path
from tests import broker_soak


def broker_url(folder: Path) -> str:
    return f"sqlite:///{folder / 'broker.sqlite3'}"


@pytest.fixture
def url(tmp_path: Path) -> str:
    return broker_url(tmp_path)


@pytest.fixture
def broker(url: str) -> Iterator[Connection]:
    with Connection(url) as connection:
        yield connection


def drain(url: str, found: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """Take messages until none is left, acknowledging each, and report their bodies."""
    taken = []
    with Connection(url) as connection:
        queue = connection.SimpleQueue("default")
        while True:
            try:
                message = queue.get(block=False)
            except Empty:
                break
            message.ack()
            taken.append(message.payload)
    found.put(taken)


def test_a_message_still_being_written_is_not_read(broker: Connection, url: str) -> None:
    queue = broker.SimpleQueue("default")
    queue.put({"n": 1})
    raw = sqlite3.connect(database_path(url), isolation_level=None)
    payload = raw.execute("SELECT payload FROM message").fetchone()[0]
    raw.execute("DELETE FROM message")
    raw.execute("BEGIN IMMEDIATE")  # a producer in the middle of its write
    raw.execute("INSERT INTO message (queue, payload) VALUES ('default', ?)", (payload,))

    with pytest.raises(Empty):
        queue.get(block=False)

    raw.execute("COMMIT")
    assert queue.get(block=False).payload == {"n": 1}
    raw.close()


def test_concurrent_consumers_take_each_message_exactly_once(broker: Connection,
                                                             url: str) -> None:
    queue = broker.SimpleQueue("default")
    for n in range(1500):
        queue.put({"n": n})
    context = multiprocessing.get_context("fork")
    found = context.Queue()
    consumers = [context.Process(target=drain, args=(url, found)) for _ in range(4)]
    for process in consumers:
        process.start()
    taken = [body["n"] for _ in consumers for body in found.get(timeout=60)]
    for process in consumers:
        process.join(timeout=10)

    assert Counter(taken) == Counter(range(1500))
    assert all(process.exitcode == 0 for process in consumers)


def send_from_child(queue: object) -> None:
    queue.put({"from": "child"})  # type: ignore[attr-defined]


def test_a_forked_child_sends_on_its_own_database_connection(broker: Connection) -> None:
    queue = broker.SimpleQueue("default")
    queue.put({"from": "parent"})  # the parent's connection is open when the child forks
    child = multiprocessing.get_context("fork").Process(target=send_from_child, args=(queue,))
    child.start()
    child.join(timeout=30)

    assert child.exitcode == 0
    assert sorted(queue.get(block=False).payload["from"] for _ in range(2)) == ["child", "parent"]


def test_an_idle_worker_hears_of_a_shutdown_soon(broker: Connection) -> None:
    """Celery's loop for polling transports asks drain_events for 2 s and looks for a shutdown
    only between calls; waiting the 2 s made an idle worker's warm shutdown take 6.4 s, past the
    5 s after which honcho (Ctrl-C in `make run`) kills it and its held countdowns are lost."""
    consumer = broker.SimpleQueue("default").consumer
    consumer.consume()
    started = time.monotonic()

    with pytest.raises(socket.timeout):
        broker.drain_events(timeout=2.0)

    assert time.monotonic() - started < 1.0


@pytest.mark.django_db
def test_healthz_reports_the_embedded_broker(client: Client, url: str, tmp_path: Path) -> None:
    with override_settings(CELERY_BROKER_URL=url, CELERY_BROKER_TRANSPORT_OPTIONS={}):
        body = client.get("/healthz").json()
    assert body["checks"]["broker"] == {"ok": True,
                                        "detail": "embedded SQLite broker, 0 messages waiting"}

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with override_settings(CELERY_BROKER_URL=broker_url(blocker),
                           CELERY_BROKER_TRANSPORT_OPTIONS={}):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"]["ok"] is False


@pytest.mark.worker
def test_workers_run_every_task_of_several_producers_once_through_a_restart(
        tmp_path: Path) -> None:
    soak = broker_soak.Soak("embedded", producers=3, per_producer=100, restart_after=150,
                            timeout=90)

    result = broker_soak.run(soak, tmp_path)

    assert result.ok, result.summary() + "\n" + "\n".join(result.producer_errors) + \
        "\n".join(f"--- {name}\n{log}" for name, log in result.logs.items())
    assert result.executed == result.expected == 360
