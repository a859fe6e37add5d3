"""When and how long to wait before sending a request again.

Retried: 429 (service protection), 502/503/504, and transport failures (connection refused or
reset, timeouts), i.e. every ``DataverseError`` whose ``retryable`` is true. Everything else
(400, 404, 412, ...) is final on the first answer.

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

from reconciler.dataverse.errors import ApiError, DataverseError

__all__ = ["RetryPolicy"]

T = TypeVar("T")

log = logging.getLogger("reconciler.dataverse")


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, honouring ``Retry-After``.

    ``max_attempts`` counts every send, the first included. Retrying stops as soon as the next
    wait would take the time since the first send past ``max_elapsed`` seconds; the last error is
    raised then, with ``.attempts`` set. ``sleep``, ``clock`` and ``rng`` are seams for tests.
    """

    max_attempts: int = 6
    max_elapsed: float = 60.0
    base_delay: float = 0.5
    max_delay: float = 20.0
    jitter: float = 0.5
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)
    rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter must be between 0 and 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_elapsed < 0:
            raise ValueError("delays must not be negative")

    @classmethod
    def none(cls) -> RetryPolicy:
        """Send once, never retry."""
        return cls(max_attempts=1)

    def backoff(self, attempt: int) -> float:
        """The wait after the ``attempt``-th failed send when the server named no delay."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return ceiling * self.rng.uniform(1.0 - self.jitter, 1.0)

    def delay(self, attempt: int, error: DataverseError) -> float:
        """``Retry-After`` when the answer carried one, else :meth:`backoff`."""
        if isinstance(error, ApiError) and error.retry_after is not None:
            return error.retry_after
        return self.backoff(attempt)

    async def run(
        self,
        send: Callable[[int], Awaitable[T]],
        *,
        on_retry: Callable[[DataverseError, float], None] | None = None,
    ) -> T:
        """Call ``send(attempt)`` until it returns, or raise its last error when retrying stops."""
        start = self.clock()
        attempt = 1
        while True:
            try:
                return await send(attempt)
            except DataverseError as error:
                error.attempts = attempt
                if not error.retryable or attempt >= self.max_attempts:
                    raise
                wait = self.delay(attempt, error)
                if self.clock() - start + wait > self.max_elapsed:
                    log.debug(
                        "giving up: waiting %.2fs would pass max_elapsed=%.1fs",
                        wait,
                        self.max_elapsed,
                    )
                    raise
                if on_retry is not None:
                    on_retry(error, wait)
            await self.sleep(wait)
            attempt += 1
