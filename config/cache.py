"""The cache of `make run` without Redis: one SQLite file (var/cache.sqlite3) shared by web,
worker and beat.

The app uses the cache for more than caching: `add` is a lock (jobs: one submit at a time, one
refresh per group and slot) and `incr` counts (the polling budget, the engine's rate limit).
Redis does both atomically. Django's file cache, used before, does neither across processes
(`add` is "exists? then write", `incr` is "read, then write": four processes racing lost 973
of 2,000 increments, and their `add` succeeded 606 times on 500 keys), and at 300 entries it
deletes a third of them at random, live locks included. Here each of them is one SQLite
statement or one transaction that holds the write lock, and only expired entries are removed.
"""

from __future__ import annotations

import logging
import os
import pickle
import sqlite3
import threading
import time
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache
from django.core.cache.backends.redis import RedisCache

SCHEMA = ("CREATE TABLE IF NOT EXISTS cache_entry (key TEXT PRIMARY KEY, value BLOB NOT NULL,"
          " expires REAL)")
BUSY_TIMEOUT_SECONDS = 20.0
PURGE_EVERY_SECONDS = 60.0  # how often a writer deletes the expired entries
# A forked child must neither use nor close its parent's SQLite connections (config/broker.py).
_INHERITED: list[sqlite3.Connection] = []


class SQLiteCache(BaseCache):
    """Django's cache API; integers are stored as SQLite integers so `incr` is one UPDATE."""

    def __init__(self, location: str, params: dict[str, Any]) -> None:
        super().__init__(params)
        self.path = location
        self._local = threading.local()  # one connection per thread (and per process)
        self._purged_at = 0.0

    @property
    def db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is not None and self._local.pid != os.getpid():
            _INHERITED.append(db)
            db = None
        if db is None:
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None,
                                 check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(SCHEMA)
            self._local.db, self._local.pid = db, os.getpid()
        return db

    @staticmethod
    def _dump(value: Any) -> Any:
        return value if type(value) is int else pickle.dumps(value, pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def _load(stored: Any) -> Any:
        return stored if isinstance(stored, int) else pickle.loads(stored)

    def _expiry(self, timeout: Any) -> float | None:
        seconds = self.get_backend_timeout(timeout)
        return None if seconds is None else float(seconds)

    def _write(self, sql: str, params: tuple[Any, ...]) -> int:
        now = time.time()
        if now - self._purged_at > PURGE_EVERY_SECONDS:
            self._purged_at = now
            self.db.execute("DELETE FROM cache_entry WHERE expires <= ?", (now,))
        return int(self.db.execute(sql, params).rowcount)

    def add(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT,
            version: Any = None) -> bool:
        key = self.make_and_validate_key(key, version=version)
        # inserts, or replaces an expired entry; a live one stays and the statement changes
        # nothing: one statement, so two processes can never both succeed
        return self._write(
            "INSERT INTO cache_entry (key, value, expires) VALUES (?, ?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires = excluded.expires"
            " WHERE cache_entry.expires <= ?",
            (key, self._dump(value), self._expiry(timeout), time.time())) == 1

    def get(self, key: Any, default: Any = None, version: Any = None) -> Any:
        key = self.make_and_validate_key(key, version=version)
        row = self.db.execute(
            "SELECT value FROM cache_entry WHERE key = ? AND (expires IS NULL OR expires > ?)",
            (key, time.time())).fetchone()
        return default if row is None else self._load(row[0])

    def set(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT,
            version: Any = None) -> None:
        key = self.make_and_validate_key(key, version=version)
        self._write("INSERT OR REPLACE INTO cache_entry (key, value, expires) VALUES (?, ?, ?)",
                    (key, self._dump(value), self._expiry(timeout)))

    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None) -> bool:
        key = self.make_and_validate_key(key, version=version)
        return self._write(
            "UPDATE cache_entry SET expires = ? WHERE key = ? AND (expires IS NULL OR expires > ?)",
            (self._expiry(timeout), key, time.time())) == 1

    def delete(self, key: Any, version: Any = None) -> bool:
        key = self.make_and_validate_key(key, version=version)
        return self._write("DELETE FROM cache_entry WHERE key = ?", (key,)) == 1

    def has_key(self, key: Any, version: Any = None) -> bool:
        return self.get(key, self._missing, version=version) is not self._missing

    def incr(self, key: Any, delta: int = 1, version: Any = None) -> Any:
        key = self.make_and_validate_key(key, version=version)
        db = self.db
        db.execute("BEGIN IMMEDIATE")  # the read and the write below are one step for others
        try:
            row = db.execute(
                "SELECT value FROM cache_entry WHERE key = ? AND (expires IS NULL OR expires > ?)",
                (key, time.time())).fetchone()
            if row is None:
                raise ValueError(f"Key '{key}' not found")
            value = self._load(row[0]) + delta
            db.execute("UPDATE cache_entry SET value = ? WHERE key = ?", (self._dump(value), key))
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return value

    def clear(self) -> None:
        self.db.execute("DELETE FROM cache_entry")

    _missing = object()


