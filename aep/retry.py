"""When and how long to wait before trying a failed request again.

Hand-written rather than tenacity: the loop around a request also refreshes the IMS token once
on a 401, reads the server's Retry-After (header, HTTP date, or Profile Access'
``retryAfterMs`` body field) to decide the next wait, and must stop on a *total time budget*
measured with an injectable clock so that tests never sleep. tenacity can do each of these
through custom ``wait``/``stop``/``sleep`` callables, but its elapsed-time stop reads
``time.monotonic`` directly and the three hooks would each need the response; the whole policy
below is ~40 lines and has no dependency.

Waits are exponential with *full jitter* (AWS Architecture Blog, "Exponential Backoff And
Jitter"): ``uniform(0, min(max_delay, base_delay * 2 ** (attempt - 1)))``. When the server says
how long to wait, we wait at least that long. We give up (and the caller raises the last
``AEPTransientError``) when ``max_attempts`` requests were sent or when the next wait would end
past ``total_budget`` seconds after the first attempt started.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["RetryPolicy"]


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded by attempts and total time.

    ``sleep``, ``clock`` (monotonic seconds) and ``random`` (``[0, 1)``) are injectable so that
    tests run instantly and deterministically. ``RetryPolicy(max_attempts=1)`` never retries.
    """

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    total_budget: float = 60.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)
    random: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def backoff(self, attempt: int) -> float:
        """The jittered wait after failed attempt number ``attempt`` (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return self.random() * ceiling

    def next_delay(self, attempt: int, *, started: float,
                   retry_after: float | None = None) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None to give up.

        ``started`` is ``clock()`` at the first attempt; ``retry_after`` the server's hint.
        """
        if attempt >= self.max_attempts:
            return None
        delay = self.backoff(attempt)
        if retry_after is not None:
            delay = max(delay, retry_after)
        if self.clock() + delay - started > self.total_budget:
            return None
        return delay
