"""When and how long to wait before sending a request again.

Retried: 429 (service protection), 502/503/504, transport failures (connection refused or
reset, timeouts) and a read whose answer came back garbled (truncated JSON), i.e. every
``DataverseError`` whose ``retryable`` is true. Everything else (400, 404, 412, ...) is final on
the first answer.

Two budgets, because the two kinds of failure mean different things:

- a 429 that names its wait (``Retry-After``) is the service asking for patience, and its wait
  can be minutes (the service-protection window is five): it is honoured as given, on its own
  budget (``max_throttle_wait`` seconds of waiting per request), and counts toward neither
  ``max_attempts`` nor ``max_elapsed``;
- everything else (503, a dropped connection, a 429 without ``Retry-After``) backs off
  exponentially, within ``max_attempts`` sends and ``max_elapsed`` seconds (throttle waits not
  included). A garbled answer is retried at most ``max_bad_answers`` times in all: a proxy
  that mangles answers rarely stops within a minute.

POST (create) is retried like everything else although it is not idempotent: a create whose
answer was lost may have happened. The reconciler creates records with client-chosen primary
keys, so a repeated create surfaces as ``AlreadyExists`` (duplicate key) instead of a second row.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from reconciler.dataverse.errors import ApiError, DataverseError, ProtocolError, Throttled

__all__ = ["RetryPolicy"]

T = TypeVar("T")

log = logging.getLogger("reconciler.dataverse")

MIN_THROTTLE_CHARGE = 1.0
"""Seconds of the throttle budget each honoured 429 uses at least: a server answering
``Retry-After: 0`` forever cannot keep a request going forever."""


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, honouring ``Retry-After``.

    ``max_attempts`` counts the failed sends that are not honoured throttles (the first send
    included); retrying them stops as soon as the next wait would take the time since the first
    send, less the time spent waiting on throttles, past ``max_elapsed`` seconds. A 429 with
    ``Retry-After`` is waited for as long as the waits of this request add up to at most
    ``max_throttle_wait`` seconds. The last error is raised when retrying stops, with
    ``.attempts`` (every send) set. ``sleep``, ``clock`` and ``rng`` are seams for tests.
    """

    max_attempts: int = 6
    max_elapsed: float = 60.0
    base_delay: float = 0.5
    max_delay: float = 20.0
    jitter: float = 0.5
    max_throttle_wait: float = 600.0
    max_bad_answers: int = 3
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)
    rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.max_bad_answers < 1:
            raise ValueError("max_attempts and max_bad_answers must be at least 1")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter must be between 0 and 1")
        if min(self.base_delay, self.max_delay, self.max_elapsed, self.max_throttle_wait) < 0:
            raise ValueError("delays must not be negative")

    @classmethod
    def none(cls) -> RetryPolicy:
        """Send once, never retry (not even after a 429)."""
        return cls(max_attempts=1, max_throttle_wait=0.0)

    def backoff(self, attempt: int) -> float:
        """The wait after the ``attempt``-th failed send when the server named no delay."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return ceiling * self.rng.uniform(1.0 - self.jitter, 1.0)

    def delay(self, attempt: int, error: DataverseError) -> float:
        """``Retry-After`` when the answer carried one, else :meth:`backoff`."""
        if isinstance(error, ApiError) and error.retry_after is not None:
            return error.retry_after
        return self.backoff(attempt)

    @staticmethod
    def throttle_wait(error: DataverseError) -> float | None:
        """The wait a 429 asks for, or ``None`` when ``error`` is not such a 429."""
        if isinstance(error, Throttled) and error.retry_after is not None:
            return error.retry_after
        return None

    async def run(
        self,
        send: Callable[[int], Awaitable[T]],
        *,
        on_retry: Callable[[DataverseError, float], None] | None = None,
    ) -> T:
        """Call ``send(attempt)`` until it returns, or raise its last error when retrying stops.

        ``attempt`` numbers every send from 1; ``on_retry(error, wait)`` is called before each
        wait."""
        start = self.clock()
        attempt = 0
        failures = 0  # failed sends other than honoured throttles
        bad_answers = 0
        throttled = 0.0  # seconds of the throttle budget used
        throttle_waits = 0.0  # seconds actually spent waiting on throttles
        while True:
            attempt += 1
            try:
                return await send(attempt)
            except DataverseError as error:
                error.attempts = attempt
                if not error.retryable:
                    raise
                wait = self.throttle_wait(error)
                if wait is not None:
                    charge = max(wait, MIN_THROTTLE_CHARGE)
                    if throttled + charge > self.max_throttle_wait:
                        log.debug(
                            "giving up: waiting %.2fs more would pass max_throttle_wait=%.1fs",
                            wait,
                            self.max_throttle_wait,
                        )
                        raise
                    throttled += charge
                    throttle_waits += wait
                else:
                    failures += 1
                    bad_answers += isinstance(error, ProtocolError)
                    if failures >= self.max_attempts or bad_answers >= self.max_bad_answers:
                        raise
                    wait = self.delay(failures, error)
                    if self.clock() - start - throttle_waits + wait > self.max_elapsed:
                        log.debug(
                            "giving up: waiting %.2fs would pass max_elapsed=%.1fs",
                            wait,
                            self.max_elapsed,
                        )
                        raise
                if on_retry is not None:
                    on_retry(error, wait)
            await self.sleep(wait)
