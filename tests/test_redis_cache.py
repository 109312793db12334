"""With REDIS_URL the cache is Redis (config.cache.ForgivingRedisCache): while Redis is down a
read misses, a write is dropped, a lock is not taken and a counter starts again — a page that
caches a lookup answers, instead of a 500. A real redis-server of the test's own is stopped."""

from __future__ import annotations

import pytest

from config.cache import ForgivingRedisCache
from tests.jobs.test_worker import Redis, redis_server  # noqa: F401 - fixture


def test_redis_down_is_a_miss_not_an_error(redis_server: Redis) -> None:  # noqa: F811
    if redis_server.port is None:
        pytest.fail("redis-server is needed to stop and start one of our own")
    cache = ForgivingRedisCache(redis_server.url, {})
    cache.set("names", {"a": "b"}, 60)
    assert cache.get("names") == {"a": "b"}
    redis_server.stop()
    try:
        assert cache.get("names", "missing") == "missing"
        assert cache.get_many(["names"]) == {}
        cache.set("other", 1, 60)  # dropped, no error
        assert cache.add("lock", 1, 60) is False
        with pytest.raises(ValueError):  # the counters start again, as for an absent key
            cache.incr("counter")
        assert cache.delete("names") is False
    finally:
        redis_server.start()
    cache.close()
    cache.set("names", {"c": "d"}, 60)  # back (empty: the server keeps nothing on disk)
    assert cache.get("names") == {"c": "d"} and cache.add("lock", 1, 60) is True
