"""The cache of `make run` without Redis (config/cache.py): Django's cache API, and `add` and
`incr` atomic across processes, as the jobs' locks and the rate limits need."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pytest

from config.cache import SQLiteCache

PROCESSES = 4
ROUNDS = 300


def open_cache(folder: Path) -> SQLiteCache:
    return SQLiteCache(str(folder / "cache.sqlite3"), {})


def race(folder: Path, start: float, results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    cache = open_cache(folder)
    while time.time() < start:
        pass
    won = 0
    for n in range(ROUNDS):
        cache.add("counter", 0, timeout=60)
        cache.incr("counter")
        won += cache.add(f"lock-{n}", 1, timeout=60)
    results.put(won)


def test_add_and_incr_are_atomic_across_processes(tmp_path: Path) -> None:
    open_cache(tmp_path).clear()  # the file exists before the race
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    start = time.time() + 0.5
    racers = [context.Process(target=race, args=(tmp_path, start, results))
              for _ in range(PROCESSES)]
    for racer in racers:
        racer.start()
    won = sum(results.get(timeout=60) for _ in racers)
    for racer in racers:
        racer.join(timeout=10)

    assert open_cache(tmp_path).get("counter") == PROCESSES * ROUNDS
    assert won == ROUNDS  # each lock taken once


def test_the_cache_api(tmp_path: Path) -> None:
    cache = open_cache(tmp_path)
    cache.set("answer", {"n": 42})
    assert cache.get("answer") == {"n": 42}
    assert cache.add("answer", "other") is False
    assert cache.get_many(["answer", "none"]) == {"answer": {"n": 42}}
    assert cache.has_key("answer") and not cache.has_key("none")
    assert cache.delete("answer") is True
    assert cache.get("answer", "gone") == "gone"
    with pytest.raises(ValueError):
        cache.incr("none")
    cache.set("flag", True)
    assert cache.get("flag") is True
    assert cache.get_or_set("made", lambda: [1, 2]) == [1, 2]


def test_an_expired_entry_is_gone_and_can_be_added_again(tmp_path: Path) -> None:
    cache = open_cache(tmp_path)
    cache.set("brief", 1, timeout=0.2)
    assert cache.add("never", 1, timeout=None) is True
    time.sleep(0.3)

    assert cache.get("brief") is None
    assert cache.add("brief", 2, timeout=60) is True
    assert cache.get("brief") == 2
    assert cache.touch("brief", timeout=0.1) is True
    assert cache.get("never") == 1 and cache.add("never", 2) is False