# --- Redis ----------------------------------------------------------------------------------

_logger = logging.getLogger(__name__)
_WARN_EVERY_SECONDS = 60.0
_warned_at = [0.0]


def _redis_errors() -> tuple[type[BaseException], ...]:
    import redis

    return (redis.ConnectionError, redis.TimeoutError)


def _unreachable(operation: str, error: BaseException) -> None:
    now = time.monotonic()
    if now - _warned_at[0] >= _WARN_EVERY_SECONDS:
        _warned_at[0] = now
        _logger.warning("the cache (Redis) cannot be reached (%s: %s): reads miss and writes "
                        "are dropped until it is back", operation, type(error).__name__)


class ForgivingRedisCache(RedisCache):
    """Django's Redis cache, except that Redis being down is a miss, not a 500: a read finds
    nothing, a write is dropped, ``add`` takes no lock and ``incr`` reads as an absent key
    (ValueError, which the counters already treat as "start again"). Pages that cache a lookup
    keep working; what needs Redis for its queue says so itself (a job waits, the engine's API
    answers 503)."""

    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        try:
            return super().get(key, default, version)
        except _redis_errors() as error:
            _unreachable("get", error)
            return default

    def get_many(self, keys: Any, version: int | None = None) -> dict[Any, Any]:
        try:
            return super().get_many(keys, version)
        except _redis_errors() as error:
            _unreachable("get_many", error)
            return {}

    def has_key(self, key: Any, version: int | None = None) -> bool:
        try:
            return super().has_key(key, version)
        except _redis_errors() as error:
            _unreachable("has_key", error)
            return False

    def set(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT,
            version: int | None = None) -> None:
        try:
            super().set(key, value, timeout, version)
        except _redis_errors() as error:
            _unreachable("set", error)

    def set_many(self, data: Any, timeout: Any = DEFAULT_TIMEOUT,
                 version: int | None = None) -> list[Any]:
        try:
            return super().set_many(data, timeout, version)
        except _redis_errors() as error:
            _unreachable("set_many", error)
            return list(data)

    def add(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT,
            version: int | None = None) -> bool:
        try:
            return super().add(key, value, timeout, version)
        except _redis_errors() as error:
            _unreachable("add", error)
            return False

    def delete(self, key: Any, version: int | None = None) -> bool:
        try:
            return super().delete(key, version)
        except _redis_errors() as error:
            _unreachable("delete", error)
            return False

    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT,
              version: int | None = None) -> bool:
        try:
            return super().touch(key, timeout, version)
        except _redis_errors() as error:
            _unreachable("touch", error)
            return False

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        try:
            return super().incr(key, delta, version)
        except _redis_errors() as error:
            _unreachable("incr", error)
            raise ValueError(f"Key {key!r} not found (the cache cannot be reached)") from error
