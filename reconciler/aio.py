"""``asyncio.run`` for coroutines that return large results.

On its way out, CPython 3.11's ``asyncio.run`` checks which SIGINT handler is installed; that
check formats an error message holding the repr of its main task, and so of the task's result
(``signal._int_to_enum``). For a plan of 10,000 records that repr, built twice, took 5 s. The
result is therefore handed back outside the task.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(coroutine)``, without the repr of its result."""
    box: list[T] = []

    async def main() -> None:
        box.append(await coroutine)

    asyncio.run(main())
    return box[0]
